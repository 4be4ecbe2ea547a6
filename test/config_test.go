package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary/tributary/config"
)

// Every invalid setting fails with one line naming the setting, the value and
// what is allowed. Values are strings as `cdk synth -c name=value` passes them,
// or JSON types as cdk.json does.
func TestConfigurationErrors(t *testing.T) {
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
		{map[string]any{"producerInstanceType": "large"}, `producerInstanceType: invalid value "large"; allowed: an EC2 instance type such as t4g.nano or t3.micro`},
		{map[string]any{"producerSource": "stdin"}, `producerSource: invalid value "stdin"; allowed: one of ["synthetic" "file"]`},
		{map[string]any{"producerSource": "file"}, `producerFiles: invalid value ""; allowed: absolute paths on the host, comma-separated, when producerSource is file`},
		{map[string]any{"producerSource": "file", "producerFiles": "logs/app.log"}, `producerFiles: invalid value "logs/app.log"; allowed: absolute paths without spaces, quotes, $, backslashes or commas`},
		{map[string]any{"producerRate": "0"}, `producerRate: invalid value 0; allowed: events per second from 0.01 to 10000`},
		{map[string]any{"producerRate": "fast"}, `producerRate: invalid value "fast"; allowed: a number`},
		{map[string]any{"producerBatchSize": "501"}, `producerBatchSize: invalid value 501; allowed: an integer from 1 to 500`},
		{map[string]any{"producerVpcId": "vpc-0123456789abcdef0"}, `producerSubnetId: invalid value ""; allowed: a subnet id (subnet-...) of producerVpcId`},
		{map[string]any{"producerSubnetId": "subnet-0123456789abcdef0"}, `producerVpcId: invalid value ""; allowed: a VPC id (vpc-...), set together with producerSubnetId`},
		{map[string]any{"producerHost": "no"}, `producerHost: invalid value "no"; allowed: true or false`},
		{map[string]any{"alarmIteratorAgeMinutes": "1440"}, `alarmIteratorAgeMinutes: invalid value 1440; allowed: fewer minutes than the stream keeps records (retentionHours 24 = 1440 minutes)`},
		{map[string]any{"alarmIteratorAgeMinutes": "0"}, `alarmIteratorAgeMinutes: invalid value 0; allowed: an integer from 1 to 525600`},
		{map[string]any{"alarmDeliverySuccessPercent": "101"}, `alarmDeliverySuccessPercent: invalid value 101; allowed: an integer from 1 to 100`},
		{map[string]any{"alarmFreshnessMarginSeconds": "10"}, `alarmFreshnessMarginSeconds: invalid value 10; allowed: an integer from 60 to 86400`},
		{map[string]any{"alarmApi5xx": "0"}, `alarmApi5xx: invalid value 0; allowed: an integer from 1 to 1000000`},
		{map[string]any{"alarmEmail": "ops at example"}, `alarmEmail: invalid value "ops at example"; allowed: an e-mail address`},
		{map[string]any{"shardcount": "2"}, `unknown setting "shardcount"; did you mean "shardCount"? Settings: ` + strings.Join(config.Settings, ", ")},
		{map[string]any{"bufferingSecond": "60"}, `unknown setting "bufferingSecond"; did you mean "bufferingSeconds"? Settings: ` + strings.Join(config.Settings, ", ")},
	}
	for _, c := range cases {
		_, err := config.Load(c.ctx)
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

// Valid values at the edges of each range are accepted, and CDK's own context
// keys (feature flags, cli-telemetry) are not mistaken for typos.
func TestConfigurationAcceptsValidValues(t *testing.T) {
	ctx := cdkJSONContext(t)
	for k, v := range map[string]any{
		"shardCount": "500", "retentionHours": 8760.0, "bufferingSeconds": "0", "bufferingMiB": "128",
		"compression": "GZIP", "dataPrefix": "a/b_c.d-(e)/", "errorPrefix": "a/errors/x/", "stageName": "dev-2",
		"stackNamePrefix": "Acme-Data", "logRetentionDays": "3653", "retainData": true,
		"infrequentAccessAfterDays": "30", "archiveAfterDays": 60.0, "expireAfterDays": "61",
	} {
		ctx[k] = v
	}
	c, err := config.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.StackName() != "Acme-Data-dev-2-Pipeline" || *c.ShardCount != 500 || *c.RetentionHours != 8760 || !c.Retain() {
		t.Errorf("settings not read as given: %+v", c)
	}
}

// The real app turns an invalid setting into a failed synth: exit status 1 and
// the one-line message on stderr, not a Go panic.
func TestAppFailsSynthWithOneLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), `CDK_CONTEXT_JSON={"shardCount":"0"}`, "CDK_OUTDIR="+dir)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v\n%s", err, out)
	}
	want := "tributary: invalid configuration: shardCount: invalid value 0; allowed: an integer from 1 to 500\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(string(out), "goroutine") || strings.Contains(string(out), "panic") {
		t.Errorf("synth failed with a panic instead of a message:\n%s", out)
	}
}

// The README's configuration table names every setting the app reads.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		for _, name := range strings.Split(cells[1], ",") {
			table[strings.Trim(strings.TrimSpace(name), "`")] = true
		}
	}
	for _, s := range config.Settings {
		if !table[s] {
			t.Errorf("README's configuration table lacks %s", s)
		}
	}
}
