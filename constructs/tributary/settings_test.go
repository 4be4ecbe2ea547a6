package tributary_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/tributary"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/layout"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// Every invalid setting fails with one line naming the setting, the value and
// what is allowed. Values are strings as `cdk synth -c name=value` passes
// them, or JSON types as cdk.json does.
func TestSettingErrors(t *testing.T) {
	keys := strings.Join(tributary.Keys(), ", ")
	const schemaAllowed = "a JSON Schema (draft-04) file of one event, relative to the project folder (see [Query your events](querying.md))"
	cases := []struct {
		ctx  map[string]any
		want string
	}{
		{map[string]any{"shardCount": "0"}, `shardCount: invalid value 0; allowed: an integer from 1 to 500`},
		{map[string]any{"shardCount": 501.0}, `shardCount: invalid value 501; allowed: an integer from 1 to 500`},
		{map[string]any{"shardCount": "two"}, `shardCount: invalid value "two"; allowed: an integer`},
		{map[string]any{"shardCount": 1.5}, `shardCount: invalid value 1.5; allowed: an integer`},
		{map[string]any{"streamMode": "ON_DEMAND", "shardCount": "2"}, `shardCount: invalid value 2; allowed: unset when streamMode is ON_DEMAND (Kinesis scales the shards)`},
		{map[string]any{"streamMode": "FAST"}, `streamMode: invalid value "FAST"; allowed: one of ["PROVISIONED" "ON_DEMAND"]`},
		{map[string]any{"retentionHours": "5000000"}, `retentionHours: invalid value 5000000; allowed: an integer from 24 to 8760`},
		{map[string]any{"retentionHours": "23"}, `retentionHours: invalid value 23; allowed: an integer from 24 to 8760`},
		{map[string]any{"bufferingSeconds": "901"}, `bufferingSeconds: invalid value 901; allowed: an integer from 0 to 900`},
		{map[string]any{"bufferingSeconds": "-1"}, `bufferingSeconds: invalid value -1; allowed: an integer from 0 to 900`},
		{map[string]any{"bufferingMiB": "0"}, `bufferingMiB: invalid value 0; allowed: an integer from 1 to 128`},
		{map[string]any{"bufferingMiB": "129"}, `bufferingMiB: invalid value 129; allowed: an integer from 1 to 128`},
		{map[string]any{"compression": "BROTLI"}, `compression: invalid value "BROTLI"; allowed: one of ["UNCOMPRESSED" "GZIP" "HADOOP_SNAPPY" "SNAPPY" "ZIP"]`},
		{map[string]any{"dataPrefix": "raw-data"}, `dataPrefix: invalid value "raw-data"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"dataPrefix": "/raw-data/"}, `dataPrefix: invalid value "/raw-data/"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"dataPrefix": "raw//data/"}, `dataPrefix: invalid value "raw//data/"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"dataPrefix": "raw/!{timestamp:yyyy}/"}, `dataPrefix: invalid value "raw/!{timestamp:yyyy}/"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"dataPrefix": strings.Repeat("a", 512) + "/"}, `dataPrefix: invalid value "` + strings.Repeat("a", 512) + `/"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"errorPrefix": "errors"}, `errorPrefix: invalid value "errors"; allowed: 1 to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) in folders each ending in /, no leading /`},
		{map[string]any{"errorPrefix": "raw-data/errors/"}, `errorPrefix: invalid value "raw-data/errors/"; allowed: a folder that neither contains nor lies inside dataPrefix raw-data/`},
		{map[string]any{"dataPrefix": "errors/data/"}, `errorPrefix: invalid value "errors/"; allowed: a folder that neither contains nor lies inside dataPrefix errors/data/`},
		{map[string]any{"stageName": "prod_1"}, `stageName: invalid value "prod_1"; allowed: 1 to 64 letters, digits and hyphens, starting with a letter or digit`},
		{map[string]any{"stageName": "-dev"}, `stageName: invalid value "-dev"; allowed: 1 to 64 letters, digits and hyphens, starting with a letter or digit`},
		{map[string]any{"stageName": 5.0}, `stageName: invalid value 5; allowed: a string`},
		{map[string]any{"stackNamePrefix": "1st"}, `stackNamePrefix: invalid value "1st"; allowed: 1 to 50 letters, digits and hyphens, starting with a letter`},
		{map[string]any{"stackNamePrefix": "my_app"}, `stackNamePrefix: invalid value "my_app"; allowed: 1 to 50 letters, digits and hyphens, starting with a letter`},
		// The producer's metric namespace would be AWS/<stage>, CloudWatch's own.
		{map[string]any{"stackNamePrefix": "AWS"}, `stackNamePrefix: invalid value "AWS"; allowed: a prefix other than AWS with a producer host: its metric namespace <prefix>/<stageName> may not start with AWS/ (or set producerHost=false)`},
		{map[string]any{"logRetentionDays": "8"}, `logRetentionDays: invalid value 8; allowed: one of [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653] (days CloudWatch Logs supports)`},
		{map[string]any{"streamEncryption": "SSE"}, `streamEncryption: invalid value "SSE"; allowed: one of ["AWS_MANAGED" "CUSTOMER_MANAGED"]`},
		{map[string]any{"apiCloudWatchRole": "NONE"}, `apiCloudWatchRole: invalid value "NONE"; allowed: one of ["CREATE" "EXISTING"]`},
		{map[string]any{"retainData": "yes"}, `retainData: invalid value "yes"; allowed: true or false`},
		{map[string]any{"infrequentAccessAfterDays": "29"}, `infrequentAccessAfterDays: invalid value 29; allowed: an integer from 30 to 36500`},
		{map[string]any{"infrequentAccessAfterDays": "30", "archiveAfterDays": "59"}, `archiveAfterDays: invalid value 59; allowed: an integer from 60 to 36500`},
		{map[string]any{"archiveAfterDays": "0"}, `archiveAfterDays: invalid value 0; allowed: an integer from 1 to 36500`},
		{map[string]any{"archiveAfterDays": "90", "expireAfterDays": "90"}, `expireAfterDays: invalid value 90; allowed: an integer from 91 to 36500`},
		{map[string]any{"expireAfterDays": "0"}, `expireAfterDays: invalid value 0; allowed: an integer from 1 to 36500`},
		{map[string]any{"apiThrottleRate": "0"}, `apiThrottleRate: invalid value 0; allowed: an integer from 1 to 10000`},
		{map[string]any{"apiThrottleBurst": "5001"}, `apiThrottleBurst: invalid value 5001; allowed: an integer from 1 to 5000`},
		{map[string]any{"apiAuth": "COGNITO"}, `apiAuth: invalid value "COGNITO"; allowed: one of ["IAM" "API_KEY" "NONE"]`},
		{map[string]any{"apiTracing": "on"}, `apiTracing: invalid value "on"; allowed: true or false`},
		{map[string]any{"apiEndpointType": "PRIVATE"}, `apiEndpointType: invalid value "PRIVATE"; allowed: one of ["REGIONAL" "EDGE"]`},
		{map[string]any{"recordPacking": "packed"}, `recordPacking: invalid value "packed"; allowed: one of ["PACKED" "PER_EVENT"]`},
		{map[string]any{"producerInstanceType": "large"}, `producerInstanceType: invalid value "large"; allowed: an EC2 instance type such as t4g.nano or t3.micro`},
		{map[string]any{"producerSource": "stdin"}, `producerSource: invalid value "stdin"; allowed: one of ["synthetic" "file"]`},
		{map[string]any{"producerSource": "file"}, `producerFiles: invalid value ""; allowed: absolute paths or glob patterns on the host, comma-separated, when producerSource is file`},
		{map[string]any{"producerSource": "file", "producerFiles": "logs/app.log"}, `producerFiles: invalid value "logs/app.log"; allowed: absolute paths or glob patterns without spaces, quotes, $, backslashes or commas`},
		{map[string]any{"producerSource": "file", "producerFiles": "/tmp/app.log"}, `producerFiles: invalid value "/tmp/app.log"; allowed: paths outside /tmp, /var/tmp, /home, /root, /run/user, which the service's systemd unit hides from it (PrivateTmp, ProtectHome)`},
		{map[string]any{"producerSource": "file", "producerFiles": []any{"/var/log/a.log", "/home/ec2-user/*.log"}}, `producerFiles: invalid value "/home/ec2-user/*.log"; allowed: paths outside /tmp, /var/tmp, /home, /root, /run/user, which the service's systemd unit hides from it (PrivateTmp, ProtectHome)`},
		{map[string]any{"producerRate": "0"}, `producerRate: invalid value 0; allowed: events per second from 0.01 to 10000`},
		{map[string]any{"producerRate": "fast"}, `producerRate: invalid value "fast"; allowed: a number`},
		{map[string]any{"producerBatchSize": "1001"}, `producerBatchSize: invalid value 1001; allowed: an integer from 1 to 1000`},
		{map[string]any{"producerBatchSize": "501", "recordPacking": "PER_EVENT"}, `producerBatchSize: invalid value 501; allowed: 1 to 500, the API's batch limit here (1000 only with recordPacking=PACKED, partitioning=ARRIVAL_TIME and outputFormat=JSON)`},
		{map[string]any{"producerBatchSize": "501", "partitioning": "EVENT_TIME"}, `producerBatchSize: invalid value 501; allowed: 1 to 500, the API's batch limit here (1000 only with recordPacking=PACKED, partitioning=ARRIVAL_TIME and outputFormat=JSON)`},
		{map[string]any{"producerVpcId": "vpc-0123456789abcdef0"}, `producerSubnetId: invalid value ""; allowed: a subnet id (subnet-...) of producerVpcId`},
		{map[string]any{"producerSubnetId": "subnet-0123456789abcdef0"}, `producerVpcId: invalid value ""; allowed: a VPC id (vpc-...), set together with producerSubnetId`},
		{map[string]any{"producerHost": "no"}, `producerHost: invalid value "no"; allowed: true or false`},
		{map[string]any{"alarmIteratorAgeMinutes": "1440"}, `alarmIteratorAgeMinutes: invalid value 1440; allowed: fewer minutes than the stream keeps records (retentionHours 24 = 1440 minutes)`},
		{map[string]any{"alarmIteratorAgeMinutes": "0"}, `alarmIteratorAgeMinutes: invalid value 0; allowed: an integer from 1 to 525600`},
		{map[string]any{"alarmDeliverySuccessPercent": "101"}, `alarmDeliverySuccessPercent: invalid value 101; allowed: an integer from 1 to 100`},
		{map[string]any{"alarmFreshnessMarginSeconds": "10"}, `alarmFreshnessMarginSeconds: invalid value 10; allowed: an integer from 60 to 86400`},
		{map[string]any{"alarmApi5xx": "0"}, `alarmApi5xx: invalid value 0; allowed: an integer from 1 to 1000000`},
		{map[string]any{"alarmProducerDeadLettered": "0"}, `alarmProducerDeadLettered: invalid value 0; allowed: an integer from 1 to 1000000`},
		{map[string]any{"alarmProducerDeadLettered": "some"}, `alarmProducerDeadLettered: invalid value "some"; allowed: an integer`},
		{map[string]any{"alarmProducerOldestUnconfirmedSeconds": "30"}, `alarmProducerOldestUnconfirmedSeconds: invalid value 30; allowed: an integer from 60 to 86400`},
		{map[string]any{"alarmProducerOldestUnconfirmedSeconds": "86401"}, `alarmProducerOldestUnconfirmedSeconds: invalid value 86401; allowed: an integer from 60 to 86400`},
		// Checked without a host too: the setting is wrong whatever else is set.
		{map[string]any{"producerHost": "false", "alarmProducerOldestUnconfirmedSeconds": "0"}, `alarmProducerOldestUnconfirmedSeconds: invalid value 0; allowed: an integer from 60 to 86400`},
		{map[string]any{"alarmEmail": "ops at example"}, `alarmEmail: invalid value "ops at example"; allowed: an e-mail address`},
		// The event schema and the options it enables.
		{map[string]any{"eventSchema": "testdata/missing.json"}, `eventSchema: invalid value "testdata/missing.json": open testdata/missing.json: no such file or directory; allowed: ` + schemaAllowed},
		{map[string]any{"eventSchema": "testdata/oneof.json"}, `eventSchema: invalid value "testdata/oneof.json": (root).properties.tags: unsupported keyword "oneOf" (supported: ` + strings.Join(eventschema.Supported, ", ") + `); allowed: ` + schemaAllowed},
		{map[string]any{"eventSchema": 3.0}, `eventSchema: invalid value 3; allowed: ` + schemaAllowed},
		{map[string]any{"partitioning": "PROCESSING_TIME"}, `partitioning: invalid value "PROCESSING_TIME"; allowed: one of ["ARRIVAL_TIME" "EVENT_TIME"]`},
		{map[string]any{"partitioning": "EVENT_TIME", "bufferingMiB": "5"}, `bufferingMiB: invalid value 5; allowed: 64 to 128 with partitioning=EVENT_TIME or outputFormat=PARQUET: Firehose's minimum for dynamic partitioning and format conversion`},
		{map[string]any{"partitioning": "EVENT_TIME", "bufferingSeconds": "30"}, `bufferingSeconds: invalid value 30; allowed: 60 to 900 with partitioning=EVENT_TIME: Firehose's minimum for dynamic partitioning`},
		{map[string]any{"outputFormat": "ORC"}, `outputFormat: invalid value "ORC"; allowed: one of ["JSON" "PARQUET"]`},
		{map[string]any{"outputFormat": "PARQUET"}, `outputFormat: invalid value "PARQUET"; allowed: PARQUET only with eventSchema: Firehose converts to Parquet with the typed table's columns`},
		// A packed record is converted as one: refused by arrival time, with the ways out.
		{map[string]any{"outputFormat": "PARQUET", "eventSchema": "../../test/testdata/event-schema.json"}, `outputFormat: invalid value "PARQUET"; allowed: JSON with partitioning=ARRIVAL_TIME and recordPacking=PACKED; for Parquet set partitioning=EVENT_TIME (Firehose splits each record into its events before converting) or recordPacking=PER_EVENT: a packed record is converted as one, so one event that does not fit the schema would send its whole batch to errors/`},
		{map[string]any{"outputFormat": "PARQUET", "eventSchema": "../../test/testdata/event-schema.json", "bufferingMiB": "32"}, `bufferingMiB: invalid value 32; allowed: 64 to 128 with partitioning=EVENT_TIME or outputFormat=PARQUET: Firehose's minimum for dynamic partitioning and format conversion`},
		{map[string]any{"outputFormat": "PARQUET", "eventSchema": "../../test/testdata/event-schema.json", "compression": "GZIP"}, `compression: invalid value "GZIP"; allowed: UNCOMPRESSED with outputFormat=PARQUET: Parquet compresses its own pages (Snappy), and Firehose disables S3 compression with format conversion`},
		{map[string]any{"queryScanLimitMiB": "9"}, `queryScanLimitMiB: invalid value 9; allowed: an integer from 10 to 1048576`},
		{map[string]any{"shardcount": "2"}, `unknown setting "shardcount"; did you mean "shardCount"? Settings: ` + keys},
		{map[string]any{"bufferingSecond": "60"}, `unknown setting "bufferingSecond"; did you mean "bufferingSeconds"? Settings: ` + keys},
		// -c key= is a forgotten value, not the default.
		{map[string]any{"stageName": ""}, `stageName: invalid value ""; allowed: 1-64 letters, digits, hyphens`},
		{map[string]any{"shardCount": " "}, `shardCount: invalid value " "; allowed: 1-500; only with PROVISIONED`},
		{map[string]any{"apiAuth": ""}, `apiAuth: invalid value ""; allowed: IAM, API_KEY, NONE`},
		{map[string]any{"producerFiles": ""}, `producerFiles: invalid value ""; allowed: absolute paths or glob patterns on the host, comma-separated; not under /tmp, /var/tmp, /home, /root, /run/user`},
		{map[string]any{"producerFiles": "/var/log/app.log"}, `producerFiles: invalid value "/var/log/app.log"; allowed: unset unless producerSource is file (the host would not read them)`},
		{map[string]any{"retainData": ""}, `retainData: invalid value ""; allowed: true, false`},
		// Names built from several settings must fit AWS's limits: the host's
		// launch template name is <prefix><stage>ProducerHostInstanceLaunchTemplate<8>.
		{map[string]any{"stackNamePrefix": "P" + strings.Repeat("a", 49), "stageName": strings.Repeat("s", 64)},
			`stackNamePrefix and stageName: invalid value "P` + strings.Repeat("a", 49) + "-" + strings.Repeat("s", 64) +
				`-Producer"; allowed: a shorter prefix and stage: the producer host's launch template name would have 156 characters, EC2 allows 128 (or set producerHost=false)`},
	}
	for _, c := range cases {
		_, err := tributary.LoadSettings(c.ctx)
		if err == nil {
			t.Errorf("%v: accepted, want error %q", c.ctx, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%v:\n got %q\nwant %q", c.ctx, err.Error(), c.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: message is not one line: %q", c.ctx, err.Error())
		}
	}
}

// Valid values at the edges of each range are accepted; the longest names
// that fit are accepted, and so are names too long for a host when there is
// none; CDK's own context keys (feature flags, cli-telemetry) are not
// mistaken for typos.
func TestSettingsAcceptValidValues(t *testing.T) {
	ctx := cdktest.Context()
	for k, v := range map[string]any{
		"shardCount": "500", "retentionHours": 8760.0, "bufferingSeconds": "0", "bufferingMiB": "128",
		"compression": "GZIP", "dataPrefix": "a/b_c.d-(e)/", "errorPrefix": "a/errors/x/", "stageName": "dev-2",
		"stackNamePrefix": "Acme-Data", "logRetentionDays": "3653", "retainData": true,
		"infrequentAccessAfterDays": "30", "archiveAfterDays": 60.0, "expireAfterDays": "61",
		"producerSource": "file", "producerFiles": "/var/log/app/*.log*,/srv/logs/[a-c]?.json",
	} {
		ctx[k] = v
	}
	s, err := tributary.LoadSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.StackName("Pipeline") != "Acme-Data-dev-2-Pipeline" || *s.Pipeline.Stream.ShardCount != 500 || *s.Pipeline.Stream.RetentionHours != 8760 || !s.Pipeline.Retain() {
		t.Errorf("settings not read as given: %+v", s)
	}
	fits := map[string]any{"stackNamePrefix": "P" + strings.Repeat("a", 49), "stageName": strings.Repeat("s", 36)} // 86 letters: 128 characters
	if _, err := tributary.LoadSettings(fits); err != nil {
		t.Errorf("the longest names that fit are refused: %v", err)
	}
	noHost := map[string]any{"stackNamePrefix": "P" + strings.Repeat("a", 49), "stageName": strings.Repeat("s", 64), "producerHost": "false"}
	if _, err := tributary.LoadSettings(noHost); err != nil {
		t.Errorf("long names without a host are refused: %v", err)
	}
	// Only the producer's namespace starts with the prefix; "aws" is not AWS/.
	for _, ok := range []map[string]any{{"stackNamePrefix": "AWS", "producerHost": "false"}, {"stackNamePrefix": "aws"}, {"stackNamePrefix": "AWSome"}} {
		if _, err := tributary.LoadSettings(ok); err != nil {
			t.Errorf("%v: refused: %v", ok, err)
		}
	}
}

// Each setting goes where the table says: reading it changes exactly the
// prop it configures (and logRetentionDays every log retention); the event
// schema arrives parsed.
func TestEachSettingGoesWhereTheTableSays(t *testing.T) {
	raw, err := os.ReadFile("../../test/testdata/event-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	example, err := eventschema.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		value any
		want  func(s *tributary.Settings)
	}{
		"stackNamePrefix":             {"Acme", func(s *tributary.Settings) { s.StackNamePrefix = "Acme" }},
		"stageName":                   {"dev", func(s *tributary.Settings) { s.Pipeline.API.StageName = "dev" }},
		"retainData":                  {"true", func(s *tributary.Settings) { s.Pipeline.RetainData = ref(true) }},
		"streamMode":                  {"ON_DEMAND", func(s *tributary.Settings) { s.Pipeline.Stream.Mode = "ON_DEMAND" }},
		"shardCount":                  {"3", func(s *tributary.Settings) { s.Pipeline.Stream.ShardCount = ref(3) }},
		"retentionHours":              {"48", func(s *tributary.Settings) { s.Pipeline.Stream.RetentionHours = ref(48) }},
		"streamEncryption":            {"CUSTOMER_MANAGED", func(s *tributary.Settings) { s.Pipeline.Stream.Encryption = "CUSTOMER_MANAGED" }},
		"dataPrefix":                  {"d/", func(s *tributary.Settings) { s.Pipeline.Delivery.DataPrefix = "d/" }},
		"errorPrefix":                 {"e/", func(s *tributary.Settings) { s.Pipeline.Delivery.ErrorPrefix = "e/" }},
		"bufferingSeconds":            {"10", func(s *tributary.Settings) { s.Pipeline.Delivery.BufferingSeconds = ref(10) }},
		"bufferingMiB":                {"7", func(s *tributary.Settings) { s.Pipeline.Delivery.BufferingMiB = ref(7) }},
		"compression":                 {"GZIP", func(s *tributary.Settings) { s.Pipeline.Delivery.Compression = "GZIP" }},
		"infrequentAccessAfterDays":   {"30", func(s *tributary.Settings) { s.Pipeline.Bucket.InfrequentAccessAfterDays = ref(30) }},
		"archiveAfterDays":            {"40", func(s *tributary.Settings) { s.Pipeline.Bucket.ArchiveAfterDays = ref(40) }},
		"expireAfterDays":             {"50", func(s *tributary.Settings) { s.Pipeline.Bucket.ExpireAfterDays = ref(50) }},
		"apiAuth":                     {"API_KEY", func(s *tributary.Settings) { s.Pipeline.API.Auth = ingest.AuthAPIKey }},
		"apiTracing":                  {"true", func(s *tributary.Settings) { s.Pipeline.API.Tracing = true }},
		"apiEndpointType":             {"EDGE", func(s *tributary.Settings) { s.Pipeline.API.EndpointType = "EDGE" }},
		"apiCloudWatchRole":           {"EXISTING", func(s *tributary.Settings) { s.Pipeline.API.CloudWatchRole = "EXISTING" }},
		"recordPacking":               {"PER_EVENT", func(s *tributary.Settings) { s.Pipeline.API.RecordPacking = ingest.PerEvent }},
		"apiThrottleRate":             {"20", func(s *tributary.Settings) { s.Pipeline.API.ThrottleRate = ref(20) }},
		"apiThrottleBurst":            {"30", func(s *tributary.Settings) { s.Pipeline.API.ThrottleBurst = ref(30) }},
		"producerHost":                {"false", func(s *tributary.Settings) { s.NoProducerHost = true }},
		"producerInstanceType":        {"t3.micro", func(s *tributary.Settings) { s.Host.InstanceType = "t3.micro" }},
		"producerSource":              {"synthetic", func(s *tributary.Settings) { s.Host.Source = "synthetic" }},
		"producerFiles":               {"/var/log/a,/var/log/b", func(s *tributary.Settings) { s.Host.Files = []string{"/var/log/a", "/var/log/b"} }},
		"producerRate":                {"2.5", func(s *tributary.Settings) { s.Host.Rate = ref(2.5) }},
		"producerBatchSize":           {"9", func(s *tributary.Settings) { s.Host.BatchSize = ref(9) }},
		"producerVpcId":               {"vpc-01234567", func(s *tributary.Settings) { s.Host.VpcID = "vpc-01234567" }},
		"producerSubnetId":            {"subnet-01234567", func(s *tributary.Settings) { s.Host.SubnetID = "subnet-01234567" }},
		"alarmEmail":                  {"a@b.c", func(s *tributary.Settings) { s.Alarms.Email = "a@b.c" }},
		"alarmApi5xx":                 {"11", func(s *tributary.Settings) { s.Alarms.API5xx = ref(11) }},
		"alarmWriteThrottled":         {"12", func(s *tributary.Settings) { s.Alarms.WriteThrottled = ref(12) }},
		"alarmIteratorAgeMinutes":     {"13", func(s *tributary.Settings) { s.Alarms.IteratorAgeMinutes = ref(13) }},
		"alarmFreshnessMarginSeconds": {"140", func(s *tributary.Settings) { s.Alarms.FreshnessMarginSeconds = ref(140) }},
		"alarmDeliverySuccessPercent": {"15", func(s *tributary.Settings) { s.Alarms.DeliverySuccessPercent = ref(15) }},
		"alarmProducerDeadLettered":   {"10", func(s *tributary.Settings) { s.Alarms.ProducerDeadLettered = ref(10) }},
		"alarmProducerOldestUnconfirmedSeconds": {"600", func(s *tributary.Settings) {
			s.Alarms.ProducerOldestUnconfirmedSeconds = ref(600)
		}},
		"eventSchema":       {"../../test/testdata/event-schema.json", func(s *tributary.Settings) { s.Pipeline.EventSchema = example }},
		"partitioning":      {"EVENT_TIME", func(s *tributary.Settings) { s.Pipeline.Delivery.Partitioning = layout.EventTime }},
		"outputFormat":      {"PARQUET", func(s *tributary.Settings) { s.Pipeline.Delivery.Format = "PARQUET" }},
		"queryScanLimitMiB": {"100", func(s *tributary.Settings) { s.Pipeline.Queries.ScanLimitMiB = ref(100) }},
		"logRetentionDays": {"7", func(s *tributary.Settings) {
			s.Pipeline.Bucket.LogRetentionDays, s.Pipeline.Delivery.LogRetentionDays = ref(7), ref(7)
			s.Pipeline.API.LogRetentionDays, s.Host.LogRetentionDays, s.Pipeline.Queries.LogRetentionDays = ref(7), ref(7), ref(7)
		}},
	}
	for _, key := range tributary.Keys() {
		c, ok := cases[key]
		if !ok {
			t.Errorf("setting %s has no case here", key)
			continue
		}
		ctx := map[string]any{key: c.value}
		switch key { // settings that are only valid with another one
		case "producerVpcId":
			ctx["producerSubnetId"] = "subnet-01234567"
		case "producerSubnetId":
			ctx["producerVpcId"] = "vpc-01234567"
		case "producerFiles":
			ctx["producerSource"] = "file"
		case "outputFormat":
			ctx["eventSchema"], ctx["recordPacking"] = "../../test/testdata/event-schema.json", "PER_EVENT"
		}
		got, err := tributary.LoadSettings(ctx)
		if err != nil {
			t.Errorf("%s=%v: %v", key, c.value, err)
			continue
		}
		var want tributary.Settings
		c.want(&want)
		if key == "producerVpcId" || key == "producerSubnetId" {
			want.Host.VpcID, want.Host.SubnetID = "vpc-01234567", "subnet-01234567"
		}
		if key == "producerFiles" {
			want.Host.Source = "file"
		}
		if key == "outputFormat" {
			want.Pipeline.EventSchema, want.Pipeline.API.RecordPacking = example, "PER_EVENT"
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s=%v:\n got %+v\nwant %+v", key, c.value, got, want)
		}
	}
	if len(cases) != len(tributary.Keys()) {
		t.Errorf("%d cases for %d settings", len(cases), len(tributary.Keys()))
	}
}

// docs/configuration.md's table is rendered from the settings table: one row per
// setting, in order, with its default and what is allowed.
func TestConfigurationTableRows(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(tributary.ConfigurationTable()), "\n")
	if len(lines) != 2+len(tributary.Keys()) {
		t.Fatalf("%d lines for %d settings", len(lines), len(tributary.Keys()))
	}
	for i, key := range tributary.Keys() {
		if !strings.HasPrefix(lines[2+i], "| `"+key+"` | ") || strings.Count(lines[2+i], " | ") != 3 {
			t.Errorf("row %d = %q, want the four cells of %s", i, lines[2+i], key)
		}
	}
	for _, want := range []string{"| `shardCount` | `1` | 1-500; only with `PROVISIONED` |", "| `apiAuth` | `IAM` | `IAM`, `API_KEY`, `NONE` |",
		"| `compression` | `UNCOMPRESSED` | `UNCOMPRESSED`, `GZIP`, `HADOOP_SNAPPY`, `SNAPPY`, `ZIP`; `UNCOMPRESSED` with `PARQUET` |",
		"| `partitioning` | `ARRIVAL_TIME` | `ARRIVAL_TIME`, `EVENT_TIME` |", "| `queryScanLimitMiB` | `10240` | 10-1048576 |"} {
		if !strings.Contains(tributary.ConfigurationTable(), want) {
			t.Errorf("table lacks %s", want)
		}
	}
}

// A production stage (a name starting with "prod", any case) retains its
// data unless retainData says otherwise.
func TestStageDecidesRetention(t *testing.T) {
	for _, c := range []struct {
		stage  string
		retain *bool
		want   bool
	}{
		{"", nil, true}, {"PROD", nil, true}, {"prod-eu", nil, true}, {"Production", nil, true},
		{"dev", nil, false}, {"staging", nil, false}, {"dev", ref(true), true}, {"PROD", ref(false), false},
	} {
		p := tributary.PipelineProps{RetainData: c.retain}
		p.API.StageName = c.stage
		if got := p.Retain(); got != c.want {
			t.Errorf("stage %q retainData %v: Retain() = %v, want %v", c.stage, c.retain, got, c.want)
		}
	}
}

// Stacks that keep their data when destroyed say so on synth, once, with
// what is kept and the trial stage that avoids it; the trial stage and any
// stage that retains nothing say nothing.
func TestRetentionNotice(t *testing.T) {
	kept := "the data, access-log and query-results buckets, the Kinesis stream (billed per shard-hour until deleted), the log groups"
	for _, c := range []struct {
		ctx  map[string]any
		want string
	}{
		{nil, "tributary: stage PROD retains its data: `cdk destroy` keeps " + kept + "; to try Tributary use -c stageName=trial, which destroy removes; " +
			"to remove what a destroy kept see docs/operating.md, \"What a production destroy keeps\"."},
		{map[string]any{"stageName": "dev", "retainData": "true", "streamEncryption": "CUSTOMER_MANAGED"},
			"tributary: stage dev retains its data: `cdk destroy` keeps the data, access-log and query-results buckets, the Kinesis stream (billed per shard-hour until deleted) and its KMS key, the log groups; " +
				"to try Tributary use -c stageName=trial, which destroy removes; to remove what a destroy kept see docs/operating.md, \"What a production destroy keeps\"."},
		{map[string]any{"stageName": "trial"}, ""},
		{map[string]any{"retainData": "false"}, ""},
	} {
		s, err := tributary.LoadSettings(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RetentionNotice(); got != c.want {
			t.Errorf("%v: notice\n %q\nwant\n %q", c.ctx, got, c.want)
		}
	}
}
