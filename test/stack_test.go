package test

import (
	"encoding/json"
	"strings"
	"testing"
)

// customSettings changes every setting, as `cdk synth -c name=value` would:
// a development stage (not retained) with a customer managed key.
var customSettings = map[string]any{
	"stackNamePrefix": "Acme", "stageName": "dev",
	"streamMode": "ON_DEMAND", "retentionHours": "168", "streamEncryption": "CUSTOMER_MANAGED",
	"dataPrefix": "events/json/", "errorPrefix": "failed/", "bufferingSeconds": "300", "bufferingMiB": "64",
	"compression": "GZIP", "infrequentAccessAfterDays": "30", "archiveAfterDays": "90", "expireAfterDays": "400",
	"apiCloudWatchRole": "EXISTING", "logRetentionDays": "7",
	"producerInstanceType": "t3.micro", "producerSource": "file", "producerFiles": "/var/log/app/events.log,/var/log/app/more.log",
	"producerRate": "5", "producerBatchSize": "100",
	"producerVpcId": "vpc-0123456789abcdef0", "producerSubnetId": "subnet-0123456789abcdef0",
	"alarmEmail": "ops@example.com", "alarmApi5xx": "10", "alarmWriteThrottled": "50", "alarmIteratorAgeMinutes": "30",
	"alarmFreshnessMarginSeconds": "600", "alarmDeliverySuccessPercent": "99",
}

func TestStackNamesFollowPrefixAndStage(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{{nil, "Tributary-PROD-Pipeline"}, {customSettings, "Acme-dev-Pipeline"}} {
		s := synth(t, c.settings)
		if got := *s.stack.StackName(); got != c.want {
			t.Errorf("stack name = %s, want %s", got, c.want)
		}
		if got := *s.stack.Node().Id(); got != c.want {
			t.Errorf("construct id = %s, want %s (so `cdk deploy %s` selects it)", got, c.want, c.want)
		}
	}
	_, stage := synth(t, customSettings).only(t, "AWS::ApiGateway::Stage")
	if get(stage, "Properties", "StageName") != "dev" {
		t.Errorf("custom StageName = %v", get(stage, "Properties", "StageName"))
	}
}

func TestStackOutputs(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	bucketID := s.dataBucket(t)
	dsID, _ := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	apiID, _ := s.only(t, "AWS::ApiGateway::RestApi")
	stageID, _ := s.only(t, "AWS::ApiGateway::Stage")
	url := "https://${" + apiID + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${" + stageID + "}/v1"

	outputs := s.json["Outputs"].(map[string]any)
	want := map[string]string{
		"IngestUrl":          url,
		"IngestBatchUrl":     url + "/batch",
		"StreamName":         "${" + streamID + "}",
		"DeliveryStreamName": "${" + dsID + "}",
		"BucketName":         "${" + bucketID + "}",
		"DataPrefix":         "raw-data/",
	}
	for name, value := range want {
		if got := joined(get(outputs, name, "Value")); got != value {
			t.Errorf("output %s = %s, want %s", name, got, value)
		}
	}
	example := joined(get(outputs, "ExampleRequest", "Value"))
	for _, part := range []string{
		`curl -sS --fail-with-body --aws-sigv4 "aws:amz:${AWS::Region}:execute-api"`,
		`--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"`,
		`-H "Content-Type: application/json"`,
		`-d '{"value":"30","type":"Tip 3"}' ` + url,
	} {
		if !strings.Contains(example, part) {
			t.Errorf("example request lacks %q:\n%s", part, example)
		}
	}
	ours := 0
	for name := range outputs {
		if !strings.HasPrefix(name, "PublishOutputRef") { // CDK's, for the producer stack's references
			ours++
		}
	}
	if ours != len(want)+1 {
		t.Errorf("want exactly %d outputs, got %d: %v", len(want)+1, ours, outputs)
	}
}

// A second stage deploys beside the first: nothing has a fixed physical name
// (the execution log group's name is API Gateway's, made of the API's id).
func TestNoHardCodedPhysicalNames(t *testing.T) {
	named := map[string]string{
		"AWS::S3::Bucket": "BucketName", "AWS::Kinesis::Stream": "Name",
		"AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName", "AWS::Logs::LogGroup": "LogGroupName",
		"AWS::IAM::Role": "RoleName", "AWS::IAM::Policy": "", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
	}
	for _, settings := range []map[string]any{nil, customSettings} {
		for stack, tpl := range synth(t, settings).templates() {
			for typ, prop := range named {
				for id, r := range resourcesOf(tpl, typ) {
					if name := get(r, "Properties", prop); prop != "" && name != nil && !strings.Contains(joined(name), "${") {
						t.Errorf("%s: %s %s has a fixed %s %v", stack, typ, id, prop, get(r, "Properties", prop))
					}
				}
			}
		}
	}
	a, b := synth(t, nil), synth(t, customSettings)
	_, apiA := a.only(t, "AWS::ApiGateway::RestApi")
	_, apiB := b.only(t, "AWS::ApiGateway::RestApi")
	if get(apiA, "Properties", "Name") == get(apiB, "Properties", "Name") {
		t.Errorf("two stages share the API name %v", get(apiA, "Properties", "Name"))
	}
}

// No statement anywhere grants a wildcard action: every action is named.
func TestNoWildcardActions(t *testing.T) {
	allowed := map[string]bool{ // suppressions pinned in TestSuppressionsArePinnedToTheirResources
		"arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": true,
		"arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore":                      true,
	}
	for _, settings := range []map[string]any{nil, customSettings} {
		for stack, tpl := range synth(t, settings).templates() {
			for id, p := range resourcesOf(tpl, "AWS::IAM::Policy") {
				for _, st := range get(p, "Properties", "PolicyDocument", "Statement").([]any) {
					for _, a := range strs(get(st, "Action")) {
						if strings.Contains(a, "*") {
							t.Errorf("%s: policy %s allows %s", stack, id, a)
						}
					}
				}
			}
			for id, r := range resourcesOf(tpl, "AWS::IAM::Role") {
				for _, arn := range strs(get(r, "Properties", "ManagedPolicyArns")) {
					if !allowed[arn] {
						t.Errorf("%s: role %s has managed policy %v", stack, id, arn)
					}
				}
				for _, p := range strs(get(r, "Properties", "Policies")) {
					if strings.Contains(p, "*\"") || strings.Contains(p, `"*"`) {
						t.Errorf("%s: role %s has an inline wildcard: %s", stack, id, p)
					}
				}
			}
		}
	}
}

// Synthesis leaves no error or warning annotation, whatever its source.
func TestSynthesizesWithoutErrorsOrWarnings(t *testing.T) {
	for _, settings := range []map[string]any{nil, customSettings} {
		for _, m := range synth(t, settings).messages {
			if m.serious() {
				t.Errorf("%s at %s: %s", m.level, m.path, m.text)
			}
		}
	}
}

// The same code and settings synthesize the same templates: otherwise every
// cdk diff shows changes and every deploy replaces resources (an API
// deployment's logical id, for one, hashes what the API holds, in order).
func TestSynthesisIsDeterministic(t *testing.T) {
	first, second := synth(t, nil).templates(), synthFresh(t, nil).templates()
	for name, tpl := range first {
		a, _ := json.Marshal(tpl)
		b, _ := json.Marshal(second[name])
		if string(a) != string(b) {
			t.Errorf("%s differs between two synths of the same code", name)
		}
	}
}
