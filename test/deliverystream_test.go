package test

import (
	"strings"
	"testing"
)

const hourFolders = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"

func TestDeliveryStreamReadsStreamWritesBucket(t *testing.T) {
	s := synth(t, nil)
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	bucketID, _ := s.only(t, "AWS::S3::Bucket")
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
