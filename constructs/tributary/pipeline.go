// Package tributary composes the constructs into the Tributary app: the
// whole pipeline (ingest API -> Kinesis stream -> Firehose -> S3) as one
// construct you can add to your own app, the stacks built from it (the
// pipeline, the producer host, the monitoring), and the settings that
// configure them, read from one table.
package tributary

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsglue"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/catalog"
	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/rawbucket"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/constructs/workgroup"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/layout"
)

// ErrorMetricsID is the data bucket's request metrics filter over the error prefix.
const ErrorMetricsID = "errors"

// PipelineProps configure the pipeline's parts. The zero value is the
// default pipeline; each part documents its own defaults.
type PipelineProps struct {
	Bucket rawbucket.Props
	Stream stream.Props
	// Delivery's Source and Bucket are the pipeline's stream and bucket.
	Delivery deliverystream.Props
	// API's Stream is the pipeline's. Unless set, its throttling follows the
	// stream's write capacity (one record per request), within API Gateway's
	// account limits, so that clients get API Gateway's 429 before Kinesis
	// throttles a write.
	API ingestapi.Props
	// EventSchema, when set, is what events must match: the API's request
	// model, and the typed table's columns (API.Schema and Catalog.Schema).
	EventSchema *eventschema.Schema
	// Catalog's Bucket, Layout, Schema and Format follow the other parts:
	// the data bucket, the delivery stream's layout and output format.
	Catalog catalog.Props
	// Queries' tables, access-log bucket and retention follow the others.
	Queries workgroup.Props
	// RetainData keeps the buckets, the stream and its key when the stack is
	// deleted; otherwise they (and the log groups) go with it. It decides
	// Bucket.DestroyWithStack and Stream.DestroyWithStack. Default: retain
	// for a production stage, one whose name starts with "prod" in any case.
	RetainData *bool
}

// Retain tells whether the data outlives the stack.
func (p PipelineProps) Retain() bool {
	if p.RetainData != nil {
		return *p.RetainData
	}
	return strings.HasPrefix(strings.ToLower(p.API.Stage()), "prod")
}

// complete applies the composition's policies: retention by stage, and
// throttling at the stream's capacity. It returns a copy.
func (p PipelineProps) complete() PipelineProps {
	retain := p.Retain()
	p.Bucket.DestroyWithStack, p.Stream.DestroyWithStack, p.Queries.DestroyWithStack = !retain, !retain, !retain
	p.API.Schema, p.Catalog.Schema = p.EventSchema, p.EventSchema
	p.Catalog.Format = p.Delivery.Format
	if p.Delivery.Validate() == nil {
		p.Catalog.Layout, p.Catalog.ErrorPrefix = p.Delivery.Layout(), p.Delivery.ErrorPrefixInForce()
	}
	// Firehose splits a packed record into at most 500 events (partitioning
	// by event time, Parquet); JSON by arrival time is stored as it comes,
	// so a batch may carry what the batch template's loop takes.
	if p.API.MaxBatch == 0 && p.API.Packing() == ingest.Packed && p.Delivery.Validate() == nil &&
		p.Delivery.Layout().By == layout.ArrivalTime && (p.Delivery.Format == "" || p.Delivery.Format == deliverystream.JSON) {
		p.API.MaxBatch = ingest.MaxPackedBatch
	}
	if p.API.ThrottleRate == nil {
		rate := min(max(p.Stream.WriteRecordsPerSecond(), 1), ingestapi.MaxThrottleRate)
		p.API.ThrottleRate = &rate
	}
	if p.API.ThrottleBurst == nil {
		burst := min(*p.API.ThrottleRate, ingestapi.MaxThrottleBurst)
		p.API.ThrottleBurst = &burst
	}
	return p
}

// MaxBatch is the most events a /v1/batch request may carry.
func (p PipelineProps) MaxBatch() int {
	if c := p.complete(); c.API.MaxBatch != 0 {
		return c.API.MaxBatch
	}
	return ingest.MaxBatch
}

// Validate reports the first setting that is not allowed.
func (p PipelineProps) Validate() error {
	c := p.complete()
	for _, v := range []interface{ Validate() error }{c.API, c.Stream, c.Bucket, c.Delivery, c.Catalog, c.Queries} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	// Firehose converts a record as one: a packed record (up to 500 events)
	// with one event that does not fit the schema goes whole to errors/. It
	// de-aggregates records only with dynamic partitioning (EVENT_TIME).
	if c.Delivery.Format == deliverystream.Parquet && c.Delivery.Layout().By == layout.ArrivalTime && c.API.Packing() == ingest.Packed {
		return check.Invalid("outputFormat", deliverystream.Parquet, fmt.Sprintf(
			"%s with partitioning=%s and recordPacking=%s; for Parquet set partitioning=%s (Firehose splits each record into its events before converting) or recordPacking=%s: a packed record is converted as one, so one event that does not fit the schema would send its whole batch to errors/",
			deliverystream.JSON, layout.ArrivalTime, ingest.Packed, layout.EventTime, ingest.PerEvent))
	}
	return nil
}

// Pipeline is the whole collection path. Its parts are named after their
// construct ids.
type Pipeline struct {
	constructs.Construct
	RawData  *rawbucket.RawBucket
	Events   *stream.Stream
	Delivery *deliverystream.DeliveryStream
	Ingest   *ingestapi.IngestAPI
	Catalog  *catalog.Catalog
	Queries  *workgroup.WorkGroup
	// Retain is the RetainData in force.
	Retain bool
}

// NewPipeline adds the pipeline to scope under its own construct id. It
// panics with a one-line message if props are invalid.
func NewPipeline(scope constructs.Construct, id string, props *PipelineProps) *Pipeline {
	return buildPipeline(constructs.NewConstruct(scope, jsii.String(id)), props)
}

// buildPipeline creates the parts directly in scope. The pipeline stack calls
// it with the stack itself, so the parts' logical ids are what they have
// always been there (RawDataBucket..., EventsStream..., ...).
func buildPipeline(scope constructs.Construct, props *PipelineProps) *Pipeline {
	var p PipelineProps
	if props != nil {
		p = *props
	}
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	p = p.complete()
	pl := &Pipeline{Construct: scope, Retain: p.Retain()}
	pl.RawData = rawbucket.New(scope, "RawData", &p.Bucket)
	pl.Events = stream.New(scope, "Events", &p.Stream)
	p.Catalog.Bucket = pl.RawData.Bucket
	pl.Catalog = catalog.New(scope, "Catalog", &p.Catalog)
	if p.Delivery.Unreadable() {
		awscdk.Annotations_Of(pl.Catalog.Construct).AddWarningV2(jsii.String("tributary:compressionUnreadable"), jsii.String(fmt.Sprintf(
			"compression=%s: Athena cannot read these objects, so the tables will find no events; choose GZIP or HADOOP_SNAPPY to query them.", p.Delivery.Compression)))
	}
	p.Delivery.Source, p.Delivery.Bucket, p.Delivery.Table = pl.Events.Stream, pl.RawData.Bucket, pl.Catalog.Events
	pl.Delivery = deliverystream.New(scope, "Delivery", &p.Delivery)
	// S3 reports request metrics only for a filter: this one counts the
	// objects Firehose writes to the error prefix (the monitoring's alarm).
	pl.RawData.Bucket.AddMetric(&awss3.BucketMetrics{Id: jsii.String(ErrorMetricsID), Prefix: jsii.String(p.Delivery.ErrorPrefixInForce())})
	p.API.Stream = pl.Events.Stream
	pl.Ingest = ingestapi.New(scope, "Ingest", &p.API)
	p.Queries.Database, p.Queries.AccessLogs = pl.Catalog.Database, pl.RawData.AccessLogs
	p.Queries.Table = catalog.RawTable
	var tables []awsglue.S3Table // a new slice: the caller's is not written to
	for _, t := range []awsglue.S3Table{pl.Catalog.Raw, pl.Catalog.Events, pl.Catalog.Errors} {
		if t != nil {
			tables = append(tables, t)
		}
	}
	p.Queries.Tables = tables
	if pl.Catalog.Errors != nil {
		p.Queries.ErrorsTable = catalog.ErrorTable
	}
	if pl.Catalog.Events != nil { // typed: columns, cheaper to scan
		p.Queries.Table, p.Queries.Columns = catalog.TypedTable, nil
		for _, c := range p.EventSchema.Columns() {
			p.Queries.Columns = append(p.Queries.Columns, c.Name)
		}
	}
	pl.Queries = workgroup.New(scope, "Queries", &p.Queries)
	if !pl.Retain {
		destroyLogGroups(scope)
	}
	return pl
}

// destroyLogGroups deletes the log groups under scope with their stack: a
// development stage leaves nothing behind.
func destroyLogGroups(scope constructs.IConstruct) {
	awscdk.RemovalPolicies_Of(scope).Destroy(&awscdk.RemovalPolicyProps{ApplyToResourceTypes: jsii.Strings("AWS::Logs::LogGroup")})
}

// PipelineStackProps configure the pipeline stack.
type PipelineStackProps struct {
	awscdk.StackProps
	Pipeline PipelineProps
}

// PipelineStack holds the pipeline and publishes what producers and users
// need as outputs.
type PipelineStack struct {
	awscdk.Stack
	Pipeline *Pipeline
}

// exampleEvent is what the example request posts.
const exampleEvent = `{"value":"30","type":"Tip 3"}`

// NewPipelineStack creates the stack named id with the pipeline in it.
func NewPipelineStack(scope constructs.Construct, id string, props *PipelineStackProps) *PipelineStack {
	var sp PipelineStackProps
	if props != nil {
		sp = *props
	}
	s := newStack(scope, id, "Tributary: JSON events over HTTPS into Kinesis, delivered by Firehose to S3", sp.StackProps)
	p := buildPipeline(s, &sp.Pipeline)
	api := p.Ingest
	output(s, "IngestUrl", api.URL(), "POST one JSON event here")
	output(s, "IngestBatchUrl", api.BatchURL(), fmt.Sprintf("POST a JSON array of 1 to %d events here", api.MaxBatch()))
	output(s, "StreamName", p.Events.Stream.StreamName(), "Kinesis data stream that buffers the events")
	output(s, "DeliveryStreamName", p.Delivery.Firehose.DeliveryStreamName(), "Firehose delivery stream that writes them to S3")
	output(s, "BucketName", p.RawData.Bucket.BucketName(), "S3 bucket; events land under the data prefix in UTC hour folders")
	output(s, "DataPrefix", jsii.String(p.Delivery.DataPrefix), "Where events land in the bucket, followed by yyyy/MM/dd/HH/ (UTC)")
	output(s, "GlueDatabase", p.Catalog.Database.DatabaseName(), "Glue database of the events; choose it in Athena")
	if t := p.Catalog.Raw; t != nil {
		output(s, "RawTable", t.TableName(), "Every event as one JSON line (column line), partitioned by dt, the UTC hour folder")
	}
	if t := p.Catalog.Events; t != nil {
		output(s, "EventsTable", t.TableName(), "The events, a column per property of the event schema, partitioned by dt")
	}
	output(s, "AthenaWorkGroup", p.Queries.WorkGroup.Ref(), "Athena workgroup to query in: its settings are enforced and its named queries are saved there")
	output(s, "QueryPolicyArn", p.Queries.QueryPolicy.ManagedPolicyArn(),
		"Managed policy to attach to the users and roles that query: this workgroup, the tables and their objects, the query results")
	output(s, "QueryResultsBucket", p.Queries.Results.BucketName(), "Where Athena writes query results (expire after 30 days)")
	output(s, "AthenaConsoleUrl", awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("https://"), awscdk.Aws_REGION(), jsii.String(".console.aws.amazon.com/athena/home?region="), awscdk.Aws_REGION(),
		jsii.String("#/query-editor"),
	}), "Athena's query editor; choose the workgroup AthenaWorkGroup, then its saved queries")
	if id := api.APIKeyID(); id != nil {
		output(s, "ApiKeyId", id, "API key for producers (x-api-key header); its value: aws apigateway get-api-key --include-value --api-key <id>")
	}
	output(s, "ExampleRequest", exampleRequest(api), "Posts one event")
	return &PipelineStack{Stack: s, Pipeline: p}
}

// exampleRequest is a curl command that posts one event the way the API's
// authorization mode wants it.
func exampleRequest(api *ingestapi.IngestAPI) *string {
	auth := ""
	switch api.Auth() {
	case ingest.AuthAPIKey:
		auth = fmt.Sprintf(`-H "%s: $(aws apigateway get-api-key --include-value --query value --output text --api-key %s)" `, ingest.APIKeyHeader, *api.APIKeyID())
	case ingest.AuthIAM:
		// Credentials from the environment (aws configure export-credentials --format env).
		auth = fmt.Sprintf(`--aws-sigv4 "aws:amz:%s:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" `, *awscdk.Aws_REGION())
	}
	return jsii.String(fmt.Sprintf(`curl -sS --fail-with-body %s-H "Content-Type: application/json" -d '%s' %s`, auth, exampleEvent, *api.URL()))
}

// newStack creates a stack whose construct id is its name (so `cdk deploy
// <name>` selects it), with every resource tagged with that name.
func newStack(scope constructs.Construct, name, description string, props awscdk.StackProps) awscdk.Stack {
	props.StackName = jsii.String(name)
	if props.Description == nil {
		props.Description = jsii.String(description)
	}
	s := awscdk.NewStack(scope, jsii.String(name), &props)
	awscdk.Tags_Of(s).Add(jsii.String("tributary:stack"), jsii.String(name), nil)
	return s
}

func output(s awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(s, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
}
