// Package cfn reads synthesized CloudFormation templates and the cloud
// assembly (cdk.out) that holds them, for the app-wide tests and the local
// pipeline, which both work from what `cdk synth` wrote. Plain Go, no CDK.
package cfn

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Template is a parsed template.
type Template = map[string]any

// Assembly is the stacks of a cloud assembly, by stack name.
type Assembly struct {
	Dir    string
	Stacks map[string]Template
}

// ReadAssembly reads manifest.json in dir and every stack template it names.
func ReadAssembly(dir string) (*Assembly, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("no cloud assembly in %s (run `make synth` first): %w", dir, err)
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type       string `json:"type"`
			Properties struct {
				TemplateFile string `json:"templateFile"`
			} `json:"properties"`
			DisplayName string `json:"displayName"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	a := &Assembly{Dir: dir, Stacks: map[string]Template{}}
	for name, art := range manifest.Artifacts {
		if art.Type != "aws:cloudformation:stack" {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, art.Properties.TemplateFile))
		if err != nil {
			return nil, err
		}
		var tpl Template
		if err := json.Unmarshal(body, &tpl); err != nil {
			return nil, fmt.Errorf("%s: %w", art.Properties.TemplateFile, err)
		}
		a.Stacks[name] = tpl
	}
	if len(a.Stacks) == 0 {
		return nil, fmt.Errorf("the cloud assembly in %s has no stacks", dir)
	}
	return a, nil
}

// Resources returns the resources of one type in every stack, by logical id
// (logical ids are unique across Tributary's stacks).
func (a *Assembly) Resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, name := range a.names() {
		for id, r := range Resources(a.Stacks[name], typ) {
			out[id] = r
		}
	}
	return out
}

func (a *Assembly) names() []string {
	var names []string
	for n := range a.Stacks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Resources returns a template's resources of one type, by logical id.
func Resources(template Template, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	resources, _ := template["Resources"].(map[string]any)
	for id, r := range resources {
		r, _ := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// Get walks maps (string keys) and lists (int indexes); nil when a step is missing.
func Get(v any, path ...any) any {
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

// Joined flattens a string or an Fn::Join of strings and {"Ref": X} into one
// string, writing references as ${X}, so templates with tokens can be compared.
func Joined(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if parts, ok := Get(x, "Fn::Join", 1).([]any); ok {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(Joined(p))
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
