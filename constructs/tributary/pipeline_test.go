package tributary_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/constructs/tributary"
)

// pipelineIn adds a pipeline to a stack of a user's own, under id Pipe.
func pipelineIn(props *tributary.PipelineProps) (*tributary.Pipeline, assertions.Template) {
	stack := cdktest.NewStack()
	p := tributary.NewPipeline(stack, "Pipe", props)
	return p, assertions.Template_FromStack(stack, nil)
}

// The pipeline is one construct a user adds to their own stack: its parts sit
// under its id, so it can live beside their resources (or twice in a stack).
func TestPipelineIsAConstructOfItsOwn(t *testing.T) {
	p, tpl := pipelineIn(nil)
	if got := *p.Node().Path(); got != "Test/Pipe" {
		t.Errorf("path = %s, want Test/Pipe", got)
	}
	for typ, prefix := range map[string]string{
		"AWS::Kinesis::Stream": "PipeEventsStream", "AWS::KinesisFirehose::DeliveryStream": "PipeDeliveryDeliveryStream",
		"AWS::ApiGateway::RestApi": "PipeIngestApi",
	} {
		id, _ := cdktest.Only(t, tpl, typ)
		if !strings.HasPrefix(id, prefix) {
			t.Errorf("%s logical id %s, want it under the construct (%s...)", typ, id, prefix)
		}
	}
	cdktest.Expect(t, "three buckets: data, access logs, query results", func() { tpl.ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(3)) })
	if p.RawData == nil || p.Events == nil || p.Delivery == nil || p.Ingest == nil || !p.Retain {
		t.Errorf("parts not exposed, or a PROD pipeline not retained: %+v", p)
	}
}

// Unless set, the stage throttles at what the stream can write (one record
// per request), within API Gateway's account limits (10,000/s, burst 5,000).
func TestThrottlingFollowsStreamCapacity(t *testing.T) {
	for _, c := range []struct {
		props       tributary.PipelineProps
		rate, burst float64
	}{
		{tributary.PipelineProps{}, 1000, 1000},
		{tributary.PipelineProps{Stream: stream.Props{ShardCount: ref(3)}}, 3000, 3000},
		{tributary.PipelineProps{Stream: stream.Props{Mode: stream.OnDemand}}, 4000, 4000},
		{tributary.PipelineProps{Stream: stream.Props{ShardCount: ref(20)}}, 10000, 5000},
	} {
		c.props.API.ThrottleRate, c.props.API.ThrottleBurst = nil, nil
		_, tpl := pipelineIn(&c.props)
		_, stage := cdktest.Only(t, tpl, "AWS::ApiGateway::Stage")
		ms := stage["MethodSettings"].([]any)[0].(map[string]any)
		if ms["ThrottlingRateLimit"] != c.rate || ms["ThrottlingBurstLimit"] != c.burst {
			t.Errorf("%+v: throttling %v/%v, want %v/%v", c.props.Stream, ms["ThrottlingRateLimit"], ms["ThrottlingBurstLimit"], c.rate, c.burst)
		}
	}
	explicit := tributary.PipelineProps{Stream: stream.Props{ShardCount: ref(3)}}
	explicit.API.ThrottleRate = ref(50)
	if err := explicit.Validate(); err != nil {
		t.Fatal(err)
	}
	_, tpl := pipelineIn(&explicit)
	_, stage := cdktest.Only(t, tpl, "AWS::ApiGateway::Stage")
	if ms := stage["MethodSettings"].([]any)[0].(map[string]any); ms["ThrottlingRateLimit"] != 50.0 || ms["ThrottlingBurstLimit"] != 50.0 {
		t.Errorf("an explicit rate of 50 gives %v/%v, want 50/50 (burst follows the rate)", ms["ThrottlingRateLimit"], ms["ThrottlingBurstLimit"])
	}
}

// A development stage leaves nothing behind: the stream, buckets and log
// groups are deleted with the stack (the buckets emptied first).
func TestDevelopmentStageDestroysEverything(t *testing.T) {
	props := &tributary.PipelineProps{}
	props.API.StageName = "dev"
	p, tpl := pipelineIn(props)
	if p.Retain {
		t.Error("a dev stage is retained")
	}
	for _, typ := range []string{"AWS::S3::Bucket", "AWS::Kinesis::Stream", "AWS::Logs::LogGroup"} {
		for id, r := range *tpl.FindResources(jsii.String(typ), nil) {
			if (*r)["DeletionPolicy"] != "Delete" {
				t.Errorf("%s %s DeletionPolicy = %v, want Delete", typ, id, (*r)["DeletionPolicy"])
			}
		}
	}
	cdktest.Expect(t, "every bucket emptied on deletion", func() {
		tpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(3))
	})
}

// Invalid props fail before anything is created, with the one-line message;
// the stacks need what they are built from.
func TestInvalidPropsAndMissingParts(t *testing.T) {
	props := &tributary.PipelineProps{Stream: stream.Props{ShardCount: ref(0)}}
	cdktest.Panics(t, "shardCount: invalid value 0; allowed: an integer from 1 to 500", func() {
		tributary.NewPipeline(cdktest.NewStack(), "Events", props)
	})
	app := cdktest.NewApp(nil)
	cdktest.Panics(t, "tributary: ProducerStackProps with Host.API, Host.Namespace and Host.Pipeline are required", func() { tributary.NewProducerStack(app, "P", nil) })
	cdktest.Panics(t, "tributary: MonitoringStackProps with Pipeline are required", func() { tributary.NewMonitoringStack(app, "M", nil) })
	cdktest.Panics(t, "producerhost: API, Namespace and Pipeline are required", func() {
		tributary.NewProducerStack(app, "P2", &tributary.ProducerStackProps{})
	})
	bad := tributary.Settings{}
	bad.Alarms.IteratorAgeMinutes = ref(24 * 60)
	fresh := cdktest.NewApp(nil)
	cdktest.Panics(t, "alarmIteratorAgeMinutes: invalid value 1440", func() { tributary.NewStacks(fresh, bad) })
	if n := len(*fresh.Node().Children()); n != 0 {
		t.Errorf("a rejected configuration left %d stacks: %v", n, fmt.Sprint(*fresh.Node().Children()))
	}
}
