// Package test holds the stack unit tests. One jsii kernel serves the whole
// binary, and each configuration is synthesized once and shared.
package test

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/pipeline"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// synthesized is one configuration's stack, as the CLI would synthesize it.
type synthesized struct {
	stack    *pipeline.Stack
	template assertions.Template
	json     map[string]any // the same template, for plain-Go checks
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
	ctx := cdkJSONContext(t)
	for k, v := range overrides {
		ctx[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
	cfg, err := config.Load(ctx)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	stack := pipeline.New(app, cfg, nil)
	tpl := assertions.Template_FromStack(stack.Stack, nil)
	var m map[string]any
	raw, _ := json.Marshal(tpl.ToJSON())
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s := &synthesized{stack: stack, template: tpl, json: m}
	synthCache[key] = s
	return s
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
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// only returns the single resource of a type and fails if there is not exactly one.
func (s *synthesized) only(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := s.resources(typ)
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
