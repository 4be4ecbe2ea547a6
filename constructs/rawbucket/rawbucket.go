// Package rawbucket is the S3 bucket the pipeline lands events in, with a
// separate bucket for its server access logs.
package rawbucket

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/internal/providerlogs"
	"github.com/tributary/tributary/constructs/internal/removal"
)

// Lifecycle limits, from S3's rules for lifecycle transitions.
const (
	// IncompleteUploadDays is how long a failed multipart upload may keep
	// costing storage before S3 removes its parts.
	IncompleteUploadDays = 7
	// NoncurrentVersionDays is how long a deleted or overwritten object can be recovered.
	NoncurrentVersionDays = 30
	// MinInfrequentAccessDays: S3 moves objects to Standard-IA no sooner than 30 days after creation.
	MinInfrequentAccessDays = 30
	// ArchiveGapDays: objects stay in Standard-IA at least 30 days before the next transition.
	ArchiveGapDays = 30
	maxDays        = 36500
)

// Props configures the buckets. Nil fields mean "never"; the zero value keeps
// everything forever and retains both buckets when the stack is deleted.
type Props struct {
	// DestroyWithStack empties and deletes both buckets with the stack
	// (development stages). Default false: the data outlives the stack.
	DestroyWithStack bool
	// InfrequentAccessAfterDays moves objects to S3 Standard-IA (at least 30).
	InfrequentAccessAfterDays *int
	// ArchiveAfterDays moves objects to S3 Glacier Instant Retrieval, which
	// keeps millisecond reads (at least 30 days after Standard-IA, if set).
	ArchiveAfterDays *int
	// ExpireAfterDays deletes objects (after any transition).
	ExpireAfterDays *int
	// LogRetentionDays expires the server access logs. Default: logretention.Default.
	LogRetentionDays *int
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	ia, archive, expire := p.InfrequentAccessAfterDays, p.ArchiveAfterDays, p.ExpireAfterDays
	if ia != nil {
		if err := check.IntRange("infrequentAccessAfterDays", *ia, MinInfrequentAccessDays, maxDays); err != nil {
			return err
		}
	}
	if archive != nil {
		min := 1
		if ia != nil {
			min = *ia + ArchiveGapDays
		}
		if err := check.IntRange("archiveAfterDays", *archive, min, maxDays); err != nil {
			return err
		}
	}
	if expire != nil {
		min := 1
		for _, d := range []*int{ia, archive} {
			if d != nil && *d+1 > min {
				min = *d + 1
			}
		}
		if err := check.IntRange("expireAfterDays", *expire, min, maxDays); err != nil {
			return err
		}
	}
	_, err := logretention.OrDefault(p.LogRetentionDays)
	return err
}

// RawBucket wraps the data bucket and its access-log bucket.
type RawBucket struct {
	constructs.Construct
	Bucket     awss3.Bucket
	AccessLogs awss3.Bucket
}

// New creates private, encrypted, TLS-only buckets with generated names, so
// that several stages fit one account. It panics with a one-line message if
// props are invalid.
func New(scope constructs.Construct, id string, props *Props) *RawBucket {
	var p Props
	if props != nil {
		p = *props
	}
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	retention, _ := logretention.OrDefault(p.LogRetentionDays) // validated above
	c := constructs.NewConstruct(scope, jsii.String(id))
	secure := func(rules ...*awss3.LifecycleRule) *awss3.BucketProps {
		return &awss3.BucketProps{
			Encryption:        awss3.BucketEncryption_S3_MANAGED, // server access logs cannot be delivered to SSE-KMS buckets
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
			EnforceSSL:        jsii.Bool(true),
			ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
			RemovalPolicy:     removal.Policy(p.DestroyWithStack),
			AutoDeleteObjects: jsii.Bool(p.DestroyWithStack),
			LifecycleRules:    &rules,
		}
	}
	abortUploads := &awss3.LifecycleRule{
		Id:                                  jsii.String("AbortIncompleteMultipartUploads"),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(IncompleteUploadDays)),
	}

	logs := awss3.NewBucket(c, jsii.String("AccessLogs"), secure(abortUploads, &awss3.LifecycleRule{
		Id:         jsii.String("ExpireAccessLogs"),
		Expiration: awscdk.Duration_Days(jsii.Number(retention.Days)),
	}))
	nag.Suppress(logs, "AwsSolutions-S1",
		"This bucket receives the data bucket's server access logs; logging it as well would need a third bucket, and logging it to itself would loop.")

	dataProps := secure(abortUploads, dataLifecycle(p))
	dataProps.Versioned = jsii.Bool(true)
	dataProps.ServerAccessLogsBucket = logs
	dataProps.ServerAccessLogsPrefix = jsii.String("raw-data-bucket/")
	b := awss3.NewBucket(c, jsii.String("Bucket"), dataProps)
	if p.DestroyWithStack {
		providerlogs.Confine(c, "Custom::S3AutoDeleteObjectsCustomResourceProvider", retention.Logs)
	}
	return &RawBucket{Construct: c, Bucket: b, AccessLogs: logs}
}

// dataLifecycle keeps deleted versions recoverable for a while, then applies
// the storage-class transitions and expiry that are set.
func dataLifecycle(p Props) *awss3.LifecycleRule {
	days := func(d int) awscdk.Duration { return awscdk.Duration_Days(jsii.Number(d)) }
	r := &awss3.LifecycleRule{
		Id:                          jsii.String("Data"),
		NoncurrentVersionExpiration: days(NoncurrentVersionDays),
	}
	var transitions []*awss3.Transition
	if d := p.InfrequentAccessAfterDays; d != nil {
		transitions = append(transitions, &awss3.Transition{StorageClass: awss3.StorageClass_INFREQUENT_ACCESS(), TransitionAfter: days(*d)})
	}
	if d := p.ArchiveAfterDays; d != nil {
		transitions = append(transitions, &awss3.Transition{StorageClass: awss3.StorageClass_GLACIER_INSTANT_RETRIEVAL(), TransitionAfter: days(*d)})
	}
	if len(transitions) > 0 {
		r.Transitions = &transitions
	}
	if d := p.ExpireAfterDays; d != nil {
		r.Expiration = days(*d)
	}
	return r
}
