package test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// metricRef says which resource a dimension must name: the logical id of a
// pipeline or producer resource, which cross-stack values carry in their
// output name, or a literal value.
type alarmWant struct {
	namespace, metric, stat, op string
	dims                        map[string]string // dimension -> logical id or literal it must contain
	threshold                   float64
	periods, period             float64
}

func pipelineIDs(t *testing.T, s *synthesized) (api, stage, stream, delivery string) {
	api, _ = s.only(t, "AWS::ApiGateway::RestApi")
	stage, _ = s.only(t, "AWS::ApiGateway::Stage")
	stream, _ = s.only(t, "AWS::Kinesis::Stream")
	delivery, _ = s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	return
}

func checkAlarms(t *testing.T, s *synthesized, want map[string]alarmWant) {
	t.Helper()
	tpl := s.monitoring.json
	topicID, _ := only(t, tpl, "AWS::SNS::Topic")
	alarms := resourcesOf(tpl, "AWS::CloudWatch::Alarm")
	if len(alarms) != len(want) {
		t.Errorf("%d alarms, want %d", len(alarms), len(want))
	}
	for name, w := range want {
		var a map[string]any
		for id, r := range alarms {
			if strings.HasPrefix(id, "Monitoring"+name) {
				a = props(r)
			}
		}
		if a == nil {
			t.Errorf("no %s alarm", name)
			continue
		}
		got := fmt.Sprint(a["Namespace"], " ", a["MetricName"], " ", a["Statistic"], " ", a["ComparisonOperator"], " ", a["Threshold"], " ", a["EvaluationPeriods"], " ", a["Period"])
		exp := fmt.Sprint(w.namespace, " ", w.metric, " ", w.stat, " ", w.op, " ", w.threshold, " ", w.periods, " ", w.period)
		if got != exp {
			t.Errorf("%s alarm: %s\n want %s", name, got, exp)
		}
		dims := map[string]string{}
		for _, d := range a["Dimensions"].([]any) {
			dims[get(d, "Name").(string)] = joined(get(d, "Value"))
		}
		if len(dims) != len(w.dims) {
			t.Errorf("%s alarm dimensions %v, want %v", name, dims, w.dims)
		}
		for k, v := range w.dims {
			if !strings.Contains(dims[k], v) {
				t.Errorf("%s alarm dimension %s = %q, want it to name %s", name, k, dims[k], v)
			}
		}
		if a["TreatMissingData"] != "notBreaching" || joined(get(a, "AlarmActions", 0)) != "${"+topicID+"}" || joined(get(a, "OKActions", 0)) != "${"+topicID+"}" {
			t.Errorf("%s alarm: missing data %v, actions %v / %v; want notBreaching and the topic both ways", name, a["TreatMissingData"], a["AlarmActions"], a["OKActions"])
		}
		if d, _ := a["AlarmDescription"].(string); len(d) < 40 {
			t.Errorf("%s alarm does not say what to do: %q", name, d)
		}
	}
}

func TestAlarmsWatchTheRightMetrics(t *testing.T) {
	s := synth(t, nil)
	_, stage, stream, delivery := pipelineIDs(t, s)
	host, _ := only(t, s.producer.json, "AWS::EC2::Instance")
	ge, lt, gt := "GreaterThanOrEqualToThreshold", "LessThanThreshold", "GreaterThanThreshold"
	checkAlarms(t, s, map[string]alarmWant{
		"Api5xx":          {"AWS/ApiGateway", "5XXError", "Sum", ge, map[string]string{"ApiName": "Tributary-PROD-Pipeline-ingest", "Stage": stage}, 5, 1, 300},
		"WriteThrottled":  {"AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", ge, map[string]string{"StreamName": stream}, 1, 1, 300},
		"IteratorAge":     {"AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", ge, map[string]string{"StreamName": stream}, 600000, 1, 300},
		"DataFreshness":   {"AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", gt, map[string]string{"DeliveryStreamName": delivery}, 60 + 300, 1, 300},
		"DeliveryFailure": {"AWS/Firehose", "DeliveryToS3.Success", "Average", lt, map[string]string{"DeliveryStreamName": delivery}, 1, 1, 300},
		"HostStatusCheck": {"AWS/EC2", "StatusCheckFailed", "Maximum", ge, map[string]string{"InstanceId": host}, 1, 2, 60},
	})
	if n := len(resourcesOf(s.monitoring.json, "AWS::SNS::Subscription")); n != 0 {
		t.Errorf("%d subscriptions without alarmEmail", n)
	}
}

func TestAlarmThresholdsAreSettings(t *testing.T) {
	s := synth(t, customSettings)
	_, stage, stream, delivery := pipelineIDs(t, s)
	host, _ := only(t, s.producer.json, "AWS::EC2::Instance")
	ge, lt, gt := "GreaterThanOrEqualToThreshold", "LessThanThreshold", "GreaterThanThreshold"
	checkAlarms(t, s, map[string]alarmWant{
		"Api5xx":          {"AWS/ApiGateway", "5XXError", "Sum", ge, map[string]string{"ApiName": "Acme-dev-Pipeline-ingest", "Stage": stage}, 10, 1, 300},
		"WriteThrottled":  {"AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", ge, map[string]string{"StreamName": stream}, 50, 1, 300},
		"IteratorAge":     {"AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", ge, map[string]string{"StreamName": stream}, 1800000, 1, 300},
		"DataFreshness":   {"AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", gt, map[string]string{"DeliveryStreamName": delivery}, 300 + 600, 1, 300},
		"DeliveryFailure": {"AWS/Firehose", "DeliveryToS3.Success", "Average", lt, map[string]string{"DeliveryStreamName": delivery}, 0.99, 1, 300},
		"HostStatusCheck": {"AWS/EC2", "StatusCheckFailed", "Maximum", ge, map[string]string{"InstanceId": host}, 1, 2, 60},
	})
	_, sub := only(t, s.monitoring.json, "AWS::SNS::Subscription")
	if get(sub, "Properties", "Protocol") != "email" || get(sub, "Properties", "Endpoint") != "ops@example.com" {
		t.Errorf("subscription = %v", props(sub))
	}
	// Without a producer host there is nothing to check on EC2.
	open := synth(t, openSettings)
	for id := range resourcesOf(open.monitoring.json, "AWS::CloudWatch::Alarm") {
		if strings.Contains(id, "Host") {
			t.Errorf("alarm %s without a producer host", id)
		}
	}
	if strings.Contains(dashboardBody(t, open), "AWS/EC2") {
		t.Error("dashboard shows EC2 metrics without a producer host")
	}
}

func TestAlarmTopicRequiresTLS(t *testing.T) {
	s := synth(t, nil)
	topicID, _ := only(t, s.monitoring.json, "AWS::SNS::Topic")
	_, policy := only(t, s.monitoring.json, "AWS::SNS::TopicPolicy")
	found := false
	for _, st := range get(policy, "Properties", "PolicyDocument", "Statement").([]any) {
		if get(st, "Effect") == "Deny" && get(st, "Condition", "Bool", "aws:SecureTransport") == "false" && joined(get(st, "Resource")) == "${"+topicID+"}" {
			found = true
		}
	}
	if !found {
		t.Error("the alarm topic does not refuse publishing without TLS")
	}
}

func dashboardBody(t *testing.T, s *synthesized) string {
	t.Helper()
	_, d := only(t, s.monitoring.json, "AWS::CloudWatch::Dashboard")
	return joined(get(d, "Properties", "DashboardBody"))
}

// Every metric the issue lists is on the dashboard, with dimensions that name
// this pipeline's resources.
func TestDashboardShowsThePipeline(t *testing.T) {
	s := synth(t, nil)
	_, stage, stream, delivery := pipelineIDs(t, s)
	host, _ := only(t, s.producer.json, "AWS::EC2::Instance")
	var body struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title   string
				Metrics [][]any
				Alarms  []string
			}
		}
	}
	if err := json.Unmarshal([]byte(dashboardBody(t, s)), &body); err != nil {
		t.Fatalf("dashboard body is not JSON: %v", err)
	}
	got := map[string]bool{}
	alarms := 0
	for _, w := range body.Widgets {
		alarms += len(w.Properties.Alarms)
		for _, m := range w.Properties.Metrics {
			var parts []string
			stat := "Average" // CloudWatch's default, which CDK leaves out
			for _, p := range m {
				if s, ok := p.(string); ok {
					parts = append(parts, s)
				} else if opts, ok := p.(map[string]any); ok && opts["stat"] != nil {
					stat = fmt.Sprint(opts["stat"])
				}
			}
			parts = append(parts, "stat="+stat)
			got[strings.Join(parts, " ")] = true
		}
	}
	want := []string{
		"AWS/ApiGateway Count ApiName Tributary-PROD-Pipeline-ingest Stage ${" + stage + "} stat=Sum",
		"AWS/ApiGateway 4XXError ApiName Tributary-PROD-Pipeline-ingest Stage ${" + stage + "} stat=Sum",
		"AWS/ApiGateway 5XXError ApiName Tributary-PROD-Pipeline-ingest Stage ${" + stage + "} stat=Sum",
		"AWS/ApiGateway Latency ApiName Tributary-PROD-Pipeline-ingest Stage ${" + stage + "} stat=p50",
		"AWS/ApiGateway Latency ApiName Tributary-PROD-Pipeline-ingest Stage ${" + stage + "} stat=p99",
		"AWS/Kinesis IncomingRecords StreamName ${" + stream + "} stat=Sum",
		"AWS/Kinesis IncomingBytes StreamName ${" + stream + "} stat=Sum",
		"AWS/Kinesis WriteProvisionedThroughputExceeded StreamName ${" + stream + "} stat=Sum",
		"AWS/Kinesis PutRecord.Success StreamName ${" + stream + "} stat=Average",
		"AWS/Kinesis PutRecords.Success StreamName ${" + stream + "} stat=Average",
		"AWS/Kinesis GetRecords.IteratorAgeMilliseconds StreamName ${" + stream + "} stat=Maximum",
		"AWS/Firehose DeliveryToS3.Records DeliveryStreamName ${" + delivery + "} stat=Sum",
		"AWS/Firehose DeliveryToS3.Bytes DeliveryStreamName ${" + delivery + "} stat=Sum",
		"AWS/Firehose DeliveryToS3.Success DeliveryStreamName ${" + delivery + "} stat=Average",
		"AWS/Firehose DeliveryToS3.DataFreshness DeliveryStreamName ${" + delivery + "} stat=Maximum",
		"AWS/EC2 CPUUtilization InstanceId ${" + host + "} stat=Average",
	}
	// Cross-stack values are ${Fn::GetStackOutput:<stack>/PublishOutputRef<logical id>...}: normalise to ${<logical id>}.
	normalised := map[string]bool{}
	for g := range got {
		normalised[normaliseCrossStack(g)] = true
	}
	var missing []string
	for _, w := range want {
		if !normalised[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		have := make([]string, 0, len(normalised))
		for g := range normalised {
			have = append(have, g)
		}
		sort.Strings(have)
		t.Errorf("dashboard lacks:\n  %s\nhas:\n  %s", strings.Join(missing, "\n  "), strings.Join(have, "\n  "))
	}
	if alarms != 6 {
		t.Errorf("alarm status widget lists %d alarms, want 6", alarms)
	}
}

// normaliseCrossStack turns ${Fn::GetStackOutput:S/PublishOutputRefXYZ1234ABCD5678EFGH} into ${XYZ1234ABCD},
// dropping CDK's 8-character hash suffix of the output name.
func normaliseCrossStack(s string) string {
	for {
		i := strings.Index(s, "${Fn::GetStackOutput:")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "}")
		inner := s[i+len("${Fn::GetStackOutput:") : i+j]
		_, out, _ := strings.Cut(inner, "/")
		out = strings.TrimPrefix(out, "PublishOutputRef")
		if len(out) > 8 {
			out = out[:len(out)-8]
		}
		s = s[:i] + "${" + out + "}" + s[i+j+1:]
	}
}
