package test

import (
	"reflect"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestStreamDefaults(t *testing.T) {
	s := synth(t, nil)
	expect(t, "provisioned, 1 shard, 24 h, aws/kinesis encryption", func() {
		s.template.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), map[string]any{
			"ShardCount":           1,
			"RetentionPeriodHours": 24,
			"StreamModeDetails":    map[string]any{"StreamMode": "PROVISIONED"},
			"StreamEncryption":     map[string]any{"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
			"Name":                 assertions.Match_Absent(),
		})
	})
	_, r := s.only(t, "AWS::Kinesis::Stream")
	if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("stream must be retained with the stack's deletion, got %v/%v", r["DeletionPolicy"], r["UpdateReplacePolicy"])
	}
}

func TestStreamOnDemandAndRetention(t *testing.T) {
	s := synth(t, customSettings)
	_, r := s.only(t, "AWS::Kinesis::Stream")
	p := props(r)
	if !reflect.DeepEqual(p["StreamModeDetails"], map[string]any{"StreamMode": "ON_DEMAND"}) {
		t.Errorf("StreamModeDetails = %v", p["StreamModeDetails"])
	}
	if _, ok := p["ShardCount"]; ok {
		t.Errorf("an on-demand stream must not set ShardCount, got %v", p["ShardCount"])
	}
	if p["RetentionPeriodHours"] != 168.0 {
		t.Errorf("RetentionPeriodHours = %v, want 168", p["RetentionPeriodHours"])
	}
	if get(p, "StreamEncryption", "EncryptionType") != "KMS" {
		t.Errorf("stream must stay encrypted in every configuration: %v", p["StreamEncryption"])
	}
}
