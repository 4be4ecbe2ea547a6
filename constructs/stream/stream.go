// Package stream is the Kinesis data stream that buffers events between the
// ingest API and the delivery stream.
package stream

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/internal/removal"
)

// Capacity modes, as Kinesis names them.
const (
	Provisioned = "PROVISIONED"
	OnDemand    = "ON_DEMAND"
)

// Encryption keys for the stream.
const (
	AWSManagedKey      = "AWS_MANAGED"      // alias/aws/kinesis: free, no key policy to manage
	CustomerManagedKey = "CUSTOMER_MANAGED" // a key of this stack, rotated yearly: control and audit of its use
)

// Defaults and limits. Retention is the pipeline's recovery window: while
// Firehose cannot deliver, it retries from the stream for this long.
const (
	DefaultMode           = Provisioned
	DefaultShardCount     = 1
	MaxShardCount         = 500 // the default per-account shard quota in the largest Regions
	DefaultRetentionHours = 24
	MinRetentionHours     = 24
	MaxRetentionHours     = 8760
)

// Props configures the stream. Empty and nil fields mean the documented default.
type Props struct {
	// Mode is Provisioned or OnDemand. Default: Provisioned (cheapest for low volume).
	Mode string
	// ShardCount is the number of shards; only for Provisioned. Default: 1.
	ShardCount *int
	// RetentionHours is how long records stay readable. Default: 24.
	RetentionHours *int
	// Encryption is AWSManagedKey or CustomerManagedKey. Default: AWSManagedKey.
	Encryption string
	// DestroyWithStack deletes the stream (and its key) with the stack
	// (development stages). Default false: unread records outlive the stack.
	DestroyWithStack bool
}

// Stream wraps the Kinesis stream.
type Stream struct {
	constructs.Construct
	Stream awskinesis.Stream
	// Key is the customer managed key, or nil with the AWS managed key.
	Key awskms.Key
}

// resolved is Props with every default applied.
type resolved struct {
	mode, encryption         string
	shardCount, retentionHrs int
}

// Write capacity per shard, and of a new on-demand stream (which then scales
// to twice its previous peak), in records per second.
const (
	RecordsPerShard        = 1000
	OnDemandInitialRecords = 4000
)

// WriteRecordsPerSecond is how many records per second the stream accepts
// before it throttles (0 if props are invalid).
func (p Props) WriteRecordsPerSecond() int {
	r, err := p.resolve()
	switch {
	case err != nil:
		return 0
	case r.mode == OnDemand:
		return OnDemandInitialRecords
	}
	return r.shardCount * RecordsPerShard
}

// Retention is the retention in force, in hours: RetentionHours or the default.
func (p Props) Retention() int {
	if p.RetentionHours != nil {
		return *p.RetentionHours
	}
	return DefaultRetentionHours
}

// Validate reports the first setting out of range.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (resolved, error) {
	r := resolved{mode: p.Mode, encryption: p.Encryption, shardCount: DefaultShardCount, retentionHrs: DefaultRetentionHours}
	if r.mode == "" {
		r.mode = DefaultMode
	}
	if r.encryption == "" {
		r.encryption = AWSManagedKey
	}
	if err := check.OneOf("streamEncryption", r.encryption, AWSManagedKey, CustomerManagedKey); err != nil {
		return r, err
	}
	if err := check.OneOf("streamMode", r.mode, Provisioned, OnDemand); err != nil {
		return r, err
	}
	if r.mode == OnDemand {
		if p.ShardCount != nil {
			return r, check.Invalid("shardCount", *p.ShardCount, "unset when streamMode is ON_DEMAND (Kinesis scales the shards)")
		}
		r.shardCount = 0
	} else if p.ShardCount != nil {
		r.shardCount = *p.ShardCount
		if err := check.IntRange("shardCount", r.shardCount, 1, MaxShardCount); err != nil {
			return r, err
		}
	}
	r.retentionHrs = p.Retention()
	return r, check.IntRange("retentionHours", r.retentionHrs, MinRetentionHours, MaxRetentionHours)
}

// New creates the encrypted stream. It panics with a one-line message if props
// are invalid.
func New(scope constructs.Construct, id string, props *Props) *Stream {
	var p Props
	if props != nil {
		p = *props
	}
	r, err := p.resolve()
	if err != nil {
		panic(err.Error())
	}

	c := constructs.NewConstruct(scope, jsii.String(id))
	policy := removal.Policy(p.DestroyWithStack)
	sp := &awskinesis.StreamProps{
		StreamMode:      awskinesis.StreamMode(r.mode),
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(r.retentionHrs)),
		Encryption:      awskinesis.StreamEncryption_MANAGED,
		RemovalPolicy:   policy,
	}
	var key awskms.Key
	if r.encryption == CustomerManagedKey {
		key = awskms.NewKey(c, jsii.String("Key"), &awskms.KeyProps{
			Description:       jsii.String("Encrypts the Tributary Kinesis stream " + *c.Node().Path()),
			EnableKeyRotation: jsii.Bool(true),
			RemovalPolicy:     policy,
		})
		sp.Encryption, sp.EncryptionKey = awskinesis.StreamEncryption_KMS, key
	}
	if r.mode == Provisioned {
		sp.ShardCount = jsii.Number(r.shardCount)
	}
	s := awskinesis.NewStream(c, jsii.String("Stream"), sp)
	if key != nil {
		nag.Suppress(s, "AwsSolutions-KDS3",
			"The customer managed key was chosen on purpose (streamEncryption=CUSTOMER_MANAGED) to control and audit the key's use; the default is aws/kinesis.")
	}
	return &Stream{Construct: c, Stream: s, Key: key}
}
