//go:build faults

package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These run the real cmd/local and cmd/producer binaries on the synthesized
// default assembly, on loopback, each bounded in time.

var localBinaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tributary-local-bin-")
	if err != nil {
		return "", err
	}
	outdirs = append(outdirs, dir) // removed with the assemblies
	for _, c := range []string{"local", "producer"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "../cmd/"+c).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", c, err, out)
		}
	}
	return dir, nil
})

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

type localRun struct {
	cmd      *exec.Cmd
	out      *syncBuffer
	apiPort  string
	bin, dir string
}

// startLocal runs `local up` on the default assembly without the host's
// producer and waits until it is ready.
func startLocal(t *testing.T, dir string) *localRun {
	t.Helper()
	return startLocalWith(t, dir, nil, false)
}

// startLocalWith runs `local up` on the assembly of settings, with the
// host's producer when withProducer (its stats every second).
func startLocalWith(t *testing.T, dir string, settings map[string]any, withProducer bool) *localRun {
	t.Helper()
	bin, err := localBinaries()
	if err != nil {
		t.Fatal(err)
	}
	r := &localRun{out: &syncBuffer{}, apiPort: freePort(t), bin: bin, dir: dir}
	producer := ""
	if withProducer {
		producer = filepath.Join(bin, "producer")
	}
	r.cmd = exec.Command(filepath.Join(bin, "local"), "up", "-assembly", synth(t, settings).outdir, "-dir", dir, "-producer", producer, "-stats", "1h")
	r.cmd.Env = append(os.Environ(), "LOCAL_API_PORT="+r.apiPort, "LOCAL_S3_PORT="+freePort(t), "TRIBUTARY_STATS_INTERVAL=1s")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.cmd.Process.Kill() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(r.out.String(), "Ctrl-C stops everything"); {
		if time.Now().After(deadline) {
			t.Fatalf("local up not ready in 20 s:\n%s", r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// send posts n events with the real producer (stdin, batches) and waits
// until every one is confirmed.
func (r *localRun) send(t *testing.T, from, n int) {
	t.Helper()
	var in bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&in, `{"n":%d}`+"\n", i)
	}
	cmd := exec.Command(filepath.Join(r.bin, "producer"), "-source", "stdin", "-url", "http://127.0.0.1:"+r.apiPort+"/PROD/v1",
		"-auth", "iam", "-region", "us-east-1", "-linger", "50ms", "-checkpoint", filepath.Join(r.dir, "cp.json"), "-dead-letter", filepath.Join(r.dir, "dl.ndjson"))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIALOCAL", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null")
	cmd.Stdin = &in
	done := make(chan error, 1)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(logs.String(), fmt.Sprintf(`"sent":%d`, n)) {
			t.Fatalf("producer: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("producer did not finish in 30 s:\n%s", logs.String())
	}
}

func (r *localRun) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = r.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if sig == syscall.SIGINT && err != nil {
			t.Fatalf("local up after Ctrl-C: %v\n%s", err, r.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("local up did not stop in 20 s after %v:\n%s", sig, r.out.String())
	}
}

// landed counts each event's copies in the objects under the default data prefix.
func landed(t *testing.T, dir string) map[string]int {
	t.Helper()
	return landedUnder(t, dir, "raw-data/")
}

func landedUnder(t *testing.T, dir, prefix string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	filepath.WalkDir(filepath.Join(dir, "s3", "buckets"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(path, "/"+prefix) {
			return err
		}
		f, _ := os.Open(path)
		defer f.Close()
		var rd io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			rd, _ = gzip.NewReader(f)
		}
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			line := sc.Text()
			i := strings.Index(line, `"n":`)
			seen[strings.TrimRight(line[i+4:], "}")]++
		}
		return nil
	})
	return seen
}

func wantLanded(t *testing.T, dir string, n int) {
	t.Helper()
	wantLandedUnder(t, dir, "raw-data/", n)
}

func wantLandedUnder(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	seen := landedUnder(t, dir, prefix)
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("event %d landed %d times, want once", i, seen[fmt.Sprint(i)])
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events landed, want %d", len(seen), n)
	}
}

// Ctrl-C before the buffering interval writes every accepted event to S3;
// a second run keeps what landed and adds to it.
func TestFaultLocalCtrlCInTheMiddleOfADelivery(t *testing.T) {
	dir := t.TempDir()
	r := startLocal(t, dir)
	r.send(t, 0, 3000)
	r.stop(t, syscall.SIGINT) // within the 60 s interval: nothing written yet
	wantLanded(t, dir, 3000)
	if !strings.Contains(r.out.String(), "stopped: 3000 events landed") {
		t.Errorf("last line: %s", r.out.String())
	}
	r = startLocal(t, dir)
	r.send(t, 3000, 500)
	r.stop(t, syscall.SIGINT)
	wantLanded(t, dir, 3500)
}

// kill -9 with events in the stream and the delivery buffer: the next run
// delivers them (the stream is on disk), each once.
func TestFaultLocalKilledThenStartedAgain(t *testing.T) {
	dir := t.TempDir()
	r := startLocal(t, dir)
	r.send(t, 0, 2000)
	r.stop(t, syscall.SIGKILL)
	if n := len(landed(t, dir)); n != 0 {
		t.Fatalf("%d events landed before the interval", n)
	}
	r = startLocal(t, dir)
	r.stop(t, syscall.SIGINT)
	wantLanded(t, dir, 2000)
}

// The S3 folder deleted under a running pipeline (before its first object):
// one line says so, and every event answered 200 still lands, once.
func TestFaultLocalS3FolderDeletedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	r := startLocal(t, dir)
	r.send(t, 0, 1000)
	if err := os.RemoveAll(filepath.Join(dir, "s3")); err != nil {
		t.Fatal(err)
	}
	r.send(t, 1000, 500)
	r.stop(t, syscall.SIGINT)
	wantLanded(t, dir, 1500)
	if n := strings.Count(r.out.String(), "was deleted; making it again"); n != 1 {
		t.Errorf("%d lines about the deleted folder, want 1:\n%s", n, r.out.String())
	}
}

// The host's producer following its files (customSettings: producerSource
// file, two files, gzip, the events/json/ prefix): lines appended to them
// under .local/host/ land once each, and a second run sends only what was
// appended since.
func TestFaultLocalFollowsTheHostsFiles(t *testing.T) {
	dir := t.TempDir()
	appendLines := func(file string, from, n int) {
		path := filepath.Join(dir, "host", "var", "log", "app", file)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err) // the pipeline makes the folders when it starts the producer
		}
		defer f.Close()
		for i := from; i < from+n; i++ {
			fmt.Fprintf(f, `{"n":%d}`+"\n", i)
		}
	}
	waitSent := func(r *localRun, n int) {
		t.Helper()
		log := filepath.Join(dir, "producer", "producer.log")
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(log)
			if strings.Contains(string(b), fmt.Sprintf(`"sent":%d,`, n)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the host's producer did not send %d events in 30 s:\n%s\n%s", n, b, r.out.String())
			}
		}
	}
	r := startLocalWith(t, dir, customSettings, true)
	appendLines("events.log", 0, 1000)
	appendLines("more.log", 1000, 500)
	waitSent(r, 1500)
	r.stop(t, syscall.SIGINT)
	wantLandedUnder(t, dir, "events/json/", 1500)

	r = startLocalWith(t, dir, customSettings, true)
	appendLines("events.log", 1500, 200)
	waitSent(r, 200)
	r.stop(t, syscall.SIGINT)
	wantLandedUnder(t, dir, "events/json/", 1700)
}

// A port in use and a missing cdk.out each stop `local up` with one line
// that says what to do.
func TestFaultLocalBadStarts(t *testing.T) {
	bin, err := localBinaries()
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"port in use", []string{"-assembly", synth(t, nil).outdir}, "LOCAL_API_PORT=" + port,
			"local: 127.0.0.1:" + port + " is in use (another `make local`?): stop it, or choose another port with LOCAL_API_PORT=<port>\n"},
		{"no cdk.out", []string{"-assembly", filepath.Join(t.TempDir(), "cdk.out")}, "",
			"local: no cloud assembly in "},
	} {
		cmd := exec.Command(filepath.Join(bin, "local"), append([]string{"up", "-dir", t.TempDir(), "-producer", ""}, c.args...)...)
		cmd.Env = append(os.Environ(), c.env, "LOCAL_S3_PORT="+freePort(t))
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(string(out), c.want) || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%s: exit %d (%v), output %q, want one line starting %q", c.name, code, err, out, c.want)
		}
	}
}
