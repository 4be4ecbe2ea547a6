// Package local runs the synthesized Tributary app on one machine: the
// ingest API (internal/fakeapi, proven to store what the mapping templates
// store), a Kinesis stream with a shard's limits kept on disk, a delivery
// stream with the synthesized buffering, prefixes, processors and
// compression, and a real S3-compatible server (gofakes3) whose objects are
// plain files. Everything it runs is read from the cloud assembly, so a
// setting given to `cdk synth` changes the local run as it changes a
// deployment.
package local

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/ingest"
)

// Config is what the local pipeline takes from the cloud assembly.
type Config struct {
	PipelineStack string
	Stage         string         // the API stage, the first path segment
	Packing       ingest.Packing // how /v1/batch stores a batch
	MaxBatch      int            // the most events a batch may carry (its request model's maxItems)
	Auth          ingest.Auth
	RateLimit     float64 // the stage's requests per second (0: none)
	Burst         int
	Schemas       map[string]json.RawMessage // request model per path (/v1, /v1/batch)
	// GatewayResponses are API Gateway's own answers by response type
	// (BAD_REQUEST_BODY, THROTTLED, ...): status and body template.
	GatewayResponses map[string]GatewayResponse

	StreamName string
	Shards     int

	Delivery Delivery
	Bucket   string // the raw-data bucket's local name
	Outputs  map[string]string

	Producer map[string]string // the host's TRIBUTARY_* environment
}

// GatewayResponse is one synthesized gateway response.
type GatewayResponse struct {
	Status   int
	Template string
}

// Delivery is the synthesized delivery stream.
type Delivery struct {
	Name        string
	Prefix      string
	ErrorPrefix string
	Interval    time.Duration
	SizeBytes   int
	GZIP        bool
	Deaggregate bool   // RecordDeAggregation of JSON sub-records
	Query       string // MetadataExtractionQuery (jq), "" without dynamic partitioning
	AppendLine  bool   // AppendDelimiterToRecord
}

// FromAssembly reads the configuration of the local run, or says which
// part of the assembly it cannot run.
func FromAssembly(a *cfn.Assembly) (*Config, error) {
	c := &Config{Schemas: map[string]json.RawMessage{}, Outputs: map[string]string{}, GatewayResponses: map[string]GatewayResponse{}}
	var pipeline cfn.Template
	for name, tpl := range a.Stacks {
		if len(cfn.Resources(tpl, "AWS::KinesisFirehose::DeliveryStream")) > 0 {
			c.PipelineStack, pipeline = name, tpl
		}
	}
	if pipeline == nil {
		return nil, fmt.Errorf("no stack in the cloud assembly has a delivery stream")
	}
	local := func(logicalID string) string { // a name as CloudFormation would make it, without its random tail
		return strings.ToLower(c.PipelineStack + "-" + logicalID)
	}
	only := func(typ string) (string, map[string]any, error) {
		rs := cfn.Resources(pipeline, typ)
		if len(rs) != 1 {
			return "", nil, fmt.Errorf("stack %s has %d resources of type %s, want 1", c.PipelineStack, len(rs), typ)
		}
		for id, r := range rs {
			return id, r, nil
		}
		panic("unreachable")
	}

	_, stage, err := only("AWS::ApiGateway::Stage")
	if err != nil {
		return nil, err
	}
	c.Stage = fmt.Sprint(cfn.Get(stage, "Properties", "StageName"))
	if ms, ok := cfn.Get(stage, "Properties", "MethodSettings", 0).(map[string]any); ok {
		c.RateLimit, _ = ms["ThrottlingRateLimit"].(float64)
		burst, _ := ms["ThrottlingBurstLimit"].(float64)
		c.Burst = int(burst)
	}
	for _, gr := range cfn.Resources(pipeline, "AWS::ApiGateway::GatewayResponse") {
		p := gr["Properties"].(map[string]any)
		status := 0
		fmt.Sscan(fmt.Sprint(p["StatusCode"]), &status)
		tpl, _ := cfn.Get(p, "ResponseTemplates", "application/json").(string)
		c.GatewayResponses[fmt.Sprint(p["ResponseType"])] = GatewayResponse{Status: status, Template: tpl}
	}
	models := cfn.Resources(pipeline, "AWS::ApiGateway::Model")
	for _, m := range cfn.Resources(pipeline, "AWS::ApiGateway::Method") {
		p := m["Properties"].(map[string]any)
		uri := cfn.Joined(cfn.Get(p, "Integration", "Uri"))
		path := ingest.EventPath
		if strings.HasSuffix(uri, ":kinesis:action/PutRecords") {
			path, c.Packing = ingest.BatchPath, ingest.PerEvent
		} else if ref, _ := cfn.Get(p, "RequestModels", "application/json", "Ref").(string); strings.Contains(ref, "Batch") {
			path, c.Packing = ingest.BatchPath, ingest.Packed
		}
		switch {
		case p["ApiKeyRequired"] == true:
			c.Auth = ingest.AuthAPIKey
		case p["AuthorizationType"] == "AWS_IAM":
			c.Auth = ingest.AuthIAM
		default:
			c.Auth = ingest.AuthNone
		}
		if ref, ok := cfn.Get(p, "RequestModels", "application/json", "Ref").(string); ok {
			schema, _ := json.Marshal(cfn.Get(models[ref], "Properties", "Schema"))
			c.Schemas[path] = schema
			if max, ok := cfn.Get(models[ref], "Properties", "Schema", "maxItems").(float64); ok && path == ingest.BatchPath {
				c.MaxBatch = int(max)
			}
		}
	}
	if c.Packing == "" {
		return nil, fmt.Errorf("stack %s has no %s method", c.PipelineStack, ingest.BatchPath)
	}

	streamID, stream, err := only("AWS::Kinesis::Stream")
	if err != nil {
		return nil, err
	}
	c.StreamName = local(streamID)
	switch mode := cfn.Get(stream, "Properties", "StreamModeDetails", "StreamMode"); mode {
	case "ON_DEMAND":
		c.Shards = 4 // an on-demand stream starts with 4 MiB/s of writes
	default:
		n, _ := cfn.Get(stream, "Properties", "ShardCount").(float64)
		c.Shards = int(n)
	}
	if c.Shards < 1 {
		return nil, fmt.Errorf("stream %s has no shards", streamID)
	}

	deliveryID, ds, err := only("AWS::KinesisFirehose::DeliveryStream")
	if err != nil {
		return nil, err
	}
	dest := cfn.Get(ds, "Properties", "ExtendedS3DestinationConfiguration")
	if dest == nil {
		return nil, fmt.Errorf("delivery stream %s has no S3 destination", deliveryID)
	}
	if conv := cfn.Get(dest, "DataFormatConversionConfiguration", "Enabled"); conv == true {
		return nil, fmt.Errorf("outputFormat=PARQUET is not run locally (Firehose converts with the Glue schema); synthesize with -c outputFormat=JSON to try the pipeline locally")
	}
	bucketRef, _ := cfn.Get(dest, "BucketARN", "Fn::GetAtt", 0).(string)
	c.Bucket = local(bucketRef)
	d := &c.Delivery
	d.Name = local(deliveryID)
	d.Prefix = cfn.Joined(cfn.Get(dest, "Prefix"))
	d.ErrorPrefix = cfn.Joined(cfn.Get(dest, "ErrorOutputPrefix"))
	secs, okSecs := cfn.Get(dest, "BufferingHints", "IntervalInSeconds").(float64)
	mbs, okMBs := cfn.Get(dest, "BufferingHints", "SizeInMBs").(float64)
	if !okSecs || !okMBs {
		return nil, fmt.Errorf("delivery stream %s has no buffering hints", deliveryID)
	}
	d.Interval, d.SizeBytes = time.Duration(secs)*time.Second, int(mbs)<<20
	switch f := cfn.Get(dest, "CompressionFormat"); f {
	case nil, "UNCOMPRESSED":
	case "GZIP":
		d.GZIP = true
	default:
		return nil, fmt.Errorf("compression=%v is not run locally: GZIP and UNCOMPRESSED are", f)
	}
	if cfn.Get(dest, "ProcessingConfiguration", "Enabled") == true {
		procs, _ := cfn.Get(dest, "ProcessingConfiguration", "Processors").([]any)
		for _, p := range procs {
			switch typ := cfn.Get(p, "Type"); typ {
			case "RecordDeAggregation":
				d.Deaggregate = true
			case "AppendDelimiterToRecord":
				d.AppendLine = true
			case "MetadataExtraction":
				params, _ := cfn.Get(p, "Parameters").([]any)
				for _, kv := range params {
					switch cfn.Get(kv, "ParameterName") {
					case "MetadataExtractionQuery":
						d.Query, _ = cfn.Get(kv, "ParameterValue").(string)
					case "JsonParsingEngine":
						if v := cfn.Get(kv, "ParameterValue"); v != "JQ-1.6" {
							return nil, fmt.Errorf("delivery stream %s: JsonParsingEngine %v is not run locally", deliveryID, v)
						}
					}
				}
			default:
				return nil, fmt.Errorf("delivery stream %s: processor %v is not run locally", deliveryID, typ)
			}
		}
	}
	for name, o := range asMap(pipeline["Outputs"]) {
		if v, ok := cfn.Get(o, "Value").(string); ok {
			c.Outputs[name] = v
		}
	}
	c.Producer = producerEnv(a)
	return c, nil
}

var envFile = regexp.MustCompile(`(?s)cat > /etc/tributary-producer\.env <<'EOF'\n(.*?)\nEOF`)

// producerEnv is the producer host's environment file, from its user data
// (empty when the app has no producer host).
func producerEnv(a *cfn.Assembly) map[string]string {
	env := map[string]string{}
	for _, inst := range a.Resources("AWS::EC2::Instance") {
		ud := cfn.Joined(cfn.Get(inst, "Properties", "UserData", "Fn::Base64"))
		m := envFile.FindStringSubmatch(ud)
		if m == nil {
			continue
		}
		for _, line := range strings.Split(m[1], "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
