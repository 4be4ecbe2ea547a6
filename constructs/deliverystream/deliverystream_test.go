package deliverystream_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/catalog"
	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/internal/layout"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

const (
	hourFolders  = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
	errorFolders = "!{firehose:error-output-type}/" + hourFolders
)

// synthesized is one configuration's delivery stream on a stack of its own,
// beside the plain L2 Kinesis stream it reads and S3 bucket it writes.
type synthesized struct {
	d   *deliverystream.DeliveryStream
	tpl assertions.Template
	// logical ids: the source, its key ("" with aws/kinesis), the bucket,
	// and the construct's resources, from its exported fields
	stream, key, bucket, firehose, role, policy, group string
}

// once builds and synthesizes a configuration on first use, then shares it.
// encryption is the source stream's; props gets the stream and the bucket.
func once(encryption awskinesis.StreamEncryption, props deliverystream.Props) func() *synthesized {
	var s *synthesized
	return func() *synthesized {
		if s != nil {
			return s
		}
		stack := cdktest.NewStack()
		source := awskinesis.NewStream(stack, jsii.String("Source"), &awskinesis.StreamProps{Encryption: encryption})
		bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
		props.Source, props.Bucket = source, bucket
		d := deliverystream.New(stack, "Delivery", &props)
		s = &synthesized{d: d, tpl: assertions.Template_FromStack(stack, nil),
			stream: nag.LogicalID(source), bucket: nag.LogicalID(bucket),
			firehose: nag.LogicalID(d.Firehose), role: nag.LogicalID(d.Role), policy: nag.LogicalID(d.Policy), group: nag.LogicalID(d.LogGroup)}
		if key := source.EncryptionKey(); key != nil {
			s.key = nag.LogicalID(key)
		}
		return s
	}
}

var (
	// defaults reads a stream encrypted with aws/kinesis and leaves every setting unset.
	defaults = once(awskinesis.StreamEncryption_MANAGED, deliverystream.Props{})
	// custom reads a stream encrypted with a customer managed key and sets everything.
	custom = once(awskinesis.StreamEncryption_KMS, deliverystream.Props{
		DataPrefix: "events/json/", ErrorPrefix: "failed/",
		BufferingSeconds: ref(300), BufferingMiB: ref(64), Compression: "GZIP", LogRetentionDays: ref(7),
	})
)

func getAtt(id string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, "Arn"}} }

func configurations() map[string]*synthesized {
	return map[string]*synthesized{"default": defaults(), "custom": custom()}
}

// The defaults: Firehose reads the stream and writes its records unchanged to
// the bucket under raw-data/ in UTC hour folders, failed records under
// errors/<error type>/ likewise, buffered 60 s or 5 MiB, uncompressed.
func TestReadsStreamWritesBucketInUTCHourFolders(t *testing.T) {
	s := defaults()
	cdktest.Expect(t, "one delivery stream, from the stream to the bucket, defaults", func() {
		s.tpl.ResourceCountIs(jsii.String("AWS::KinesisFirehose::DeliveryStream"), jsii.Number(1))
		s.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"DeliveryStreamType": "KinesisStreamAsSource",
			"KinesisStreamSourceConfiguration": assertions.Match_ObjectEquals(&map[string]any{
				"KinesisStreamARN": getAtt(s.stream), "RoleARN": getAtt(s.role),
			}),
			"ExtendedS3DestinationConfiguration": map[string]any{
				"BucketARN":         getAtt(s.bucket),
				"RoleARN":           getAtt(s.role),
				"Prefix":            "raw-data/" + hourFolders,
				"ErrorOutputPrefix": "errors/" + errorFolders,
				"BufferingHints":    assertions.Match_ObjectEquals(&map[string]any{"IntervalInSeconds": 60, "SizeInMBs": 5}),
				"CompressionFormat": "UNCOMPRESSED",
				// Prefix expressions are evaluated in UTC unless a time zone is set.
				"CustomTimeZone": assertions.Match_Absent(),
				// Records land as they are: each is one JSON line.
				"ProcessingConfiguration":           assertions.Match_Absent(),
				"DataFormatConversionConfiguration": assertions.Match_Absent(),
				"DynamicPartitioningConfiguration":  assertions.Match_Absent(),
				"FileExtension":                     assertions.Match_Absent(),
				"S3BackupMode":                      assertions.Match_Absent(),
			},
			// With a Kinesis source, the stream and the bucket encrypt at rest (KDF1).
			"DeliveryStreamEncryptionConfigurationInput": assertions.Match_Absent(),
			// A second stage deploys beside the first.
			"DeliveryStreamName": assertions.Match_Absent(),
		})
	})
	if s.d.DataPrefix != deliverystream.DefaultDataPrefix || s.d.BufferingSeconds != 60 {
		t.Errorf("settings in force: DataPrefix %q, BufferingSeconds %d; want %q, 60", s.d.DataPrefix, s.d.BufferingSeconds, deliverystream.DefaultDataPrefix)
	}
}

// Every setting reaches the template: prefixes (still followed by UTC hour
// folders), buffering, compression.
func TestCustomSettings(t *testing.T) {
	s := custom()
	cdktest.Expect(t, "custom prefixes, buffering and compression", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"ExtendedS3DestinationConfiguration": map[string]any{
				"Prefix":            "events/json/" + hourFolders,
				"ErrorOutputPrefix": "failed/" + errorFolders,
				"BufferingHints":    assertions.Match_ObjectEquals(&map[string]any{"IntervalInSeconds": 300, "SizeInMBs": 64}),
				"CompressionFormat": "GZIP",
				"CustomTimeZone":    assertions.Match_Absent(),
			},
		})
	})
	if s.d.DataPrefix != "events/json/" || s.d.BufferingSeconds != 300 {
		t.Errorf("settings in force: DataPrefix %q, BufferingSeconds %d; want events/json/, 300", s.d.DataPrefix, s.d.BufferingSeconds)
	}
}

// Delivery errors go to the construct's own log group, which expires them
// after logRetentionDays and has a generated name.
func TestDeliveryErrorsLogToGroupWithRetention(t *testing.T) {
	for name, c := range map[string]struct {
		s    *synthesized
		days int
	}{"default": {defaults(), 30}, "logRetentionDays 7": {custom(), 7}} {
		cdktest.Expect(t, name+": one log group with a retention", func() {
			c.s.tpl.ResourceCountIs(jsii.String("AWS::Logs::LogGroup"), jsii.Number(1))
			c.s.tpl.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), map[string]any{
				"RetentionInDays": c.days, "LogGroupName": assertions.Match_Absent(),
			})
		})
		cdktest.Expect(t, name+": Firehose logs there", func() {
			c.s.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
				"ExtendedS3DestinationConfiguration": map[string]any{"CloudWatchLoggingOptions": map[string]any{
					"Enabled": true, "LogGroupName": map[string]any{"Ref": c.s.group},
				}},
			})
		})
	}
}

// statement is an Allow of actions (as CDK renders them: one string, or a
// sorted list) on one resource, with nothing else.
func statement(resource any, actions ...string) map[string]any {
	st := map[string]any{"Effect": "Allow", "Resource": resource}
	if len(actions) == 1 {
		st["Action"] = actions[0]
	} else {
		a := make([]any, len(actions))
		for i, x := range actions {
			a[i] = x
		}
		st["Action"] = a
	}
	return st
}

// leastPrivilege is all Firehose may do: read this stream, list this bucket,
// write objects to it, log to its group; nothing to delete, tag or lock
// objects. With a customer managed key, decrypt with that key.
func leastPrivilege(s *synthesized) map[string]map[string]any {
	want := map[string]map[string]any{
		"read the stream": statement(getAtt(s.stream),
			"kinesis:DescribeStream", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"),
		"list the bucket": statement(getAtt(s.bucket),
			"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"),
		"write objects": statement(map[string]any{"Fn::Join": []any{"", []any{getAtt(s.bucket), "/*"}}},
			"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"),
		"log delivery errors": statement(getAtt(s.group), "logs:PutLogEvents"),
	}
	if s.key != "" {
		want["decrypt the stream's records"] = statement(getAtt(s.key), "kms:Decrypt")
	}
	return want
}

// Firehose gets one role, trusted by Firehose for this account only, used
// for both the source and the destination, with one policy holding exactly
// the documented actions on exactly this stream, bucket and log group.
func TestOneLeastPrivilegeRole(t *testing.T) {
	for name, s := range configurations() {
		cdktest.Expect(t, name+": one role, one policy", func() {
			s.tpl.ResourceCountIs(jsii.String("AWS::IAM::Role"), jsii.Number(1))
			s.tpl.ResourceCountIs(jsii.String("AWS::IAM::Policy"), jsii.Number(1))
		})
		cdktest.Expect(t, name+": trusted by Firehose with sts:ExternalId = this account, nothing attached", func() {
			s.tpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
				"AssumeRolePolicyDocument": map[string]any{"Statement": []any{assertions.Match_ObjectEquals(&map[string]any{
					"Effect": "Allow", "Action": "sts:AssumeRole",
					"Principal": map[string]any{"Service": "firehose.amazonaws.com"},
					"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": map[string]any{"Ref": "AWS::AccountId"}}},
				})}},
				"ManagedPolicyArns": assertions.Match_Absent(),
				"Policies":          assertions.Match_Absent(),
				"RoleName":          assertions.Match_Absent(),
			})
		})
		want := leastPrivilege(s)
		for what, st := range want {
			cdktest.Expect(t, name+": "+what, func() {
				s.tpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
					"Roles": []any{map[string]any{"Ref": s.role}},
					"PolicyDocument": map[string]any{
						"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectEquals(&st)}),
					},
				})
			})
		}
		got := cdktest.Statements(t, s.tpl, s.role)
		if len(got) != len(want) {
			t.Errorf("%s: %d statements, want %d: %v", name, len(got), len(want), got)
		}
		for _, a := range cdktest.Actions(got) {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %s", name, a)
			}
		}
	}
}

// Firehose may use KMS only to read a stream encrypted with a customer
// managed key: with aws/kinesis, the role has no KMS action at all.
func TestKMSDecryptOnlyWithCustomerKey(t *testing.T) {
	for _, a := range cdktest.Actions(cdktest.Statements(t, defaults().tpl, defaults().role)) {
		if strings.HasPrefix(a, "kms:") {
			t.Errorf("aws/kinesis source: role may %s", a)
		}
	}
	s := custom()
	var kms []string
	for _, st := range cdktest.Statements(t, s.tpl, s.role) {
		for _, a := range cdktest.Actions([]map[string]any{st}) {
			if strings.HasPrefix(a, "kms:") {
				kms = append(kms, fmt.Sprintf("%s on %v", a, st["Resource"]))
			}
		}
	}
	if want := fmt.Sprintf("kms:Decrypt on %v", getAtt(s.key)); len(kms) != 1 || kms[0] != want {
		t.Errorf("customer key: KMS grants %v, want [%s]", kms, want)
	}
}

// Firehose checks its access when it is created: the delivery stream waits
// for the policy.
func TestDeliveryStreamDependsOnPolicy(t *testing.T) {
	for name, s := range configurations() {
		cdktest.Expect(t, name+": DependsOn the policy", func() {
			s.tpl.HasResource(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
				"DependsOn": assertions.Match_ArrayWith(&[]any{s.policy}),
			})
		})
	}
}

// Exactly two cdk-nag suppressions, each with its reason: KDF1 on the
// delivery stream, and IAM5 on the policy for <bucket>.Arn/* only (object
// names are Firehose's), so any other wildcard would still be reported.
func TestSuppressionsArePinned(t *testing.T) {
	for name, s := range configurations() {
		var got []string
		for _, sup := range cdktest.Suppressions(s.tpl) {
			got = append(got, sup.String())
			if len(sup.Reason) < 80 {
				t.Errorf("%s: suppression %v has no specific reason: %q", name, sup, sup.Reason)
			}
		}
		want := []string{
			s.firehose + " AwsSolutions-KDF1",
			s.policy + " AwsSolutions-IAM5 [Resource::<" + s.bucket + ".Arn>/*]",
		}
		if s.firehose > s.policy {
			want[0], want[1] = want[1], want[0]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: suppressions %v, want %v", name, got, want)
		}
	}
}

// The Firehose L2's region-to-CIDR mapping (for VPC destinations) is removed:
// nothing uses it, and the template validator flags unused mappings.
func TestNoUnusedMapping(t *testing.T) {
	for name, s := range configurations() {
		cdktest.Expect(t, name+": no Mappings", func() {
			s.tpl.TemplateMatches(assertions.Match_ObjectLike(&map[string]any{"Mappings": assertions.Match_Absent()}))
		})
	}
}

// Settings at the limits Firehose allows are accepted.
func TestValidLimits(t *testing.T) {
	long := strings.Repeat("a", 511) + "/"
	props := []deliverystream.Props{
		{},
		{BufferingSeconds: ref(0), BufferingMiB: ref(1)},
		{BufferingSeconds: ref(900), BufferingMiB: ref(128)},
		{DataPrefix: long},
		{DataPrefix: "a/b/", ErrorPrefix: "a/c/"},
		{DataPrefix: "raw-data/", ErrorPrefix: "raw-data-errors/"},
		{DataPrefix: "Az09!-_.*'()/"},
		{LogRetentionDays: ref(1)},
	}
	for _, c := range deliverystream.Compressions {
		props = append(props, deliverystream.Props{Compression: c})
	}
	for _, p := range props {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed.
func TestInvalidProps(t *testing.T) {
	const prefixAllowed = "; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /"
	stack := cdktest.NewStack()
	source := awskinesis.NewStream(stack, jsii.String("Source"), nil)
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
	before := len(*stack.Node().Children())
	for i, c := range []struct {
		props deliverystream.Props
		want  string
	}{
		{deliverystream.Props{DataPrefix: "raw-data"}, `dataPrefix: invalid value "raw-data"` + prefixAllowed},
		{deliverystream.Props{DataPrefix: "/raw-data/"}, `dataPrefix: invalid value "/raw-data/"` + prefixAllowed},
		{deliverystream.Props{DataPrefix: "raw data/"}, `dataPrefix: invalid value "raw data/"` + prefixAllowed},
		{deliverystream.Props{DataPrefix: "raw//"}, `dataPrefix: invalid value "raw//"` + prefixAllowed},
		{deliverystream.Props{DataPrefix: "raw/!{timestamp:yyyy}/"}, `dataPrefix: invalid value "raw/!{timestamp:yyyy}/"` + prefixAllowed},
		{deliverystream.Props{DataPrefix: strings.Repeat("a", 512) + "/"}, `dataPrefix: invalid value "` + strings.Repeat("a", 512) + `/"` + prefixAllowed},
		{deliverystream.Props{ErrorPrefix: "errors"}, `errorPrefix: invalid value "errors"` + prefixAllowed},
		{deliverystream.Props{ErrorPrefix: "raw-data/errors/"}, `errorPrefix: invalid value "raw-data/errors/"; allowed: a folder that neither contains nor lies inside dataPrefix raw-data/`},
		{deliverystream.Props{DataPrefix: "errors/data/"}, `errorPrefix: invalid value "errors/"; allowed: a folder that neither contains nor lies inside dataPrefix errors/data/`},
		{deliverystream.Props{DataPrefix: "same/", ErrorPrefix: "same/"}, `errorPrefix: invalid value "same/"; allowed: a folder that neither contains nor lies inside dataPrefix same/`},
		{deliverystream.Props{BufferingSeconds: ref(-1)}, "bufferingSeconds: invalid value -1; allowed: an integer from 0 to 900"},
		{deliverystream.Props{BufferingSeconds: ref(901)}, "bufferingSeconds: invalid value 901; allowed: an integer from 0 to 900"},
		{deliverystream.Props{BufferingMiB: ref(0)}, "bufferingMiB: invalid value 0; allowed: an integer from 1 to 128"},
		{deliverystream.Props{BufferingMiB: ref(129)}, "bufferingMiB: invalid value 129; allowed: an integer from 1 to 128"},
		{deliverystream.Props{Compression: "gzip"}, `compression: invalid value "gzip"; allowed: one of ["UNCOMPRESSED" "GZIP" "HADOOP_SNAPPY" "SNAPPY" "ZIP"]`},
		{deliverystream.Props{LogRetentionDays: ref(10)}, "logRetentionDays: invalid value 10; allowed: one of [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653] (days CloudWatch Logs supports)"},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
		c.props.Source, c.props.Bucket = source, bucket
		cdktest.Panics(t, c.want, func() { deliverystream.New(stack, fmt.Sprint("Delivery", i), &c.props) })
	}
	const required = "deliverystream: Source and Bucket are required"
	cdktest.Panics(t, required, func() { deliverystream.New(stack, "NoProps", nil) })
	cdktest.Panics(t, required, func() { deliverystream.New(stack, "NoSource", &deliverystream.Props{Bucket: bucket}) })
	cdktest.Panics(t, required, func() { deliverystream.New(stack, "NoBucket", &deliverystream.Props{Source: source}) })
	imported := awss3.Bucket_FromBucketName(stack, jsii.String("Imported"), jsii.String("elsewhere"))
	before++ // the imported bucket's construct
	cdktest.Panics(t, "deliverystream: Bucket must be a bucket defined in this app, not an imported one", func() {
		deliverystream.New(stack, "ImportedBucket", &deliverystream.Props{Source: source, Bucket: imported})
	})
	if n := len(*stack.Node().Children()) - before; n != 0 {
		t.Errorf("rejected props left %d constructs in the stack", n)
	}
}

// Each compression setting becomes the value CloudFormation takes: Firehose
// spells SNAPPY "Snappy", and "SNAPPY" would fail the deployment.
func TestCompressionValues(t *testing.T) {
	stack := cdktest.NewStack()
	source := awskinesis.NewStream(stack, jsii.String("Source"), nil)
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
	want := map[string]string{"UNCOMPRESSED": "UNCOMPRESSED", "GZIP": "GZIP", "HADOOP_SNAPPY": "HADOOP_SNAPPY", "SNAPPY": "Snappy", "ZIP": "ZIP"}
	ids := map[string]string{}
	for _, c := range deliverystream.Compressions {
		d := deliverystream.New(stack, "Delivery"+c, &deliverystream.Props{Source: source, Bucket: bucket, Compression: c})
		ids[c] = nag.LogicalID(d.Firehose)
	}
	tpl := cdktest.JSON(assertions.Template_FromStack(stack, nil))
	for c, id := range ids {
		got := tpl["Resources"].(map[string]any)[id].(map[string]any)["Properties"].(map[string]any)["ExtendedS3DestinationConfiguration"].(map[string]any)["CompressionFormat"]
		if got != want[c] {
			t.Errorf("compression %s renders %v, want %s", c, got, want[c])
		}
	}
	if len(ids) != len(want) {
		t.Errorf("%d compressions, want %d", len(ids), len(want))
	}
}

// Writing to a bucket encrypted with a KMS key needs that key: Firehose gets
// kms:Decrypt and kms:GenerateDataKey on it, and nothing else of KMS.
func TestKMSEncryptedBucket(t *testing.T) {
	stack := cdktest.NewStack()
	source := awskinesis.NewStream(stack, jsii.String("Source"), nil)
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), &awss3.BucketProps{Encryption: awss3.BucketEncryption_KMS})
	d := deliverystream.New(stack, "Delivery", &deliverystream.Props{Source: source, Bucket: bucket})
	tpl := assertions.Template_FromStack(stack, nil)
	var kms []string
	for _, st := range cdktest.Statements(t, tpl, nag.LogicalID(d.Role)) {
		for _, a := range cdktest.Actions([]map[string]any{st}) {
			if strings.HasPrefix(a, "kms:") {
				kms = append(kms, fmt.Sprintf("%s on %v", a, st["Resource"]))
			}
		}
	}
	key := getAtt(nag.LogicalID(bucket.EncryptionKey()))
	if want := fmt.Sprintf("[kms:Decrypt on %v kms:GenerateDataKey on %v]", key, key); fmt.Sprint(kms) != want {
		t.Errorf("KMS grants %v, want %s", kms, want)
	}
}

// options are delivery streams beside each other: JSON by event time,
// Parquet (with a typed table of the catalog) by arrival time and by event time.
type options struct {
	tpl                                    assertions.Template
	eventTime, parquet, parquetByEventTime *deliverystream.DeliveryStream
	bucket, db, table, parquetRole, policy string
}

var withOptions = func() func(t *testing.T) *options {
	var o *options
	return func(t *testing.T) *options {
		if o != nil {
			return o
		}
		raw, err := os.ReadFile("../../test/testdata/event-schema.json")
		if err != nil {
			t.Fatal(err)
		}
		schema, err := eventschema.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		stack := cdktest.NewStack()
		source := awskinesis.NewStream(stack, jsii.String("Source"), nil)
		bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
		cat := catalog.New(stack, "Catalog", &catalog.Props{Bucket: bucket, Layout: layout.Layout{DataPrefix: "raw-data/"}, Schema: schema, Format: catalog.Parquet})
		o = &options{bucket: nag.LogicalID(bucket), db: nag.LogicalID(cat.Database), table: nag.LogicalID(cat.Events)}
		o.eventTime = deliverystream.New(stack, "EventTime", &deliverystream.Props{Source: source, Bucket: bucket, Partitioning: layout.EventTime})
		o.parquet = deliverystream.New(stack, "Parquet", &deliverystream.Props{Source: source, Bucket: bucket, Format: deliverystream.Parquet, Table: cat.Events})
		o.parquetByEventTime = deliverystream.New(stack, "ParquetByEventTime", &deliverystream.Props{Source: source, Bucket: bucket,
			Format: deliverystream.Parquet, Partitioning: layout.EventTime, Table: cat.Events})
		o.parquetRole, o.policy = nag.LogicalID(o.parquet.Role), nag.LogicalID(o.parquet.Policy)
		o.tpl = assertions.Template_FromStack(stack, nil)
		return o
	}
}()

// EVENT_TIME is dynamic partitioning in a delivery stream of its own
// (another construct id: it cannot be turned on in place): events are
// de-aggregated from JSON Lines, their hour extracted from event_time with
// the layout's jq 1.6 queries (evaluated by jq 1.6 in internal/layout and
// test/), and each gets its newline back; the buffer defaults to 64 MiB.
func TestEventTimePartitioning(t *testing.T) {
	o := withOptions(t)
	if id := nag.LogicalID(o.eventTime.Firehose); id != "EventTimeDeliveryStreamByEventTime320A6E5D" {
		t.Errorf("event-time delivery stream id %s", id)
	}
	// The CDK writes {"key":expression,...}, keys sorted.
	jq := o.eventTime.Layout.JQ()
	var pairs []string
	for _, k := range []string{"day", "hour", "month", "year"} {
		pairs = append(pairs, fmt.Sprintf("%q:%s", k, jq[k]))
	}
	query := "{" + strings.Join(pairs, ",") + "}"
	cdktest.Expect(t, "dynamic partitioning", func() {
		o.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"ExtendedS3DestinationConfiguration": map[string]any{
				"Prefix":                           "raw-data/by-event-time/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/",
				"ErrorOutputPrefix":                "errors/" + errorFolders,
				"BufferingHints":                   assertions.Match_ObjectEquals(&map[string]any{"IntervalInSeconds": 60, "SizeInMBs": 64}),
				"CompressionFormat":                "UNCOMPRESSED",
				"DynamicPartitioningConfiguration": assertions.Match_ObjectEquals(&map[string]any{"Enabled": true}),
				"ProcessingConfiguration": assertions.Match_ObjectEquals(&map[string]any{"Enabled": true, "Processors": []any{
					map[string]any{"Type": "RecordDeAggregation", "Parameters": []any{map[string]any{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}}},
					map[string]any{"Type": "MetadataExtraction", "Parameters": []any{
						map[string]any{"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
						map[string]any{"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
					}},
					map[string]any{"Type": "AppendDelimiterToRecord", "Parameters": []any{}},
				}}),
				"DataFormatConversionConfiguration": assertions.Match_Absent(),
			},
		})
	})
	if !strings.Contains(query, `fromdateiso8601`) || len(jq) != 4 {
		t.Errorf("query %s", query)
	}
}

// PARQUET by event time de-aggregates each record into its events before
// they are converted (Firehose: de-aggregation, then the processors, then
// conversion), so an event that does not fit the schema is converted, or
// fails to errors/, on its own; Parquet needs no newline after a row.
func TestParquetByEventTimeConvertsEachEvent(t *testing.T) {
	o := withOptions(t)
	cdktest.Expect(t, "de-aggregated, partitioned, converted", func() {
		o.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"ExtendedS3DestinationConfiguration": map[string]any{
				"Prefix":                           "raw-data/parquet-by-event-time/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/",
				"DynamicPartitioningConfiguration": assertions.Match_ObjectEquals(&map[string]any{"Enabled": true}),
				"ProcessingConfiguration": assertions.Match_ObjectEquals(&map[string]any{"Enabled": true, "Processors": []any{
					map[string]any{"Type": "RecordDeAggregation", "Parameters": []any{map[string]any{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}}},
					assertions.Match_ObjectLike(&map[string]any{"Type": "MetadataExtraction"}),
				}}),
				"DataFormatConversionConfiguration": assertions.Match_ObjectLike(&map[string]any{"Enabled": true}),
			},
		})
	})
	if o.parquetByEventTime.DataPrefix != "raw-data/parquet-by-event-time/" {
		t.Errorf("DataPrefix in force %q", o.parquetByEventTime.DataPrefix)
	}
	// The same hour extraction as JSON by event time, and the same conversion
	// as Parquet by arrival time (the typed table, read with its own role).
	var tpl map[string]any
	raw, _ := json.Marshal(o.tpl.ToJSON())
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	dest := func(d *deliverystream.DeliveryStream) map[string]any {
		r := tpl["Resources"].(map[string]any)[nag.LogicalID(d.Firehose)].(map[string]any)
		return r["Properties"].(map[string]any)["ExtendedS3DestinationConfiguration"].(map[string]any)
	}
	show := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	both, jsonByTime, parquet := dest(o.parquetByEventTime), dest(o.eventTime), dest(o.parquet)
	extraction := func(d map[string]any) any {
		return d["ProcessingConfiguration"].(map[string]any)["Processors"].([]any)[1]
	}
	if got, want := show(extraction(both)), show(extraction(jsonByTime)); got != want {
		t.Errorf("hour extraction\n got %s\nwant %s", got, want)
	}
	conversion := func(d map[string]any) (string, any) {
		c := d["DataFormatConversionConfiguration"].(map[string]any)
		sc := c["SchemaConfiguration"].(map[string]any)
		role := sc["RoleARN"]
		rest := map[string]any{}
		for k, v := range sc {
			if k != "RoleARN" {
				rest[k] = v
			}
		}
		return show(map[string]any{"c": c["InputFormatConfiguration"], "o": c["OutputFormatConfiguration"], "e": c["Enabled"], "s": rest}), role
	}
	gotConv, gotRole := conversion(both)
	wantConv, _ := conversion(parquet)
	if gotConv != wantConv || show(gotRole) != show(getAtt(nag.LogicalID(o.parquetByEventTime.Role))) {
		t.Errorf("conversion\n got %s with %v\nwant %s with its own role", gotConv, gotRole, wantConv)
	}
	if both["ErrorOutputPrefix"] != "errors/"+errorFolders || both["CompressionFormat"] != nil ||
		show(both["BufferingHints"]) != `{"IntervalInSeconds":60,"SizeInMBs":64}` {
		t.Errorf("errors %v, compression %v, buffering %v", both["ErrorOutputPrefix"], both["CompressionFormat"], both["BufferingHints"])
	}
}

// Each output format and partitioning writes to a folder of its own under
// the data prefix, JSON by arrival time to the prefix itself (where it
// always has): no two layouts share a folder, and no layout's folder is a
// name Athena's projection reads as an hour (those start with the year).
func TestEachLayoutHasItsOwnFolder(t *testing.T) {
	seen := map[string]string{}
	for _, format := range []string{deliverystream.JSON, deliverystream.Parquet} {
		for _, by := range layout.Partitionings {
			f := deliverystream.LayoutFolder(format, by)
			if other, ok := seen[f]; ok {
				t.Errorf("%s %s writes to %q, as %s does", format, by, f, other)
			}
			seen[f] = format + " " + string(by)
			if (f == "") != (format == deliverystream.JSON && by == layout.ArrivalTime) || f != "" && (f[0] >= '0' && f[0] <= '9' || !strings.HasSuffix(f, "/")) {
				t.Errorf("%s %s: folder %q", format, by, f)
			}
			p := deliverystream.Props{Format: format, Partitioning: by, DataPrefix: "events/"}
			if got := p.Layout().DataPrefix; got != "events/"+f {
				t.Errorf("%s %s: layout prefix %q, want events/%s", format, by, got, f)
			}
		}
	}
}

// PARQUET converts with the typed table's schema (OpenX JSON in, Parquet
// out, Snappy inside the file, no S3 compression), and Firehose may read
// only that table's definition: GetTable* on the catalog, the database and
// the table, no glue:GetSchemaVersion on *, which the L2 would add.
func TestParquetConversionReadsOnlyItsTable(t *testing.T) {
	o := withOptions(t)
	if id := nag.LogicalID(o.parquet.Firehose); id != "ParquetDeliveryStream92BE95B7" {
		t.Errorf("Parquet in the arrival-time layout is the same kind of delivery stream: id %s", id)
	}
	role := getAtt(o.parquetRole)
	cdktest.Expect(t, "format conversion", func() {
		o.tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"ExtendedS3DestinationConfiguration": map[string]any{
				"Prefix":            "raw-data/parquet/" + hourFolders,
				"BufferingHints":    assertions.Match_ObjectEquals(&map[string]any{"IntervalInSeconds": 60, "SizeInMBs": 64}),
				"CompressionFormat": assertions.Match_Absent(),
				"DataFormatConversionConfiguration": assertions.Match_ObjectEquals(&map[string]any{
					"Enabled":                   true,
					"InputFormatConfiguration":  map[string]any{"Deserializer": map[string]any{"OpenXJsonSerDe": map[string]any{}}},
					"OutputFormatConfiguration": map[string]any{"Serializer": map[string]any{"ParquetSerDe": map[string]any{}}},
					"SchemaConfiguration": assertions.Match_ObjectEquals(&map[string]any{
						"CatalogId": map[string]any{"Ref": "AWS::AccountId"}, "Region": map[string]any{"Ref": "AWS::Region"},
						"DatabaseName": map[string]any{"Ref": o.db}, "TableName": map[string]any{"Ref": o.table},
						"RoleARN": role, "VersionId": "LATEST",
					}),
				}),
				"DynamicPartitioningConfiguration": assertions.Match_Absent(),
				"ProcessingConfiguration":          assertions.Match_Absent(),
			},
		})
	})
	arn := func(resource ...any) map[string]any {
		return map[string]any{"Fn::Join": []any{"", append([]any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":glue:",
			map[string]any{"Ref": "AWS::Region"}, ":", map[string]any{"Ref": "AWS::AccountId"}}, resource...)}}
	}
	want := map[string]any{"Effect": "Allow", "Action": []any{"glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"},
		"Resource": []any{arn(":catalog"), arn(":database/", map[string]any{"Ref": o.db}),
			arn(":table/", map[string]any{"Ref": o.db}, "/", map[string]any{"Ref": o.table})}}
	var glue []string
	statements := cdktest.Statements(t, o.tpl, o.parquetRole)
	for _, st := range statements {
		for _, a := range cdktest.Actions([]map[string]any{st}) {
			if strings.HasPrefix(a, "glue:") {
				glue = append(glue, a)
			}
		}
		if fmt.Sprint(st["Action"]) == fmt.Sprint(want["Action"]) {
			if got, _ := json.Marshal(st); string(got) != string(must(json.Marshal(want))) {
				t.Errorf("Glue statement\n got %s\nwant %s", got, must(json.Marshal(want)))
			}
		}
	}
	if fmt.Sprint(glue) != "[glue:GetTable glue:GetTableVersion glue:GetTableVersions]" || len(statements) != 5 {
		t.Errorf("Glue actions %v in %d statements, want GetTable* once beside the 4 others", glue, len(statements))
	}
	// The event-time stream reads no schema: no Glue at all.
	for _, a := range cdktest.Actions(cdktest.Statements(t, o.tpl, nag.LogicalID(o.eventTime.Role))) {
		if strings.HasPrefix(a, "glue:") {
			t.Errorf("JSON delivery stream may %s", a)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The options' invalid combinations fail with one line naming the setting,
// the value and what is allowed.
func TestInvalidOptions(t *testing.T) {
	for _, c := range []struct {
		props deliverystream.Props
		want  string
	}{
		{deliverystream.Props{Partitioning: layout.EventTime, BufferingMiB: ref(5)}, "bufferingMiB: invalid value 5; allowed: 64 to 128 with partitioning=EVENT_TIME or outputFormat=PARQUET: Firehose's minimum for dynamic partitioning and format conversion"},
		{deliverystream.Props{Format: deliverystream.Parquet, BufferingMiB: ref(63)}, "bufferingMiB: invalid value 63; allowed: 64 to 128 with partitioning=EVENT_TIME or outputFormat=PARQUET"},
		{deliverystream.Props{Partitioning: layout.EventTime, BufferingSeconds: ref(59)}, "bufferingSeconds: invalid value 59; allowed: 60 to 900 with partitioning=EVENT_TIME: Firehose's minimum for dynamic partitioning"},
		{deliverystream.Props{Format: deliverystream.Parquet, Compression: "GZIP"}, `compression: invalid value "GZIP"; allowed: UNCOMPRESSED with outputFormat=PARQUET`},
		{deliverystream.Props{Partitioning: "EVENT"}, `partitioning: invalid value "EVENT"; allowed: one of ["ARRIVAL_TIME" "EVENT_TIME"]`},
		{deliverystream.Props{Format: "ORC"}, `outputFormat: invalid value "ORC"; allowed: one of ["JSON" "PARQUET"]`},
	} {
		if err := c.props.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
	}
	stack := cdktest.NewStack()
	source := awskinesis.NewStream(stack, jsii.String("Source"), nil)
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
	cdktest.Panics(t, "deliverystream: Table is required with outputFormat=PARQUET", func() {
		deliverystream.New(stack, "NoTable", &deliverystream.Props{Source: source, Bucket: bucket, Format: deliverystream.Parquet})
	})
}
