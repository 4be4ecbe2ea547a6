package tributary

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/tributary/tributary/constructs/catalog"
	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/monitoring"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/layout"
)

// DefaultStackNamePrefix starts every stack name: <prefix>-<stageName>-Pipeline.
const DefaultStackNamePrefix = "Tributary"

var stackNamePrefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,49}$`)

// hostID is the producer host's construct id in its stack.
const hostID = "Host"

// ProducerStackProps configure the producer host stack. Host.API,
// Host.Namespace and Host.Pipeline are required: the pipeline's ingest API,
// and where the producer's metrics go.
type ProducerStackProps struct {
	awscdk.StackProps
	Host producerhost.Props
	// RetainLogs keeps the host's log groups when the stack is deleted, as
	// the pipeline keeps its data.
	RetainLogs bool
}

// ProducerStack runs the producer on an EC2 instance.
type ProducerStack struct {
	awscdk.Stack
	Host *producerhost.ProducerHost
}

// NewProducerStack creates the stack named id with the producer host in it.
func NewProducerStack(scope constructs.Construct, id string, props *ProducerStackProps) *ProducerStack {
	if props == nil {
		panic("tributary: ProducerStackProps with Host.API, Host.Namespace and Host.Pipeline are required")
	}
	s := newStack(scope, id, "Tributary: an EC2 host running the producer against the ingest API", props.StackProps)
	host := producerhost.New(s, hostID, &props.Host)
	instance := host.Instance.InstanceId()
	// Runnable as printed: the stack's Region (the CLI's default may be
	// another), and sudo because Session Manager's ssm-user may not read
	// a system unit's journal.
	command := func(prefix string) *string {
		return awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String(prefix), instance, jsii.String(" --region "), awscdk.Aws_REGION()})
	}
	output(s, "InstanceId", instance, "The producer host")
	output(s, "SessionCommand", command("aws ssm start-session --target "),
		"Opens a shell on the host through Session Manager (needs the AWS CLI v2 and its Session Manager plugin)")
	// The producer ships its log to CloudWatch Logs: no session on the host needed.
	output(s, "LogsCommand", awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("aws logs tail "), host.Logs.LogGroupName(), jsii.String(" --follow --region "), awscdk.Aws_REGION()}),
		"Follows the producer's log in CloudWatch Logs, every host's stream (needs the AWS CLI v2)")
	if !props.RetainLogs {
		destroyLogGroups(s)
	}
	return &ProducerStack{Stack: s, Host: host}
}

// MonitoringStackProps configure the monitoring stack. Pipeline is required;
// Host is the producer host, if there is one. Alarms holds the thresholds and
// e-mail; the resources it watches come from Pipeline and Host.
type MonitoringStackProps struct {
	awscdk.StackProps
	Pipeline *PipelineStack
	Host     *producerhost.ProducerHost
	Alarms   monitoring.Props
}

// MonitoringStack holds the dashboard and the alarms. It is a stack of its
// own because it watches both the pipeline and the producer host, which
// depends on the pipeline.
type MonitoringStack struct {
	awscdk.Stack
	Monitoring *monitoring.Monitoring
}

// NewMonitoringStack creates the stack named id with the dashboard (named
// after the pipeline stack: one per stage, easy to find) and the alarms.
func NewMonitoringStack(scope constructs.Construct, id string, props *MonitoringStackProps) *MonitoringStack {
	if props == nil || props.Pipeline == nil {
		panic("tributary: MonitoringStackProps with Pipeline are required")
	}
	s := newStack(scope, id, "Tributary: the pipeline's dashboard and alarms", props.StackProps)
	p := props.Pipeline.Pipeline
	mp := props.Alarms
	mp.Stage, mp.Stream, mp.DeliveryStream = p.Ingest.API.DeploymentStage(), p.Events.Stream, p.Delivery.Firehose
	mp.Bucket, mp.ErrorFilterID = p.RawData.Bucket, ErrorMetricsID
	mp.BufferingSeconds, mp.DashboardName = p.Delivery.BufferingSeconds, *props.Pipeline.StackName()
	if props.Host != nil {
		mp.Instance, mp.ProducerNamespace, mp.ProducerPipeline = props.Host.Instance, props.Host.Namespace, props.Host.Pipeline
	}
	m := monitoring.New(s, "Monitoring", &mp)
	output(s, "DashboardUrl", awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("https://console.aws.amazon.com/cloudwatch/home?region="), awscdk.Aws_REGION(),
		jsii.String("#dashboards:name="), m.Dashboard.DashboardName()}), "The pipeline's CloudWatch dashboard")
	output(s, "AlarmTopicArn", m.Topic.TopicArn(), "SNS topic the alarms notify; subscribe to it, or set alarmEmail")
	return &MonitoringStack{Stack: s, Monitoring: m}
}

// Stacks are the app's stacks; Producer is nil without the host.
type Stacks struct {
	Pipeline   *PipelineStack
	Producer   *ProducerStack
	Monitoring *MonitoringStack
}

// StackName is <prefix>-<stage>-<kind>, so each stage has its own stacks.
func (s Settings) StackName(kind string) string { return s.pipelineName() + "-" + kind }

// pipelineName is <prefix>-<stage>: it names the stacks, the Glue database
// (tributary_prod) and the producer's Pipeline dimension, so that apps of
// other prefixes deploy the same stage into the account beside them.
func (s Settings) pipelineName() string { return s.prefix() + "-" + s.Pipeline.API.Stage() }

// metricsNamespace is <prefix>/<stage>, the producer's metric namespace,
// for the same reason.
func (s Settings) metricsNamespace() string { return s.prefix() + "/" + s.Pipeline.API.Stage() }

func (s Settings) prefix() string {
	if s.StackNamePrefix == "" {
		return DefaultStackNamePrefix
	}
	return s.StackNamePrefix
}

// NewApp is a CDK app for the stacks. It bundles the assets of every stack,
// even when the CLI selects only some (`cdk deploy <stack>`): the producer
// host's instance is replaced when its binary changes (its logical id hashes
// the binary's asset hash), and the monitoring stack refers to that logical
// id. A skipped build would give a stand-in hash, and the monitoring stack
// would point at an instance that does not exist.
func NewApp(props *awscdk.AppProps) awscdk.App {
	var p awscdk.AppProps
	if props != nil {
		p = *props
	}
	post := map[string]any{}
	if p.PostCliContext != nil {
		for k, v := range *p.PostCliContext {
			post[k] = v
		}
	}
	post["aws:cdk:bundling-stacks"] = []string{"**"}
	p.PostCliContext = &post
	return awscdk.NewApp(&p)
}

// NewStacks adds the app's stacks to app and checks them with cdk-nag's
// AwsSolutions pack: an unsuppressed error fails synth, a warning shows in
// its output. It panics with a one-line message if settings are invalid.
func NewStacks(app awscdk.App, settings Settings) *Stacks {
	if err := settings.Validate(); err != nil {
		panic(err.Error())
	}
	pipeline := settings.Pipeline
	if pipeline.Catalog.DatabaseName == "" { // one per stage: tributary_prod
		pipeline.Catalog.DatabaseName = catalog.DatabaseNameFor(settings.pipelineName())
	}
	st := &Stacks{Pipeline: NewPipelineStack(app, settings.StackName("Pipeline"), &PipelineStackProps{Pipeline: pipeline})}
	retain := st.Pipeline.Pipeline.Retain
	var host *producerhost.ProducerHost
	if !settings.NoProducerHost {
		hp := settings.Host
		hp.API, hp.Namespace, hp.Pipeline = st.Pipeline.Pipeline.Ingest, settings.metricsNamespace(), settings.pipelineName()
		st.Producer = NewProducerStack(app, settings.StackName("Producer"), &ProducerStackProps{Host: hp, RetainLogs: retain})
		host = st.Producer.Host
	}
	st.Monitoring = NewMonitoringStack(app, settings.StackName("Monitoring"), &MonitoringStackProps{
		Pipeline: st.Pipeline, Host: host, Alarms: settings.Alarms,
	})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return st
}

// Validate checks every setting: each construct's own rules, and the rules
// that span several settings.
func (s Settings) Validate() error {
	if s.StackNamePrefix != "" && !stackNamePrefixPattern.MatchString(s.StackNamePrefix) {
		return check.Invalid("stackNamePrefix", s.StackNamePrefix, "1 to 50 letters, digits and hyphens, starting with a letter")
	}
	if err := s.Pipeline.Validate(); err != nil {
		return err
	}
	if !s.NoProducerHost {
		if err := s.Host.Validate(); err != nil {
			return err
		}
		// The producer's namespace would be AWS/<stage>, which CloudWatch
		// refuses to any but its own services.
		if s.StackNamePrefix == "AWS" {
			return check.Invalid("stackNamePrefix", s.StackNamePrefix, "a prefix other than AWS with a producer host: its metric namespace <prefix>/<stageName> may not start with AWS/ (or set producerHost=false)")
		}
		if max := s.Pipeline.MaxBatch(); s.Host.BatchSize != nil && *s.Host.BatchSize > max {
			return check.Invalid("producerBatchSize", *s.Host.BatchSize, fmt.Sprintf(
				"1 to %d, the API's batch limit here (%d only with recordPacking=%s, partitioning=%s and outputFormat=%s)",
				max, ingest.MaxPackedBatch, ingest.Packed, layout.ArrivalTime, deliverystream.JSON))
		}
		// The names CDK derives from the stack name must fit EC2's limits.
		name := s.StackName("Producer")
		if n := producerhost.LaunchTemplateNameLength(name, hostID); n > producerhost.MaxLaunchTemplateName {
			return check.Invalid("stackNamePrefix and stageName", name, fmt.Sprintf(
				"a shorter prefix and stage: the producer host's launch template name would have %d characters, EC2 allows %d (or set producerHost=false)",
				n, producerhost.MaxLaunchTemplateName))
		}
	}
	if err := s.Alarms.Validate(); err != nil {
		return err
	}
	// An iterator older than the retention means records were already lost.
	retention := s.Pipeline.Stream.Retention()
	if age := s.Alarms.IteratorAgeMinutes; age != nil && *age >= retention*60 {
		return check.Invalid("alarmIteratorAgeMinutes", *age, fmt.Sprintf("fewer minutes than the stream keeps records (retentionHours %d = %d minutes)", retention, retention*60))
	}
	return nil
}

// TrialStageName is the stage the README deploys first: not a production
// stage, so `cdk destroy` removes what it created.
const TrialStageName = "trial"

// RetentionNotice is the one line app.go prints to stderr on every synth
// of stacks that retain their data (a production stage, or retainData=true):
// what `cdk destroy` will keep (the stream bills by the hour until deleted)
// and how to avoid or remove it. Empty when destroy removes everything.
func (s Settings) RetentionNotice() string {
	if !s.Pipeline.Retain() {
		return ""
	}
	kept := "the data, access-log and query-results buckets, the Kinesis stream (billed per shard-hour until deleted)"
	if s.Pipeline.Stream.Encryption == stream.CustomerManagedKey {
		kept += " and its KMS key"
	}
	kept += ", the log groups"
	return fmt.Sprintf("tributary: stage %s retains its data: `cdk destroy` keeps %s; "+
		"to try Tributary use -c stageName=%s, which destroy removes; to remove what a destroy kept see docs/operating.md, \"What a production destroy keeps\".",
		s.Pipeline.API.Stage(), kept, TrialStageName)
}
