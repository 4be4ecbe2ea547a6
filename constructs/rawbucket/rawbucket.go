// Package rawbucket is the S3 bucket the pipeline lands events in.
package rawbucket

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// IncompleteUploadDays is how long a failed multipart upload may keep costing
// storage before S3 removes its parts.
const IncompleteUploadDays = 7

// RawBucket wraps the bucket.
type RawBucket struct {
	constructs.Construct
	Bucket awss3.Bucket
}

// New creates a private, encrypted, versioned bucket that accepts TLS only.
// The bucket name is generated so that several stages fit one account.
func New(scope constructs.Construct, id string) *RawBucket {
	c := constructs.NewConstruct(scope, jsii.String(id))
	b := awss3.NewBucket(c, jsii.String("Bucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		// The landed data outlives the stack unless the user empties it on purpose.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("AbortIncompleteMultipartUploads"),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(IncompleteUploadDays)),
		}},
	})
	return &RawBucket{Construct: c, Bucket: b}
}
