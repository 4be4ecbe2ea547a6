// Package monitoring is the pipeline's CloudWatch dashboard and its alarms,
// which notify an SNS topic (and an e-mail address, when one is given).
package monitoring

import (
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/internal/check"
	"github.com/tributary/tributary/internal/nag"
)

// Default alarm thresholds.
const (
	DefaultAPI5xx                 = 5   // server errors in 5 minutes
	DefaultWriteThrottled         = 1   // records Kinesis throttled in 5 minutes
	DefaultIteratorAgeMinutes     = 10  // how far Firehose may lag behind the stream
	DefaultFreshnessMarginSeconds = 300 // data older than buffering + this is late
	DefaultDeliverySuccessPercent = 100 // S3 deliveries that must succeed
)

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// Props configures monitoring. Stage, Stream and DeliveryStream are required;
// Instance is the producer host, if there is one. Nil thresholds mean the defaults.
type Props struct {
	Stage          awsapigateway.Stage
	Stream         awskinesis.IStream
	DeliveryStream awskinesisfirehose.IDeliveryStream
	Instance       awsec2.Instance
	// BufferingSeconds is the delivery stream's buffering interval, which
	// data freshness is judged against.
	BufferingSeconds int
	// Email receives the alarms, after confirming the subscription.
	Email string

	API5xx                 *int // alarm when the API answers this many 5xx in 5 minutes
	WriteThrottled         *int // ... Kinesis throttles this many records in 5 minutes
	IteratorAgeMinutes     *int // ... Firehose lags this far behind the stream
	FreshnessMarginSeconds *int // ... the oldest undelivered record is older than buffering + this
	DeliverySuccessPercent *int // ... fewer S3 deliveries than this succeed
}

type resolved struct {
	api5xx, throttled, iteratorAge, freshness, success int
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (r resolved, err error) {
	pick := func(v *int, def int) int {
		if v != nil {
			return *v
		}
		return def
	}
	r = resolved{
		api5xx: pick(p.API5xx, DefaultAPI5xx), throttled: pick(p.WriteThrottled, DefaultWriteThrottled),
		iteratorAge: pick(p.IteratorAgeMinutes, DefaultIteratorAgeMinutes), freshness: pick(p.FreshnessMarginSeconds, DefaultFreshnessMarginSeconds),
		success: pick(p.DeliverySuccessPercent, DefaultDeliverySuccessPercent),
	}
	for _, c := range []struct {
		setting   string
		v, lo, hi int
	}{
		{"alarmApi5xx", r.api5xx, 1, 1_000_000},
		{"alarmWriteThrottled", r.throttled, 1, 1_000_000},
		{"alarmIteratorAgeMinutes", r.iteratorAge, 1, 525_600},
		{"alarmFreshnessMarginSeconds", r.freshness, 60, 86_400},
		{"alarmDeliverySuccessPercent", r.success, 1, 100},
	} {
		if err = check.IntRange(c.setting, c.v, c.lo, c.hi); err != nil {
			return
		}
	}
	if p.Email != "" && !emailPattern.MatchString(p.Email) {
		return r, check.Invalid("alarmEmail", p.Email, "an e-mail address")
	}
	return
}

// Monitoring wraps the dashboard, the alarms and their topic.
type Monitoring struct {
	constructs.Construct
	Dashboard awscloudwatch.Dashboard
	Topic     awssns.Topic
	// Alarms by name: Api5xx, WriteThrottled, IteratorAge, DataFreshness,
	// DeliveryFailure, and HostStatusCheck with a producer host.
	Alarms map[string]awscloudwatch.Alarm
}

// New creates the dashboard (named dashboardName) and the alarms. It panics
// with a one-line message if props are invalid.
func New(scope constructs.Construct, id, dashboardName string, props *Props) *Monitoring {
	if props == nil || props.Stage == nil || props.Stream == nil || props.DeliveryStream == nil {
		panic("monitoring: Stage, Stream and DeliveryStream are required")
	}
	r, err := props.resolve()
	if err != nil {
		panic(err.Error())
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	m := &Monitoring{Construct: c, Alarms: map[string]awscloudwatch.Alarm{}}
	m.Topic = awssns.NewTopic(c, jsii.String("Alarms"), &awssns.TopicProps{
		DisplayName: jsii.String("Tributary alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	nag.Suppress(m.Topic, "AwsSolutions-SNS2",
		"CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key aws/sns, and the alarm notifications carry no event data, only alarm states; a customer key would cost $1 a month for nothing to protect.")
	if props.Email != "" {
		m.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.Email), nil))
	}

	five := awscdk.Duration_Minutes(jsii.Number(5))
	opts := func(stat string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String(stat)}
	}
	stage, stream, ds := props.Stage, props.Stream, props.DeliveryStream
	m.alarm("Api5xx", "The API answered 5xx: events were not stored (clients retry them). Look at the API's execution logs and Kinesis.",
		stage.MetricServerError(opts("Sum")), float64(r.api5xx), awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1)
	m.alarm("WriteThrottled", "Kinesis throttled writes: the stream is at capacity. Add shards (shardCount) or use ON_DEMAND.",
		stream.MetricWriteProvisionedThroughputExceeded(opts("Sum")), float64(r.throttled), awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1)
	m.alarm("IteratorAge", "Firehose is falling behind the stream; records older than the stream's retention are lost. Check the delivery stream's errors.",
		stream.MetricGetRecordsIteratorAgeMilliseconds(opts("Maximum")), float64(r.iteratorAge*60_000), awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1)
	m.alarm("DataFreshness", "Records wait longer for delivery to S3 than the buffering explains. Check the delivery-error log group and the bucket.",
		ds.Metric(jsii.String("DeliveryToS3.DataFreshness"), opts("Maximum")), float64(props.BufferingSeconds+r.freshness), awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, 1)
	m.alarm("DeliveryFailure", "Firehose failed to deliver to S3 (it retries from the stream). Check the delivery-error log group and the bucket's permissions.",
		ds.Metric(jsii.String("DeliveryToS3.Success"), opts("Average")), float64(r.success)/100, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 1)
	var hostStatus awscloudwatch.Metric
	if props.Instance != nil {
		hostStatus = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String("StatusCheckFailed"),
			DimensionsMap: &map[string]*string{"InstanceId": props.Instance.InstanceId()},
			Period:        awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum"),
		})
		m.alarm("HostStatusCheck", "The producer host fails its EC2 status checks. Open a session or replace it with cdk deploy.",
			hostStatus, 1, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 2)
	}

	m.Dashboard = awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(dashboardName),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	graph := func(title string, left []awscloudwatch.IMetric, right []awscloudwatch.IMetric) awscloudwatch.IWidget {
		g := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8)}
		if len(right) > 0 {
			g.Right = &right
		}
		return awscloudwatch.NewGraphWidget(g)
	}
	label := func(metric awscloudwatch.Metric, l string) awscloudwatch.IMetric {
		return metric.With(&awscloudwatch.MetricOptions{Label: jsii.String(l)})
	}
	alarmList := make([]interfacesawscloudwatch.IAlarmRef, 0, len(m.Alarms))
	for _, name := range []string{"Api5xx", "WriteThrottled", "IteratorAge", "DataFreshness", "DeliveryFailure", "HostStatusCheck"} {
		if a, ok := m.Alarms[name]; ok {
			alarmList = append(alarmList, a)
		}
	}
	m.Dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Alarms: &alarmList, Width: jsii.Number(24),
	}))
	m.Dashboard.AddWidgets(
		graph("API requests and errors", []awscloudwatch.IMetric{label(stage.MetricCount(opts("Sum")), "requests")},
			[]awscloudwatch.IMetric{label(stage.MetricClientError(opts("Sum")), "4xx"), label(stage.MetricServerError(opts("Sum")), "5xx")}),
		graph("API latency (ms)", []awscloudwatch.IMetric{label(stage.MetricLatency(opts("p50")), "p50"), label(stage.MetricLatency(opts("p99")), "p99")}, nil),
		graph("Stream: incoming", []awscloudwatch.IMetric{label(stream.MetricIncomingRecords(opts("Sum")), "records")},
			[]awscloudwatch.IMetric{label(stream.MetricIncomingBytes(opts("Sum")), "bytes")}),
	)
	m.Dashboard.AddWidgets(
		graph("Stream: write throttling and put success", []awscloudwatch.IMetric{label(stream.MetricWriteProvisionedThroughputExceeded(opts("Sum")), "throttled records")},
			[]awscloudwatch.IMetric{label(stream.MetricPutRecordSuccess(opts("Average")), "PutRecord success"), label(stream.MetricPutRecordsSuccess(opts("Average")), "PutRecords success")}),
		graph("Stream: iterator age (ms)", []awscloudwatch.IMetric{label(stream.MetricGetRecordsIteratorAgeMilliseconds(opts("Maximum")), "max")}, nil),
		graph("Firehose: delivered to S3", []awscloudwatch.IMetric{label(ds.Metric(jsii.String("DeliveryToS3.Records"), opts("Sum")), "records")},
			[]awscloudwatch.IMetric{label(ds.Metric(jsii.String("DeliveryToS3.Bytes"), opts("Sum")), "bytes")}),
	)
	row := []awscloudwatch.IWidget{
		graph("Firehose: delivery success and data freshness (s)", []awscloudwatch.IMetric{label(ds.Metric(jsii.String("DeliveryToS3.Success"), opts("Average")), "success")},
			[]awscloudwatch.IMetric{label(ds.Metric(jsii.String("DeliveryToS3.DataFreshness"), opts("Maximum")), "freshness")}),
	}
	if props.Instance != nil {
		cpu := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String("CPUUtilization"),
			DimensionsMap: &map[string]*string{"InstanceId": props.Instance.InstanceId()}, Period: five, Statistic: jsii.String("Average"),
		})
		row = append(row, graph("Producer host: CPU (%) and status checks", []awscloudwatch.IMetric{label(cpu, "CPU")},
			[]awscloudwatch.IMetric{label(hostStatus, "status check failed")}))
	}
	m.Dashboard.AddWidgets(row...)
	return m
}

// alarm creates an alarm that notifies the topic when it fires and when it clears.
func (m *Monitoring) alarm(name, description string, metric awscloudwatch.Metric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64) {
	a := metric.CreateAlarm(m.Construct, jsii.String(name), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription:   jsii.String(description),
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: op,
		EvaluationPeriods:  jsii.Number(periods),
		// No traffic is no failure: an idle pipeline reports nothing.
		TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	action := awscloudwatchactions.NewSnsAction(m.Topic)
	a.AddAlarmAction(action)
	a.AddOkAction(action)
	m.Alarms[name] = a
}
