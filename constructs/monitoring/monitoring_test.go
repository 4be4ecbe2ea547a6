package monitoring_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/monitoring"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// Names of the watched resources that are literals in the template.
const (
	apiName      = "test-ingest"   // the RestApi's name: the ApiName dimension
	deliveryName = "test-delivery" // the imported delivery stream: the DeliveryStreamName dimension
	bucketName   = "test-data"     // the imported data bucket: the BucketName dimension
	// The host's producer publishes here, dimensioned Pipeline=Tributary-PROD.
	producerNamespace = "Tributary/PROD"
	producerPipeline  = "Tributary-PROD"
)

// watched creates small real resources for monitoring to watch: a REST API
// with one mock method (its PROD stage), a Kinesis stream, an imported
// delivery stream and, with host, an EC2 instance in an imported VPC.
func watched(scope constructs.Construct, host bool) *monitoring.Props {
	api := awsapigateway.NewRestApi(scope, jsii.String("API"), &awsapigateway.RestApiProps{
		RestApiName:   jsii.String(apiName),
		DeployOptions: &awsapigateway.StageOptions{StageName: jsii.String("PROD")},
	})
	api.Root().AddMethod(jsii.String("GET"), awsapigateway.NewMockIntegration(nil), nil)
	p := &monitoring.Props{
		Stage:          api.DeploymentStage(),
		Stream:         awskinesis.NewStream(scope, jsii.String("Events"), nil),
		DeliveryStream: awskinesisfirehose.DeliveryStream_FromDeliveryStreamName(scope, jsii.String("Delivery"), jsii.String(deliveryName)),
		Bucket:         awss3.Bucket_FromBucketName(scope, jsii.String("Data"), jsii.String(bucketName)),
		ErrorFilterID:  "errors",
		DashboardName:  "test-dashboard",
	}
	if host {
		vpc := awsec2.Vpc_FromVpcAttributes(scope, jsii.String("Vpc"), &awsec2.VpcAttributes{
			VpcId: jsii.String("vpc-0123456789abcdef0"), AvailabilityZones: jsii.Strings("us-east-1a"),
			PublicSubnetIds: jsii.Strings("subnet-0123456789abcdef0"), PublicSubnetRouteTableIds: jsii.Strings("rtb-0123456789abcdef0"),
		})
		p.Instance = awsec2.NewInstance(scope, jsii.String("Host"), &awsec2.InstanceProps{
			Vpc: vpc, VpcSubnets: &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
			InstanceType: awsec2.NewInstanceType(jsii.String("t4g.nano")),
			MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(&awsec2.AmazonLinux2023ImageSsmParameterProps{CpuType: awsec2.AmazonLinuxCpuType_ARM_64}),
		})
		p.ProducerNamespace, p.ProducerPipeline = producerNamespace, producerPipeline
	}
	return p
}

// fixture is one synthesized configuration: the construct, its stack's
// template and the logical ids the alarms and the dashboard must name.
type fixture struct {
	m                            *monitoring.Monitoring
	stack                        awscdk.Stack
	tpl                          assertions.Template
	stage, stream, host, topicID string // host is "" without an instance
	dashboardName                string
}

// build synthesizes one configuration. The template validator is left to
// test/, which runs it on every stack of the app.
func build(host bool, edit func(*monitoring.Props)) *fixture {
	stack := cdktest.NewStack()
	p := watched(stack, host)
	if edit != nil {
		edit(p)
	}
	f := &fixture{stack: stack, m: monitoring.New(stack, "Monitoring", p), dashboardName: p.DashboardName}
	f.tpl = assertions.Template_FromStack(stack, nil)
	f.stage = nag.LogicalID(p.Stage)
	f.stream = nag.LogicalID(p.Stream)
	if host {
		f.host = nag.LogicalID(p.Instance)
	}
	f.topicID = nag.LogicalID(f.m.Topic)
	return f
}

// The two configurations, each synthesized once: the defaults with a
// producer host and no e-mail; every threshold set, an e-mail, no host.
var (
	defaults = sync.OnceValue(func() *fixture {
		return build(true, func(p *monitoring.Props) { p.BufferingSeconds = 60 })
	})
	custom = sync.OnceValue(func() *fixture {
		return build(false, func(p *monitoring.Props) {
			p.BufferingSeconds = 300
			p.DashboardName = "custom-dashboard"
			p.Email = "ops@example.com"
			p.API5xx, p.WriteThrottled, p.IteratorAgeMinutes = ref(10), ref(50), ref(30)
			p.FreshnessMarginSeconds, p.DeliverySuccessPercent = ref(600), ref(99)
			// Set without a host: validated, and no producer alarm.
			p.ProducerDeadLettered, p.ProducerOldestUnconfirmedSeconds = ref(5), ref(900)
		})
	})
	// The producer's thresholds set, with a host.
	producerCustom = sync.OnceValue(func() *fixture {
		return build(true, func(p *monitoring.Props) {
			p.ProducerDeadLettered, p.ProducerOldestUnconfirmedSeconds = ref(25), ref(1800)
		})
	})
)

// alarmWant is what one alarm must be: its metric, how it compares, and a
// word its description must contain (so descriptions are not swapped).
type alarmWant struct {
	namespace, metric, stat string
	dims                    []any
	period                  float64
	op                      string
	threshold               float64
	periods                 float64
	says                    string
}

const (
	atLeast = "GreaterThanOrEqualToThreshold"
	above   = "GreaterThanThreshold"
	below   = "LessThanThreshold"
)

func dim(name string, value any) map[string]any { return map[string]any{"Name": name, "Value": value} }
func refTo(id string) map[string]any            { return map[string]any{"Ref": id} }

func (f *fixture) apiDims() []any {
	return []any{dim("ApiName", apiName), dim("Stage", refTo(f.stage))}
}
func (f *fixture) streamDims() []any { return []any{dim("StreamName", refTo(f.stream))} }
func (f *fixture) deliveryDims() []any {
	return []any{dim("DeliveryStreamName", deliveryName)}
}
func errorDims() []any { return []any{dim("BucketName", bucketName), dim("FilterId", "errors")} }

// checkAlarms asserts that the template holds exactly the alarms in want,
// each the construct's Alarms[name], with exactly these properties: the
// metric, threshold and operator, missing data as not breaching, the topic
// as alarm and OK action, and no fixed name.
func checkAlarms(t *testing.T, f *fixture, want map[string]alarmWant, math map[string]mathWant) {
	t.Helper()
	cdktest.Expect(t, "alarm count", func() {
		f.tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(len(want)+len(math)))
	})
	names := make([]string, 0, len(f.m.Alarms))
	for n := range f.m.Alarms {
		names = append(names, n)
	}
	wantNames := make([]string, 0, len(want))
	for n := range want {
		wantNames = append(wantNames, n)
	}
	for n := range math {
		wantNames = append(wantNames, n)
	}
	sort.Strings(names)
	sort.Strings(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("Alarms = %v, want %v", names, wantNames)
	}
	all := *f.tpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), nil)
	for name, w := range want {
		a, ok := f.m.Alarms[name]
		if !ok {
			continue
		}
		missing := "notBreaching"
		if breachingWhenMissing[name] {
			missing = "breaching"
		}
		exactly(t, f, all, name, nag.LogicalID(a), map[string]any{
			"Namespace": w.namespace, "MetricName": w.metric, "Dimensions": w.dims,
			"Statistic": w.stat, "Period": w.period,
			"ComparisonOperator": w.op, "Threshold": w.threshold, "EvaluationPeriods": w.periods,
			"TreatMissingData": missing,
		}, w.says)
	}
	for name, w := range math {
		a, ok := f.m.Alarms[name]
		if !ok {
			continue
		}
		exactly(t, f, all, name, nag.LogicalID(a), map[string]any{
			"Metrics": w.metrics, "ComparisonOperator": w.op, "Threshold": w.threshold, "EvaluationPeriods": w.periods,
			"TreatMissingData": "notBreaching",
		}, w.says)
	}
}

// breachingWhenMissing are the alarms for which no data is the failure.
var breachingWhenMissing = map[string]bool{"ProducerHeartbeat": true}

// mathWant is an alarm on metric math: its metrics and expression as the
// template lists them.
type mathWant struct {
	metrics            []any
	op                 string
	threshold, periods float64
	says               string
}

// exactly checks that alarm id has exactly props, plus the topic as alarm
// and OK action and a description that says what to do (at least 40
// characters) about this alarm.
func exactly(t *testing.T, f *fixture, all map[string]*map[string]any, name, id string, props map[string]any, says string) {
	t.Helper()
	props["AlarmActions"], props["OKActions"] = []any{refTo(f.topicID)}, []any{refTo(f.topicID)}
	props["AlarmDescription"] = assertions.Match_StringLikeRegexp(jsii.String("^(?=.{40,}$).*" + says))
	found := *f.tpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{"Properties": assertions.Match_Exact(props)})
	if _, ok := found[id]; !ok || len(found) != 1 {
		got, _ := json.MarshalIndent((*all[id])["Properties"], "", " ")
		t.Errorf("%s alarm (%s) is not exactly\n%s\ngot\n%s", name, id, show(props), got)
	}
}

func (f *fixture) producerDims() []any {
	return []any{dim("Host", refTo(f.host)), dim("Pipeline", producerPipeline)}
}

func show(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// Defaults: each alarm watches its metric with the documented default
// threshold; the data-freshness alarm allows the buffering plus 5 minutes;
// one object written to the error prefix in 5 minutes (S3's PUT requests
// for the bucket's filter on it) fires ErrorObjects, which says what to
// check first;
// with a producer host its status checks are watched for 2 minutes.
func TestAlarmsWatchTheRightMetrics(t *testing.T) {
	f := defaults()
	checkAlarms(t, f, map[string]alarmWant{
		"Api5xx":          {"AWS/ApiGateway", "5XXError", "Sum", f.apiDims(), 300, atLeast, 5, 1, "5xx"},
		"WriteThrottled":  {"AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", f.streamDims(), 300, atLeast, 1, 1, "throttled"},
		"IteratorAge":     {"AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", f.streamDims(), 300, atLeast, 10 * 60_000, 1, "behind"},
		"DataFreshness":   {"AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", f.deliveryDims(), 300, above, 60 + 300, 1, "buffering"},
		"DeliveryFailure": {"AWS/Firehose", "DeliveryToS3.Success", "Average", f.deliveryDims(), 300, below, 1, 1, "failed to deliver"},
		"ErrorObjects":    {"AWS/S3", "PutRequests", "Sum", errorDims(), 300, atLeast, 1, 1, "Latest errors .*send the records back .docs/querying.md, Errors"},
		"HostStatusCheck": {"AWS/EC2", "StatusCheckFailed", "Maximum", []any{dim("InstanceId", refTo(f.host))}, 60, atLeast, 1, 2, "status checks"},
		// No heartbeat for 3 minutes (missing data breaches); one event dead-lettered; an event unconfirmed 5 minutes.
		"ProducerHeartbeat":         {producerNamespace, "Heartbeat", "SampleCount", f.producerDims(), 60, below, 1, 3, "no heartbeat.*Check first its log .LogsCommand."},
		"ProducerDeadLettered":      {producerNamespace, "EventsDeadLettered", "Sum", f.producerDims(), 300, atLeast, 1, 1, "Check first the metric EventsDeadLettered by its Reason.*producer replay"},
		"ProducerOldestUnconfirmed": {producerNamespace, "OldestUnconfirmedSeconds", "Maximum", f.producerDims(), 60, above, 300, 1, "Check first the producer's log"},
	}, map[string]mathWant{
		// The least file lag of each 5 minutes grew in 3 periods in a row.
		"ProducerFileLag": {[]any{
			map[string]any{"Id": "expr_1", "Expression": "RATE(lagFloor)", "Label": "file lag growth (bytes/s)", "ReturnData": true},
			map[string]any{"Id": "lagFloor", "ReturnData": false, "MetricStat": map[string]any{
				"Metric": map[string]any{"Namespace": producerNamespace, "MetricName": "FileLagBytes", "Dimensions": f.producerDims()},
				"Period": 300.0, "Stat": "Minimum",
			}},
		}, above, 0, 3, "falling behind its files.*15 minutes.*Check first QueueBytes"},
	})
	cdktest.Expect(t, "no subscription without Email", func() {
		f.tpl.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(0))
	})
	pc := producerCustom()
	thresholds := map[string]any{}
	for _, name := range []string{"ProducerDeadLettered", "ProducerOldestUnconfirmed"} {
		id := nag.LogicalID(pc.m.Alarms[name])
		thresholds[name] = (*(*pc.tpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), nil))[id])["Properties"].(map[string]any)["Threshold"]
	}
	if fmt.Sprint(thresholds) != "map[ProducerDeadLettered:25 ProducerOldestUnconfirmed:1800]" {
		t.Errorf("producer thresholds %v, want the props' 25 and 1800", thresholds)
	}
	// (The assertions library matches a construct path exactly or "*": filter here.)
	ann := assertions.Annotations_FromStack(f.stack)
	for _, msgs := range []*[]*cxapi.SynthesisMessage{
		ann.FindWarning(jsii.String("*"), assertions.Match_AnyValue()), ann.FindError(jsii.String("*"), assertions.Match_AnyValue()),
	} {
		for _, msg := range *msgs {
			if *msg.Id == "/Test/Monitoring" || strings.HasPrefix(*msg.Id, "/Test/Monitoring/") {
				t.Errorf("%s on %s: %v", msg.Level, *msg.Id, msg.Entry.Data)
			}
		}
	}
}

// Thresholds are props: each one set moves its alarm, the freshness alarm
// follows BufferingSeconds, and without an Instance there is no host alarm.
func TestAlarmThresholdsAreProps(t *testing.T) {
	f := custom()
	checkAlarms(t, f, map[string]alarmWant{
		"Api5xx":          {"AWS/ApiGateway", "5XXError", "Sum", f.apiDims(), 300, atLeast, 10, 1, "5xx"},
		"WriteThrottled":  {"AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", f.streamDims(), 300, atLeast, 50, 1, "throttled"},
		"IteratorAge":     {"AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", f.streamDims(), 300, atLeast, 30 * 60_000, 1, "behind"},
		"DataFreshness":   {"AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", f.deliveryDims(), 300, above, 300 + 600, 1, "buffering"},
		"DeliveryFailure": {"AWS/Firehose", "DeliveryToS3.Success", "Average", f.deliveryDims(), 300, below, 0.99, 1, "failed to deliver"},
		"ErrorObjects":    {"AWS/S3", "PutRequests", "Sum", errorDims(), 300, atLeast, 1, 1, "Latest errors .*send the records back .docs/querying.md, Errors"},
	}, nil)
	for _, ns := range []string{"AWS/EC2", producerNamespace} {
		if n := len(*f.tpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"Properties": map[string]any{"Namespace": ns},
		})); n != 0 {
			t.Errorf("%d %s alarms without an Instance", n, ns)
		}
	}
}

// The alarm topic refuses publishing without TLS, has no fixed name, carries
// the reasoned SNS2 suppression (alarms cannot publish to aws/sns), and
// subscribes the e-mail address only when one is given.
func TestAlarmTopic(t *testing.T) {
	for _, f := range []*fixture{defaults(), custom()} {
		cdktest.Expect(t, "one topic, no fixed name, not encrypted with aws/sns", func() {
			f.tpl.ResourceCountIs(jsii.String("AWS::SNS::Topic"), jsii.Number(1))
			f.tpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]any{
				"DisplayName": "Tributary alarms", "TopicName": assertions.Match_Absent(), "KmsMasterKeyId": assertions.Match_Absent(),
			})
		})
		cdktest.Expect(t, "topic requires TLS", func() {
			f.tpl.HasResourceProperties(jsii.String("AWS::SNS::TopicPolicy"), map[string]any{
				"Topics": []any{refTo(f.topicID)},
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": refTo(f.topicID),
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})})},
			})
		})
		// The one suppression: SNS2 on the topic, for all its findings, with the reason.
		got := cdktest.Suppressions(f.tpl)
		if len(got) != 1 || got[0].Resource != f.topicID || got[0].Rule != "AwsSolutions-SNS2" || len(got[0].AppliesTo) != 0 ||
			!strings.Contains(got[0].Reason, "cannot publish to a topic encrypted with the AWS managed key aws/sns") {
			t.Errorf("suppressions %v; want only AwsSolutions-SNS2 on %s, with the reason", got, f.topicID)
		}
	}
	f := custom()
	cdktest.Expect(t, "the e-mail subscribed to the topic", func() {
		f.tpl.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(1))
		f.tpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
			"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": refTo(f.topicID),
		})
	})
	// (The defaults have no subscription: TestAlarmsWatchTheRightMetrics.)
}

// dashboard is the parsed body of the fixture's dashboard, the one dashboard,
// which must be named DashboardName.
type dashboard struct {
	Start   string
	Widgets []struct {
		Type       string
		Width      float64
		Properties struct {
			Title   string
			Alarms  []string
			Metrics [][]any
		}
	}
}

func (f *fixture) dashboard(t *testing.T) dashboard {
	t.Helper()
	body := assertions.NewCapture(nil)
	cdktest.Expect(t, "one dashboard, named by DashboardName", func() {
		f.tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1))
		f.tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Dashboard"), map[string]any{
			"DashboardName": f.dashboardName, "DashboardBody": body,
		})
	})
	// A JSON text inside Fn::Join, with ${LogicalId} and ${LogicalId.Arn} where
	// the template refers to resources.
	text := cdktest.Joined(*body.AsObject())
	var d dashboard
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		t.Fatalf("dashboard body is not JSON: %v\n%s", err, text)
	}
	return d
}

// metricKey is a metric as CloudWatch knows it: namespace, name, dimensions,
// statistic and period.
func metricKey(namespace, name string, dims []string, stat string, period float64) string {
	return fmt.Sprintf("%s %s %s stat=%s period=%g", namespace, name, strings.Join(dims, " "), stat, period)
}

// graphLine is one line of a graph widget: "<title> | <axis> <label> | <metric key>".
// The dashboard leaves out CloudWatch's defaults: Average, 300 s, left axis.
func graphLine(t *testing.T, title string, m []any) (line, key string) {
	t.Helper()
	var ids []string
	stat, period, axis, label := "Average", 300.0, "left", ""
	for _, p := range m {
		switch x := p.(type) {
		case string:
			ids = append(ids, x)
		case map[string]any:
			if s, ok := x["stat"].(string); ok {
				stat = s
			}
			if p, ok := x["period"].(float64); ok {
				period = p
			}
			if a, ok := x["yAxis"].(string); ok {
				axis = a
			}
			label, _ = x["label"].(string)
		default:
			t.Fatalf("unexpected metric element %v in %v", p, m)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("metric %v has no namespace and name", m)
	}
	key = metricKey(ids[0], ids[1], ids[2:], stat, period)
	return fmt.Sprintf("%s | %s %s | %s", title, axis, label, key), key
}

// graphLines lists every line of every graph, in order.
func (d dashboard) graphLines(t *testing.T) (lines, keys []string) {
	t.Helper()
	for _, w := range d.Widgets {
		for _, m := range w.Properties.Metrics {
			l, k := graphLine(t, w.Properties.Title, m)
			lines, keys = append(lines, l), append(keys, k)
		}
	}
	return
}

func dashboardWant(f *fixture) []string {
	api := "ApiName " + apiName + " Stage ${" + f.stage + "}"
	stream := "StreamName ${" + f.stream + "}"
	ds := "DeliveryStreamName " + deliveryName
	want := []string{
		"API requests and errors | left requests | AWS/ApiGateway Count " + api + " stat=Sum period=300",
		"API requests and errors | right 4xx | AWS/ApiGateway 4XXError " + api + " stat=Sum period=300",
		"API requests and errors | right 5xx | AWS/ApiGateway 5XXError " + api + " stat=Sum period=300",
		"API latency (ms) | left p50 | AWS/ApiGateway Latency " + api + " stat=p50 period=300",
		"API latency (ms) | left p99 | AWS/ApiGateway Latency " + api + " stat=p99 period=300",
		"Stream: incoming | left records | AWS/Kinesis IncomingRecords " + stream + " stat=Sum period=300",
		"Stream: incoming | right bytes | AWS/Kinesis IncomingBytes " + stream + " stat=Sum period=300",
		"Stream: write throttling and put success | left throttled records | AWS/Kinesis WriteProvisionedThroughputExceeded " + stream + " stat=Sum period=300",
		"Stream: write throttling and put success | right PutRecord success | AWS/Kinesis PutRecord.Success " + stream + " stat=Average period=300",
		"Stream: write throttling and put success | right PutRecords success | AWS/Kinesis PutRecords.Success " + stream + " stat=Average period=300",
		"Stream: iterator age (ms) | left max | AWS/Kinesis GetRecords.IteratorAgeMilliseconds " + stream + " stat=Maximum period=300",
		"Firehose: delivered to S3 | left records | AWS/Firehose DeliveryToS3.Records " + ds + " stat=Sum period=300",
		"Firehose: delivered to S3 | right bytes | AWS/Firehose DeliveryToS3.Bytes " + ds + " stat=Sum period=300",
		"Firehose: delivery success and data freshness (s) | left success | AWS/Firehose DeliveryToS3.Success " + ds + " stat=Average period=300",
		"Firehose: delivery success and data freshness (s) | right freshness | AWS/Firehose DeliveryToS3.DataFreshness " + ds + " stat=Maximum period=300",
		"Errors: objects written to the error prefix | left S3 PUT requests | AWS/S3 PutRequests BucketName " + bucketName + " FilterId errors stat=Sum period=300",
		"Errors: objects written to the error prefix | right records not converted | AWS/Firehose FailedConversion.Records " + ds + " stat=Sum period=300",
	}
	if f.host != "" {
		host := "InstanceId ${" + f.host + "}"
		want = append(want,
			"Producer host: CPU (%) and status checks | left CPU | AWS/EC2 CPUUtilization "+host+" stat=Average period=300",
			"Producer host: CPU (%) and status checks | right status check failed | AWS/EC2 StatusCheckFailed "+host+" stat=Maximum period=60",
		)
		// The producer's own metrics: its namespace, Host (the instance) and Pipeline.
		pm := func(name, stat string, period int) string {
			return fmt.Sprintf("%s %s Host ${%s} Pipeline %s stat=%s period=%d", producerNamespace, name, f.host, producerPipeline, stat, period)
		}
		want = append(want,
			"Producer: events | left read | "+pm("EventsRead", "Sum", 300),
			"Producer: events | left sent (confirmed) | "+pm("EventsSent", "Sum", 300),
			"Producer: events | right retried | "+pm("EventsRetried", "Sum", 300),
			"Producer: events | right dead-lettered | "+pm("EventsDeadLettered", "Sum", 300),
			"Producer: queue (bytes) and oldest unconfirmed (s) | left queued bytes | "+pm("QueueBytes", "Maximum", 60),
			"Producer: queue (bytes) and oldest unconfirmed (s) | right oldest unconfirmed | "+pm("OldestUnconfirmedSeconds", "Maximum", 60),
			"Producer: file lag (bytes), files gone unread, heartbeat | left file lag (least in 5 min) | "+pm("FileLagBytes", "Minimum", 300),
			"Producer: file lag (bytes), files gone unread, heartbeat | right files gone unread | "+pm("FilesGoneUnread", "Sum", 300),
			"Producer: file lag (bytes), files gone unread, heartbeat | right heartbeat | "+pm("Heartbeat", "SampleCount", 60),
		)
	}
	return want
}

// The dashboard shows every metric of the path, labelled, with dimensions
// naming the watched resources, and nothing else; it opens on 3 hours and
// starts with the states of all alarms in order. The host's graph (and any
// EC2 metric) is there only with an Instance.
func TestDashboardShowsThePipeline(t *testing.T) {
	for _, c := range []struct {
		name   string
		f      *fixture
		alarms []string
	}{
		{"with host", defaults(), []string{"Api5xx", "WriteThrottled", "IteratorAge", "DataFreshness", "DeliveryFailure", "ErrorObjects", "HostStatusCheck",
			"ProducerHeartbeat", "ProducerDeadLettered", "ProducerOldestUnconfirmed", "ProducerFileLag"}},
		{"without host", custom(), []string{"Api5xx", "WriteThrottled", "IteratorAge", "DataFreshness", "DeliveryFailure", "ErrorObjects"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.f.dashboard(t)
			if d.Start != "-PT3H" {
				t.Errorf("start = %q, want -PT3H (3 hours)", d.Start)
			}
			if len(d.Widgets) == 0 || d.Widgets[0].Type != "alarm" || d.Widgets[0].Width != 24 {
				t.Fatalf("first widget is not a full-width alarm status widget: %+v", d.Widgets)
			}
			var want []string
			for _, name := range c.alarms {
				want = append(want, "${"+nag.LogicalID(c.f.m.Alarms[name])+".Arn}")
			}
			if got := d.Widgets[0].Properties.Alarms; !slices.Equal(got, want) {
				t.Errorf("alarm status widget lists\n  %v\nwant\n  %v", got, want)
			}
			for _, w := range d.Widgets[1:] {
				if w.Type != "metric" || len(w.Properties.Alarms) != 0 {
					t.Errorf("widget %q: type %s with alarms %v; want a graph", w.Properties.Title, w.Type, w.Properties.Alarms)
				}
			}
			lines, _ := d.graphLines(t)
			if want := dashboardWant(c.f); !slices.Equal(lines, want) {
				t.Errorf("dashboard graphs:\n  %s\nwant:\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
			}
			if c.f.host == "" {
				for _, l := range lines {
					if strings.Contains(l, "AWS/EC2") || strings.Contains(l, producerNamespace) {
						t.Errorf("host metric without an Instance: %s", l)
					}
				}
			}
		})
	}
}

// Each metric is defined once: every alarm's metric is on the dashboard,
// once, with the same namespace, name, dimensions, statistic and period.
func TestAlarmsAndDashboardShareTheirMetrics(t *testing.T) {
	for _, f := range []*fixture{defaults(), custom()} {
		_, keys := f.dashboard(t).graphLines(t)
		alarms := *f.tpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), nil)
		if len(alarms) == 0 {
			t.Fatal("no alarms")
		}
		for id, a := range alarms {
			p := (*a)["Properties"].(map[string]any)
			if p["Metrics"] != nil { // metric math: the metric it computes from
				for _, m := range p["Metrics"].([]any) {
					if ms, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
						metric := ms["Metric"].(map[string]any)
						p = map[string]any{"Namespace": metric["Namespace"], "MetricName": metric["MetricName"], "Dimensions": metric["Dimensions"],
							"Statistic": ms["Stat"], "Period": ms["Period"]}
					}
				}
			}
			var dims []string
			for _, d := range p["Dimensions"].([]any) {
				d := d.(map[string]any)
				dims = append(dims, d["Name"].(string), cdktest.Joined(d["Value"]))
			}
			stat, _ := p["Statistic"].(string)
			period, _ := p["Period"].(float64)
			alarmKey := metricKey(p["Namespace"].(string), p["MetricName"].(string), dims, stat, period)
			var same []string
			for _, k := range keys {
				if strings.HasPrefix(k, p["Namespace"].(string)+" "+p["MetricName"].(string)+" ") {
					same = append(same, k)
				}
			}
			if !reflect.DeepEqual(same, []string{alarmKey}) {
				t.Errorf("alarm %s watches %s; the dashboard shows %v", id, alarmKey, same)
			}
		}
	}
}

// Invalid thresholds and e-mail addresses fail before anything is created,
// naming the setting, the value and what is allowed; the bounds themselves
// are accepted.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	base := watched(stack, false)
	before := len(*stack.Node().Children())
	with := func(edit func(*monitoring.Props)) monitoring.Props {
		p := *base
		edit(&p)
		return p
	}
	for i, c := range []struct {
		props monitoring.Props
		want  string
	}{
		{with(func(p *monitoring.Props) { p.API5xx = ref(0) }), "alarmApi5xx: invalid value 0; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.API5xx = ref(1_000_001) }), "alarmApi5xx: invalid value 1000001; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.WriteThrottled = ref(0) }), "alarmWriteThrottled: invalid value 0; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.WriteThrottled = ref(1_000_001) }), "alarmWriteThrottled: invalid value 1000001; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.IteratorAgeMinutes = ref(0) }), "alarmIteratorAgeMinutes: invalid value 0; allowed: an integer from 1 to 525600"},
		{with(func(p *monitoring.Props) { p.IteratorAgeMinutes = ref(525_601) }), "alarmIteratorAgeMinutes: invalid value 525601; allowed: an integer from 1 to 525600"},
		{with(func(p *monitoring.Props) { p.FreshnessMarginSeconds = ref(59) }), "alarmFreshnessMarginSeconds: invalid value 59; allowed: an integer from 60 to 86400"},
		{with(func(p *monitoring.Props) { p.FreshnessMarginSeconds = ref(86_401) }), "alarmFreshnessMarginSeconds: invalid value 86401; allowed: an integer from 60 to 86400"},
		{with(func(p *monitoring.Props) { p.DeliverySuccessPercent = ref(0) }), "alarmDeliverySuccessPercent: invalid value 0; allowed: an integer from 1 to 100"},
		{with(func(p *monitoring.Props) { p.DeliverySuccessPercent = ref(101) }), "alarmDeliverySuccessPercent: invalid value 101; allowed: an integer from 1 to 100"},
		{with(func(p *monitoring.Props) { p.Email = "ops at example" }), `alarmEmail: invalid value "ops at example"; allowed: an e-mail address`},
		{with(func(p *monitoring.Props) { p.Email = "ops@example" }), `alarmEmail: invalid value "ops@example"; allowed: an e-mail address`},
		{with(func(p *monitoring.Props) { p.Email = "ops@@example.com" }), `alarmEmail: invalid value "ops@@example.com"; allowed: an e-mail address`},
		{with(func(p *monitoring.Props) { p.Email = " ops@example.com" }), `alarmEmail: invalid value " ops@example.com"; allowed: an e-mail address`},
		{with(func(p *monitoring.Props) { p.ProducerDeadLettered = ref(0) }), "alarmProducerDeadLettered: invalid value 0; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.ProducerDeadLettered = ref(1_000_001) }), "alarmProducerDeadLettered: invalid value 1000001; allowed: an integer from 1 to 1000000"},
		{with(func(p *monitoring.Props) { p.ProducerOldestUnconfirmedSeconds = ref(59) }), "alarmProducerOldestUnconfirmedSeconds: invalid value 59; allowed: an integer from 60 to 86400"},
		{with(func(p *monitoring.Props) { p.ProducerOldestUnconfirmedSeconds = ref(86_401) }), "alarmProducerOldestUnconfirmedSeconds: invalid value 86401; allowed: an integer from 60 to 86400"},
		{with(func(p *monitoring.Props) { p.BufferingSeconds = -1 }), "bufferingSeconds: invalid value -1; allowed: an integer from 0 to 900"},
		{with(func(p *monitoring.Props) { p.BufferingSeconds = 901 }), "bufferingSeconds: invalid value 901; allowed: an integer from 0 to 900"},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
		panicsWith(t, c.want, func() { monitoring.New(stack, fmt.Sprint("Bad", i), &c.props) })
	}
	if after := len(*stack.Node().Children()); after != before {
		t.Errorf("invalid props created %d constructs", after-before)
	}
	for _, p := range []monitoring.Props{
		{},
		with(func(p *monitoring.Props) {
			p.API5xx, p.WriteThrottled, p.IteratorAgeMinutes = ref(1), ref(1), ref(1)
			p.FreshnessMarginSeconds, p.DeliverySuccessPercent = ref(60), ref(1)
			p.ProducerDeadLettered, p.ProducerOldestUnconfirmedSeconds = ref(1), ref(60)
			p.Email = "a@b.c"
		}),
		with(func(p *monitoring.Props) {
			p.API5xx, p.WriteThrottled, p.IteratorAgeMinutes = ref(1_000_000), ref(1_000_000), ref(525_600)
			p.FreshnessMarginSeconds, p.DeliverySuccessPercent = ref(86_400), ref(100)
			p.ProducerDeadLettered, p.ProducerOldestUnconfirmedSeconds = ref(1_000_000), ref(86_400)
			p.Email = "first.last+alarms@sub.example.co.uk"
		}),
		// An address known only at deploy time is not checked at synth.
		with(func(p *monitoring.Props) {
			p.Email = *awscdk.NewCfnParameter(stack, jsii.String("AlarmEmail"), nil).ValueAsString()
		}),
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate() = %v for allowed values %+v", err, p)
		}
	}
}

// Stage, Stream, DeliveryStream, Bucket, ErrorFilterID and DashboardName are required; nil props
// too panic with the one-line message, before anything is created.
func TestMissingProps(t *testing.T) {
	stack := cdktest.NewStack()
	base := watched(stack, false)
	before := len(*stack.Node().Children())
	const want = "monitoring: Stage, Stream, DeliveryStream, Bucket, ErrorFilterID and DashboardName are required"
	for _, c := range []struct {
		missing string
		edit    func(*monitoring.Props)
	}{
		{"Stage", func(p *monitoring.Props) { p.Stage = nil }},
		{"Stream", func(p *monitoring.Props) { p.Stream = nil }},
		{"DeliveryStream", func(p *monitoring.Props) { p.DeliveryStream = nil }},
		{"Bucket", func(p *monitoring.Props) { p.Bucket = nil }},
		{"ErrorFilterID", func(p *monitoring.Props) { p.ErrorFilterID = "" }},
		{"DashboardName", func(p *monitoring.Props) { p.DashboardName = "" }},
	} {
		p := *base
		c.edit(&p)
		t.Run(c.missing, func(t *testing.T) { panicsWith(t, want, func() { monitoring.New(stack, "Monitoring", &p) }) })
	}
	t.Run("nil props", func(t *testing.T) { panicsWith(t, want, func() { monitoring.New(stack, "Monitoring", nil) }) })
	// With a host, where its producer's metrics are.
	hostStack := cdktest.NewStack()
	withHost := watched(hostStack, true)
	hostBefore := len(*hostStack.Node().Children())
	for _, edit := range []func(*monitoring.Props){
		func(p *monitoring.Props) { p.ProducerNamespace = "" },
		func(p *monitoring.Props) { p.ProducerPipeline = "" },
	} {
		p := *withHost
		edit(&p)
		panicsWith(t, "monitoring: ProducerNamespace and ProducerPipeline are required with Instance", func() { monitoring.New(hostStack, "Monitoring", &p) })
	}
	if after := len(*hostStack.Node().Children()); after != hostBefore {
		t.Errorf("missing producer props created %d constructs", after-before)
	}
	if after := len(*stack.Node().Children()); after != before {
		t.Errorf("missing props created %d constructs", after-before)
	}
}

// panicsWith checks that f panics with exactly the message want: these are
// the construct's own panics, raised in Go before any jsii call.
func panicsWith(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if r := recover(); r == nil {
			t.Errorf("accepted; want a panic with %q", want)
		} else if msg := fmt.Sprint(r); msg != want {
			t.Errorf("panic %q; want %q", msg, want)
		}
	}()
	f()
}
