package stream_test

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/stream"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// synth puts one stream on a stack of its own and returns its template.
func synth(props *stream.Props) (*stream.Stream, assertions.Template) {
	s := stream.New(cdktest.NewStack(), "Events", props)
	return s, assertions.Template_FromStack(s.Stream.Stack(), nil)
}

// The zero value is one provisioned shard for 24 hours, encrypted with
// aws/kinesis, kept when the stack is deleted, with a generated name.
func TestDefaults(t *testing.T) {
	s, tpl := synth(nil)
	cdktest.Expect(t, "provisioned, 1 shard, 24 h, aws/kinesis, no fixed name", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), map[string]any{
			"ShardCount":           1,
			"RetentionPeriodHours": 24,
			"StreamModeDetails":    map[string]any{"StreamMode": "PROVISIONED"},
			"StreamEncryption":     map[string]any{"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
			"Name":                 assertions.Match_Absent(),
		})
	})
	cdktest.Expect(t, "retained with the stack", func() {
		tpl.HasResource(jsii.String("AWS::Kinesis::Stream"), map[string]any{"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
	})
	cdktest.Expect(t, "no key of its own", func() { tpl.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(0)) })
	if s.Key != nil {
		t.Error("Key is set without CUSTOMER_MANAGED")
	}
	if got := (stream.Props{}).WriteRecordsPerSecond(); got != 1000 {
		t.Errorf("WriteRecordsPerSecond = %d, want 1000 (one shard)", got)
	}
}

// On demand: no shard count, the given retention, still encrypted; a
// development stage deletes the stream.
func TestOnDemandRetentionAndDestroy(t *testing.T) {
	props := &stream.Props{Mode: stream.OnDemand, RetentionHours: ref(168), DestroyWithStack: true}
	_, tpl := synth(props)
	cdktest.Expect(t, "on demand, 168 h, encrypted, no ShardCount", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), map[string]any{
			"StreamModeDetails":    map[string]any{"StreamMode": "ON_DEMAND"},
			"RetentionPeriodHours": 168,
			"StreamEncryption":     map[string]any{"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
			"ShardCount":           assertions.Match_Absent(),
		})
	})
	cdktest.Expect(t, "deleted with the stack", func() {
		tpl.HasResource(jsii.String("AWS::Kinesis::Stream"), map[string]any{"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})
	})
	if got := props.WriteRecordsPerSecond(); got != stream.OnDemandInitialRecords {
		t.Errorf("WriteRecordsPerSecond = %d, want %d", got, stream.OnDemandInitialRecords)
	}
	if got := (stream.Props{ShardCount: ref(3)}).WriteRecordsPerSecond(); got != 3000 {
		t.Errorf("WriteRecordsPerSecond(3 shards) = %d, want 3000", got)
	}
}

// A customer managed key is the stream's own, rotates yearly, follows the
// stream's removal policy, and is the one place nag's KDS3 is suppressed.
func TestCustomerManagedKey(t *testing.T) {
	s, tpl := synth(&stream.Props{Encryption: stream.CustomerManagedKey})
	keyID, key := cdktest.Only(t, tpl, "AWS::KMS::Key")
	if key["EnableKeyRotation"] != true {
		t.Errorf("EnableKeyRotation = %v, want true", key["EnableKeyRotation"])
	}
	cdktest.Expect(t, "stream encrypted with its own key", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Kinesis::Stream"), map[string]any{
			"StreamEncryption": map[string]any{"EncryptionType": "KMS", "KeyId": map[string]any{"Fn::GetAtt": []any{keyID, "Arn"}}},
		})
	})
	cdktest.Expect(t, "key retained with the stack", func() {
		tpl.HasResource(jsii.String("AWS::KMS::Key"), map[string]any{"DeletionPolicy": "Retain"})
	})
	cdktest.Expect(t, "KDS3 suppressed on the stream, with the reason", func() {
		tpl.HasResource(jsii.String("AWS::Kinesis::Stream"), map[string]any{"Metadata": map[string]any{
			"cdk_nag": map[string]any{"rules_to_suppress": []any{assertions.Match_ObjectLike(&map[string]any{"id": "AwsSolutions-KDS3"})}},
		}})
	})
	if s.Key == nil {
		t.Error("Key is nil with CUSTOMER_MANAGED")
	}
}

// Invalid props fail before anything is created, naming the setting, the
// value and what is allowed.
func TestInvalidProps(t *testing.T) {
	for _, c := range []struct {
		props stream.Props
		want  string
	}{
		{stream.Props{ShardCount: ref(0)}, "shardCount: invalid value 0; allowed: an integer from 1 to 500"},
		{stream.Props{ShardCount: ref(501)}, "shardCount: invalid value 501; allowed: an integer from 1 to 500"},
		{stream.Props{Mode: stream.OnDemand, ShardCount: ref(2)}, "shardCount: invalid value 2; allowed: unset when streamMode is ON_DEMAND (Kinesis scales the shards)"},
		{stream.Props{Mode: "FAST"}, `streamMode: invalid value "FAST"; allowed: one of ["PROVISIONED" "ON_DEMAND"]`},
		{stream.Props{RetentionHours: ref(23)}, "retentionHours: invalid value 23; allowed: an integer from 24 to 8760"},
		{stream.Props{RetentionHours: ref(8761)}, "retentionHours: invalid value 8761; allowed: an integer from 24 to 8760"},
		{stream.Props{Encryption: "SSE"}, `streamEncryption: invalid value "SSE"; allowed: one of ["AWS_MANAGED" "CUSTOMER_MANAGED"]`},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
		cdktest.Panics(t, c.want, func() { stream.New(cdktest.NewStack(), "Events", &c.props) })
	}
}
