// Package stream is the Kinesis data stream that buffers events between the
// ingest API and the delivery stream.
package stream

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/internal/check"
)

// Capacity modes, as Kinesis names them.
const (
	Provisioned = "PROVISIONED"
	OnDemand    = "ON_DEMAND"
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
}

// Stream wraps the Kinesis stream.
type Stream struct {
	constructs.Construct
	Stream awskinesis.Stream
}

// resolved is Props with every default applied.
type resolved struct {
	mode                     string
	shardCount, retentionHrs int
}

// Validate reports the first setting out of range.
func (p Props) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Props) resolve() (resolved, error) {
	r := resolved{mode: p.Mode, shardCount: DefaultShardCount, retentionHrs: DefaultRetentionHours}
	if r.mode == "" {
		r.mode = DefaultMode
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
	if p.RetentionHours != nil {
		r.retentionHrs = *p.RetentionHours
	}
	return r, check.IntRange("retentionHours", r.retentionHrs, MinRetentionHours, MaxRetentionHours)
}

// New creates the stream, encrypted with the AWS-managed key aws/kinesis. It
// panics with a one-line message if props are invalid.
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
	sp := &awskinesis.StreamProps{
		StreamMode:      awskinesis.StreamMode(r.mode),
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(r.retentionHrs)),
		Encryption:      awskinesis.StreamEncryption_MANAGED,
		// Events are the user's data: deleting the stack must not delete unread records.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	}
	if r.mode == Provisioned {
		sp.ShardCount = jsii.Number(r.shardCount)
	}
	return &Stream{Construct: c, Stream: awskinesis.NewStream(c, jsii.String("Stream"), sp)}
}
