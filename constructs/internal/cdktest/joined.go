package cdktest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// Joined reads a template value that CloudFormation assembles at deploy
// time as one string, for checks on text such as ARNs, URLs and user data:
// Fn::Join is joined with its delimiter, {"Ref": X} becomes ${X},
// {"Fn::GetAtt": [X, A]} ${X.A}, and {"Fn::Sub": s} its string s. Anything
// else is written as JSON, so an unexpected value shows in the failure.
func Joined(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if len(x) != 1 {
			break
		}
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			delim, _ := j[0].(string)
			parts, _ := j[1].([]any)
			out := make([]string, len(parts))
			for i, p := range parts {
				out[i] = Joined(p)
			}
			return strings.Join(out, delim)
		}
		if ref, ok := x["Ref"].(string); ok {
			return "${" + ref + "}"
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return fmt.Sprintf("${%v.%v}", ga[0], ga[1])
		}
		if s, ok := x["Fn::Sub"].(string); ok {
			return s
		}
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

// Resolved is v (a token, or a value holding tokens) as stack's template
// would hold it, decoded to plain values (maps, slices, strings, float64)
// for Joined or comparison with a template.
func Resolved(stack awscdk.Stack, v any) any {
	raw, err := json.Marshal(stack.Resolve(v))
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}
