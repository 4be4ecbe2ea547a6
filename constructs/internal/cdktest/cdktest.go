// Package cdktest holds what the constructs' tests share: a stack with the
// app's feature flags to put one construct on, assertion helpers that turn
// the assertions library's panics into test failures, and one jsii kernel per
// test binary.
package cdktest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

var outdirs []string

// Main runs a package's tests, then closes the jsii kernel once and removes
// the cloud assemblies the tests wrote. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	jsii.Close()
	for _, d := range outdirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// Context is the context block of the project's cdk.json: the feature flags
// the CLI passes to every synth, so a construct is tested as the app builds
// it, without the flag that makes the template validator's findings errors
// (NewApp does not run the validator).
func Context() map[string]any {
	raw, err := os.ReadFile(filepath.Join(ModuleRoot(), "cdk.json"))
	if err != nil {
		panic(err)
	}
	var f struct{ Context map[string]any }
	if err := json.Unmarshal(raw, &f); err != nil {
		panic(err)
	}
	delete(f.Context, "@aws-cdk/core:validateAgainstDefaultRules")
	return f.Context
}

// ModuleRoot is the folder of go.mod, found upwards from the working
// directory (a test runs in its package's folder).
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("cdktest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// NewApp is an app with the project's feature flags (plus extra context)
// that synthesizes into a folder Main removes. It does not run aws-cdk-lib's
// built-in template validator, which costs seconds per test binary: the
// app-wide tests in test/ run it on every stack. (Leaving its flag out of the
// context only keeps its findings warnings; CDK_VALIDATION=false in a test
// is too late, as the jsii kernel starts while the CDK packages initialise.)
func NewApp(extra map[string]any) awscdk.App {
	ctx := Context()
	for k, v := range extra {
		ctx[k] = v
	}
	dir, err := os.MkdirTemp("", "tributary-cdktest-")
	if err != nil {
		panic(err)
	}
	outdirs = append(outdirs, dir)
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(dir), BuiltinCloudFormationValidation: jsii.Bool(false)})
}

// NewStack is a stack named Test in a new app, to hold one construct.
func NewStack() awscdk.Stack {
	return awscdk.NewStack(NewApp(nil), jsii.String("Test"), nil)
}

// Expect runs an assertion of the assertions library, which panics when it
// fails, and reports the failure as a test error named what.
func Expect(t *testing.T, what string, assertion func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	assertion()
}

// Panics checks that f panics with a message containing want: how a
// construct rejects invalid props (through jsii, the message is wrapped).
func Panics(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("accepted; want a panic with %q", want)
			return
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Errorf("panic %q; want it to contain %q", msg, want)
		}
	}()
	f()
}

// JSON turns a template (or any part of one) into plain Go values, for
// checks the assertions library cannot express.
func JSON(t assertions.Template) map[string]any {
	raw, err := json.Marshal(t.ToJSON())
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	return m
}

// Only returns the logical id and properties of the template's single
// resource of type typ, failing the test unless there is exactly one.
func Only(t *testing.T, tpl assertions.Template, typ string) (string, map[string]any) {
	t.Helper()
	return One(t, tpl, typ, nil)
}

// One returns the logical id and properties of the template's single
// resource of type typ whose properties match props (Match_ObjectLike; nil
// matches any), failing the test unless there is exactly one.
func One(t *testing.T, tpl assertions.Template, typ string, props map[string]any) (string, map[string]any) {
	t.Helper()
	var filter map[string]any
	if props != nil {
		filter = map[string]any{"Properties": assertions.Match_ObjectLike(&props)}
	}
	found := *tpl.FindResources(jsii.String(typ), filter)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s with %v, got %d", typ, props, len(found))
	}
	for id, r := range found {
		p, _ := (*r)["Properties"].(map[string]any)
		return id, p
	}
	return "", nil
}

// Statements returns every statement of every IAM policy in the template
// that is attached to the role with logical id roleID.
func Statements(t *testing.T, tpl assertions.Template, roleID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, p := range *tpl.FindResources(jsii.String("AWS::IAM::Policy"), map[string]any{
		"Properties": map[string]any{"Roles": assertions.Match_ArrayWith(&[]any{map[string]any{"Ref": roleID}})},
	}) {
		doc := (*p)["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)
		for _, st := range doc["Statement"].([]any) {
			out = append(out, st.(map[string]any))
		}
	}
	return out
}

// Actions lists the actions of statements, each statement's in order.
func Actions(statements []map[string]any) []string {
	var out []string
	for _, st := range statements {
		switch a := st["Action"].(type) {
		case string:
			out = append(out, a)
		case []any:
			for _, x := range a {
				out = append(out, x.(string))
			}
		}
	}
	return out
}
