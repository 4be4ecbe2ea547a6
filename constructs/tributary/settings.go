package tributary

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/tributary/tributary/constructs/catalog"
	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/constructs/internal/logretention"
	"github.com/tributary/tributary/constructs/monitoring"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/constructs/workgroup"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/layout"
)

// Settings are every setting of the app, already placed in the props of the
// stacks they configure. The zero value is the default app.
type Settings struct {
	// StackNamePrefix starts every stack name. Default: DefaultStackNamePrefix.
	StackNamePrefix string
	Pipeline        PipelineProps
	// NoProducerHost leaves the producer host stack out.
	NoProducerHost bool
	// Host configures the producer host; its API is the pipeline's.
	Host producerhost.Props
	// Alarms are the monitoring's thresholds and e-mail; the resources it
	// watches are the pipeline's and the host's.
	Alarms monitoring.Props
}

// setting is one row of the settings table: its key in CDK context (cdk.json
// or -c key=value), what docs/configuration.md says of it, how its value is read, and
// where it goes.
type setting struct {
	key, def, allowed, does string
	parse                   func(raw any) (any, error) // nil error: the value has the setting's kind
	set                     func(s *Settings, v any)
}

// code formats a value as docs/configuration.md shows literals.
func code(v any) string { return fmt.Sprintf("`%v`", v) }

func codes[T any](vs ...T) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = code(v)
	}
	return strings.Join(out, ", ")
}

func joinInts(vs []int) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.Itoa(v)
	}
	return strings.Join(out, ", ")
}

// The kinds of value a setting takes. A value from -c arrives as a string,
// one from cdk.json as a JSON string, number, boolean or array.
func text(key, def, allowed, does string, set func(*Settings, string)) setting {
	return setting{key, def, allowed, does, func(raw any) (any, error) {
		if s, ok := raw.(string); ok {
			return s, nil
		}
		return nil, check.Invalid(key, raw, "a string")
	}, func(s *Settings, v any) { set(s, v.(string)) }}
}

func integer(key, def, allowed, does string, set func(*Settings, int)) setting {
	return setting{key, def, allowed, does, func(raw any) (any, error) {
		switch x := raw.(type) {
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < math.MaxInt32 {
				return int(x), nil
			}
		case string:
			if n, err := strconv.Atoi(x); err == nil {
				return n, nil
			}
		}
		return nil, check.Invalid(key, raw, "an integer")
	}, func(s *Settings, v any) { set(s, v.(int)) }}
}

func number(key, def, allowed, does string, set func(*Settings, float64)) setting {
	return setting{key, def, allowed, does, func(raw any) (any, error) {
		switch x := raw.(type) {
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, nil
			}
		}
		return nil, check.Invalid(key, raw, "a number")
	}, func(s *Settings, v any) { set(s, v.(float64)) }}
}

func boolean(key, def, does string, set func(*Settings, bool)) setting {
	return setting{key, def, codes(true, false), does, func(raw any) (any, error) {
		switch x := raw.(type) {
		case bool:
			return x, nil
		case string:
			if x == "true" || x == "false" {
				return x == "true", nil
			}
		}
		return nil, check.Invalid(key, raw, "true or false")
	}, func(s *Settings, v any) { set(s, v.(bool)) }}
}

// schemaFile reads the path of a JSON Schema file (relative to the folder
// the app runs in, the project's) and parses it: the constructs get the
// schema, not the path.
func schemaFile(key, def, allowed, does string, set func(*Settings, *eventschema.Schema)) setting {
	return setting{key, def, allowed, does, func(raw any) (any, error) {
		path, ok := raw.(string)
		if !ok {
			return nil, check.Invalid(key, raw, stripCode(allowed))
		}
		data, err := os.ReadFile(path)
		if err == nil {
			var schema *eventschema.Schema
			if schema, err = eventschema.Parse(data); err == nil {
				return schema, nil
			}
		}
		return nil, fmt.Errorf("%s: invalid value %q: %v; allowed: %s", key, path, err, stripCode(allowed))
	}, func(s *Settings, v any) { set(s, v.(*eventschema.Schema)) }}
}

// list reads a comma-separated string or a JSON array of strings.
func list(key, def, allowed, does string, set func(*Settings, []string)) setting {
	return setting{key, def, allowed, does, func(raw any) (any, error) {
		var out []string
		switch x := raw.(type) {
		case string:
			for _, s := range strings.Split(x, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, check.Invalid(key, raw, "a comma-separated string or a list of strings")
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, check.Invalid(key, raw, "a comma-separated string or a list of strings")
	}, func(s *Settings, v any) { set(s, v.([]string)) }}
}

// table is every setting, in the order docs/configuration.md lists them. Its
// configuration table is rendered from it (TestDocsConfigurationTable).
var table = []setting{
	text("stackNamePrefix", code(DefaultStackNamePrefix), "1-50 letters, digits, hyphens; starts with a letter; not `AWS` with a producer host",
		"stack name is `<prefix>-<stageName>-Pipeline`; the producer's metrics are in the namespace `<prefix>/<stageName>`",
		func(s *Settings, v string) { s.StackNamePrefix = v }),
	text("stageName", code(ingestapi.DefaultStageName), "1-64 letters, digits, hyphens",
		"API Gateway stage (in the URL) and part of the stack name",
		func(s *Settings, v string) { s.Pipeline.API.StageName = v }),
	boolean("retainData", "`true` if `stageName` starts with `prod` (any case), else `false`",
		"keep the buckets, the stream and its key when the stack is deleted (see below)",
		func(s *Settings, v bool) { s.Pipeline.RetainData = &v }),
	text("streamMode", code(stream.DefaultMode), codes(stream.Provisioned, stream.OnDemand), "Kinesis capacity mode",
		func(s *Settings, v string) { s.Pipeline.Stream.Mode = v }),
	integer("shardCount", code(stream.DefaultShardCount), fmt.Sprintf("1-%d; only with `%s`", stream.MaxShardCount, stream.Provisioned),
		"shards; each takes 1 MB/s or 1,000 records/s of writes",
		func(s *Settings, v int) { s.Pipeline.Stream.ShardCount = &v }),
	integer("retentionHours", code(stream.DefaultRetentionHours), fmt.Sprintf("%d-%d", stream.MinRetentionHours, stream.MaxRetentionHours),
		"how long Kinesis keeps records: the recovery window while Firehose cannot deliver",
		func(s *Settings, v int) { s.Pipeline.Stream.RetentionHours = &v }),
	text("streamEncryption", code(stream.AWSManagedKey), codes(stream.AWSManagedKey, stream.CustomerManagedKey),
		"KMS key of the stream: `aws/kinesis`, or a key of this stack with yearly rotation ($1 a month plus KMS requests)",
		func(s *Settings, v string) { s.Pipeline.Stream.Encryption = v }),
	text("dataPrefix", code(deliverystream.DefaultDataPrefix), "folders of `A-Z a-z 0-9 ! - _ . * ' ( )`, each ending in `/`",
		"where events land; `yyyy/MM/dd/HH/` (UTC) follows, under `by-event-time/`, `parquet/` or `parquet-by-event-time/` unless `JSON` by `ARRIVAL_TIME` (see [Options for larger installations](querying.md#options-for-larger-installations))",
		func(s *Settings, v string) { s.Pipeline.Delivery.DataPrefix = v }),
	text("errorPrefix", code(deliverystream.DefaultErrorPrefix), "as `dataPrefix`; neither may contain the other",
		"where Firehose puts records it could not deliver, by error type and hour",
		func(s *Settings, v string) { s.Pipeline.Delivery.ErrorPrefix = v }),
	integer("bufferingSeconds", code(deliverystream.DefaultBufferingSeconds), fmt.Sprintf("0-%d", deliverystream.MaxBufferingSeconds),
		"Firehose writes an object after this long...",
		func(s *Settings, v int) { s.Pipeline.Delivery.BufferingSeconds = &v }),
	integer("bufferingMiB", fmt.Sprintf("`%d`; `%d` with `%s` or `%s`", deliverystream.DefaultBufferingMiB, deliverystream.MinLargeBufferingMiB, layout.EventTime, deliverystream.Parquet),
		fmt.Sprintf("%d-%d; %d-%d with `%s` or `%s`", deliverystream.MinBufferingMiB, deliverystream.MaxBufferingMiB,
			deliverystream.MinLargeBufferingMiB, deliverystream.MaxBufferingMiB, layout.EventTime, deliverystream.Parquet),
		"...or once this much data has arrived, whichever comes first",
		func(s *Settings, v int) { s.Pipeline.Delivery.BufferingMiB = &v }),
	text("compression", code(deliverystream.DefaultCompression), codes(deliverystream.Compressions...)+"; `UNCOMPRESSED` with `PARQUET`",
		"compression of the S3 objects; Athena cannot read `SNAPPY` (snappy-java framing) or `ZIP` objects: synth warns",
		func(s *Settings, v string) { s.Pipeline.Delivery.Compression = v }),
	schemaFile("eventSchema", "none", "a JSON Schema (draft-04) file of one event, relative to the project folder (see [Query your events](querying.md))",
		"what every event must match (else `400`), and the columns of the typed table `events`",
		func(s *Settings, v *eventschema.Schema) { s.Pipeline.EventSchema = v }),
	text("partitioning", code(layout.ArrivalTime), codes(layout.Partitionings...),
		"hour folders by the time Firehose received the event, or by its `event_time` (another delivery stream: see [Options for larger installations](querying.md#options-for-larger-installations))",
		func(s *Settings, v string) { s.Pipeline.Delivery.Partitioning = layout.Partitioning(v) }),
	text("outputFormat", code(catalog.JSON), codes(catalog.Formats...)+"; `PARQUET` needs `eventSchema`, and `EVENT_TIME` or `PER_EVENT`",
		"objects as newline-delimited JSON, or Parquet converted by Firehose with the typed table's columns",
		func(s *Settings, v string) { s.Pipeline.Delivery.Format = v }),
	integer("queryScanLimitMiB", code(workgroup.DefaultScanLimitMiB), fmt.Sprintf("%d-%d", workgroup.MinScanLimitMiB, workgroup.MaxScanLimitMiB),
		"Athena cancels a query of the workgroup once it has scanned this much (billed $5 per TB, at least 10 MB a query)",
		func(s *Settings, v int) { s.Pipeline.Queries.ScanLimitMiB = &v }),
	integer("infrequentAccessAfterDays", "never", "30-36500", "move objects to S3 Standard-IA (S3 skips objects under 128 KB)",
		func(s *Settings, v int) { s.Pipeline.Bucket.InfrequentAccessAfterDays = &v }),
	integer("archiveAfterDays", "never", "1-36500, and at least 30 after `infrequentAccessAfterDays`",
		"move objects to S3 Glacier Instant Retrieval (still readable in milliseconds)",
		func(s *Settings, v int) { s.Pipeline.Bucket.ArchiveAfterDays = &v }),
	integer("expireAfterDays", "never", "1-36500, after any transition", "delete objects",
		func(s *Settings, v int) { s.Pipeline.Bucket.ExpireAfterDays = &v }),
	text("apiAuth", code(ingest.AuthIAM), codes(ingest.Auths...), "how producers authenticate (see [Authorization](api.md#authorization))",
		func(s *Settings, v string) { s.Pipeline.API.Auth = ingest.Auth(v) }),
	boolean("apiTracing", code(false), "AWS X-Ray tracing of the stage (billed per trace)",
		func(s *Settings, v bool) { s.Pipeline.API.Tracing = v }),
	text("apiEndpointType", "`REGIONAL`", "`REGIONAL`, `EDGE`", "`EDGE` routes producers far from the Region through CloudFront",
		func(s *Settings, v string) { s.Pipeline.API.EndpointType = v }),
	text("recordPacking", code(ingest.Packed), codes(ingest.Packings...),
		"how `/v1/batch` stores a batch: `PACKED`, one Kinesis record holding a line per event (about ten times cheaper per event, five times more events per shard); `PER_EVENT`, a record per event, answered per record (see [Record packing](api.md#record-packing))",
		func(s *Settings, v string) { s.Pipeline.API.RecordPacking = ingest.Packing(v) }),
	text("apiCloudWatchRole", code(ingestapi.CreateCloudWatchRole), codes(ingestapi.CreateCloudWatchRole, ingestapi.ExistingCloudWatchRole),
		"the account-wide role API Gateway logs with (see below)",
		func(s *Settings, v string) { s.Pipeline.API.CloudWatchRole = v }),
	integer("apiThrottleRate", "the stream's write capacity: 1,000 per shard, 4,000 for `ON_DEMAND`, at most 10,000", "1-10000",
		"requests per second the stage accepts; beyond it clients get `429` from API Gateway instead of a throttled write",
		func(s *Settings, v int) { s.Pipeline.API.ThrottleRate = &v }),
	integer("apiThrottleBurst", "`apiThrottleRate`, at most 5,000", "1-5000", "requests the stage accepts at once above the rate",
		func(s *Settings, v int) { s.Pipeline.API.ThrottleBurst = &v }),
	boolean("producerHost", code(true), "deploy the producer host stack",
		func(s *Settings, v bool) { s.NoProducerHost = !v }),
	text("producerInstanceType", code(producerhost.DefaultInstanceType), "an EC2 instance type",
		"arm64 (Graviton) or x86_64; the producer is built to match",
		func(s *Settings, v string) { s.Host.InstanceType = v }),
	text("producerSource", code(producerhost.DefaultSource), "`synthetic`, `file`", "what the host sends",
		func(s *Settings, v string) { s.Host.Source = v }),
	list("producerFiles", "none", "absolute paths or glob patterns on the host, comma-separated; not under `/tmp`, `/var/tmp`, `/home`, `/root`, `/run/user`",
		"files to follow with `producerSource=file` (see [Following files](following-files.md))",
		func(s *Settings, v []string) { s.Host.Files = v }),
	number("producerRate", code(producerhost.DefaultRate), "0.01-10000", "synthetic events per second",
		func(s *Settings, v float64) { s.Host.Rate = &v }),
	integer("producerBatchSize", fmt.Sprintf("the API's batch limit: %d with `PACKED`, `ARRIVAL_TIME` and `JSON`, else %d", ingest.MaxPackedBatch, ingest.MaxBatch),
		fmt.Sprintf("1 to the API's batch limit (%d or %d)", ingest.MaxPackedBatch, ingest.MaxBatch), "events per request (1: each to `/v1`)",
		func(s *Settings, v int) { s.Host.BatchSize = &v }),
	text("producerVpcId", "none (own VPC)", "a VPC id (`vpc-...`), with `producerSubnetId`", "an existing VPC for the host...",
		func(s *Settings, v string) { s.Host.VpcID = v }),
	text("producerSubnetId", "none (own VPC)", "a subnet id (`subnet-...`) of `producerVpcId`", "...and the subnet of it the host runs in",
		func(s *Settings, v string) { s.Host.SubnetID = v }),
	text("alarmEmail", "none", "an e-mail address", "subscribes it to the alarm topic",
		func(s *Settings, v string) { s.Alarms.Email = v }),
	integer("alarmApi5xx", code(monitoring.DefaultAPI5xx), "1-1000000", "API 5xx answers in 5 minutes that fire `Api5xx`",
		func(s *Settings, v int) { s.Alarms.API5xx = &v }),
	integer("alarmWriteThrottled", code(monitoring.DefaultWriteThrottled), "1-1000000", "throttled records in 5 minutes that fire `WriteThrottled`",
		func(s *Settings, v int) { s.Alarms.WriteThrottled = &v }),
	integer("alarmIteratorAgeMinutes", code(monitoring.DefaultIteratorAgeMinutes), "1 to below `retentionHours` × 60", "Firehose lag that fires `IteratorAge`",
		func(s *Settings, v int) { s.Alarms.IteratorAgeMinutes = &v }),
	integer("alarmFreshnessMarginSeconds", code(monitoring.DefaultFreshnessMarginSeconds), "60-86400",
		"data older than `bufferingSeconds` + this fires `DataFreshness`",
		func(s *Settings, v int) { s.Alarms.FreshnessMarginSeconds = &v }),
	integer("alarmDeliverySuccessPercent", code(monitoring.DefaultDeliverySuccessPercent), "1-100", "S3 delivery success below this fires `DeliveryFailure`",
		func(s *Settings, v int) { s.Alarms.DeliverySuccessPercent = &v }),
	integer("alarmProducerDeadLettered", code(monitoring.DefaultProducerDeadLettered), "1-1000000",
		"events the producer host dead-letters in 5 minutes that fire `ProducerDeadLettered`",
		func(s *Settings, v int) { s.Alarms.ProducerDeadLettered = &v }),
	integer("alarmProducerOldestUnconfirmedSeconds", code(monitoring.DefaultProducerOldestUnconfirmedSeconds), "60-86400",
		"age of the producer host's oldest unconfirmed event that fires `ProducerOldestUnconfirmed`",
		func(s *Settings, v int) { s.Alarms.ProducerOldestUnconfirmedSeconds = &v }),
	integer("logRetentionDays", code(logretention.Default), "a CloudWatch Logs retention: "+joinInts(logretention.Allowed()),
		"retention of every log group of the stack, and expiry of the S3 server access logs",
		func(s *Settings, v int) {
			s.Pipeline.Bucket.LogRetentionDays, s.Pipeline.Delivery.LogRetentionDays = &v, &v
			s.Pipeline.API.LogRetentionDays, s.Host.LogRetentionDays, s.Pipeline.Queries.LogRetentionDays = &v, &v, &v
		}),
}

// Keys are the settings' keys, in docs/configuration.md's order.
func Keys() []string {
	out := make([]string, len(table))
	for i, s := range table {
		out[i] = s.key
	}
	return out
}

// LoadSettings reads the settings from CDK context (all of it: the CDK keeps
// its own keys there too, feature flags and "cli-telemetry", which are
// allowed; a key that is a near miss of a setting is a typo and fails) and
// validates them. Every error is one line naming the setting, the value and
// what is allowed.
func LoadSettings(ctx map[string]any) (Settings, error) {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s := nearMiss(k); s != "" {
			return Settings{}, fmt.Errorf("unknown setting %q; did you mean %q? Settings: %s", k, s, strings.Join(Keys(), ", "))
		}
	}
	var s Settings
	for _, row := range table {
		raw, ok := ctx[row.key]
		if !ok {
			continue
		}
		// -c key= means a value was meant and forgotten, not the default.
		if str, isStr := raw.(string); isStr && strings.TrimSpace(str) == "" {
			return Settings{}, check.Invalid(row.key, str, stripCode(row.allowed))
		}
		v, err := row.parse(raw)
		if err != nil {
			return Settings{}, err
		}
		row.set(&s, v)
	}
	return s, s.Validate()
}

// stripCode turns the docs' `literals` into plain text for messages.
func stripCode(s string) string { return strings.ReplaceAll(s, "`", "") }

// nearMiss returns the setting k was probably meant to be, or "".
func nearMiss(k string) string {
	for _, s := range table {
		if k == s.key {
			return ""
		}
	}
	for _, s := range table {
		if strings.EqualFold(k, s.key) || distance(strings.ToLower(k), strings.ToLower(s.key)) <= 2 {
			return s.key
		}
	}
	return ""
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// ConfigurationTable renders docs/configuration.md's table from the
// settings table: the page must hold exactly these lines.
func ConfigurationTable() string {
	var b strings.Builder
	b.WriteString("| setting | default | allowed | what it does |\n|---|---|---|---|\n")
	for _, s := range table {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.key, s.def, s.allowed, s.does)
	}
	return b.String()
}
