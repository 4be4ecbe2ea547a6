// Package workgroup is the Athena workgroup users query the events in: its
// configuration enforced (results encrypted in a bucket of the stack, a
// per-query bytes-scanned limit, CloudWatch metrics), named queries to
// run first, and a managed policy that grants exactly what querying needs.
package workgroup

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsathena"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsglue"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/internal/providerlogs"
	"github.com/tributary/tributary/constructs/internal/removal"
)

// Defaults and limits.
const (
	// DefaultScanLimitMiB stops a query after 10 GiB scanned (about $0.05 at
	// $5 per TB): enough for weeks of hours asked for with dt, while a query
	// that forgot its dt filter on a large table stops early.
	DefaultScanLimitMiB = 10240
	// MinScanLimitMiB: Athena's minimum cutoff is 10,000,000 bytes.
	MinScanLimitMiB = 10
	// MaxScanLimitMiB is 1 TiB, about $5.50 a query.
	MaxScanLimitMiB = 1 << 20
	// ResultDays: query results expire after a month; the console's
	// history links to them, and any can be run again.
	ResultDays = 30
	// EngineVersion is named, not AUTO, so the SQL dialect of the named
	// queries does not change under them.
	EngineVersion = "Athena engine version 3"
	// View is the name of the view the named query creates.
	View = "events_dedup"
)

// Props configures the workgroup.
type Props struct {
	// Database and Table are what the named queries read (required).
	Database awsglue.IDatabase
	Table    string
	// ErrorsTable, when set, is the table over Firehose's error output
	// (columns line, error_type, dt): two more named queries read it.
	ErrorsTable string
	// Tables are the Glue tables the queries read, in Database (required,
	// at least one): the query policy grants reading their metadata and the
	// objects under their prefixes.
	Tables []awsglue.S3Table
	// Columns are Table's columns when it has event_id and event_time
	// (a typed table); nil means the schema-free table's one line column.
	Columns []string
	// AccessLogs receives the results bucket's server access logs (required).
	AccessLogs awss3.IBucket
	// Name of the workgroup. Default: the stack's name.
	Name string
	// ScanLimitMiB cancels a query past this many MiB scanned. Default: DefaultScanLimitMiB.
	ScanLimitMiB *int
	// DestroyWithStack empties and deletes the results bucket with the stack.
	DestroyWithStack bool
	// LogRetentionDays for the bucket-emptying function's logs. Default: logretention.Default.
	LogRetentionDays *int
}

type resolved struct {
	scanMiB   int
	retention logretention.Retention
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (r resolved, err error) {
	r.scanMiB = DefaultScanLimitMiB
	if p.ScanLimitMiB != nil {
		r.scanMiB = *p.ScanLimitMiB
	}
	if err = check.IntRange("queryScanLimitMiB", r.scanMiB, MinScanLimitMiB, MaxScanLimitMiB); err != nil {
		return
	}
	r.retention, err = logretention.OrDefault(p.LogRetentionDays)
	return
}

// WorkGroup wraps the workgroup, its results bucket and the named queries.
type WorkGroup struct {
	constructs.Construct
	WorkGroup awsathena.CfnWorkGroup
	Results   awss3.Bucket
	// Queries are the named queries, in Queries' order.
	Queries []awsathena.CfnNamedQuery
	// QueryPolicy grants what running the queries needs; attach it to the
	// users and roles that query.
	QueryPolicy awsiam.ManagedPolicy
}

// New creates the workgroup. It panics with a one-line message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *WorkGroup {
	if props == nil || props.Database == nil || props.Table == "" || len(props.Tables) == 0 || props.AccessLogs == nil {
		panic("workgroup: Database, Table, Tables and AccessLogs are required")
	}
	r, err := props.resolve()
	if err != nil {
		panic(err.Error())
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	name := props.Name
	if name == "" {
		name = *awscdk.Stack_Of(c).StackName()
	}
	w := &WorkGroup{Construct: c}
	w.Results = awss3.NewBucket(c, jsii.String("Results"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: props.AccessLogs,
		ServerAccessLogsPrefix: jsii.String("query-results-bucket/"),
		RemovalPolicy:          removal.Policy(props.DestroyWithStack),
		AutoDeleteObjects:      jsii.Bool(props.DestroyWithStack),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("ExpireResults"),
			Expiration:                          awscdk.Duration_Days(jsii.Number(ResultDays)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
		}},
	})
	if props.DestroyWithStack {
		providerlogs.Confine(c, "Custom::S3AutoDeleteObjectsCustomResourceProvider", r.retention.Logs)
	}
	w.WorkGroup = awsathena.NewCfnWorkGroup(c, jsii.String("WorkGroup"), &awsathena.CfnWorkGroupProps{
		Name:        jsii.String(name),
		Description: jsii.String("Tributary: query the events of " + *awscdk.Stack_Of(c).StackName()),
		State:       jsii.String("ENABLED"),
		// Deleting the workgroup removes its query history and named queries,
		// never data; without this a used workgroup blocks deleting the stack.
		RecursiveDeleteOption: jsii.Bool(true),
		WorkGroupConfiguration: &awsathena.CfnWorkGroup_WorkGroupConfigurationProperty{
			EnforceWorkGroupConfiguration:   jsii.Bool(true),
			BytesScannedCutoffPerQuery:      jsii.Number(float64(r.scanMiB) * 1024 * 1024),
			PublishCloudWatchMetricsEnabled: jsii.Bool(true),
			EngineVersion:                   &awsathena.CfnWorkGroup_EngineVersionProperty{SelectedEngineVersion: jsii.String(EngineVersion)},
			ResultConfiguration: &awsathena.CfnWorkGroup_ResultConfigurationProperty{
				OutputLocation:          awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("s3://"), w.Results.BucketName(), jsii.String("/")}),
				EncryptionConfiguration: &awsathena.CfnWorkGroup_EncryptionConfigurationProperty{EncryptionOption: jsii.String("SSE_S3")},
				ExpectedBucketOwner:     awscdk.Aws_ACCOUNT_ID(),
			},
		},
	})
	queries := Queries(props.Table, props.Columns)
	if props.ErrorsTable != "" {
		queries = append(queries, ErrorQueries(props.ErrorsTable)...)
	}
	for _, q := range queries {
		w.Queries = append(w.Queries, awsathena.NewCfnNamedQuery(c, jsii.String(q.ID), &awsathena.CfnNamedQueryProps{
			Name: jsii.String(q.Name), Description: jsii.String(q.Description), QueryString: jsii.String(q.SQL),
			Database: props.Database.DatabaseName(), WorkGroup: w.WorkGroup.Ref(),
		}))
	}
	w.QueryPolicy = w.queryPolicy(props)
	return w
}

// Actions of the query policy, each on the resources named in queryPolicy.
var (
	// AthenaActions run, follow, stop and read queries, and read the saved
	// ones, in this workgroup.
	AthenaActions = []string{"athena:BatchGetNamedQuery", "athena:GetNamedQuery", "athena:GetQueryExecution", "athena:GetQueryResults",
		"athena:GetWorkGroup", "athena:ListNamedQueries", "athena:StartQueryExecution", "athena:StopQueryExecution"}
	// GlueReadActions are what Athena asks of the catalog to plan a query.
	GlueReadActions = []string{"glue:BatchGetPartition", "glue:GetDatabase", "glue:GetPartition", "glue:GetPartitions", "glue:GetTable", "glue:GetTables"}
	// GlueViewActions let the saved query create or replace its one view.
	GlueViewActions = []string{"glue:CreateTable", "glue:UpdateTable"}
	// Athena's list of what it needs of a results location; the data is only read.
	ResultsBucketActions = []string{"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}
	ResultsObjectActions = []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}
	DataBucketActions    = []string{"s3:GetBucketLocation"}
	DataListActions      = []string{"s3:ListBucket"}
	DataObjectActions    = []string{"s3:GetObject"}
)

// queryPolicy grants running queries in this workgroup over the tables:
// their metadata (and the one view the saved query creates), their objects
// under their prefixes only, and the results bucket. Lake Formation in its
// default mode (IAMAllowedPrincipals) leaves access to IAM; where it
// enforces its own permissions, they must be granted there too.
func (w *WorkGroup) queryPolicy(props *Props) awsiam.ManagedPolicy {
	stack := awscdk.Stack_Of(w.Construct)
	arn := func(service, resource string, name *string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String(service), Resource: jsii.String(resource), ResourceName: name,
			ArnFormat: awscdk.ArnFormat_SLASH_RESOURCE_NAME})
	}
	catalogArn := stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("glue"), Resource: jsii.String("catalog"), ArnFormat: awscdk.ArnFormat_NO_RESOURCE_NAME})
	view := arn("glue", "table", jsii.String(*props.Database.DatabaseName()+"/"+View))
	tables := []*string{catalogArn, props.Database.DatabaseArn()}
	bucket := props.Tables[0].Bucket()
	var prefixes []string
	for _, t := range props.Tables {
		if *t.Bucket().Node().Path() != *bucket.Node().Path() {
			panic("workgroup: Tables must all be in one bucket")
		}
		tables = append(tables, t.TableArn())
		if p := *t.S3Prefix() + "*"; !slices.Contains(prefixes, p) { // the typed and the raw table share theirs
			prefixes = append(prefixes, p)
		}
	}
	var objects []*string
	for _, p := range prefixes {
		objects = append(objects, bucket.ArnForObjects(jsii.String(p)))
	}
	statements := []awsiam.PolicyStatement{
		allow(AthenaActions, arn("athena", "workgroup", w.WorkGroup.Ref())),
		allow(GlueReadActions, append(tables, view)...),
		allow(GlueViewActions, catalogArn, props.Database.DatabaseArn(), view),
		allow(ResultsBucketActions, w.Results.BucketArn()),
		allow(ResultsObjectActions, w.Results.ArnForObjects(jsii.String("*"))),
		allow(DataBucketActions, bucket.BucketArn()),
		// Listing is limited to the tables' prefixes, as reading is (only
		// ListBucket carries s3:prefix: GetBucketLocation stays unconditioned).
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings(DataListActions...), Resources: &[]*string{bucket.BucketArn()},
			Conditions: &map[string]any{"StringLike": map[string]any{"s3:prefix": prefixes}},
		}),
		allow(DataObjectActions, objects...),
	}
	if key := bucket.EncryptionKey(); key != nil {
		// Objects encrypted with a KMS key are read with it.
		statements = append(statements, allow([]string{"kms:Decrypt"}, key.KeyArn()))
	}
	policy := awsiam.NewManagedPolicy(w.Construct, jsii.String("QueryPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("Tributary: query the events of " + *stack.StackName() + " in its Athena workgroup"),
		Statements:  &statements,
	})
	findings := []string{"Resource::<" + nag.LogicalID(w.Results) + ".Arn>/*"}
	for _, p := range prefixes {
		findings = append(findings, "Resource::<"+nag.LogicalID(bucket)+".Arn>/"+p)
	}
	nag.Suppress(policy, "AwsSolutions-IAM5",
		"Athena names its result objects itself (one per query, in the workgroup's own results bucket), and Firehose names the objects the tables read (UTC hour folders, random suffixes): objects are granted by the tables' prefixes and the results bucket, nothing else in the buckets.",
		findings...)
	return policy
}

func allow(actions []string, resources ...*string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings(actions...), Resources: &resources})
}

// Query is a named query.
type Query struct {
	ID, Name, Description, SQL string
}

// ErrorQueries are the named queries over the errors table. Firehose's
// error documents name their fields differently by error type (errorCode,
// ErrorCode, lastErrorCode in its guide): each is read under every name.
// rawData is the failed record, base64: decoded under try, so a document
// that is not one reads as NULL instead of failing the query.
func ErrorQueries(table string) []Query {
	field := func(names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("json_extract_scalar(line, '$.%s')", n))
		}
		return "coalesce(" + strings.Join(parts, ", ") + ")"
	}
	since := fmt.Sprintf("dt > date_format(current_timestamp - INTERVAL '%d' HOUR, '%%Y/%%m/%%d/%%H')", 24)
	return []Query{
		{"ErrorsPerHour", "Errors per type and hour", "Records Firehose could not deliver, per error type and UTC arrival hour folder, in the last 24 hour folders",
			fmt.Sprintf("SELECT error_type, dt, count(*) AS records\nFROM %s\nWHERE %s\nGROUP BY error_type, dt\nORDER BY dt, error_type", table, since)},
		{"LatestErrors", "Latest errors", "The 100 latest records Firehose could not deliver (last 24 hour folders): why, and the record itself",
			fmt.Sprintf("SELECT error_type, dt,\n  %s AS error_code,\n  %s AS error_message,\n  try(from_utf8(from_base64(json_extract_scalar(line, '$.rawData')))) AS record\nFROM %s\nWHERE %s\nORDER BY dt DESC, error_type\nLIMIT 100",
				field("errorCode", "ErrorCode", "lastErrorCode"), field("errorMessage", "ErrorMessage", "lastErrorMessage"), table, since)},
	}
}

// Quote is name as an identifier in Athena's DML (SELECT, views): in
// double quotes, any inside doubled.
func Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// Queries are the named queries over table: with columns (a typed table
// with event_id and event_time), read as columns; without, from the JSON line.
func Queries(table string, columns []string) []Query {
	// Columns are double-quoted: a schema's property may be a reserved word
	// (order, select) or start with _, which Athena's SELECT takes only quoted.
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = Quote(c)
	}
	id, tm := Quote("event_id"), Quote("event_time")
	if columns == nil {
		id, tm = "json_extract_scalar(line, '$.event_id')", "json_extract_scalar(line, '$.event_time')"
	}
	// Order by the instant, not the text: "...T14:00:00+09:00" is before
	// "...T06:00:00Z". try: a time Athena cannot parse is NULL, not a failed query.
	instant := "try(from_iso8601_timestamp(" + tm + "))"
	// dt is the UTC hour folder: filtering on it reads only those hours.
	// The current hour folder and the hours-1 before it: hours folders.
	since := func(hours int) string {
		return fmt.Sprintf("dt > date_format(current_timestamp - INTERVAL '%d' HOUR, '%%Y/%%m/%%d/%%H')", hours)
	}
	latest := fmt.Sprintf("SELECT * FROM %s\nWHERE %s\nORDER BY %s DESC NULLS LAST\nLIMIT 100", table, since(2), instant)
	view := fmt.Sprintf("CREATE OR REPLACE VIEW %s AS\nSELECT %s, dt FROM (\n  SELECT e.*, row_number() OVER (PARTITION BY dt, %s ORDER BY %s NULLS LAST) AS copy\n  FROM %s e\n)\nWHERE copy = 1 OR %s IS NULL",
		View, strings.Join(quoted, ", "), id, instant, table, id)
	if columns == nil {
		latest = fmt.Sprintf("SELECT dt, %s AS event_id, %s AS event_time, line\nFROM %s\nWHERE %s\nORDER BY %s DESC NULLS LAST\nLIMIT 100", id, tm, table, since(2), instant)
		view = fmt.Sprintf("CREATE OR REPLACE VIEW %s AS\nSELECT event_id, event_time, line, dt FROM (\n  SELECT %s AS event_id, %s AS event_time, line, dt,\n    row_number() OVER (PARTITION BY dt, %s ORDER BY %s NULLS LAST) AS copy\n  FROM %s\n)\nWHERE copy = 1 OR event_id IS NULL",
			View, id, tm, id, instant, table)
	}
	return []Query{
		{"EventsPerHour", "Events per hour", "Events in each of the last 24 UTC hour folders: the current hour and the 23 before it",
			fmt.Sprintf("SELECT dt, count(*) AS events\nFROM %s\nWHERE %s\nGROUP BY dt\nORDER BY dt", table, since(24))},
		{"LatestEvents", "Latest events", "The 100 latest events (by the instant of event_time) of the current and the previous UTC hour folder", latest},
		{"Duplicates", "Duplicates by event_id", "Events stored more than once in the last 24 UTC hour folders (delivery is at least once)",
			fmt.Sprintf("SELECT event_id, count(*) AS copies, min(dt) AS first_hour, max(dt) AS last_hour\nFROM (SELECT %s AS event_id, dt FROM %s WHERE %s)\nWHERE event_id IS NOT NULL\nGROUP BY event_id\nHAVING count(*) > 1\nORDER BY copies DESC, event_id\nLIMIT 100", id, table, since(24))},
		{"DeduplicatedView", "Create the view without duplicates", "Creates " + View + ": one row per event_id and hour folder, the earliest event_time kept; query it with a dt filter", view},
	}
}
