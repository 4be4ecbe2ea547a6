package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tributary/tributary/config"
)

// A production stage keeps its data when the stack is deleted; a development
// stage deletes everything, emptying the buckets first.
func TestProductionRetainsDataDevelopmentRemovesIt(t *testing.T) {
	prod, dev := synth(t, nil), synth(t, customSettings)
	for _, c := range []struct {
		s      *synthesized
		policy string
		empty  int // bucket-emptying custom resources
	}{{prod, "Retain", 0}, {dev, "Delete", 2}} {
		name := *c.s.stack.StackName()
		for _, typ := range []string{"AWS::S3::Bucket", "AWS::Kinesis::Stream", "AWS::KMS::Key", "AWS::Logs::LogGroup"} {
			for id, r := range c.s.resources(typ) {
				if r["DeletionPolicy"] != c.policy {
					t.Errorf("%s: %s %s DeletionPolicy = %v, want %s", name, typ, id, r["DeletionPolicy"], c.policy)
				}
			}
		}
		emptiers := c.s.resources("Custom::S3AutoDeleteObjects")
		if len(emptiers) != c.empty {
			t.Errorf("%s: %d bucket-emptying resources, want %d", name, len(emptiers), c.empty)
		}
		for id, e := range emptiers {
			bucket, _ := get(e, "Properties", "BucketName", "Ref").(string)
			if _, ok := c.s.resources("AWS::S3::Bucket")[bucket]; !ok {
				t.Errorf("%s: emptier %s empties %v, not a bucket of this stack", name, id, bucket)
			}
		}
	}
}

func TestStageDecidesRetention(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		stage  string
		retain *bool
		want   bool
	}{
		{"", nil, true}, {"PROD", nil, true}, {"prod-eu", nil, true}, {"Production", nil, true},
		{"dev", nil, false}, {"staging", nil, false}, {"dev", &yes, true}, {"PROD", &no, false},
	} {
		if got := (config.Config{StageName: c.stage, RetainData: c.retain}).Retain(); got != c.want {
			t.Errorf("stage %q retainData %v: Retain() = %v, want %v", c.stage, c.retain, got, c.want)
		}
	}
}

func TestDataBucketLogsAccessToSeparateBucket(t *testing.T) {
	s := synth(t, nil)
	data := s.dataBucket(t)
	logBucket := s.idOf(t, "AWS::S3::Bucket", func(r map[string]any) bool { return get(r, "Properties", "VersioningConfiguration") == nil })
	lc := get(s.resources("AWS::S3::Bucket")[data], "Properties", "LoggingConfiguration")
	if get(lc, "DestinationBucketName", "Ref") != logBucket || get(lc, "LogFilePrefix") != "raw-data-bucket/" {
		t.Errorf("data bucket LoggingConfiguration = %v, want the log bucket under raw-data-bucket/", lc)
	}
	p := props(s.resources("AWS::S3::Bucket")[logBucket])
	if get(p, "BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault", "SSEAlgorithm") != "AES256" {
		t.Errorf("log bucket is not encrypted: %v", p["BucketEncryption"])
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if get(p, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("log bucket %s is not set", k)
		}
	}
	found := false
	for _, r := range get(p, "LifecycleConfiguration", "Rules").([]any) {
		if get(r, "Id") == "ExpireAccessLogs" && get(r, "ExpirationInDays") == 30.0 {
			found = true
		}
	}
	if !found {
		t.Errorf("access logs do not expire after logRetentionDays (30): %v", p["LifecycleConfiguration"])
	}
}

func TestDataLifecycleTransitionsAndExpiry(t *testing.T) {
	s := synth(t, customSettings)
	var rule any
	for _, r := range get(s.resources("AWS::S3::Bucket")[s.dataBucket(t)], "Properties", "LifecycleConfiguration", "Rules").([]any) {
		if get(r, "Id") == "Data" {
			rule = r
		}
	}
	want := "[STANDARD_IA after 30 GLACIER_IR after 90] expire 400 noncurrent 30"
	got := fmt.Sprintf("[%s after %v %s after %v] expire %v noncurrent %v",
		get(rule, "Transitions", 0, "StorageClass"), get(rule, "Transitions", 0, "TransitionInDays"),
		get(rule, "Transitions", 1, "StorageClass"), get(rule, "Transitions", 1, "TransitionInDays"),
		get(rule, "ExpirationInDays"), get(rule, "NoncurrentVersionExpiration", "NoncurrentDays"))
	if got != want {
		t.Errorf("data lifecycle = %s, want %s", got, want)
	}
}

// By default the stream uses aws/kinesis and no principal needs KMS rights; with
// a customer managed key, the key rotates and each writer and reader gets
// exactly the KMS action it needs on that key.
func TestStreamEncryptionKeys(t *testing.T) {
	def := synth(t, nil)
	if n := len(def.resources("AWS::KMS::Key")); n != 0 {
		t.Errorf("default stack creates %d KMS keys, want 0 (aws/kinesis)", n)
	}
	for id, p := range def.resources("AWS::IAM::Policy") {
		if strings.Contains(fmt.Sprint(get(p, "Properties", "PolicyDocument")), "kms:") {
			t.Errorf("default policy %s grants KMS actions", id)
		}
	}

	s := synth(t, customSettings)
	keyID, key := s.only(t, "AWS::KMS::Key")
	if get(key, "Properties", "EnableKeyRotation") != true {
		t.Error("customer managed key does not rotate")
	}
	_, stream := s.only(t, "AWS::Kinesis::Stream")
	if got := joined(get(stream, "Properties", "StreamEncryption", "KeyId")); got != "${"+keyID+".Arn}" {
		t.Errorf("stream KeyId = %s, want the stack's key", got)
	}
	kms := map[string]string{} // KMS action -> roles' principals
	for _, p := range s.resources("AWS::IAM::Policy") {
		for _, st := range get(p, "Properties", "PolicyDocument", "Statement").([]any) {
			for _, a := range strs(get(st, "Action")) {
				if strings.HasPrefix(a, "kms:") {
					if r := strs(get(st, "Resource")); len(r) != 1 || r[0] != "${"+keyID+".Arn}" {
						t.Errorf("%s granted on %v, want the stream's key only", a, r)
					}
					role := get(p, "Properties", "Roles", 0, "Ref").(string)
					kms[a] = fmt.Sprint(get(s.resources("AWS::IAM::Role")[role], "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal", "Service"))
				}
			}
		}
	}
	want := map[string]string{"kms:GenerateDataKey": "apigateway.amazonaws.com", "kms:Decrypt": "firehose.amazonaws.com"}
	if fmt.Sprint(kms) != fmt.Sprint(want) {
		t.Errorf("KMS grants = %v, want %v", kms, want)
	}
}

// Execution logging at ERROR, never with payloads, into a log group with a
// retention; the account's CloudWatch role is created (CREATE) or left as it is (EXISTING).
func TestAPIExecutionLoggingAndAccountRole(t *testing.T) {
	s := synth(t, nil)
	apiID, _ := s.only(t, "AWS::ApiGateway::RestApi")
	stageID, stage := s.only(t, "AWS::ApiGateway::Stage")
	ms := get(stage, "Properties", "MethodSettings", 0)
	if got := fmt.Sprint(get(ms, "HttpMethod"), get(ms, "ResourcePath"), get(ms, "LoggingLevel"), get(ms, "DataTraceEnabled")); got != "*/*ERRORfalse" {
		t.Errorf("method settings = %v, want */* at ERROR without data trace", ms)
	}
	execLogs := s.idOf(t, "AWS::Logs::LogGroup", func(r map[string]any) bool {
		return joined(get(r, "Properties", "LogGroupName")) == "API-Gateway-Execution-Logs_${"+apiID+"}/PROD"
	})
	_, account := s.only(t, "AWS::ApiGateway::Account")
	role := get(account, "Properties", "CloudWatchRoleArn", "Fn::GetAtt", 0).(string)
	if s.resources("AWS::IAM::Role")[role]["DeletionPolicy"] != "Retain" {
		t.Error("the account logging role must outlive the stack, other APIs may rely on it")
	}
	accountID, _ := s.only(t, "AWS::ApiGateway::Account")
	deps := strings.Join(strs(s.resources("AWS::ApiGateway::Stage")[stageID]["DependsOn"]), ",")
	for _, d := range []string{execLogs, accountID} {
		if !strings.Contains(deps, d) {
			t.Errorf("stage DependsOn %s, want %s first", deps, d)
		}
	}

	existing := synth(t, customSettings)
	if n := len(existing.resources("AWS::ApiGateway::Account")); n != 0 {
		t.Errorf("apiCloudWatchRole=EXISTING still sets the account role (%d resources)", n)
	}
	for id, r := range existing.resources("AWS::IAM::Role") {
		if strings.Contains(fmt.Sprint(r), "AmazonAPIGatewayPushToCloudWatchLogs") {
			t.Errorf("apiCloudWatchRole=EXISTING still creates role %s", id)
		}
	}
}
