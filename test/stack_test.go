package test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// customSettings changes every setting, as `cdk synth -c name=value` would.
var customSettings = map[string]any{
	"stackNamePrefix": "Acme", "stageName": "dev",
	"streamMode": "ON_DEMAND", "retentionHours": "168",
	"dataPrefix": "events/json/", "errorPrefix": "failed/", "bufferingSeconds": "300", "bufferingMiB": "64",
	"compression": "GZIP", "logRetentionDays": "7",
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
	bucketID, _ := s.only(t, "AWS::S3::Bucket")
	dsID, _ := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	apiID, _ := s.only(t, "AWS::ApiGateway::RestApi")
	stageID, _ := s.only(t, "AWS::ApiGateway::Stage")
	url := "https://${" + apiID + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${" + stageID + "}/v1"

	outputs := s.json["Outputs"].(map[string]any)
	want := map[string]string{
		"IngestUrl":          url,
		"StreamName":         "${" + streamID + "}",
		"DeliveryStreamName": "${" + dsID + "}",
		"BucketName":         "${" + bucketID + "}",
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
	if len(outputs) != 5 {
		t.Errorf("want exactly 5 outputs, got %d: %v", len(outputs), outputs)
	}
}

// A second stage deploys beside the first: nothing has a fixed physical name.
func TestNoHardCodedPhysicalNames(t *testing.T) {
	named := map[string]string{
		"AWS::S3::Bucket": "BucketName", "AWS::Kinesis::Stream": "Name",
		"AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName", "AWS::Logs::LogGroup": "LogGroupName",
		"AWS::IAM::Role": "RoleName", "AWS::IAM::Policy": "", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
	}
	for _, settings := range []map[string]any{nil, customSettings} {
		s := synth(t, settings)
		for typ, prop := range named {
			for id, r := range s.resources(typ) {
				if prop != "" && get(r, "Properties", prop) != nil {
					t.Errorf("%s %s has a fixed %s %v", typ, id, prop, get(r, "Properties", prop))
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
	for _, settings := range []map[string]any{nil, customSettings} {
		s := synth(t, settings)
		for id, p := range s.resources("AWS::IAM::Policy") {
			for _, st := range get(p, "Properties", "PolicyDocument", "Statement").([]any) {
				for _, a := range strs(get(st, "Action")) {
					if strings.Contains(a, "*") {
						t.Errorf("policy %s allows %s", id, a)
					}
				}
			}
		}
		for id, r := range s.resources("AWS::IAM::Role") {
			if p := get(r, "Properties", "ManagedPolicyArns"); p != nil {
				t.Errorf("role %s has managed policies %v", id, p)
			}
		}
	}
}

// The stack synthesizes into a cloud assembly without errors.
func TestSynthesizesWithoutErrorAnnotations(t *testing.T) {
	s := synth(t, nil)
	assembly := awscdk.Stage_Of(s.stack.Stack).Synth(nil)
	for _, msg := range *assembly.GetStackByName(s.stack.StackName()).Messages() {
		if msg.Level == "error" {
			t.Errorf("synth error at %s: %v", *msg.Id, msg.Entry.Data)
		}
	}
}
