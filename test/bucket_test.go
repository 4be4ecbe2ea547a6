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
			"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{
				"Id": "AbortIncompleteMultipartUploads", "Status": "Enabled",
				"AbortIncompleteMultipartUpload": map[string]any{"DaysAfterInitiation": 7},
			}}},
			"BucketName": assertions.Match_Absent(),
		})
	})
	_, r := s.only(t, "AWS::S3::Bucket")
	if r["DeletionPolicy"] != "Retain" {
		t.Errorf("landed data must survive stack deletion, DeletionPolicy = %v", r["DeletionPolicy"])
	}
}

func TestBucketDeniesPlainHTTP(t *testing.T) {
	s := synth(t, nil)
	bucketID, _ := s.only(t, "AWS::S3::Bucket")
	_, policy := s.only(t, "AWS::S3::BucketPolicy")
	if get(policy, "Properties", "Bucket", "Ref") != bucketID {
		t.Fatalf("bucket policy is not on the raw-data bucket")
	}
	found := false
	for _, st := range get(policy, "Properties", "PolicyDocument", "Statement").([]any) {
		if get(st, "Effect") == "Deny" && get(st, "Condition", "Bool", "aws:SecureTransport") == "false" &&
			get(st, "Principal", "AWS") == "*" && get(st, "Action") == "s3:*" {
			found = true
		}
		if get(st, "Effect") == "Allow" {
			t.Errorf("the bucket policy must not allow anything: %v", st)
		}
	}
	if !found {
		t.Error("no statement denies requests without TLS")
	}
}
