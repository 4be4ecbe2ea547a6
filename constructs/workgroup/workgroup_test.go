package workgroup_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsglue"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/workgroup"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

type synthesized struct {
	w                           *workgroup.WorkGroup
	tpl                         assertions.Template
	logs, db, results, wg, data string
	tables                      []string // logical ids: raw, typed, errors
}

func once(props workgroup.Props) func() *synthesized {
	var s *synthesized
	return func() *synthesized {
		if s != nil {
			return s
		}
		stack := cdktest.NewStack()
		logs := awss3.NewBucket(stack, jsii.String("AccessLogs"), nil)
		db := awsglue.NewDatabase(stack, jsii.String("Database"), &awsglue.DatabaseProps{DatabaseName: jsii.String("tributary_prod")})
		data := awss3.NewBucket(stack, jsii.String("Data"), nil)
		table := func(id, name, prefix string) awsglue.S3Table {
			return awsglue.NewS3Table(stack, jsii.String(id), &awsglue.S3TableProps{Database: db, TableName: jsii.String(name),
				Columns:    &[]*awsglue.Column{{Name: jsii.String("line"), Type: awsglue.Schema_STRING()}},
				DataFormat: awsglue.DataFormat_JSON(), Storage: awsglue.S3TableStorage_FromBucket(data), S3Prefix: jsii.String(prefix)})
		}
		// Two tables over one prefix (raw and typed), one over the errors.
		props.Tables = []awsglue.S3Table{table("Raw", props.Table, "raw-data/"), table("Typed", "typed", "raw-data/"), table("Errors", "errors", "errors/")}
		props.AccessLogs, props.Database = logs, db
		w := workgroup.New(stack, "Queries", &props)
		s = &synthesized{w: w, tpl: assertions.Template_FromStack(stack, nil), logs: nag.LogicalID(logs), db: nag.LogicalID(db),
			results: nag.LogicalID(w.Results), wg: stack.Resolve(stack.GetLogicalId(w.WorkGroup)).(string), data: nag.LogicalID(data)}
		for _, t := range props.Tables {
			s.tables = append(s.tables, nag.LogicalID(t))
		}
		return s
	}
}

var (
	// defaults reads the schema-free table and keeps its results bucket.
	defaults = once(workgroup.Props{Table: "events_raw"})
	// custom reads a typed table, named, limited to 10 MiB, deleted with the stack.
	custom = once(workgroup.Props{Table: "events", Columns: []string{"value", "event_id", "event_time"}, Name: "acme-dev",
		ScanLimitMiB: ref(10), DestroyWithStack: true, LogRetentionDays: ref(7)})
)

// Results land in a bucket of the stack that is encrypted, private, TLS
// only, logged to the access-log bucket, and expires them; production keeps
// it, a development stage empties and deletes it.
func TestResultsBucket(t *testing.T) {
	autoDelete := []any{map[string]any{"Key": "aws-cdk:auto-delete-objects", "Value": "true"}}
	for name, c := range map[string]struct {
		s      *synthesized
		policy string
		tags   any
	}{"default": {defaults(), "Retain", assertions.Match_Absent()}, "custom": {custom(), "Delete", autoDelete}} {
		cdktest.Expect(t, name+": results bucket", func() {
			c.s.tpl.HasResource(jsii.String("AWS::S3::Bucket"), map[string]any{
				"DeletionPolicy": c.policy, "UpdateReplacePolicy": c.policy,
				"Properties": assertions.Match_ObjectEquals(&map[string]any{
					"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
						map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}}}},
					"PublicAccessBlockConfiguration": map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
					"OwnershipControls":              map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}},
					"LoggingConfiguration":           map[string]any{"DestinationBucketName": map[string]any{"Ref": c.s.logs}, "LogFilePrefix": "query-results-bucket/"},
					"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{
						"Id": "ExpireResults", "Status": "Enabled", "ExpirationInDays": 30,
						"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 7},
					}}},
					"Tags": c.tags, "BucketName": assertions.Match_Absent(),
				}),
			})
		})
		cdktest.Expect(t, name+": TLS only", func() {
			c.s.tpl.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), map[string]any{
				"Bucket": map[string]any{"Ref": c.s.results},
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Effect": "Deny", "Action": "s3:*", "Principal": map[string]any{"AWS": "*"},
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})})},
			})
		})
	}
	cdktest.Expect(t, "no bucket emptier when the bucket is kept", func() {
		defaults().tpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(0))
		custom().tpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(1))
	})
}

// The workgroup enforces its configuration: results encrypted (SSE-S3) in
// the results bucket of this account, the bytes-scanned cutoff, CloudWatch
// metrics, a named engine version.
func TestWorkGroupEnforcesItsConfiguration(t *testing.T) {
	for name, c := range map[string]struct {
		s         *synthesized
		wgName    string
		cutoffMiB int
	}{"default": {defaults(), "Test", 10240}, "custom": {custom(), "acme-dev", 10}} {
		cdktest.Expect(t, name, func() {
			c.s.tpl.HasResourceProperties(jsii.String("AWS::Athena::WorkGroup"), assertions.Match_ObjectEquals(&map[string]any{
				"Name": c.wgName, "State": "ENABLED", "RecursiveDeleteOption": true,
				"Description": "Tributary: query the events of Test",
				"WorkGroupConfiguration": assertions.Match_ObjectEquals(&map[string]any{
					"EnforceWorkGroupConfiguration":   true,
					"BytesScannedCutoffPerQuery":      c.cutoffMiB * 1024 * 1024,
					"PublishCloudWatchMetricsEnabled": true,
					"EngineVersion":                   map[string]any{"SelectedEngineVersion": "Athena engine version 3"},
					"ResultConfiguration": assertions.Match_ObjectEquals(&map[string]any{
						"OutputLocation":          map[string]any{"Fn::Join": []any{"", []any{"s3://", map[string]any{"Ref": c.s.results}, "/"}}},
						"EncryptionConfiguration": map[string]any{"EncryptionOption": "SSE_S3"},
						"ExpectedBucketOwner":     map[string]any{"Ref": "AWS::AccountId"},
					}),
				}),
			}))
		})
	}
}

// Four named queries in the workgroup, on the database: events per hour,
// the latest events, duplicates by event_id, and the view without them;
// each reading the table's event_id as the table holds it, and the three
// SELECTs reading only the hours they need (a dt filter).
func TestNamedQueries(t *testing.T) {
	for name, c := range map[string]struct {
		s       *synthesized
		table   string
		eventID string
	}{"default": {defaults(), "events_raw", "json_extract_scalar(line, '$.event_id')"}, "custom": {custom(), "events", `"event_id"`}} {
		found := *c.s.tpl.FindResources(jsii.String("AWS::Athena::NamedQuery"), nil)
		var names []string
		for id, q := range found {
			p := (*q)["Properties"].(map[string]any)
			names = append(names, p["Name"].(string))
			if fmt.Sprint(p["Database"]) != fmt.Sprint(map[string]any{"Ref": c.s.db}) || fmt.Sprint(p["WorkGroup"]) != fmt.Sprint(map[string]any{"Ref": c.s.wg}) {
				t.Errorf("%s: %s in database %v, workgroup %v", name, id, p["Database"], p["WorkGroup"])
			}
			sql := p["QueryString"].(string)
			byID := p["Name"] == "Duplicates by event_id" || p["Name"] == "Create the view without duplicates"
			if !strings.Contains(sql, "FROM "+c.table) || byID && !strings.Contains(sql, c.eventID) {
				t.Errorf("%s: %s does not read %s's event ids:\n%s", name, id, c.table, sql)
			}
			if strings.HasPrefix(sql, "SELECT") && !strings.Contains(sql, "WHERE dt > date_format(current_timestamp - INTERVAL") {
				t.Errorf("%s: %s reads every hour:\n%s", name, id, sql)
			}
			// Time order is the instant's: text order puts +09:00 times after later Z times.
			byTime := p["Name"] == "Latest events" || p["Name"] == "Create the view without duplicates"
			if byTime && !strings.Contains(sql, "ORDER BY try(from_iso8601_timestamp(") || regexp.MustCompile(`ORDER BY (\w+\.)?"?event_time`).MatchString(sql) {
				t.Errorf("%s: %s orders by event_time's text, not its instant:\n%s", name, id, sql)
			}
		}
		if got := fmt.Sprint(names); len(names) != 4 || !strings.Contains(got, "Events per hour") || !strings.Contains(got, "Latest events") ||
			!strings.Contains(got, "Duplicates by event_id") || !strings.Contains(got, "Create the view without duplicates") {
			t.Errorf("%s: named queries %s", name, got)
		}
	}
	// A schema's names may be reserved words or start with _: every query
	// quotes them, so Athena takes them as identifiers.
	typed := workgroup.Queries("events", []string{"order", "_from", "event_id", "event_time"})
	if sql := typed[3].SQL; !strings.HasPrefix(sql, "CREATE OR REPLACE VIEW events_dedup AS\nSELECT \"order\", \"_from\", \"event_id\", \"event_time\", dt FROM (") {
		t.Errorf("typed view selects:\n%s", sql)
	}
	for _, q := range typed {
		if m := regexp.MustCompile(`(^|[^"\w.'$])(order|_from|event_id|event_time)([^"\w]|$)`).FindString(strings.ReplaceAll(q.SQL, "ORDER BY", "")); m != "" &&
			!strings.Contains(q.SQL, " AS "+strings.Trim(m, " ,()\n")) {
			t.Errorf("%s names a column unquoted (%q):\n%s", q.Name, m, q.SQL)
		}
	}
}

// Nothing may act for anyone: no role or policy attached to one (the query
// policy is a managed policy for users to attach), but the bucket emptier's
// when the bucket goes with the stack.
func TestNoRoles(t *testing.T) {
	cdktest.Expect(t, "no IAM", func() {
		defaults().tpl.ResourceCountIs(jsii.String("AWS::IAM::Role"), jsii.Number(0))
		defaults().tpl.ResourceCountIs(jsii.String("AWS::IAM::Policy"), jsii.Number(0))
	})
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	logs := awss3.NewBucket(stack, jsii.String("Logs"), nil)
	db := awsglue.NewDatabase(stack, jsii.String("Database"), &awsglue.DatabaseProps{DatabaseName: jsii.String("d")})
	raw := awsglue.NewS3Table(stack, jsii.String("Raw"), &awsglue.S3TableProps{Database: db,
		Columns: &[]*awsglue.Column{{Name: jsii.String("line"), Type: awsglue.Schema_STRING()}}, DataFormat: awsglue.DataFormat_JSON()})
	before := len(*stack.Node().Children())
	for i, c := range []struct {
		props workgroup.Props
		want  string
	}{
		{workgroup.Props{ScanLimitMiB: ref(9)}, "queryScanLimitMiB: invalid value 9; allowed: an integer from 10 to 1048576"},
		{workgroup.Props{ScanLimitMiB: ref(1048577)}, "queryScanLimitMiB: invalid value 1048577; allowed: an integer from 10 to 1048576"},
		{workgroup.Props{LogRetentionDays: ref(2)}, "logRetentionDays: invalid value 2"},
	} {
		if err := c.props.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
		c.props.AccessLogs, c.props.Database, c.props.Table = logs, db, "events_raw"
		c.props.Tables = []awsglue.S3Table{raw}
		cdktest.Panics(t, c.want, func() { workgroup.New(stack, fmt.Sprint("Queries", i), &c.props) })
	}
	const required = "workgroup: Database, Table, Tables and AccessLogs are required"
	cdktest.Panics(t, required, func() { workgroup.New(stack, "NoProps", nil) })
	cdktest.Panics(t, required, func() {
		workgroup.New(stack, "NoTable", &workgroup.Props{AccessLogs: logs, Database: db, Tables: []awsglue.S3Table{raw}})
	})
	cdktest.Panics(t, required, func() {
		workgroup.New(stack, "NoTables", &workgroup.Props{AccessLogs: logs, Database: db, Table: "events_raw"})
	})
	if n := len(*stack.Node().Children()) - before; n != 0 {
		t.Errorf("rejected props left %d constructs in the stack", n)
	}
}

// The query policy grants exactly what querying needs, each action on named
// resources only: Athena in this workgroup; Glue reads of the catalog, the
// database, its tables and the view, and creating or replacing that view
// only; reading the tables' objects (each prefix once) and listing only
// those prefixes; the results bucket. No "*" action, no "*" resource, and
// the only wildcards (object keys under a prefix) are suppressed by name.
func TestQueryPolicy(t *testing.T) {
	s := defaults()
	found := *s.tpl.FindResources(jsii.String("AWS::IAM::ManagedPolicy"), nil)
	if len(found) != 1 {
		t.Fatalf("%d managed policies", len(found))
	}
	for id, p := range found {
		stack := awscdk.Stack_Of(s.w.Construct)
		if got := cdktest.Resolved(stack, s.w.QueryPolicy.ManagedPolicyArn()); fmt.Sprint(got) != fmt.Sprint(map[string]any{"Ref": id}) {
			t.Errorf("QueryPolicy is %v, not the policy %s", got, id)
		}
		props := (*p)["Properties"].(map[string]any)
		if props["Description"] != "Tributary: query the events of Test in its Athena workgroup" || props["Roles"] != nil || props["Users"] != nil || props["Groups"] != nil {
			t.Errorf("policy properties %v", props)
		}
		glue := func(resource string) string {
			return "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:" + resource
		}
		dbArn := glue("database/${" + s.db + "}")
		// Refs of a Glue database and table are their names.
		tableArn := func(id string) string { return glue("table/${" + s.db + "}/${" + id + "}") }
		view := glue("table/${" + s.db + "}/events_dedup")
		want := []string{
			"athena:BatchGetNamedQuery,athena:GetNamedQuery,athena:GetQueryExecution,athena:GetQueryResults,athena:GetWorkGroup,athena:ListNamedQueries,athena:StartQueryExecution,athena:StopQueryExecution" +
				" on arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${" + s.wg + "}",
			"glue:BatchGetPartition,glue:GetDatabase,glue:GetPartition,glue:GetPartitions,glue:GetTable,glue:GetTables on " +
				strings.Join([]string{glue("catalog"), dbArn, tableArn(s.tables[2]), tableArn(s.tables[0]), tableArn(s.tables[1]), view}, ","),
			"glue:CreateTable,glue:UpdateTable on " + strings.Join([]string{glue("catalog"), dbArn, view}, ","),
			"s3:GetBucketLocation,s3:ListBucket,s3:ListBucketMultipartUploads on ${" + s.results + ".Arn}",
			"s3:AbortMultipartUpload,s3:GetObject,s3:ListMultipartUploadParts,s3:PutObject on ${" + s.results + ".Arn}/*",
			"s3:GetBucketLocation on ${" + s.data + ".Arn}",
			"s3:ListBucket on ${" + s.data + ".Arn} if StringLike s3:prefix [raw-data/* errors/*]",
			"s3:GetObject on ${" + s.data + ".Arn}/errors/*,${" + s.data + ".Arn}/raw-data/*",
		}
		list := func(v any) []string {
			items, ok := v.([]any)
			if !ok {
				items = []any{v}
			}
			var out []string
			for _, i := range items {
				out = append(out, cdktest.Joined(i))
			}
			return out
		}
		var got []string
		for _, st := range props["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			line := strings.Join(list(st["Action"]), ",") + " on " + strings.Join(list(st["Resource"]), ",")
			if c, ok := st["Condition"].(map[string]any); ok {
				line += fmt.Sprintf(" if StringLike s3:prefix %v", c["StringLike"].(map[string]any)["s3:prefix"])
			}
			if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil {
				t.Errorf("statement of another form: %v", st)
			}
			got = append(got, line)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("statements\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
		for _, line := range got {
			for _, part := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' }) {
				if part == "*" || strings.HasSuffix(part, ":*") {
					t.Errorf("a wildcard action or resource: %s in %s", part, line)
				}
			}
		}
		rules := (*p)["Metadata"].(map[string]any)["cdk_nag"].(map[string]any)["rules_to_suppress"].([]any)
		if len(rules) != 1 || fmt.Sprint(rules[0].(map[string]any)["applies_to"]) != fmt.Sprintf("[Resource::<%s.Arn>/* Resource::<%s.Arn>/raw-data/* Resource::<%[2]s.Arn>/errors/*]", s.results, s.data) {
			t.Errorf("suppressions %v", rules)
		}
	}
}

// A data bucket encrypted with a customer key: the query policy may decrypt
// with that key, and with nothing else; the SSE-S3 buckets of the app need none.
func TestQueryPolicyDecryptsWithTheDataBucketsKey(t *testing.T) {
	stack := cdktest.NewStack()
	key := awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})
	data := awss3.NewBucket(stack, jsii.String("Data"), &awss3.BucketProps{Encryption: awss3.BucketEncryption_KMS, EncryptionKey: key})
	db := awsglue.NewDatabase(stack, jsii.String("Database"), &awsglue.DatabaseProps{DatabaseName: jsii.String("d")})
	raw := awsglue.NewS3Table(stack, jsii.String("Raw"), &awsglue.S3TableProps{Database: db, TableName: jsii.String("events_raw"),
		Columns: &[]*awsglue.Column{{Name: jsii.String("line"), Type: awsglue.Schema_STRING()}}, DataFormat: awsglue.DataFormat_JSON(),
		Storage: awsglue.S3TableStorage_FromBucket(data), S3Prefix: jsii.String("raw-data/")})
	workgroup.New(stack, "Queries", &workgroup.Props{Database: db, Table: "events_raw", Tables: []awsglue.S3Table{raw},
		AccessLogs: awss3.NewBucket(stack, jsii.String("Logs"), nil)})
	var kms []string
	for _, p := range *assertions.Template_FromStack(stack, nil).FindResources(jsii.String("AWS::IAM::ManagedPolicy"), nil) {
		for _, st := range (*p)["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			if a := fmt.Sprint(st["Action"]); strings.Contains(a, "kms:") {
				kms = append(kms, a+" on "+cdktest.Joined(st["Resource"]))
			}
		}
	}
	if want := "kms:Decrypt on ${" + nag.LogicalID(key) + ".Arn}"; fmt.Sprint(kms) != "["+want+"]" {
		t.Errorf("KMS statements %v, want [%s]", kms, want)
	}
	if n := strings.Count(fmt.Sprint(defaults().tpl.ToJSON()), "kms:"); n != 0 {
		t.Errorf("the SSE-S3 configuration grants KMS %d times", n)
	}
}
