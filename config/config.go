// Package config turns CDK context (cdk.json or `cdk synth -c name=value`)
// into the typed settings the stacks are built from, and rejects anything
// invalid with one line that names the setting, the value and what is allowed.
package config

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tributary/tributary/constructs/deliverystream"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/monitoring"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/constructs/rawbucket"
	"github.com/tributary/tributary/constructs/stream"
	"github.com/tributary/tributary/internal/check"
)

// DefaultStackNamePrefix starts every stack name: <prefix>-<stageName>-Pipeline.
const DefaultStackNamePrefix = "Tributary"

var stackNamePrefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,49}$`)

// Config is every setting of the app. Empty strings and nil pointers mean the
// default documented on the construct that uses the setting.
type Config struct {
	StackNamePrefix string
	StageName       string

	StreamMode       string
	ShardCount       *int
	RetentionHours   *int
	StreamEncryption string

	DataPrefix       string
	ErrorPrefix      string
	BufferingSeconds *int
	BufferingMiB     *int
	Compression      string

	InfrequentAccessAfterDays *int
	ArchiveAfterDays          *int
	ExpireAfterDays           *int
	// RetainData nil means: retain for a production stage (see Retain).
	RetainData *bool

	APIAuth           string
	APITracing        *bool
	APIEndpointType   string
	APICloudWatchRole string
	APIThrottleRate   *int
	APIThrottleBurst  *int
	LogRetentionDays  *int

	ProducerHost         *bool // nil: deploy it
	ProducerInstanceType string
	ProducerSource       string
	ProducerFiles        []string
	ProducerRate         *float64
	ProducerBatchSize    *int
	ProducerVpcID        string
	ProducerSubnetID     string

	AlarmEmail                  string
	AlarmAPI5xx                 *int
	AlarmWriteThrottled         *int
	AlarmIteratorAgeMinutes     *int
	AlarmFreshnessMarginSeconds *int
	AlarmDeliverySuccessPercent *int
}

// Settings are the context keys the app reads, in the order the README lists them.
var Settings = []string{
	"stackNamePrefix", "stageName", "retainData",
	"streamMode", "shardCount", "retentionHours", "streamEncryption",
	"dataPrefix", "errorPrefix", "bufferingSeconds", "bufferingMiB", "compression",
	"infrequentAccessAfterDays", "archiveAfterDays", "expireAfterDays",
	"apiAuth", "apiTracing", "apiEndpointType", "apiCloudWatchRole", "apiThrottleRate", "apiThrottleBurst", "logRetentionDays",
	"producerHost", "producerInstanceType", "producerSource", "producerFiles", "producerRate", "producerBatchSize",
	"producerVpcId", "producerSubnetId",
	"alarmEmail", "alarmApi5xx", "alarmWriteThrottled", "alarmIteratorAgeMinutes", "alarmFreshnessMarginSeconds",
	"alarmDeliverySuccessPercent",
}

// Load reads the settings from ctx (all CDK context). The CDK keeps its own
// keys there too (feature flags, "cli-telemetry"), so other keys are allowed,
// but one that is a near miss of a setting is a typo and fails.
func Load(ctx map[string]any) (Config, error) {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s := nearMiss(k); s != "" {
			return Config{}, fmt.Errorf("unknown setting %q; did you mean %q? Settings: %s", k, s, strings.Join(Settings, ", "))
		}
	}

	p := parser{ctx: ctx}
	c := Config{
		StackNamePrefix:  p.str("stackNamePrefix"),
		StageName:        p.str("stageName"),
		StreamMode:       p.str("streamMode"),
		ShardCount:       p.integer("shardCount"),
		RetentionHours:   p.integer("retentionHours"),
		StreamEncryption: p.str("streamEncryption"),
		DataPrefix:       p.str("dataPrefix"),
		ErrorPrefix:      p.str("errorPrefix"),
		BufferingSeconds: p.integer("bufferingSeconds"),
		BufferingMiB:     p.integer("bufferingMiB"),
		Compression:      p.str("compression"),

		InfrequentAccessAfterDays: p.integer("infrequentAccessAfterDays"),
		ArchiveAfterDays:          p.integer("archiveAfterDays"),
		ExpireAfterDays:           p.integer("expireAfterDays"),
		RetainData:                p.boolean("retainData"),

		APIAuth:           p.str("apiAuth"),
		APITracing:        p.boolean("apiTracing"),
		APIEndpointType:   p.str("apiEndpointType"),
		APICloudWatchRole: p.str("apiCloudWatchRole"),
		APIThrottleRate:   p.integer("apiThrottleRate"),
		APIThrottleBurst:  p.integer("apiThrottleBurst"),
		LogRetentionDays:  p.integer("logRetentionDays"),

		ProducerHost:         p.boolean("producerHost"),
		ProducerInstanceType: p.str("producerInstanceType"),
		ProducerSource:       p.str("producerSource"),
		ProducerFiles:        p.list("producerFiles"),
		ProducerRate:         p.number("producerRate"),
		ProducerBatchSize:    p.integer("producerBatchSize"),
		ProducerVpcID:        p.str("producerVpcId"),
		ProducerSubnetID:     p.str("producerSubnetId"),

		AlarmEmail:                  p.str("alarmEmail"),
		AlarmAPI5xx:                 p.integer("alarmApi5xx"),
		AlarmWriteThrottled:         p.integer("alarmWriteThrottled"),
		AlarmIteratorAgeMinutes:     p.integer("alarmIteratorAgeMinutes"),
		AlarmFreshnessMarginSeconds: p.integer("alarmFreshnessMarginSeconds"),
		AlarmDeliverySuccessPercent: p.integer("alarmDeliverySuccessPercent"),
	}
	if p.err != nil {
		return Config{}, p.err
	}
	return c, c.Validate()
}

// Validate checks every setting, the constructs' own rules included.
func (c Config) Validate() error {
	if c.StackNamePrefix != "" && !stackNamePrefixPattern.MatchString(c.StackNamePrefix) {
		return check.Invalid("stackNamePrefix", c.StackNamePrefix, "1 to 50 letters, digits and hyphens, starting with a letter")
	}
	if err := c.IngestAPIProps().Validate(); err != nil {
		return err
	}
	if err := c.StreamProps().Validate(); err != nil {
		return err
	}
	if err := c.BucketProps().Validate(); err != nil {
		return err
	}
	if c.DeployProducerHost() {
		if err := c.ProducerHostProps().Validate(); err != nil {
			return err
		}
	}
	if err := c.MonitoringProps().Validate(); err != nil {
		return err
	}
	// An iterator older than the retention means records were already lost.
	retention := stream.DefaultRetentionHours
	if c.RetentionHours != nil {
		retention = *c.RetentionHours
	}
	if age := c.AlarmIteratorAgeMinutes; age != nil && *age >= retention*60 {
		return check.Invalid("alarmIteratorAgeMinutes", *age, fmt.Sprintf("fewer minutes than the stream keeps records (retentionHours %d = %d minutes)", retention, retention*60))
	}
	return c.DeliveryStreamProps().Validate()
}

// Retain tells whether the data (bucket and stream) outlives the stack: by
// default yes for a production stage, one whose name starts with "prod" in
// any case, and no for any other stage.
func (c Config) Retain() bool {
	if c.RetainData != nil {
		return *c.RetainData
	}
	stage := c.StageName
	if stage == "" {
		stage = ingestapi.DefaultStageName
	}
	return strings.HasPrefix(strings.ToLower(stage), "prod")
}

// BucketProps are the raw-data bucket's settings.
func (c Config) BucketProps() rawbucket.Props {
	return rawbucket.Props{
		DestroyWithStack:          !c.Retain(),
		InfrequentAccessAfterDays: c.InfrequentAccessAfterDays,
		ArchiveAfterDays:          c.ArchiveAfterDays,
		ExpireAfterDays:           c.ExpireAfterDays,
		LogRetentionDays:          c.LogRetentionDays,
	}
}

// StackName is <prefix>-<stage>-Pipeline, so each stage is its own stack.
func (c Config) StackName() string { return c.stackName("Pipeline") }

// ProducerStackName is <prefix>-<stage>-Producer.
func (c Config) ProducerStackName() string { return c.stackName("Producer") }

// MonitoringStackName is <prefix>-<stage>-Monitoring.
func (c Config) MonitoringStackName() string { return c.stackName("Monitoring") }

// MonitoringProps are the alarms' settings, without the resources they watch.
func (c Config) MonitoringProps() monitoring.Props {
	return monitoring.Props{
		Email: c.AlarmEmail, API5xx: c.AlarmAPI5xx, WriteThrottled: c.AlarmWriteThrottled,
		IteratorAgeMinutes: c.AlarmIteratorAgeMinutes, FreshnessMarginSeconds: c.AlarmFreshnessMarginSeconds,
		DeliverySuccessPercent: c.AlarmDeliverySuccessPercent,
	}
}

func (c Config) stackName(kind string) string {
	prefix, stage := c.StackNamePrefix, c.StageName
	if prefix == "" {
		prefix = DefaultStackNamePrefix
	}
	if stage == "" {
		stage = ingestapi.DefaultStageName
	}
	return prefix + "-" + stage + "-" + kind
}

// DeployProducerHost tells whether the app builds the producer host stack (default: yes).
func (c Config) DeployProducerHost() bool { return c.ProducerHost == nil || *c.ProducerHost }

// ProducerHostProps are the host's settings, without what comes from the API and the build.
func (c Config) ProducerHostProps() producerhost.Props {
	return producerhost.Props{
		Auth: c.APIAuth, InstanceType: c.ProducerInstanceType, Source: c.ProducerSource, Files: c.ProducerFiles,
		Rate: c.ProducerRate, BatchSize: c.ProducerBatchSize,
		VpcID: c.ProducerVpcID, SubnetID: c.ProducerSubnetID,
		LogRetentionDays: c.LogRetentionDays,
	}
}

// StreamProps are the stream's settings.
func (c Config) StreamProps() stream.Props {
	return stream.Props{
		Mode: c.StreamMode, ShardCount: c.ShardCount, RetentionHours: c.RetentionHours,
		Encryption: c.StreamEncryption, DestroyWithStack: !c.Retain(),
	}
}

// DeliveryStreamProps are the delivery stream's settings, without its source and bucket.
func (c Config) DeliveryStreamProps() deliverystream.Props {
	return deliverystream.Props{
		DataPrefix: c.DataPrefix, ErrorPrefix: c.ErrorPrefix,
		BufferingSeconds: c.BufferingSeconds, BufferingMiB: c.BufferingMiB,
		Compression: c.Compression, LogRetentionDays: c.LogRetentionDays,
	}
}

// IngestAPIProps are the API's settings, without its stream. Unless set, the
// stage throttles at what the stream can write (one record per request),
// within API Gateway's account limits, so that clients get 429 from API
// Gateway rather than a throttled write.
func (c Config) IngestAPIProps() ingestapi.Props {
	rate, burst := c.APIThrottleRate, c.APIThrottleBurst
	if rate == nil {
		r := min(max(c.StreamProps().WriteRecordsPerSecond(), 1), ingestapi.MaxThrottleRate)
		rate = &r
	}
	if burst == nil {
		b := min(*rate, ingestapi.MaxThrottleBurst)
		burst = &b
	}
	return ingestapi.Props{
		StageName: c.StageName, LogRetentionDays: c.LogRetentionDays, CloudWatchRole: c.APICloudWatchRole,
		ThrottleRate: rate, ThrottleBurst: burst,
		Auth: c.APIAuth, Tracing: c.APITracing != nil && *c.APITracing, EndpointType: c.APIEndpointType,
	}
}

// parser keeps the first type error; -c values arrive as strings, cdk.json
// values as JSON numbers, strings or booleans.
type parser struct {
	ctx map[string]any
	err error
}

func (p *parser) str(key string) string {
	v, ok := p.ctx[key]
	if !ok || p.err != nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.err = check.Invalid(key, v, "a string")
	}
	return s
}

func (p *parser) boolean(key string) *bool {
	v, ok := p.ctx[key]
	if !ok || p.err != nil {
		return nil
	}
	switch x := v.(type) {
	case bool:
		return &x
	case string:
		if x == "true" || x == "false" {
			b := x == "true"
			return &b
		}
	}
	p.err = check.Invalid(key, v, "true or false")
	return nil
}

func (p *parser) number(key string) *float64 {
	v, ok := p.ctx[key]
	if !ok || p.err != nil {
		return nil
	}
	switch x := v.(type) {
	case float64:
		return &x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return &f
		}
	}
	p.err = check.Invalid(key, v, "a number")
	return nil
}

// list reads a comma-separated string or a JSON array of strings.
func (p *parser) list(key string) []string {
	v, ok := p.ctx[key]
	if !ok || p.err != nil {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				p.err = check.Invalid(key, v, "a comma-separated string or a list of strings")
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	p.err = check.Invalid(key, v, "a comma-separated string or a list of strings")
	return nil
}

func (p *parser) integer(key string) *int {
	v, ok := p.ctx[key]
	if !ok || p.err != nil {
		return nil
	}
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < math.MaxInt32 {
			n := int(x)
			return &n
		}
	case string:
		if n, err := strconv.Atoi(x); err == nil {
			return &n
		}
	}
	p.err = check.Invalid(key, v, "an integer")
	return nil
}

// nearMiss returns the setting k was probably meant to be, or "".
func nearMiss(k string) string {
	for _, s := range Settings {
		if k == s {
			return ""
		}
	}
	for _, s := range Settings {
		if strings.EqualFold(k, s) || distance(strings.ToLower(k), strings.ToLower(s)) <= 2 {
			return s
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
