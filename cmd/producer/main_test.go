package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"TRIBUTARY_BATCH_SIZE": "100", "TRIBUTARY_RATE": "2.5", "TRIBUTARY_URL": "https://from-env/PROD/v1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := parse([]string{"-url", "https://x.execute-api.eu-west-1.amazonaws.com/PROD/v1", "-concurrency", "8"}, lookup, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.batchSize != 100 || o.rate != 2.5 || o.concurrency != 8 || !strings.HasPrefix(o.url, "https://x.") {
		t.Errorf("options = %+v: want batch 100 and rate 2.5 from the environment, the flag's URL over the environment's", o)
	}
	for args, want := range map[string]string{
		"-url https://h/v1 -batch-size 1001": "-batch-size must be 1 to 1000, got 1001",
		"-url https://h/v1 -source file":     "-source file needs -files",
		"-url https://h/v1 -auth api-key":    "-auth api-key needs -api-key",
		"-url ftp://h":                       `-url must be the API's /v1 URL (http or https), got "ftp://h"`,
		"-url https://h/v1 -source kafka":    `-source must be synthetic, stdin or file, got "kafka"`,
		"-url https://h/v1 -concurrency 0":   "-concurrency must be 1 to 64, got 0",
		"-url https://h/v1 -queue-mib 0":     "-queue-mib must be 1 to 4096, got 0",
		"-url https://h/v1 -spool-mib 0":     "-spool-mib must be 1 to 1048576, got 0",
		"-url https://h/v1 -rotate-wait 0s":  "-linger, -max-backoff, -shutdown-timeout, -stats-interval, -poll and -rotate-wait must be above 0",
	} {
		_, err := parse(strings.Fields(args), func(string) (string, bool) { return "", false }, &bytes.Buffer{})
		if err == nil || err.Error() != want {
			t.Errorf("%s: err %v, want %q", args, err, want)
		}
	}
	_, err = parse(nil, func(k string) (string, bool) { return "x", k == "TRIBUTARY_CONCURRENCY" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `TRIBUTARY_CONCURRENCY="x"`) {
		t.Errorf("a bad environment value must name the variable: %v", err)
	}
}

// The spool is beside the checkpoint unless -spool says where.
func TestSpoolBesideTheCheckpoint(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	o, err := parse([]string{"-url", "https://h/v1", "-checkpoint", "/var/lib/p/cp.json"}, none, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.spoolPath(); got != "/var/lib/p/tributary-spool.ndjson" {
		t.Errorf("spool %q, want beside the checkpoint", got)
	}
	if o.spoolMiB != 256 {
		t.Errorf("-spool-mib defaults to %d, want 256", o.spoolMiB)
	}
	o, _ = parse([]string{"-url", "https://h/v1", "-spool", "/s/sp"}, none, &bytes.Buffer{})
	if got := o.spoolPath(); got != "/s/sp" {
		t.Errorf("spool %q, want -spool's", got)
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-help"}, nil, &out); code != 0 {
		t.Fatalf("-help exit code %d", code)
	}
	if !strings.Contains(out.String(), "TRIBUTARY_<FLAG>") {
		t.Error("help does not say how flags map to environment variables")
	}
	flags := []string{"url", "source", "rate", "files", "checkpoint", "dead-letter", "batch-size", "gzip", "linger", "concurrency",
		"queue-mib", "spool", "spool-mib", "auth", "api-key", "region", "max-backoff", "shutdown-timeout", "stats-interval", "poll", "rotate-wait", "log-level"}
	for _, f := range flags {
		if !regexp.MustCompile(`(?m)^  -` + f + `\b[^\n]*\n(    [^\n]*\n)*?    [^\n]*\(` + envName(f) + `\)`).MatchString(out.String()) {
			t.Errorf("help lacks -%s with %s", f, envName(f))
		}
	}
	if n := strings.Count(out.String(), "\n  -"); n != len(flags) {
		t.Errorf("help lists %d flags, this test knows %d: add the new ones here and to docs/producer.md", n, len(flags))
	}
}

// End to end through main's run: stdin to a fake API, structured logs, a
// final stats line.
func TestRunSendsStdin(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{ThrottleEvery: 3})
	defer api.Close()
	dir := t.TempDir()
	var logs bytes.Buffer
	code := run(context.Background(), []string{"-url", api.URL, "-source", "stdin", "-auth", "none", "-linger", "10ms",
		"-max-backoff", "20ms", "-dead-letter", filepath.Join(dir, "dl.ndjson"), "-checkpoint", filepath.Join(dir, "cp.json")},
		strings.NewReader("{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}"), &logs)
	if code != 0 || len(api.Events()) != 3 {
		t.Fatalf("exit %d, %d stored; logs:\n%s", code, len(api.Events()), logs.String())
	}
	var stats map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		if m["msg"] == "stats" {
			stats = m
		}
	}
	if stats == nil || stats["sent"] != 3.0 || stats["read"] != 3.0 || stats["dead_lettered"] != 0.0 {
		t.Errorf("final stats line = %v", stats)
	}
	if dl, err := os.ReadFile(filepath.Join(dir, "dl.ndjson")); err != nil || len(dl) != 0 {
		t.Errorf("the dead-letter file must be created at start and stay empty when nothing failed: %q, %v", dl, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cp.json")); !os.IsNotExist(err) {
		t.Error("the stdin source wrote a checkpoint")
	}
}

// The producer is plain Go: nothing of the CDK or jsii may reach its binary.
func TestImportsNoCDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "aws-cdk-go") || strings.Contains(dep, "jsii-runtime-go") || strings.Contains(dep, "constructs-go") {
			t.Errorf("the producer depends on %s", dep)
		}
	}
}

// The final stats line's rate is the events sent over the whole run: at
// least their number over the time run took from outside, at most their
// number over the time stdin was kept open. (The stats interval, 1 ms here,
// has nothing to do with it.)
func TestFinalStatsRateIsOverTheWholeRun(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	dir := t.TempDir()
	pr, pw := io.Pipe()
	const n, open = 100, 300 * time.Millisecond
	go func() {
		for i := range n {
			fmt.Fprintf(pw, "{\"a\":%d}\n", i)
		}
		time.Sleep(open)
		pw.Close()
	}()
	var logs bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"-url", api.URL, "-source", "stdin", "-auth", "none", "-linger", "10ms",
		"-stats-interval", "1ms", "-dead-letter", filepath.Join(dir, "dl.ndjson"), "-checkpoint", filepath.Join(dir, "cp.json")}, pr, &logs)
	took := time.Since(start)
	var last map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "stats" {
			last = m
		}
	}
	rate, _ := last["sent_per_s"].(float64)
	if code != 0 || last["sent"] != float64(n) {
		t.Fatalf("exit %d, final stats %v", code, last)
	}
	if low, high := n/took.Seconds(), n/open.Seconds(); rate < low*0.999 || rate > high*1.001 {
		t.Errorf("final rate %.1f events/s; the run sent %d events in between %v and %v: %.1f to %.1f", rate, n, open, took, low, high)
	}
}

// A Region it cannot read (-auth iam, a URL that names none, no -region)
// stops it at once with an error at the default level saying what to do.
func TestRegionItCannotReadIsSaidAtOnce(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"-url", "https://api.example.com/PROD/v1", "-auth", "iam", "-log-level", "info"}, nil, &out)
	if code != exitFailed || !strings.Contains(out.String(), `"level":"ERROR"`) || !strings.Contains(out.String(), "cannot read the Region") ||
		!strings.Contains(out.String(), "set -region") {
		t.Errorf("exit %d, logs:\n%s\nwant exit 1 with an ERROR saying to set -region", code, out.String())
	}
}

// producer replay needs -from and a known -reason, and never writes to an
// existing dead-letter file (the one it replays from least of all).
func TestReplayFlags(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	from := filepath.Join(t.TempDir(), "dl.ndjson")
	if err := os.WriteFile(from, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]string{
		"-url https://h/v1 -reason all":                                         "replay needs -from, the dead-letter file to send again",
		"-url https://h/v1 -from " + from + " -reason 404":                      `-reason must be one of shutdown, 5xx, 403, all, got "404"`,
		"-url https://h/v1 -from " + from + " -reason all -dead-letter " + from: "-dead-letter " + from + " exists: replay writes what fails again to a new file, never to one it could lose",
	} {
		if _, err := parseCmd(true, strings.Fields(args), none, &bytes.Buffer{}); err == nil || err.Error() != want {
			t.Errorf("%s: err %v, want %q", args, err, want)
		}
	}
	o, err := parseCmd(true, []string{"-url", "https://h/v1", "-from", from, "-reason", "403"}, none, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.deadLetter, strings.TrimSuffix(from, ".ndjson")+".replay-") || o.spoolPath() != "" {
		t.Errorf("dead-letter %q, spool %q: want a new file beside -from and no spool", o.deadLetter, o.spoolPath())
	}
	if _, err := parseCmd(true, []string{"-url", "https://h/v1", "-from", from, "-reason", "all", "-files", "x"}, none, &bytes.Buffer{}); err == nil {
		t.Error("replay took -files, which it has no use for")
	}
}

// The producer sets a soft memory limit of the queue's bound plus
// memoryHeadroom, unless GOMEMLIMIT says otherwise.
func TestMemoryLimitFollowsTheQueueUnlessGOMEMLIMITIsSet(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	if got, ok := memoryLimit(32<<20, unset); !ok || got != 56<<20 {
		t.Errorf("default queue: limit %d (set %v), want 56 MiB", got, ok)
	}
	for _, v := range []string{"off", "200MiB"} {
		if got, ok := memoryLimit(32<<20, func(k string) (string, bool) { return v, k == "GOMEMLIMIT" }); ok {
			t.Errorf("GOMEMLIMIT=%s: the producer sets %d, want GOMEMLIMIT's own", v, got)
		}
	}

	// And run applies it.
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	dir := t.TempDir()
	var logs bytes.Buffer
	code := run(context.Background(), []string{"-url", api.URL, "-source", "stdin", "-auth", "none", "-linger", "10ms", "-queue-mib", "8",
		"-dead-letter", filepath.Join(dir, "dl.ndjson"), "-checkpoint", filepath.Join(dir, "cp.json")}, strings.NewReader("{\"a\":1}\n"), &logs)
	if code != 0 {
		t.Fatalf("exit %d; logs:\n%s", code, logs.String())
	}
	if got := debug.SetMemoryLimit(-1); got != 32<<20 {
		t.Errorf("memory limit after run with -queue-mib 8: %d, want 32 MiB (8 MiB + 24 MiB)", got)
	}
}
