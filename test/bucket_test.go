package test

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestBucketIsPrivateEncryptedVersioned(t *testing.T) {
	s := synth(t, nil)
	expect(t, "bucket properties", func() {
		s.template.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
			"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
				map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
			}},
			"PublicAccessBlockConfiguration": map[string]any{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"VersioningConfiguration": map[string]any{"Status": "Enabled"},
			"OwnershipControls":       map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}},
			"LifecycleConfiguration": map[string]any{"Rules": []any{
				map[string]any{
					"Id": "AbortIncompleteMultipartUploads", "Status": "Enabled",
					"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 7},
				},
				// by default nothing moves or expires; deleted versions stay recoverable 30 days
				map[string]any{
					"Id": "Data", "Status": "Enabled", "NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": 30},
					"Transitions": assertions.Match_Absent(), "ExpirationInDays": assertions.Match_Absent(),
				},
			}},
			"BucketName": assertions.Match_Absent(),
		})
	})
}

func TestBucketDeniesPlainHTTP(t *testing.T) {
	s := synth(t, nil)
	buckets := s.resources("AWS::S3::Bucket")
	if len(buckets) != 2 {
		t.Fatalf("want the data bucket and its access-log bucket, got %d buckets", len(buckets))
	}
	for bucketID := range buckets {
		var policy map[string]any
		for _, p := range s.resources("AWS::S3::BucketPolicy") {
			if get(p, "Properties", "Bucket", "Ref") == bucketID {
				policy = p
			}
		}
		found := false
		for _, st := range get(policy, "Properties", "PolicyDocument", "Statement").([]any) {
			if get(st, "Effect") == "Deny" && get(st, "Condition", "Bool", "aws:SecureTransport") == "false" &&
				get(st, "Principal", "AWS") == "*" && get(st, "Action") == "s3:*" {
				found = true
			}
			// The only Allow: S3's log delivery service writing access logs.
			if get(st, "Effect") == "Allow" && get(st, "Principal", "Service") != "logging.s3.amazonaws.com" {
				t.Errorf("bucket %s policy allows %v", bucketID, st)
			}
		}
		if !found {
			t.Errorf("bucket %s: no statement denies requests without TLS", bucketID)
		}
	}
}
