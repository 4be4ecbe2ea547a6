// Package deliverystream is the Firehose delivery stream that reads the
// Kinesis stream and writes newline-delimited JSON to S3 in UTC hour folders.
package deliverystream

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsglue"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/internal/layout"
)

// Defaults and limits (Firehose buffering hints: 0..900 s, 1..128 MiB).
const (
	DefaultDataPrefix       = "raw-data/"
	DefaultErrorPrefix      = "errors/"
	DefaultBufferingSeconds = 60 // data shows up within a minute; Firehose's own default is 300
	MaxBufferingSeconds     = 900
	DefaultBufferingMiB     = 5
	MinBufferingMiB         = 1
	MaxBufferingMiB         = 128
	DefaultCompression      = "UNCOMPRESSED"
	// MinLargeBufferingMiB is Firehose's smallest buffer with dynamic
	// partitioning or record format conversion, and the default then.
	MinLargeBufferingMiB = 64
	// MinEventTimeBufferingSeconds is Firehose's shortest interval with dynamic partitioning.
	MinEventTimeBufferingSeconds = 60
	JSON                         = "JSON"
	Parquet                      = "PARQUET"
	maxPrefixLength              = 512 // leaves room in Firehose's 1,024 characters for the time folders we append
	prefixAllowedDescription     = "1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /"
)

// Compressions are the formats Firehose can write to S3, as the settings
// name them.
var Compressions = []string{"UNCOMPRESSED", "GZIP", "HADOOP_SNAPPY", "SNAPPY", "ZIP"}

// compressions map the settings' names to Firehose's, which spells one of
// them "Snappy".
var compressions = map[string]func() awskinesisfirehose.Compression{
	"UNCOMPRESSED": awskinesisfirehose.Compression_UNCOMPRESSED, "GZIP": awskinesisfirehose.Compression_GZIP,
	"HADOOP_SNAPPY": awskinesisfirehose.Compression_HADOOP_SNAPPY, "SNAPPY": awskinesisfirehose.Compression_SNAPPY,
	"ZIP": awskinesisfirehose.Compression_ZIP,
}

var prefixPattern = regexp.MustCompile(`^([A-Za-z0-9!_.*'()-]+/)+$`)

// Props configures the delivery stream. Empty and nil fields mean the documented default.
type Props struct {
	Source awskinesis.IStream // required
	Bucket awss3.IBucket      // required
	// DataPrefix is the folder for events; UTC hour folders yyyy/MM/dd/HH/
	// follow it, in a folder of their own (LayoutFolder) unless the format
	// is JSON and the partitioning ArrivalTime. Default: raw-data/.
	DataPrefix string
	// ErrorPrefix is the folder for records Firehose could not deliver, by error type and hour. Default: errors/.
	ErrorPrefix string
	// BufferingSeconds: Firehose writes an object when this much time has passed... Default: 60.
	BufferingSeconds *int
	// BufferingMiB: ...or when this much data has arrived, whichever comes first. Default: 5.
	BufferingMiB *int
	// Compression is one of Compressions. Default: UNCOMPRESSED.
	Compression string
	// Partitioning chooses the hour folders: layout.ArrivalTime (default)
	// or layout.EventTime (dynamic partitioning on event_time, which needs
	// BufferingMiB of at least 64, the default then, and BufferingSeconds
	// of at least 60). Dynamic partitioning can only be chosen when a
	// delivery stream is created: EventTime is a new delivery stream.
	Partitioning layout.Partitioning
	// Format is JSON (default: each record as it is) or PARQUET (record
	// format conversion with Table's columns; BufferingMiB at least 64, the
	// default then, and Compression UNCOMPRESSED, as Parquet compresses itself).
	Format string
	// Table is the typed Glue table PARQUET converts with (required then).
	// Firehose may read its schema, nothing else of the catalog.
	Table awsglue.S3Table
	// LogRetentionDays for the delivery-error log group. Default: logretention.Default.
	LogRetentionDays *int
}

type resolved struct {
	dataPrefix, errorPrefix, compression, format string
	layout                                       layout.Layout
	seconds, mib                                 int
	logRetention                                 awslogs.RetentionDays
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

// Layout is where the delivery stream will write events (valid props only).
func (p Props) Layout() layout.Layout {
	r, _ := p.resolve()
	return r.layout
}

// ErrorPrefixInForce is the folder errors go to (valid props only).
func (p Props) ErrorPrefixInForce() string {
	r, _ := p.resolve()
	return r.errorPrefix
}

// Unreadable tells whether Athena cannot read the objects the compression
// setting gives: it reads no ZIP, and Firehose's SNAPPY is the snappy-java
// framing, not the Hadoop one Athena reads.
func (p Props) Unreadable() bool { return p.Compression == "ZIP" || p.Compression == "SNAPPY" }

func (p Props) resolve() (r resolved, err error) {
	r = resolved{dataPrefix: DefaultDataPrefix, errorPrefix: DefaultErrorPrefix, compression: DefaultCompression,
		format: JSON, seconds: DefaultBufferingSeconds, mib: DefaultBufferingMiB}
	r.layout.By = layout.ArrivalTime
	if p.Partitioning != "" {
		r.layout.By = p.Partitioning
	}
	if p.Format != "" {
		r.format = p.Format
	}
	large := r.layout.By == layout.EventTime || r.format == Parquet
	if large {
		r.mib = MinLargeBufferingMiB
	}
	if p.DataPrefix != "" {
		r.dataPrefix = p.DataPrefix
	}
	if p.ErrorPrefix != "" {
		r.errorPrefix = p.ErrorPrefix
	}
	if p.Compression != "" {
		r.compression = p.Compression
	}
	if p.BufferingSeconds != nil {
		r.seconds = *p.BufferingSeconds
	}
	if p.BufferingMiB != nil {
		r.mib = *p.BufferingMiB
	}
	if err = validPrefix("dataPrefix", r.dataPrefix); err != nil {
		return
	}
	if err = validPrefix("errorPrefix", r.errorPrefix); err != nil {
		return
	}
	// Error records under the data folder would be read as events, and the reverse.
	if strings.HasPrefix(r.errorPrefix, r.dataPrefix) || strings.HasPrefix(r.dataPrefix, r.errorPrefix) {
		return r, check.Invalid("errorPrefix", r.errorPrefix, "a folder that neither contains nor lies inside dataPrefix "+r.dataPrefix)
	}
	if err = check.IntRange("bufferingSeconds", r.seconds, 0, MaxBufferingSeconds); err != nil {
		return
	}
	if err = check.IntRange("bufferingMiB", r.mib, MinBufferingMiB, MaxBufferingMiB); err != nil {
		return
	}
	if err = check.OneOf("compression", r.compression, Compressions...); err != nil {
		return
	}
	if err = check.OneOf("partitioning", string(r.layout.By), string(layout.ArrivalTime), string(layout.EventTime)); err != nil {
		return
	}
	if err = check.OneOf("outputFormat", r.format, JSON, Parquet); err != nil {
		return
	}
	if large && r.mib < MinLargeBufferingMiB {
		return r, check.Invalid("bufferingMiB", r.mib, fmt.Sprintf("%d to %d with partitioning=%s or outputFormat=%s: Firehose's minimum for dynamic partitioning and format conversion",
			MinLargeBufferingMiB, MaxBufferingMiB, layout.EventTime, Parquet))
	}
	if r.layout.By == layout.EventTime && r.seconds < MinEventTimeBufferingSeconds {
		return r, check.Invalid("bufferingSeconds", r.seconds, fmt.Sprintf("%d to %d with partitioning=%s: Firehose's minimum for dynamic partitioning",
			MinEventTimeBufferingSeconds, MaxBufferingSeconds, layout.EventTime))
	}
	if r.format == Parquet && r.compression != "UNCOMPRESSED" {
		return r, check.Invalid("compression", r.compression, "UNCOMPRESSED with outputFormat=PARQUET: Parquet compresses its own pages (Snappy), and Firehose disables S3 compression with format conversion")
	}
	r.dataPrefix += LayoutFolder(r.format, r.layout.By)
	r.layout.DataPrefix = r.dataPrefix
	retention, err := logretention.OrDefault(p.LogRetentionDays)
	r.logRetention = retention.Logs
	return
}

// layoutFolders: each output format and partitioning writes to a folder of
// its own under DataPrefix, so that changing either on a deployed stack
// never leaves a table (over the new layout's folder) reading objects of
// another kind. JSON by arrival time writes to DataPrefix itself, as it
// always has, so existing deployments keep their folders.
var layoutFolders = map[string]map[layout.Partitioning]string{
	JSON:    {layout.ArrivalTime: "", layout.EventTime: "by-event-time/"},
	Parquet: {layout.ArrivalTime: "parquet/", layout.EventTime: "parquet-by-event-time/"},
}

// LayoutFolder is the folder under DataPrefix that format and partitioning write to.
func LayoutFolder(format string, by layout.Partitioning) string { return layoutFolders[format][by] }

func validPrefix(setting, v string) error {
	if len(v) > maxPrefixLength || !prefixPattern.MatchString(v) {
		return check.Invalid(setting, v, prefixAllowedDescription)
	}
	return nil
}

// DeliveryStream wraps the Firehose delivery stream.
type DeliveryStream struct {
	constructs.Construct
	Firehose awskinesisfirehose.DeliveryStream
	// LogGroup receives Firehose's delivery errors.
	LogGroup awslogs.LogGroup
	// Role is what Firehose assumes; Policy holds all it may do.
	Role   awsiam.Role
	Policy awsiam.Policy
	// DataPrefix (with the layout's folder) and BufferingSeconds are the
	// settings in force, and Layout the hour folders it writes.
	DataPrefix       string
	BufferingSeconds int
	Layout           layout.Layout
}

// The actions Firehose documents for reading a Kinesis stream and writing to
// S3 (Firehose developer guide, "Controlling access"): nothing to delete,
// tag, or lock objects, which the L2's read-write grant would add.
var (
	streamReadActions = []string{"kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"}
	bucketActions     = []string{"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}
	objectActions     = []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}
)

// New creates the delivery stream. It panics with a one-line message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *DeliveryStream {
	if props == nil || props.Source == nil || props.Bucket == nil {
		panic("deliverystream: Source and Bucket are required")
	}
	if _, defined := props.Bucket.Node().DefaultChild().(awscdk.CfnResource); !defined {
		// The object grant's nag suppression names the bucket's logical id.
		panic("deliverystream: Bucket must be a bucket defined in this app, not an imported one")
	}
	r, err := props.resolve()
	if err != nil {
		panic(err.Error())
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	if r.format == Parquet && props.Table == nil {
		panic("deliverystream: Table is required with outputFormat=PARQUET")
	}
	d := &DeliveryStream{Construct: c, DataPrefix: r.dataPrefix, BufferingSeconds: r.seconds, Layout: r.layout}
	d.LogGroup = awslogs.NewLogGroup(c, jsii.String("Errors"), &awslogs.LogGroupProps{Retention: r.logRetention})
	d.Role, d.Policy = newRole(c, props, d.LogGroup)
	// The L2 would add its broader grants to a mutable role; this view drops them.
	fixedRole := d.Role.WithoutPolicyUpdates(nil)

	destination := &awskinesisfirehose.S3BucketProps{
		// Each record already ends in "\n" (the ingest API adds it), so objects are
		// newline-delimited JSON. Prefix expressions are evaluated in UTC.
		DataOutputPrefix:  jsii.String(r.layout.FirehosePrefix()),
		ErrorOutputPrefix: jsii.String(r.errorPrefix + layout.ErrorFolders()),
		BufferingInterval: awscdk.Duration_Seconds(jsii.Number(r.seconds)),
		BufferingSize:     awscdk.Size_Mebibytes(jsii.Number(r.mib)),
		LoggingConfig:     awskinesisfirehose.NewEnableLogging(d.LogGroup),
		Role:              fixedRole,
	}
	if r.format == JSON { // Parquet compresses itself; the L2 refuses both
		destination.Compression = compressions[r.compression]()
	}
	// Dynamic partitioning can only be enabled when a delivery stream is
	// created: the event-time layout is another delivery stream (another id).
	streamID := "DeliveryStream"
	if r.layout.By == layout.EventTime {
		streamID = "DeliveryStreamByEventTime"
		query := map[string]*string{}
		for k, v := range r.layout.JQ() {
			query[k] = jsii.String(v)
		}
		destination.DynamicPartitioning = &awskinesisfirehose.DynamicPartitioningProps{Enabled: jsii.Bool(true)}
		processors := []awskinesisfirehose.IDataProcessor{
			// A record may hold several events, one JSON object per line (JSON
			// de-aggregation reads JSON Lines; a delimiter split would leave an
			// empty record after each record's final newline). De-aggregation
			// comes before format conversion, so with PARQUET each event is
			// converted, or fails, on its own.
			awskinesisfirehose.RecordDeAggregationProcessor_Json(),
			awskinesisfirehose.MetadataExtractionProcessor_Jq16(&query),
		}
		if r.format == JSON {
			// De-aggregated events lose their newline: put it back (Parquet rows need none).
			processors = append(processors, awskinesisfirehose.NewAppendDelimiterToRecordProcessor())
		}
		destination.Processors = &processors
	}
	if r.format == Parquet {
		destination.DataFormatConversion = &awskinesisfirehose.DataFormatConversionProps{
			InputFormat:         awskinesisfirehose.InputFormat_OPENX_JSON(),
			OutputFormat:        awskinesisfirehose.OutputFormat_PARQUET(),
			SchemaConfiguration: awskinesisfirehose.SchemaConfiguration_FromCfnTable(props.Table.TableResource(), nil),
		}
	}
	d.Firehose = awskinesisfirehose.NewDeliveryStream(c, jsii.String(streamID), &awskinesisfirehose.DeliveryStreamProps{
		Role:        fixedRole,
		Source:      awskinesisfirehose.NewKinesisStreamSource(props.Source),
		Destination: awskinesisfirehose.NewS3Bucket(props.Bucket, destination),
	})
	// Firehose checks its access when it is created: the policy must exist first.
	d.Firehose.Node().AddDependency(d.Policy)
	nag.Suppress(d.Firehose, "AwsSolutions-KDF1",
		"Delivery stream server-side encryption applies only to Direct PUT sources; this stream reads from Kinesis, and the data is encrypted at rest by the Kinesis stream (KMS) and the S3 bucket (SSE-S3).")
	// The L2 adds a region->Firehose CIDR mapping for VPC destinations; with an S3
	// destination nothing references it and the template validator flags it (W7001).
	awscdk.Stack_Of(c).Node().TryRemoveChild(jsii.String("@aws-cdk--aws-kinesisfirehose.CidrBlocks"))
	return d
}

// newRole creates the role Firehose assumes and the one policy that holds
// everything it may do.
func newRole(c constructs.Construct, props *Props, logGroup awslogs.LogGroup) (awsiam.Role, awsiam.Policy) {
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		// sts:ExternalId is the account, as the Firehose guide shows: no other account's stream can use the role.
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("firehose.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{"StringEquals": map[string]any{"sts:ExternalId": awscdk.Aws_ACCOUNT_ID()}},
		}),
		Description: jsii.String("Lets Firehose read its Kinesis stream and write objects to its bucket"),
	})
	statements := []awsiam.PolicyStatement{
		statement(streamReadActions, props.Source.StreamArn()),
		statement(bucketActions, props.Bucket.BucketArn()),
		statement(objectActions, props.Bucket.ArnForObjects(jsii.String("*"))),
		// The group's ARN ends in :*, which covers its log streams: this one group only.
		statement([]string{"logs:PutLogEvents"}, logGroup.LogGroupArn()),
	}
	if key := props.Source.EncryptionKey(); key != nil {
		// Reading a stream encrypted with a customer key needs the key to decrypt.
		statements = append(statements, statement([]string{"kms:Decrypt"}, key.KeyArn()))
	}
	if t := props.Table; t != nil {
		// Format conversion reads the typed table's schema: Glue authorizes a
		// table read on the catalog, the database and the table.
		db := t.Database()
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"),
			Resources: &[]*string{awscdk.Stack_Of(c).FormatArn(&awscdk.ArnComponents{
				Service: jsii.String("glue"), Resource: jsii.String("catalog"), ArnFormat: awscdk.ArnFormat_NO_RESOURCE_NAME,
			}), db.DatabaseArn(), t.TableArn()},
		}))
	}
	if key := props.Bucket.EncryptionKey(); key != nil {
		// Writing to a bucket encrypted with a KMS key needs a data key from it
		// (and Decrypt, for multipart uploads), as the Firehose guide lists.
		statements = append(statements, statement([]string{"kms:Decrypt", "kms:GenerateDataKey"}, key.KeyArn()))
	}
	policy := awsiam.NewPolicy(c, jsii.String("Policy"), &awsiam.PolicyProps{Roles: &[]awsiam.IRole{role}, Statements: &statements})
	nag.Suppress(policy, "AwsSolutions-IAM5",
		"Firehose names each object itself (prefix, UTC date folders, random suffix), so PutObject, GetObject and AbortMultipartUpload are granted on any key of this one bucket, as the Firehose developer guide documents.",
		"Resource::<"+nag.LogicalID(props.Bucket)+".Arn>/*")
	return role, policy
}

func statement(actions []string, resource *string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: &[]*string{resource},
	})
}
