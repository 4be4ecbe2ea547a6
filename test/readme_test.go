package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tributary/tributary/constructs/tributary"
)

// The README's configuration table is the settings table: same settings, in
// the same order, with the same defaults, allowed values and descriptions.
func TestREADMEConfigurationTable(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := tributary.ConfigurationTable()
	if !strings.Contains(string(raw), want) {
		t.Errorf("README.md's configuration table differs from the settings table; it must hold exactly:\n%s", want)
	}
	for _, key := range tributary.Keys() {
		if !strings.Contains(want, "| `"+key+"` |") {
			t.Errorf("the rendered table lacks %s", key)
		}
	}
}

// buildApp compiles app.go once for the tests that run the real app.
var buildApp = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tributary-test-app-")
	if err != nil {
		return "", err
	}
	outdirs = append(outdirs, dir)
	bin := filepath.Join(dir, "app")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// runApp runs the real app as the CLI would, with context, into a fresh folder.
func runApp(t *testing.T, ctx string) (outdir string, out []byte, err error) {
	t.Helper()
	bin, err := buildApp()
	if err != nil {
		t.Fatal(err)
	}
	outdir = t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CDK_CONTEXT_JSON="+ctx, "CDK_OUTDIR="+outdir)
	out, err = cmd.CombinedOutput()
	return outdir, out, err
}

// `cdk deploy` (or diff) of one stack makes the CLI bundle only that stack's
// assets; the app still builds the producer, so the monitoring stack refers
// to the instance that the producer stack really has (its logical id hashes
// the binary).
func TestSelectingOneStackKeepsCrossStackReferences(t *testing.T) {
	ctx := cdkJSONContext(t) // as the CLI passes cdk.json, plus its selection
	ctx["aws:cdk:bundling-stacks"] = []string{"Tributary-PROD-Monitoring"}
	raw, _ := json.Marshal(ctx)
	outdir, out, err := runApp(t, string(raw))
	if err != nil {
		t.Fatalf("app: %v\n%s", err, out)
	}
	raw, err = os.ReadFile(filepath.Join(outdir, "Tributary-PROD-Monitoring.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	instance, _ := only(t, synth(t, nil).templates["Tributary-PROD-Producer"], "AWS::EC2::Instance")
	if !strings.Contains(string(raw), "PublishOutputRef"+instance) {
		t.Errorf("with only the monitoring stack bundled, it does not refer to instance %s:\n%.3000s", instance, raw)
	}
}

// The real app turns an invalid setting into a failed synth: exit status 1 and
// the one-line message on stderr, not a Go panic.
func TestAppFailsSynthWithOneLine(t *testing.T) {
	for ctx, want := range map[string]string{
		`{"shardCount":"0"}`: "tributary: invalid configuration: shardCount: invalid value 0; allowed: an integer from 1 to 500\n",
		`{"stageName":""}`:   "tributary: invalid configuration: stageName: invalid value \"\"; allowed: 1-64 letters, digits, hyphens\n",
	} {
		_, out, err := runApp(t, ctx)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: want exit status 1, got %v\n%s", ctx, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: output lacks %q:\n%s", ctx, want, out)
		}
		if strings.Contains(string(out), "goroutine") || strings.Contains(string(out), "panic") {
			t.Errorf("%s: synth failed with a panic instead of a message:\n%s", ctx, out)
		}
	}
}
