// Package test holds the tests about the whole app: every stack as `cdk
// synth` builds it from settings, checked by cdk-nag and the template
// validator, for determinism, stable logical ids, least privilege across
// stacks, the docs, and the rendered mapping templates. Each construct's
// own behaviour is tested in its package. One jsii kernel serves the whole
// binary, and each configuration is synthesized once and shared.
package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tributary/tributary/internal/cfn"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/tributary"
)

var outdirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	for _, d := range outdirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// The configurations the app-wide tests synthesize, as `cdk synth -c` passes
// settings (strings).
var (
	// customSettings changes every setting: a development stage (not
	// retained) with a customer managed key, following files in an existing VPC.
	customSettings = map[string]any{
		"stackNamePrefix": "Acme", "stageName": "dev",
		"streamMode": "ON_DEMAND", "retentionHours": "168", "streamEncryption": "CUSTOMER_MANAGED",
		"dataPrefix": "events/json/", "errorPrefix": "failed/", "bufferingSeconds": "300", "bufferingMiB": "64",
		"compression": "GZIP", "infrequentAccessAfterDays": "30", "archiveAfterDays": "90", "expireAfterDays": "400",
		"apiCloudWatchRole": "EXISTING", "logRetentionDays": "7",
		"producerInstanceType": "t3.micro", "producerSource": "file", "producerFiles": "/var/log/app/events.log,/var/log/app/more.log",
		"producerRate": "5", "producerBatchSize": "100",
		"producerVpcId": "vpc-0123456789abcdef0", "producerSubnetId": "subnet-0123456789abcdef0",
		"alarmEmail": "ops@example.com", "alarmApi5xx": "10", "alarmWriteThrottled": "50", "alarmIteratorAgeMinutes": "30",
		"alarmFreshnessMarginSeconds": "600", "alarmDeliverySuccessPercent": "99",
		"alarmProducerDeadLettered": "20", "alarmProducerOldestUnconfirmedSeconds": "1200",
	}
	// apiKeySettings: an API key with X-Ray, at the edge, a record per event;
	// an event schema (JSON: both tables) and hour folders by event_time, a
	// delivery stream of its own.
	apiKeySettings = map[string]any{"apiAuth": "API_KEY", "apiTracing": "true", "apiEndpointType": "EDGE", "recordPacking": "PER_EVENT",
		"eventSchema": "testdata/event-schema.json", "partitioning": "EVENT_TIME"}
	// openSettings: no authorization and no host; events checked against an
	// event schema, de-aggregated and converted to Parquet with the typed
	// table, in hour folders by event_time.
	openSettings = map[string]any{"apiAuth": "NONE", "producerHost": "false",
		"eventSchema": "testdata/event-schema.json", "outputFormat": "PARQUET", "partitioning": "EVENT_TIME"}
	// everySettings are all of them, the default (nil) first.
	everySettings = []map[string]any{nil, customSettings, apiKeySettings, openSettings}
)

// app is one configuration's stacks, as the CLI would synthesize them.
type app struct {
	settings tributary.Settings
	stacks   *tributary.Stacks
	// templates are every stack's template by stack name, as plain JSON.
	templates map[string]map[string]any
	// messages are every stack's annotations: cdk-nag findings and others.
	messages []message
	// report is the template validator's (cdk.out/validation-report.json).
	report validationReport
	// outdir is the cloud assembly, as `cdk synth` writes cdk.out.
	outdir string
}

type message struct {
	level      cxapi.SynthesisMessageLevel
	path, text string
}

// serious is an error or a warning.
func (m message) serious() bool {
	return m.level == cxapi.SynthesisMessageLevel_ERROR || m.level == cxapi.SynthesisMessageLevel_WARNING
}

// validationReport holds the built-in CloudFormation validator's findings.
type validationReport struct {
	PluginReports []struct {
		PluginName string
		Violations []struct {
			RuleName, Description, Severity string
		}
	}
}

var synthCache = map[string]*app{}

// synth builds the app with cdk.json's context plus overrides, once per
// distinct set of overrides.
func synth(t testing.TB, overrides map[string]any) *app {
	t.Helper()
	key := fmt.Sprint(sortedPairs(overrides))
	if a, ok := synthCache[key]; ok {
		return a
	}
	a := synthFresh(t, overrides)
	synthCache[key] = a
	return a
}

// synthFresh synthesizes a new app every time; synth shares the result.
func synthFresh(t testing.TB, overrides map[string]any) *app {
	t.Helper()
	ctx := cdkJSONContext(t)
	for k, v := range overrides {
		ctx[k] = v
	}
	outdir, err := os.MkdirTemp("", "tributary-test-cdk.out-")
	if err != nil {
		t.Fatal(err)
	}
	outdirs = append(outdirs, outdir)
	settings, err := tributary.LoadSettings(ctx)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	cdkApp := tributary.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)}) // as app.go makes it
	a := &app{settings: settings, stacks: tributary.NewStacks(cdkApp, settings), templates: map[string]map[string]any{}, outdir: outdir}
	assembly := synthOrListFindings(t, cdkApp, outdir)
	for _, st := range *assembly.Stacks() {
		for _, msg := range *st.Messages() {
			a.messages = append(a.messages, message{msg.Level, *msg.Id, fmt.Sprint(msg.Entry.Data)})
		}
		var tpl map[string]any
		raw, _ := json.Marshal(st.Template())
		if err := json.Unmarshal(raw, &tpl); err != nil {
			t.Fatal(err)
		}
		a.templates[*st.StackName()] = tpl
	}
	raw, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &a.report); err != nil {
		t.Fatal(err)
	}
	return a
}

// pipeline is the pipeline stack's template.
func (a *app) pipeline() map[string]any { return a.templates[*a.stacks.Pipeline.StackName()] }

// synthOrListFindings synthesizes app; when synthesis fails on findings
// (unsuppressed cdk-nag errors, validator errors) it fails the test listing
// each one from the validation report instead of panicking.
func synthOrListFindings(t testing.TB, cdkApp awscdk.App, outdir string) (assembly cxapi.CloudAssembly) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			var report validationReport
			raw, _ := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
			_ = json.Unmarshal(raw, &report)
			var b strings.Builder
			for _, p := range report.PluginReports {
				for _, v := range p.Violations {
					fmt.Fprintf(&b, "\n  %s %s %s: %s", p.PluginName, v.Severity, v.RuleName, v.Description)
				}
			}
			t.Fatalf("synth failed: %v%s", r, b.String())
		}
	}()
	return cdkApp.Synth(nil)
}

func sortedPairs(m map[string]any) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// cdkJSONContext is the context block of the project's cdk.json: the feature
// flags the CLI passes to every synth.
func cdkJSONContext(t testing.TB) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Context map[string]any }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Context
}

func resourcesOf(template map[string]any, typ string) map[string]map[string]any {
	return cfn.Resources(template, typ)
}

// only returns a template's single resource of a type and fails if there is
// not exactly one.
func only(t testing.TB, tpl map[string]any, typ string) (string, map[string]any) {
	t.Helper()
	rs := resourcesOf(tpl, typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

func get(v any, path ...any) any { return cfn.Get(v, path...) }

func joined(v any) string { return cfn.Joined(v) }

// strs turns a string or a list of strings into a list.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		return []string{joined(x)}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, joined(e))
		}
		return out
	}
	return nil
}

// syncBuffer is a process's output, which tests read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
