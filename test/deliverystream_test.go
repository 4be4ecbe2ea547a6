package test

import (
	"fmt"
	"strings"
	"testing"
)

const hourFolders = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"

func TestDeliveryStreamReadsStreamWritesBucket(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	bucketID := s.dataBucket(t)
	_, ds := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	p := props(ds)

	if p["DeliveryStreamType"] != "KinesisStreamAsSource" {
		t.Errorf("DeliveryStreamType = %v", p["DeliveryStreamType"])
	}
	if got := joined(get(p, "KinesisStreamSourceConfiguration", "KinesisStreamARN")); got != "${"+streamID+".Arn}" {
		t.Errorf("source is %s, want the pipeline's stream", got)
	}
	dest := get(p, "ExtendedS3DestinationConfiguration")
	if got := joined(get(dest, "BucketARN")); got != "${"+bucketID+".Arn}" {
		t.Errorf("destination is %s, want the raw-data bucket", got)
	}
	checks := map[string]any{
		"Prefix":                           "raw-data/" + hourFolders,
		"ErrorOutputPrefix":                "errors/!{firehose:error-output-type}/" + hourFolders,
		"BufferingHints.IntervalInSeconds": 60.0,
		"BufferingHints.SizeInMBs":         5.0,
		"CompressionFormat":                "UNCOMPRESSED",
		"CloudWatchLoggingOptions.Enabled": true,
	}
	for path, want := range checks {
		var keys []any
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := get(dest, keys...); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	// Prefixes are evaluated in UTC unless a time zone is set: none may be.
	if tz := get(dest, "CustomTimeZone"); tz != nil {
		t.Errorf("CustomTimeZone = %v; the hour folders must be UTC", tz)
	}
	// With a Kinesis source the stream and the bucket carry the encryption.
	if enc := p["DeliveryStreamEncryptionConfigurationInput"]; enc != nil {
		t.Errorf("unexpected delivery stream SSE with a Kinesis source: %v", enc)
	}
	if m := s.json["Mappings"]; m != nil {
		t.Errorf("unused mappings left in the template (the validator flags them): %v", m)
	}
	if p["DeliveryStreamName"] != nil {
		t.Errorf("DeliveryStreamName is hard-coded (%v); a second stage would collide", p["DeliveryStreamName"])
	}
}

func TestDeliveryStreamLogsErrorsToRetainedLogGroup(t *testing.T) {
	s := synth(t, nil)
	_, ds := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	group := get(ds, "Properties", "ExtendedS3DestinationConfiguration", "CloudWatchLoggingOptions", "LogGroupName", "Ref")
	lg, ok := s.resources("AWS::Logs::LogGroup")[group.(string)]
	if !ok {
		t.Fatalf("Firehose logs to %v, which is not a log group of this stack", group)
	}
	if get(lg, "Properties", "RetentionInDays") != 30.0 {
		t.Errorf("delivery error logs RetentionInDays = %v, want 30", get(lg, "Properties", "RetentionInDays"))
	}
}

func TestDeliveryStreamCustomSettings(t *testing.T) {
	s := synth(t, customSettings)
	_, ds := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	dest := get(ds, "Properties", "ExtendedS3DestinationConfiguration")
	for path, want := range map[string]any{
		"Prefix":            "events/json/" + hourFolders,
		"ErrorOutputPrefix": "failed/!{firehose:error-output-type}/" + hourFolders,
		"CompressionFormat": "GZIP",
	} {
		if got := get(dest, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := get(dest, "BufferingHints"); get(got, "IntervalInSeconds") != 300.0 || get(got, "SizeInMBs") != 64.0 {
		t.Errorf("BufferingHints = %v, want 300 s and 64 MiB", got)
	}
	for id, lg := range s.resources("AWS::Logs::LogGroup") {
		if get(lg, "Properties", "RetentionInDays") != 7.0 {
			t.Errorf("log group %s RetentionInDays = %v, want 7", id, get(lg, "Properties", "RetentionInDays"))
		}
	}
}

// Firehose gets one role with only the documented actions: read this stream,
// write objects to this bucket, log to its log group. Nothing to delete, tag
// or lock objects.
func TestDeliveryStreamRoleIsLeastPrivilege(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	bucketID := s.dataBucket(t)
	_, ds := s.only(t, "AWS::KinesisFirehose::DeliveryStream")
	p := props(ds)
	roleID, _ := get(p, "KinesisStreamSourceConfiguration", "RoleARN", "Fn::GetAtt", 0).(string)
	if dest, _ := get(p, "ExtendedS3DestinationConfiguration", "RoleARN", "Fn::GetAtt", 0).(string); dest != roleID {
		t.Errorf("source role %s and destination role %s differ", roleID, dest)
	}
	role := s.resources("AWS::IAM::Role")[roleID]
	trust := get(role, "Properties", "AssumeRolePolicyDocument", "Statement").([]any)
	if len(trust) != 1 || get(trust[0], "Principal", "Service") != "firehose.amazonaws.com" ||
		joined(get(trust[0], "Condition", "StringEquals", "sts:ExternalId")) != "${AWS::AccountId}" {
		t.Errorf("Firehose role trust = %v, want firehose.amazonaws.com with sts:ExternalId = this account", trust)
	}
	logGroup := joined(get(p, "ExtendedS3DestinationConfiguration", "CloudWatchLoggingOptions", "LogGroupName"))
	want := map[string]string{ // resource -> actions
		"${" + streamID + ".Arn}":                  "kinesis:DescribeStream,kinesis:GetRecords,kinesis:GetShardIterator,kinesis:ListShards",
		"${" + bucketID + ".Arn}":                  "s3:GetBucketLocation,s3:ListBucket,s3:ListBucketMultipartUploads",
		"${" + bucketID + ".Arn}/*":                "s3:AbortMultipartUpload,s3:GetObject,s3:PutObject",
		strings.Replace(logGroup, "}", ".Arn}", 1): "logs:PutLogEvents",
	}
	got := map[string]string{}
	for _, st := range s.policyStatements(roleID) {
		if st["Effect"] != "Allow" || st["Condition"] != nil {
			t.Errorf("unexpected statement %v", st)
		}
		for _, r := range strs(st["Resource"]) {
			got[r] = strings.Join(strs(st["Action"]), ",")
		}
	}
	if len(got) != len(want) {
		t.Errorf("Firehose role grants on %d resources, want %d: %v", len(got), len(want), got)
	}
	for r, actions := range want {
		if got[r] != actions {
			t.Errorf("on %s Firehose may %q, want %q", r, got[r], actions)
		}
	}
	// Firehose checks its access on creation: the policy must be in place first.
	var policyID string
	for id, pol := range s.resources("AWS::IAM::Policy") {
		if get(pol, "Properties", "Roles", 0, "Ref") == roleID {
			policyID = id
		}
	}
	deps := strs(ds["DependsOn"])
	if policyID == "" || !strings.Contains(strings.Join(deps, ","), policyID) {
		t.Errorf("delivery stream DependsOn %v, want the role's policy %s", deps, policyID)
	}
	for id, r := range s.resources("AWS::IAM::Role") {
		if id != roleID && strings.Contains(fmt.Sprint(get(r, "Properties", "AssumeRolePolicyDocument")), "firehose") {
			t.Errorf("a second role %s can be assumed by Firehose", id)
		}
	}
}
