// Package test holds the stack unit tests. One jsii kernel serves the whole
// binary, and each configuration is synthesized once and shared.
package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	tributary "github.com/tributary/tributary/internal/app"
	"github.com/tributary/tributary/pipeline"
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

// synthesized is one configuration's stack, as the CLI would synthesize it.
type synthesized struct {
	stack    *pipeline.Stack
	template assertions.Template
	json     map[string]any // the same template, for plain-Go checks
	// The rest is the whole app's: the producer stack (nil without the host),
	// every stack's annotations (cdk-nag findings and others), the validator's
	// report, and the cloud assembly's directory.
	producer   *stackTemplate
	monitoring *stackTemplate
	messages   []message
	report     validationReport
	outdir     string
}

// stackTemplate is another stack of the same app.
type stackTemplate struct {
	name     string
	template assertions.Template
	json     map[string]any
}

type message struct {
	level      cxapi.SynthesisMessageLevel
	path, text string
}

// serious is an error or a warning.
func (m message) serious() bool {
	return m.level == cxapi.SynthesisMessageLevel_ERROR || m.level == cxapi.SynthesisMessageLevel_WARNING
}

// validationReport is cdk.out/validation-report.json: the built-in
// CloudFormation validator's findings.
type validationReport struct {
	PluginReports []struct {
		PluginName string
		Violations []struct {
			RuleName, Description, Severity string
		}
	}
}

var synthCache = map[string]*synthesized{}

// synth builds the app with cdk.json's context plus overrides (given as the
// CLI's -c passes them: strings) and returns the pipeline stack, once per
// distinct set of overrides.
func synth(t *testing.T, overrides map[string]any) *synthesized {
	t.Helper()
	key := fmt.Sprint(sortedPairs(overrides))
	if s, ok := synthCache[key]; ok {
		return s
	}
	s := synthFresh(t, overrides)
	synthCache[key] = s
	return s
}

// synthFresh synthesizes a new app every time; synth shares the result.
func synthFresh(t *testing.T, overrides map[string]any) *synthesized {
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
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
	cfg, err := config.Load(ctx)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	stacks, err := tributary.Build(app, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stack := stacks.Pipeline
	assembly := synthOrListFindings(t, app, outdir)
	s := &synthesized{stack: stack, outdir: outdir}
	for _, st := range *assembly.Stacks() {
		for _, msg := range *st.Messages() {
			s.messages = append(s.messages, message{msg.Level, *msg.Id, fmt.Sprint(msg.Entry.Data)})
		}
	}
	if stacks.Producer != nil {
		s.producer = &stackTemplate{name: *stacks.Producer.StackName()}
		s.producer.template, s.producer.json = templateOf(t, stacks.Producer.Stack)
	}
	s.monitoring = &stackTemplate{name: *stacks.Monitoring.StackName()}
	s.monitoring.template, s.monitoring.json = templateOf(t, stacks.Monitoring.Stack)
	raw, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s.report); err != nil {
		t.Fatal(err)
	}
	s.template, s.json = templateOf(t, stack.Stack)
	return s
}

func templateOf(t *testing.T, stack awscdk.Stack) (assertions.Template, map[string]any) {
	tpl := assertions.Template_FromStack(stack, nil)
	var m map[string]any
	raw, _ := json.Marshal(tpl.ToJSON())
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return tpl, m
}

// templates are every stack's template by stack name.
func (s *synthesized) templates() map[string]map[string]any {
	out := map[string]map[string]any{*s.stack.StackName(): s.json}
	if s.producer != nil {
		out[s.producer.name] = s.producer.json
	}
	out[s.monitoring.name] = s.monitoring.json
	return out
}

// synthOrListFindings synthesizes app; when synthesis fails on findings
// (unsuppressed cdk-nag errors, validator errors) it fails the test listing
// each one from the validation report instead of panicking.
func synthOrListFindings(t *testing.T, app awscdk.App, outdir string) (assembly cxapi.CloudAssembly) {
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
	return app.Synth(nil)
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
func cdkJSONContext(t *testing.T) map[string]any {
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

// expect turns a failed assertions call (a jsii panic) into a test error.
func expect(t *testing.T, what string, assertion func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	assertion()
}

// resources returns the template's resources of one type, by logical id.
func (s *synthesized) resources(typ string) map[string]map[string]any {
	return resourcesOf(s.json, typ)
}

func resourcesOf(template map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range template["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// only returns the pipeline stack's single resource of a type and fails if
// there is not exactly one.
func (s *synthesized) only(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	return only(t, s.json, typ)
}

// only is the same for any template.
func only(t *testing.T, tpl map[string]any, typ string) (string, map[string]any) {
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

// props returns a resource's Properties.
func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// get walks a path of map keys and list indexes through a JSON value.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// joined flattens a string or an Fn::Join of strings and {"Ref": X} into one
// string, writing references as ${X}, so templates with tokens can be compared.
func joined(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if parts, ok := get(x, "Fn::Join", 1).([]any); ok {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(joined(p))
			}
			return b.String()
		}
		if ref, ok := x["Ref"].(string); ok {
			return "${" + ref + "}"
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("${%v.%v}", ga[0], ga[1])
		}
		if out, ok := x["Fn::GetStackOutput"].(map[string]any); ok { // a value of another stack
			return fmt.Sprintf("${Fn::GetStackOutput:%v/%v}", out["StackName"], out["OutputName"])
		}
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

// policyStatements returns every statement of the inline policies attached to a role.
func (s *synthesized) policyStatements(roleID string) []map[string]any {
	var out []map[string]any
	for _, p := range s.resources("AWS::IAM::Policy") {
		attached := false
		for _, r := range get(p, "Properties", "Roles").([]any) {
			if get(r, "Ref") == roleID {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, st := range get(p, "Properties", "PolicyDocument", "Statement").([]any) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

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

// dataBucket is the raw-data bucket's logical id (the versioned one; the
// access-log bucket is not versioned).
func (s *synthesized) dataBucket(t *testing.T) string {
	t.Helper()
	var ids []string
	for id, r := range s.resources("AWS::S3::Bucket") {
		if get(r, "Properties", "VersioningConfiguration") != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one versioned (data) bucket, got %v", ids)
	}
	return ids[0]
}
