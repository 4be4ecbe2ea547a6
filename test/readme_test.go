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

// docs/configuration.md's table is the settings table: same settings, in
// the same order, with the same defaults, allowed values and descriptions.
func TestDocsConfigurationTable(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	want := tributary.ConfigurationTable()
	if !strings.Contains(string(raw), want) {
		t.Errorf("docs/configuration.md's configuration table differs from the settings table; it must hold exactly:\n%s", want)
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

// Two synths of the same code and settings give the same templates
// (otherwise every cdk diff shows changes, and an API deployment's logical
// id, which hashes what the API holds in order, would change on every
// deploy). The second is made as `cdk deploy <one stack>` makes it, the CLI
// asking to bundle that stack's assets only: the app still builds the
// producer, so the monitoring stack refers to the instance the producer
// stack really has (its logical id hashes the binary).
func TestSynthesisIsDeterministic(t *testing.T) {
	tested := synth(t, nil).templates
	again := synthFresh(t, map[string]any{"aws:cdk:bundling-stacks": []string{"Tributary-PROD-Monitoring"}}).templates
	if len(again) != len(tested) {
		t.Fatalf("%d templates, then %d", len(tested), len(again))
	}
	for name, tpl := range tested {
		a, _ := json.Marshal(tpl)
		b, _ := json.Marshal(again[name])
		if string(a) != string(b) {
			t.Errorf("%s differs between two synths of the same code and settings", name)
		}
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

// The real app warns on stderr, once per synth, that the default (production)
// stage keeps its data on destroy; the trial stage the README starts with
// synthesizes without that line.
func TestAppWarnsOnceThatProductionRetains(t *testing.T) {
	for stage, want := range map[string]int{"": 1, tributary.TrialStageName: 0} {
		ctx := cdkJSONContext(t) // the feature flags the CLI passes
		if stage != "" {
			ctx["stageName"] = stage
		}
		raw, _ := json.Marshal(ctx)
		_, out, err := runApp(t, string(raw))
		if err != nil {
			t.Fatalf("stage %q: %v\n%s", stage, err, out)
		}
		if n := strings.Count(string(out), "tributary: stage PROD retains its data: `cdk destroy` keeps the data, access-log and query-results buckets, the Kinesis stream"); n != want {
			t.Errorf("stage %q: the retention notice printed %d times, want %d:\n%s", stage, n, want, out)
		}
		if n := strings.Count(string(out), "retains its data"); n != want {
			t.Errorf("stage %q: %d lines say the stage retains its data, want %d", stage, n, want)
		}
	}
}

// The README's performance figures are the benchmark's, as docs/producer.md's
// "Performance" table records them: each README row's figure is the producer
// column of the row there that names the same measure.
func TestReadmePerformanceIsTheBenchmarks(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	producer, err := os.ReadFile("../docs/producer.md")
	if err != nil {
		t.Fatal(err)
	}
	section := func(doc []byte, heading string) string {
		s := string(doc)
		i := strings.Index(s, heading+"\n")
		if i < 0 {
			t.Fatalf("no %q section", heading)
		}
		s = s[i+len(heading):]
		if j := strings.Index(s, "\n## "); j >= 0 {
			s = s[:j]
		}
		return s
	}
	cells := func(line string) []string {
		var out []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			out = append(out, strings.TrimSpace(c))
		}
		return out
	}
	// The benchmark's producer column, by measure: rows after a mode's first
	// row belong to that mode (file of 200 bytes, then stdin, ...).
	bench := map[string]string{}
	mode := ""
	for _, line := range strings.Split(section(producer, "## Performance"), "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| |") {
			continue
		}
		c := cells(line)
		if strings.Contains(c[0], ":") {
			mode = c[0][:strings.Index(c[0], ":")]
		}
		bench[mode+"/"+c[0][strings.LastIndex(c[0], ":")+1:]] = c[1]
	}
	want := map[string]string{
		"events/s":                            bench["file, 1,000,000 events of 200 bytes/ events/s"],
		"CPU s (user+sys) per million events": bench["file, 1,000,000 events of 200 bytes/CPU s (user+sys) per million events"],
		"peak RSS":                            bench["file, 1,000,000 events of 200 bytes/peak RSS"],
		"a file appended at 50,000 lines/s: write to arrival p99": bench["a followed file appended at 50,000 lines/s for 10 s/p99"],
	}
	got := map[string]string{}
	for _, line := range strings.Split(section(readme, "## How fast the producer is"), "\n") {
		if c := cells(line); strings.HasPrefix(line, "| ") && len(c) == 2 && c[1] != "" && !strings.HasPrefix(c[1], "-") {
			got[c[0]] = c[1]
		}
	}
	for measure, w := range want {
		if w == "" {
			t.Errorf("docs/producer.md's Performance table has no figure for %q", measure)
		} else if got[measure] != w {
			t.Errorf("README: %s = %q, want the benchmark's %q (docs/producer.md, Performance)", measure, got[measure], w)
		}
	}
}
