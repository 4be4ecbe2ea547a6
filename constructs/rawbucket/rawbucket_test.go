package rawbucket_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/rawbucket"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func ref[T any](v T) *T { return &v }

// synthesized is one configuration's buckets on a stack of their own.
type synthesized struct {
	tpl        assertions.Template
	data, logs string // logical ids of RawBucket.Bucket and RawBucket.AccessLogs
}

// once builds and synthesizes props' buckets on first use, then shares them.
func once(props *rawbucket.Props) func() *synthesized {
	var s *synthesized
	return func() *synthesized {
		if s == nil {
			stack := cdktest.NewStack()
			rb := rawbucket.New(stack, "RawData", props)
			s = &synthesized{tpl: assertions.Template_FromStack(stack, nil),
				data: nag.LogicalID(rb.Bucket), logs: nag.LogicalID(rb.AccessLogs)}
		}
		return s
	}
}

var (
	// retained is the zero value: a production stage.
	retained = once(nil)
	// destroyed is a development stage that sets every lifecycle setting.
	destroyed = once(&rawbucket.Props{
		DestroyWithStack:          true,
		InfrequentAccessAfterDays: ref(30),
		ArchiveAfterDays:          ref(90),
		ExpireAfterDays:           ref(400),
		LogRetentionDays:          ref(7),
	})
)

// resourceIs matches the resource with logical id against pattern
// (Match_ObjectLike on the whole resource: Properties, DeletionPolicy, ...),
// for the checks that must hold for one resource among several of its type.
func resourceIs(t *testing.T, what string, tpl assertions.Template, id string, pattern map[string]any) {
	t.Helper()
	r, ok := cdktest.JSON(tpl)["Resources"].(map[string]any)[id]
	if !ok {
		t.Errorf("%s: no resource %s", what, id)
		return
	}
	if res := assertions.Match_ObjectLike(&pattern).Test(r); !*res.IsSuccess() {
		t.Errorf("%s: %s", what, *res.RenderMismatch())
	}
}

func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

func arnWith(id, suffix string) map[string]any {
	return map[string]any{"Fn::Join": []any{"", []any{getAtt(id, "Arn"), suffix}}}
}

// secure is what both buckets are: SSE-S3 (S3 cannot deliver access logs to
// an SSE-KMS bucket), all public access blocked, ACLs disabled, and a
// generated name so that several stages fit one account.
func secure() map[string]any {
	return map[string]any{
		"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
			map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
		}},
		"PublicAccessBlockConfiguration": map[string]any{
			"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
		},
		"OwnershipControls": map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}},
		"BucketName":        assertions.Match_Absent(),
	}
}

// with is base plus more, without changing base.
func with(base map[string]any, more map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// abortUploads is the rule both buckets start with: parts of failed uploads
// go after 7 days.
func abortUploads() any {
	return assertions.Match_ObjectEquals(&map[string]any{
		"Id": "AbortIncompleteMultipartUploads", "Status": "Enabled",
		"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 7},
	})
}

// The zero value: the data bucket is private, encrypted, versioned, with a
// generated name; nothing moves or expires, deleted versions stay
// recoverable 30 days, failed uploads are cleaned up after 7 days.
func TestDataBucketDefaults(t *testing.T) {
	s := retained()
	cdktest.Expect(t, "two buckets: the data and its access logs", func() {
		s.tpl.ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(2))
	})
	resourceIs(t, "data bucket", s.tpl, s.data, map[string]any{"Properties": with(secure(), map[string]any{
		"VersioningConfiguration": map[string]any{"Status": "Enabled"},
		"LifecycleConfiguration": map[string]any{"Rules": []any{abortUploads(), map[string]any{
			"Id": "Data", "Status": "Enabled", "NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": 30},
			"Transitions": assertions.Match_Absent(), "ExpirationInDays": assertions.Match_Absent(),
		}}},
	})})
}

// The data bucket logs every access to a second bucket, under
// raw-data-bucket/; that bucket is as private and encrypted, does not log
// itself (it would loop), and expires the logs after logRetentionDays.
func TestAccessLogsGoToSeparateBucket(t *testing.T) {
	for _, c := range []struct {
		name string
		s    *synthesized
		days int
	}{{"default", retained(), 30}, {"logRetentionDays 7", destroyed(), 7}} {
		resourceIs(t, c.name+": data bucket logging", c.s.tpl, c.s.data, map[string]any{"Properties": map[string]any{
			"LoggingConfiguration": map[string]any{"DestinationBucketName": map[string]any{"Ref": c.s.logs}, "LogFilePrefix": "raw-data-bucket/"},
		}})
		resourceIs(t, c.name+": access-log bucket", c.s.tpl, c.s.logs, map[string]any{"Properties": with(secure(), map[string]any{
			"LoggingConfiguration": assertions.Match_Absent(),
			"LifecycleConfiguration": map[string]any{"Rules": []any{abortUploads(), assertions.Match_ObjectEquals(&map[string]any{
				"Id": "ExpireAccessLogs", "Status": "Enabled", "ExpirationInDays": c.days,
			})}},
		})})
	}
}

// Objects move to Standard-IA and then Glacier Instant Retrieval, and expire,
// on the days set; the noncurrent-version expiry stays.
func TestLifecycleTransitionsAndExpiry(t *testing.T) {
	s := destroyed()
	resourceIs(t, "data lifecycle", s.tpl, s.data, map[string]any{"Properties": map[string]any{
		"LifecycleConfiguration": map[string]any{"Rules": []any{abortUploads(), assertions.Match_ObjectEquals(&map[string]any{
			"Id": "Data", "Status": "Enabled",
			"NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": 30},
			"Transitions": []any{
				map[string]any{"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
				map[string]any{"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
			},
			"ExpirationInDays": 400,
		})}},
	}})
}

// denyPlainHTTP is the statement that makes a bucket TLS-only.
func denyPlainHTTP(bucket string) any {
	return assertions.Match_ObjectEquals(&map[string]any{
		"Effect": "Deny", "Principal": map[string]any{"AWS": "*"}, "Action": "s3:*",
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		"Resource":  []any{getAtt(bucket, "Arn"), arnWith(bucket, "/*")},
	})
}

// allowLogDelivery lets S3's log delivery write the data bucket's access logs,
// under its prefix only, for that bucket in this account only.
func allowLogDelivery(s *synthesized) any {
	return assertions.Match_ObjectEquals(&map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
		"Resource": arnWith(s.logs, "/raw-data-bucket/*"),
		"Condition": map[string]any{
			"ArnLike":      map[string]any{"aws:SourceArn": getAtt(s.data, "Arn")},
			"StringEquals": map[string]any{"aws:SourceAccount": map[string]any{"Ref": "AWS::AccountId"}},
		},
	})
}

// allowEmptying lets CDK's bucket-emptying function (DestroyWithStack) empty
// this one bucket.
func allowEmptying(bucket, role string) any {
	return assertions.Match_ObjectEquals(&map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": getAtt(role, "Arn")},
		"Action":   []any{"s3:DeleteObject*", "s3:GetBucket*", "s3:List*", "s3:PutBucketPolicy"},
		"Resource": []any{getAtt(bucket, "Arn"), arnWith(bucket, "/*")},
	})
}

// Both buckets refuse requests without TLS, and their policies allow nothing
// else than log delivery to the log bucket and, with DestroyWithStack,
// emptying by CDK's function: no other principal, no other bucket.
func TestBucketPoliciesAreTLSOnly(t *testing.T) {
	r := retained()
	d := destroyed()
	emptier, _ := cdktest.Only(t, d.tpl, "AWS::IAM::Role")
	for _, c := range []struct {
		name       string
		s          *synthesized
		data, logs []any
	}{
		{"default", r, []any{denyPlainHTTP(r.data)}, []any{denyPlainHTTP(r.logs), allowLogDelivery(r)}},
		{"DestroyWithStack", d,
			[]any{denyPlainHTTP(d.data), allowEmptying(d.data, emptier)},
			[]any{denyPlainHTTP(d.logs), allowEmptying(d.logs, emptier), allowLogDelivery(d)}},
	} {
		cdktest.Expect(t, c.name+": one policy per bucket", func() {
			c.s.tpl.ResourceCountIs(jsii.String("AWS::S3::BucketPolicy"), jsii.Number(2))
		})
		for bucket, statements := range map[string][]any{c.s.data: c.data, c.s.logs: c.logs} {
			cdktest.Expect(t, c.name+": policy of "+bucket, func() {
				c.s.tpl.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), map[string]any{
					"Bucket":         map[string]any{"Ref": bucket},
					"PolicyDocument": map[string]any{"Statement": statements},
				})
			})
		}
	}
}

// By default both buckets outlive the stack, and nothing in it can empty
// them: no emptying custom resource, function, role or log group.
func TestRetainedByDefault(t *testing.T) {
	s := retained()
	for _, id := range []string{s.data, s.logs} {
		resourceIs(t, "retained", s.tpl, id, map[string]any{
			"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
			"Properties": map[string]any{"Tags": assertions.Match_Absent()}, // no aws-cdk:auto-delete-objects
		})
	}
	for _, typ := range []string{"Custom::S3AutoDeleteObjects", "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Logs::LogGroup"} {
		cdktest.Expect(t, "no "+typ, func() { s.tpl.ResourceCountIs(jsii.String(typ), jsii.Number(0)) })
	}
}

// DestroyWithStack deletes both buckets with the stack, each emptied first
// by its own custom resource, served by CDK's one emptying function.
func TestDestroyWithStackEmptiesAndDeletesBoth(t *testing.T) {
	s := destroyed()
	function, _ := cdktest.Only(t, s.tpl, "AWS::Lambda::Function")
	cdktest.Expect(t, "one emptier per bucket", func() {
		s.tpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(2))
	})
	for _, id := range []string{s.data, s.logs} {
		resourceIs(t, "deleted with the stack", s.tpl, id, map[string]any{"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})
		cdktest.Expect(t, "emptied first: "+id, func() {
			s.tpl.HasResourceProperties(jsii.String("Custom::S3AutoDeleteObjects"), map[string]any{
				"BucketName":   map[string]any{"Ref": id},
				"ServiceToken": getAtt(function, "Arn"),
			})
		})
	}
}

// CDK's emptying function logs to a log group that expires after
// logRetentionDays and goes with the stack, and its role may write to that
// group only: no AWSLambdaBasicExecutionRole (logs on every group).
func TestEmptyingFunctionIsConfined(t *testing.T) {
	s := destroyed()
	group, props := cdktest.Only(t, s.tpl, "AWS::Logs::LogGroup")
	role, _ := cdktest.Only(t, s.tpl, "AWS::IAM::Role")
	if props["RetentionInDays"] != 7.0 || props["LogGroupName"] != nil {
		t.Errorf("emptier's log group %v, want RetentionInDays 7 and no fixed name", props)
	}
	resourceIs(t, "log group goes with the stack", s.tpl, group, map[string]any{"DeletionPolicy": "Delete"})
	cdktest.Expect(t, "function logs to that group, with that role", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"LoggingConfig": map[string]any{"LogGroup": map[string]any{"Ref": group}},
			"Role":          getAtt(role, "Arn"),
		})
	})
	cdktest.Expect(t, "role: write to that group only, no managed policy", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
			"ManagedPolicyArns": assertions.Match_Absent(),
			"Policies": []any{assertions.Match_ObjectEquals(&map[string]any{
				"PolicyName": "WriteOwnLogs",
				"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{assertions.Match_ObjectEquals(&map[string]any{
					"Effect": "Allow", "Action": []any{"logs:CreateLogStream", "logs:PutLogEvents"}, "Resource": getAtt(group, "Arn"),
				})}},
			})},
		})
	})
	cdktest.Expect(t, "no other policy", func() { s.tpl.ResourceCountIs(jsii.String("AWS::IAM::Policy"), jsii.Number(0)) })
}

// The one cdk-nag suppression is S1 (access logging) on the access-log
// bucket, with its reason; nothing else is suppressed. (test/ runs the
// AwsSolutions pack on every stack: loading cdk-nag here would cost seconds.)
func TestSuppressions(t *testing.T) {
	for name, s := range map[string]*synthesized{"default": retained(), "DestroyWithStack": destroyed()} {
		got := cdktest.Suppressions(s.tpl)
		if want := s.logs + " AwsSolutions-S1"; len(got) != 1 || got[0].String() != want {
			t.Errorf("%s: suppressions %v, want [%s]", name, got, want)
			continue
		}
		if len(got[0].Reason) < 80 {
			t.Errorf("%s: suppression %v has no specific reason: %q", name, got[0], got[0].Reason)
		}
	}
}

// Lifecycle settings at the limits S3 allows are accepted.
func TestValidLimits(t *testing.T) {
	for _, p := range []rawbucket.Props{
		{},
		{InfrequentAccessAfterDays: ref(30)},
		{InfrequentAccessAfterDays: ref(36500)},
		{ArchiveAfterDays: ref(1)},
		{InfrequentAccessAfterDays: ref(30), ArchiveAfterDays: ref(60), ExpireAfterDays: ref(61)},
		{InfrequentAccessAfterDays: ref(30), ExpireAfterDays: ref(31)},
		{ExpireAfterDays: ref(1)},
		{ExpireAfterDays: ref(36500)},
		{LogRetentionDays: ref(1)},
		{LogRetentionDays: ref(3653)},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", show(p), err)
		}
	}
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	for i, c := range []struct {
		props rawbucket.Props
		want  string
	}{
		{rawbucket.Props{InfrequentAccessAfterDays: ref(29)}, "infrequentAccessAfterDays: invalid value 29; allowed: an integer from 30 to 36500"},
		{rawbucket.Props{InfrequentAccessAfterDays: ref(36501)}, "infrequentAccessAfterDays: invalid value 36501; allowed: an integer from 30 to 36500"},
		{rawbucket.Props{ArchiveAfterDays: ref(0)}, "archiveAfterDays: invalid value 0; allowed: an integer from 1 to 36500"},
		{rawbucket.Props{InfrequentAccessAfterDays: ref(30), ArchiveAfterDays: ref(59)}, "archiveAfterDays: invalid value 59; allowed: an integer from 60 to 36500"},
		{rawbucket.Props{ExpireAfterDays: ref(0)}, "expireAfterDays: invalid value 0; allowed: an integer from 1 to 36500"},
		{rawbucket.Props{ExpireAfterDays: ref(36501)}, "expireAfterDays: invalid value 36501; allowed: an integer from 1 to 36500"},
		{rawbucket.Props{InfrequentAccessAfterDays: ref(30), ExpireAfterDays: ref(30)}, "expireAfterDays: invalid value 30; allowed: an integer from 31 to 36500"},
		{rawbucket.Props{InfrequentAccessAfterDays: ref(30), ArchiveAfterDays: ref(90), ExpireAfterDays: ref(90)}, "expireAfterDays: invalid value 90; allowed: an integer from 91 to 36500"},
		{rawbucket.Props{LogRetentionDays: ref(10)}, "logRetentionDays: invalid value 10; allowed: one of [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653] (days CloudWatch Logs supports)"},
	} {
		err := c.props.Validate()
		if err == nil || err.Error() != c.want {
			t.Errorf("Validate(%s) = %v, want %q", show(c.props), err, c.want)
		}
		cdktest.Panics(t, c.want, func() { rawbucket.New(stack, fmt.Sprint("RawData", i), &c.props) })
	}
	if n := len(*stack.Node().Children()); n != 0 {
		t.Errorf("rejected props left %d constructs in the stack", n)
	}
}

// show prints the set fields of p, for messages.
func show(p rawbucket.Props) string {
	var parts []string
	for _, f := range []struct {
		name string
		v    *int
	}{{"IA", p.InfrequentAccessAfterDays}, {"archive", p.ArchiveAfterDays}, {"expire", p.ExpireAfterDays}, {"logs", p.LogRetentionDays}} {
		if f.v != nil {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.v))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}
