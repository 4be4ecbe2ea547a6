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
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/nag"
)

// Default alarm thresholds.
const (
	DefaultAPI5xx                 = 5   // server errors in 5 minutes
	DefaultWriteThrottled         = 1   // records Kinesis throttled in 5 minutes
	DefaultIteratorAgeMinutes     = 10  // how far Firehose may lag behind the stream
	DefaultFreshnessMarginSeconds = 300 // data older than buffering + this is late
	DefaultDeliverySuccessPercent = 100 // S3 deliveries that must succeed
	// With a producer host:
	DefaultProducerDeadLettered             = 1   // events dead-lettered in 5 minutes
	DefaultProducerOldestUnconfirmedSeconds = 300 // age of the oldest event not yet confirmed
	producerHeartbeatMinutes                = 3   // minutes without a heartbeat that fire ProducerHeartbeat
	producerFileLagPeriods                  = 3   // 5-minute periods of growing file lag that fire ProducerFileLag
)

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// Props configures monitoring. Stage, Stream, DeliveryStream, Bucket,
// ErrorFilterID and DashboardName are required; Instance is the producer
// host, if there is one, and then ProducerNamespace and ProducerPipeline are
// required too. Nil thresholds mean the defaults.
type Props struct {
	Stage          awsapigateway.Stage
	Stream         awskinesis.IStream
	DeliveryStream awskinesisfirehose.IDeliveryStream
	// Bucket is the data bucket, and ErrorFilterID the id of its request
	// metrics filter over the error prefix: new error objects are counted
	// by the PUT requests S3 reports for that filter.
	Bucket        awss3.IBucket
	ErrorFilterID string
	Instance      awsec2.IInstance
	// ProducerNamespace is where the host's producer publishes its metrics,
	// dimensioned Pipeline=ProducerPipeline and Host=<the instance id>.
	ProducerNamespace, ProducerPipeline string
	// BufferingSeconds is the delivery stream's buffering interval, which
	// data freshness is judged against.
	BufferingSeconds int
	// DashboardName names the dashboard (one per pipeline, easy to find).
	DashboardName string
	// Email receives the alarms, after confirming the subscription.
	Email string

	API5xx                 *int // alarm when the API answers this many 5xx in 5 minutes
	WriteThrottled         *int // ... Kinesis throttles this many records in 5 minutes
	IteratorAgeMinutes     *int // ... Firehose lags this far behind the stream
	FreshnessMarginSeconds *int // ... the oldest undelivered record is older than buffering + this
	DeliverySuccessPercent *int // ... fewer S3 deliveries than this succeed
	// ... the producer dead-letters this many events in 5 minutes
	ProducerDeadLettered *int
	// ... the producer's oldest unconfirmed event is older than this
	ProducerOldestUnconfirmedSeconds *int
}

type resolved struct {
	api5xx, throttled, iteratorAge, freshness, success int
	deadLettered, oldestUnconfirmed                    int
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
		success:           pick(p.DeliverySuccessPercent, DefaultDeliverySuccessPercent),
		deadLettered:      pick(p.ProducerDeadLettered, DefaultProducerDeadLettered),
		oldestUnconfirmed: pick(p.ProducerOldestUnconfirmedSeconds, DefaultProducerOldestUnconfirmedSeconds),
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
		{"alarmProducerDeadLettered", r.deadLettered, 1, 1_000_000},
		// Below a minute the producer's own retries (and its 5 s linger)
		// would fire it; a day is far beyond any retry.
		{"alarmProducerOldestUnconfirmedSeconds", r.oldestUnconfirmed, 60, 86_400},
	} {
		if err = check.IntRange(c.setting, c.v, c.lo, c.hi); err != nil {
			return
		}
	}
	// Firehose buffers 0 to 900 s; freshness is judged against it.
	if err = check.IntRange("bufferingSeconds", p.BufferingSeconds, 0, 900); err != nil {
		return
	}
	// An address known only at deploy time (a token) cannot be checked here.
	if p.Email != "" && !*awscdk.Token_IsUnresolved(p.Email) && !emailPattern.MatchString(p.Email) {
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
	// DeliveryFailure, ErrorObjects, and with a producer host HostStatusCheck,
	// ProducerHeartbeat, ProducerDeadLettered, ProducerOldestUnconfirmed and
	// ProducerFileLag.
	Alarms map[string]awscloudwatch.Alarm
}

// alarmOrder is the order of the alarms on the dashboard.
var alarmOrder = []string{"Api5xx", "WriteThrottled", "IteratorAge", "DataFreshness", "DeliveryFailure", "ErrorObjects", "HostStatusCheck",
	"ProducerHeartbeat", "ProducerDeadLettered", "ProducerOldestUnconfirmed", "ProducerFileLag"}

// metrics are every metric the alarms and the dashboard use, each defined once.
type metrics struct {
	apiRequests, api4xx, api5xx, apiLatencyP50, apiLatencyP99            awscloudwatch.Metric
	incomingRecords, incomingBytes, throttledRecords, iteratorAge        awscloudwatch.Metric
	putRecordSuccess, putRecordsSuccess                                  awscloudwatch.Metric
	deliveredRecords, deliveredBytes, deliverySuccess, deliveryFreshness awscloudwatch.Metric
	errorPuts, failedConversions                                         awscloudwatch.Metric
	hostCPU, hostStatus                                                  awscloudwatch.Metric // nil without a host
	producer                                                             *producerMetrics     // nil without a host
}

// producerMetrics are the host's producer's own metrics (its namespace,
// dimensions Pipeline and Host).
type producerMetrics struct {
	read, sent, retried, deadLettered, filesGone awscloudwatch.Metric // sums over 5 minutes
	queueBytes, oldestUnconfirmed                awscloudwatch.Metric // maxima per minute
	heartbeat                                    awscloudwatch.Metric // samples per minute
	// fileLagFloor is the least lag (bytes of followed files not read) in
	// each 5 minutes; fileLagGrowth its rate of change (bytes per second)
	// from one 5 minutes to the next.
	fileLagFloor  awscloudwatch.Metric
	fileLagGrowth awscloudwatch.MathExpression
}

func newMetrics(p *Props) *metrics {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	opts := func(stat string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String(stat)}
	}
	stage, stream, ds := p.Stage, p.Stream, p.DeliveryStream
	m := &metrics{
		apiRequests: stage.MetricCount(opts("Sum")), api4xx: stage.MetricClientError(opts("Sum")), api5xx: stage.MetricServerError(opts("Sum")),
		apiLatencyP50: stage.MetricLatency(opts("p50")), apiLatencyP99: stage.MetricLatency(opts("p99")),
		incomingRecords: stream.MetricIncomingRecords(opts("Sum")), incomingBytes: stream.MetricIncomingBytes(opts("Sum")),
		throttledRecords:  stream.MetricWriteProvisionedThroughputExceeded(opts("Sum")),
		iteratorAge:       stream.MetricGetRecordsIteratorAgeMilliseconds(opts("Maximum")),
		putRecordSuccess:  stream.MetricPutRecordSuccess(opts("Average")),
		putRecordsSuccess: stream.MetricPutRecordsSuccess(opts("Average")),
		deliveredRecords:  ds.Metric(jsii.String("DeliveryToS3.Records"), opts("Sum")),
		deliveredBytes:    ds.Metric(jsii.String("DeliveryToS3.Bytes"), opts("Sum")),
		deliverySuccess:   ds.Metric(jsii.String("DeliveryToS3.Success"), opts("Average")),
		deliveryFreshness: ds.Metric(jsii.String("DeliveryToS3.DataFreshness"), opts("Maximum")),
		// Firehose counts the records it could not convert (Parquet) but
		// publishes no count of the records jq extraction or de-aggregation
		// sent to the error prefix; S3's request metrics for a filter on that
		// prefix count every object written there, whatever the error type.
		errorPuts: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/S3"), MetricName: jsii.String("PutRequests"),
			DimensionsMap: &map[string]*string{"BucketName": p.Bucket.BucketName(), "FilterId": jsii.String(p.ErrorFilterID)},
			Period:        five, Statistic: jsii.String("Sum"),
		}),
		failedConversions: ds.Metric(jsii.String("FailedConversion.Records"), opts("Sum")),
	}
	if p.Instance != nil {
		ec2 := func(name, stat string, period awscdk.Duration) awscloudwatch.Metric {
			return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String(name),
				DimensionsMap: &map[string]*string{"InstanceId": p.Instance.InstanceId()},
				Period:        period, Statistic: jsii.String(stat),
			})
		}
		m.hostStatus = ec2("StatusCheckFailed", "Maximum", awscdk.Duration_Minutes(jsii.Number(1)))
		m.hostCPU = ec2("CPUUtilization", "Average", five)
		m.producer = newProducerMetrics(p)
	}
	return m
}

func newProducerMetrics(p *Props) *producerMetrics {
	one, five := awscdk.Duration_Minutes(jsii.Number(1)), awscdk.Duration_Minutes(jsii.Number(5))
	metric := func(name, stat string, period awscdk.Duration) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(p.ProducerNamespace), MetricName: jsii.String(name),
			DimensionsMap: &map[string]*string{"Pipeline": jsii.String(p.ProducerPipeline), "Host": p.Instance.InstanceId()},
			Period:        period, Statistic: jsii.String(stat),
		})
	}
	pm := &producerMetrics{
		read: metric("EventsRead", "Sum", five), sent: metric("EventsSent", "Sum", five),
		retried: metric("EventsRetried", "Sum", five), deadLettered: metric("EventsDeadLettered", "Sum", five),
		filesGone:  metric("FilesGoneUnread", "Sum", five),
		queueBytes: metric("QueueBytes", "Maximum", one), oldestUnconfirmed: metric("OldestUnconfirmedSeconds", "Maximum", one),
		// Present once a minute while the producer runs and can publish.
		heartbeat:    metric("Heartbeat", "SampleCount", one),
		fileLagFloor: metric("FileLagBytes", "Minimum", five),
	}
	pm.fileLagGrowth = awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String("RATE(lagFloor)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{"lagFloor": pm.fileLagFloor},
		Period:       five,
		Label:        jsii.String("file lag growth (bytes/s)"),
	})
	return pm
}

// New creates the dashboard and the alarms. It panics with a one-line
// message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *Monitoring {
	if props == nil || props.Stage == nil || props.Stream == nil || props.DeliveryStream == nil || props.Bucket == nil || props.ErrorFilterID == "" || props.DashboardName == "" {
		panic("monitoring: Stage, Stream, DeliveryStream, Bucket, ErrorFilterID and DashboardName are required")
	}
	if props.Instance != nil && (props.ProducerNamespace == "" || props.ProducerPipeline == "") {
		panic("monitoring: ProducerNamespace and ProducerPipeline are required with Instance")
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
	mt := newMetrics(props)
	m.addAlarms(mt, r, props.BufferingSeconds)
	m.addDashboard(mt, props.DashboardName)
	return m
}

// addAlarms creates the alarms, each notifying the topic.
func (m *Monitoring) addAlarms(mt *metrics, r resolved, bufferingSeconds int) {
	atLeast, above, below := awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD
	notBreaching := awscloudwatch.TreatMissingData_NOT_BREACHING
	m.alarm("Api5xx", "The API answered 5xx: events were not stored (clients retry them). Look at the API's execution logs and Kinesis.",
		mt.api5xx, float64(r.api5xx), atLeast, 1, notBreaching)
	m.alarm("WriteThrottled", "Kinesis throttled writes: the stream is at capacity. Add shards (shardCount) or use ON_DEMAND.",
		mt.throttledRecords, float64(r.throttled), atLeast, 1, notBreaching)
	m.alarm("IteratorAge", "Firehose is falling behind the stream; records older than the stream's retention are lost. Check the delivery stream's errors.",
		mt.iteratorAge, float64(r.iteratorAge*60_000), atLeast, 1, notBreaching)
	m.alarm("DataFreshness", "Records wait longer for delivery to S3 than the buffering explains. Check the delivery-error log group and the bucket.",
		mt.deliveryFreshness, float64(bufferingSeconds+r.freshness), above, 1, notBreaching)
	m.alarm("DeliveryFailure", "Firehose failed to deliver to S3 (it retries from the stream). Check the delivery-error log group and the bucket's permissions.",
		mt.deliverySuccess, float64(r.success)/100, below, 1, notBreaching)
	// Any error object is events missing from the tables.
	m.alarm("ErrorObjects", "Firehose wrote records it could not partition, process or convert to the error prefix: they are in no table. Run the saved query Latest errors (error_code, error_message), fix the cause, then send the records back (docs/querying.md, Errors).",
		mt.errorPuts, 1, atLeast, 1, notBreaching)
	if mt.hostStatus != nil {
		m.alarm("HostStatusCheck", "The producer host fails its EC2 status checks. Open a session or replace it with cdk deploy.",
			mt.hostStatus, 1, atLeast, 2, notBreaching)
	}
	if pm := mt.producer; pm != nil {
		// Missing is the point: a stopped producer, or one that cannot
		// reach CloudWatch, publishes nothing.
		m.alarm("ProducerHeartbeat", "The producer published no heartbeat for 3 minutes: it is down, restarting, or cannot reach CloudWatch. Check first its log (LogsCommand) and systemctl status tributary-producer on the host (SessionCommand); then the host's status checks.",
			pm.heartbeat, 1, below, producerHeartbeatMinutes, awscloudwatch.TreatMissingData_BREACHING)
		m.alarm("ProducerDeadLettered", "The producer dead-lettered events: the API refused them (a 4xx such as 403 or 400, a redirect) or kept failing (5xx), and they are in no stream. Check first the metric EventsDeadLettered by its Reason dimension, then the dead-letter file /var/lib/tributary-producer/dead-letter.ndjson on the host; fix the cause (403: a key or the role; 400: the event schema), then send them again with producer replay (docs/producer.md).",
			pm.deadLettered, float64(r.deadLettered), atLeast, 1, notBreaching)
		m.alarm("ProducerOldestUnconfirmed", "An event read by the producer has waited longer than the threshold for the API to confirm it: the API or the network is failing or throttling, and the producer keeps retrying. Check first the producer's log (LogsCommand) for the answers it gets, then the Api5xx and WriteThrottled alarms.",
			pm.oldestUnconfirmed, float64(r.oldestUnconfirmed), above, 1, notBreaching)
		// The least lag of each 5 minutes rose in each of the last three:
		// the producer never caught up in 15 minutes and fell further behind.
		// A burst it reads within 5 minutes leaves the least lag at 0.
		m.alarm("ProducerFileLag", "The producer is falling behind its files: the least unread bytes of each 5 minutes (FileLagBytes, minimum) grew for 15 minutes in a row (metric math RATE above 0). Check first QueueBytes and OldestUnconfirmedSeconds (a full queue waiting on the API), then the producer's log and CPU; files rotated away before they are read lose events (FilesGoneUnread).",
			pm.fileLagGrowth, 0, above, producerFileLagPeriods, notBreaching)
	}
}

// addDashboard lays out the alarms' states and the metrics, one row per part of the path.
func (m *Monitoring) addDashboard(mt *metrics, name string) {
	m.Dashboard = awscloudwatch.NewDashboard(m.Construct, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(name),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	type line struct {
		metric awscloudwatch.Metric
		label  string
	}
	graph := func(title string, left []line, right ...line) awscloudwatch.IWidget {
		labelled := func(ls []line) *[]awscloudwatch.IMetric {
			out := make([]awscloudwatch.IMetric, len(ls))
			for i, l := range ls {
				out[i] = l.metric.With(&awscloudwatch.MetricOptions{Label: jsii.String(l.label)})
			}
			return &out
		}
		g := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: labelled(left), Width: jsii.Number(8)}
		if len(right) > 0 {
			g.Right = labelled(right)
		}
		return awscloudwatch.NewGraphWidget(g)
	}
	alarms := make([]interfacesawscloudwatch.IAlarmRef, 0, len(m.Alarms))
	for _, name := range alarmOrder {
		if a, ok := m.Alarms[name]; ok {
			alarms = append(alarms, a)
		}
	}
	m.Dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(24),
	}))
	m.Dashboard.AddWidgets(
		graph("API requests and errors", []line{{mt.apiRequests, "requests"}}, line{mt.api4xx, "4xx"}, line{mt.api5xx, "5xx"}),
		graph("API latency (ms)", []line{{mt.apiLatencyP50, "p50"}, {mt.apiLatencyP99, "p99"}}),
		graph("Stream: incoming", []line{{mt.incomingRecords, "records"}}, line{mt.incomingBytes, "bytes"}),
	)
	m.Dashboard.AddWidgets(
		graph("Stream: write throttling and put success", []line{{mt.throttledRecords, "throttled records"}},
			line{mt.putRecordSuccess, "PutRecord success"}, line{mt.putRecordsSuccess, "PutRecords success"}),
		graph("Stream: iterator age (ms)", []line{{mt.iteratorAge, "max"}}),
		graph("Firehose: delivered to S3", []line{{mt.deliveredRecords, "records"}}, line{mt.deliveredBytes, "bytes"}),
	)
	row := []awscloudwatch.IWidget{
		graph("Firehose: delivery success and data freshness (s)", []line{{mt.deliverySuccess, "success"}}, line{mt.deliveryFreshness, "freshness"}),
		graph("Errors: objects written to the error prefix", []line{{mt.errorPuts, "S3 PUT requests"}}, line{mt.failedConversions, "records not converted"}),
	}
	if mt.hostCPU != nil {
		row = append(row, graph("Producer host: CPU (%) and status checks", []line{{mt.hostCPU, "CPU"}}, line{mt.hostStatus, "status check failed"}))
	}
	m.Dashboard.AddWidgets(row...)
	if pm := mt.producer; pm != nil {
		m.Dashboard.AddWidgets(
			graph("Producer: events", []line{{pm.read, "read"}, {pm.sent, "sent (confirmed)"}},
				line{pm.retried, "retried"}, line{pm.deadLettered, "dead-lettered"}),
			graph("Producer: queue (bytes) and oldest unconfirmed (s)", []line{{pm.queueBytes, "queued bytes"}},
				line{pm.oldestUnconfirmed, "oldest unconfirmed"}),
			graph("Producer: file lag (bytes), files gone unread, heartbeat", []line{{pm.fileLagFloor, "file lag (least in 5 min)"}},
				line{pm.filesGone, "files gone unread"}, line{pm.heartbeat, "heartbeat"}),
		)
	}
}

// alarm creates an alarm that notifies the topic when it fires and when it
// clears. Missing data is not breaching for every alarm but the heartbeat:
// no traffic is no failure, an idle pipeline reports nothing.
func (m *Monitoring) alarm(name, description string, metric awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64, missing awscloudwatch.TreatMissingData) {
	a := awscloudwatch.NewAlarm(m.Construct, jsii.String(name), &awscloudwatch.AlarmProps{
		Metric:             metric,
		AlarmDescription:   jsii.String(description),
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: op,
		EvaluationPeriods:  jsii.Number(periods),
		TreatMissingData:   missing,
	})
	action := awscloudwatchactions.NewSnsAction(m.Topic)
	a.AddAlarmAction(action)
	a.AddOkAction(action)
	m.Alarms[name] = a
}
