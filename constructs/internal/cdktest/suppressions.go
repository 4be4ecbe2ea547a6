package cdktest

import (
	"fmt"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
)

// Suppression is one cdk-nag suppression recorded in a resource's metadata.
type Suppression struct {
	Resource  string // logical id
	Rule      string
	AppliesTo []string // the findings it covers; empty: all of the rule's
	Reason    string
}

// String is "<resource> <rule>" or "<resource> <rule> [<finding> ...]".
func (s Suppression) String() string {
	if len(s.AppliesTo) == 0 {
		return s.Resource + " " + s.Rule
	}
	return fmt.Sprintf("%s %s %v", s.Resource, s.Rule, s.AppliesTo)
}

// Suppressions lists every cdk-nag suppression in the template, sorted by
// resource and rule.
func Suppressions(tpl assertions.Template) []Suppression {
	var out []Suppression
	resources, _ := JSON(tpl)["Resources"].(map[string]any)
	for id, r := range resources {
		meta, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := meta["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, rule := range rules {
			rule, _ := rule.(map[string]any)
			s := Suppression{Resource: id}
			s.Rule, _ = rule["id"].(string)
			s.Reason, _ = rule["reason"].(string)
			applies, _ := rule["applies_to"].([]any)
			for _, a := range applies {
				s.AppliesTo = append(s.AppliesTo, fmt.Sprint(a))
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
