//go:build faults

// The fault-injection suite: it builds cmd/producer (with -race, and once
// without for the memory figures) and runs the binary as a process against
// the local fake API on loopback, through every way the producer has been
// seen to lose events. Each scenario counts its lines: lost (neither stored
// nor dead-lettered) must be 0, duplicates are logged, distinct lines must
// have distinct ids and a line of a file read twice must keep its id. Any
// "DATA RACE" in a producer's stderr fails the test. Everything is bounded by
// contexts and deadlines; nothing asserts how fast anything is.
//
//	go test -tags faults -count=1 -v ./cmd/producer/
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

var raceBin, plainBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "producer-faults-")
	if err != nil {
		panic(err)
	}
	raceBin, plainBin = filepath.Join(dir, "producer-race"), filepath.Join(dir, "producer")
	for _, b := range []struct {
		out  string
		args []string
	}{{raceBin, []string{"-race"}}, {plainBin, nil}} {
		args := append(append([]string{"build"}, b.args...), "-o", b.out, ".")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go %v: %v\n%s", args, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// scenario is one fault run: a directory, a fake API, the lines written.
type scenario struct {
	t       *testing.T
	dir     string
	api     *fakeapi.API
	dl, cp  string
	bin     string
	mu      sync.Mutex
	written map[int]bool // n of every line written
	peakRSS int64        // KiB, the largest of the processes run
	stderrs []string     // logs of the processes run, kept for the checks
	flags   []string     // per-scenario flags added to every start
	stderr  *os.File     // when set, the producers' stderr instead of a buffer
	env     []string     // when set, the producers' environment instead of the test's
}

func newScenario(t *testing.T, f fakeapi.Faults) *scenario {
	t.Helper()
	api := fakeapi.Start(f)
	t.Cleanup(api.Close)
	dir := t.TempDir()
	return &scenario{t: t, dir: dir, api: api, dl: filepath.Join(dir, "state", "dead-letter.ndjson"),
		cp: filepath.Join(dir, "state", "checkpoint.json"), bin: raceBin, written: map[int]bool{}}
}

func (s *scenario) path(name string) string { return filepath.Join(s.dir, name) }

// proc is a running producer.
type proc struct {
	s      *scenario
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	cancel context.CancelFunc
	hwm    atomic.Int64 // peak RSS in KiB
	dlAt   int          // entries in the dead-letter file when it started
}

// dlEntries counts the dead-letter file's lines.
func (s *scenario) dlEntries() int {
	raw, _ := os.ReadFile(s.dl)
	return bytes.Count(raw, []byte("\n"))
}

// wantExit is the exit status p must have: 3 when it dead-lettered events
// (the dead-letter file grew while it ran) or kept events in the spool,
// else 0.
func (p *proc) wantExit() int {
	if p.s.dlEntries() > p.dlAt || keptRe.MatchString(p.stderr.String()) {
		return 3
	}
	return 0
}

var keptRe = regexp.MustCompile(`"kept_in_spool":[1-9]`)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs the producer with the scenario's defaults, then args (later
// flags win); stdin may be nil.
func (s *scenario) start(stdin *os.File, args ...string) *proc {
	return s.startWith(nil, stdin, args...)
}

// startWith runs the producer under a wrapper command (such as a shell that
// sets a limit first).
func (s *scenario) startWith(wrapper []string, stdin *os.File, args ...string) *proc {
	s.t.Helper()
	base := []string{"-url", s.api.URL, "-source", "file", "-auth", "none", "-dead-letter", s.dl, "-checkpoint", s.cp,
		"-poll", "20ms", "-rotate-wait", "300ms", "-linger", "10ms", "-max-backoff", "50ms",
		"-shutdown-timeout", "2s", "-stats-interval", "1h", "-batch-size", "20", "-log-level", "debug"}
	all := append(append(base, s.flags...), args...)
	if len(args) > 0 && args[0] == "replay" { // no source, checkpoint or spool of its own
		all = append([]string{"replay", "-url", s.api.URL, "-auth", "none", "-linger", "10ms", "-max-backoff", "50ms",
			"-shutdown-timeout", "2s", "-stats-interval", "1h", "-batch-size", "20", "-log-level", "debug"}, args[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmdArgs := append(append(append([]string(nil), wrapper...), s.bin), all...)
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	if s.env != nil {
		cmd.Env = append(s.env, "GORACE=halt_on_error=0")
	}
	p := &proc{s: s, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{}), cancel: cancel, dlAt: s.dlEntries()}
	cmd.Stderr = p.stderr
	if s.stderr != nil {
		cmd.Stderr = s.stderr
	}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if err := cmd.Start(); err != nil {
		cancel()
		s.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	go p.watchRSS()
	s.t.Cleanup(func() { // a scenario that fails half-way leaves no producer running
		_ = cmd.Process.Kill()
		<-p.done
		cancel()
	})
	return p
}

// watchRSS keeps the process's peak resident set size (VmHWM), read from
// /proc until it exits. (wait4's ru_maxrss would not do: it starts from the
// test process's own size, which the child had before exec.)
func (p *proc) watchRSS() {
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	for {
		if raw, err := os.ReadFile(status); err == nil {
			if m := hwmRe.FindSubmatch(raw); m != nil {
				kib, _ := strconv.ParseInt(string(m[1]), 10, 64)
				p.hwm.Store(max(p.hwm.Load(), kib))
			}
		}
		select {
		case <-p.done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

var hwmRe = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// stop signals the producer and waits for it; it returns the exit code.
func (p *proc) stop(sig syscall.Signal) int {
	p.s.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	return p.wait()
}

// wait waits for the producer to exit (2 minutes at most) and checks its
// stderr for data races.
func (p *proc) wait() int {
	p.s.t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.cancel()
		<-p.done
		p.s.t.Errorf("the producer did not exit within a minute; stderr:\n%s", tail(p.stderr.String()))
	}
	p.cancel()
	out := p.stderr.String()
	p.s.stderrs = append(p.s.stderrs, out)
	if strings.Contains(out, "DATA RACE") {
		p.s.t.Errorf("the race detector reported a data race:\n%s", out)
	}
	p.s.peakRSS = max(p.s.peakRSS, p.hwm.Load())
	return p.cmd.ProcessState.ExitCode()
}

func tail(s string) string {
	if len(s) > 6000 {
		return "..." + s[len(s)-6000:]
	}
	return s
}

// logs is everything the scenario's producers wrote to stderr so far.
func (s *scenario) logs(running ...*proc) string {
	all := strings.Join(s.stderrs, "")
	for _, p := range running {
		all += p.stderr.String()
	}
	return all
}

// lines returns the lines n in [from, to), marking them written.
func (s *scenario) lines(from, to, pad int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for n := from; n < to; n++ {
		s.written[n] = true
		fmt.Fprintf(&b, `{"n":%d,"s":%q,"pad":"%s"}`+"\n", n, s.t.Name(), strings.Repeat("x", pad))
	}
	return b.String()
}

func (s *scenario) appendFile(name, text string) {
	s.t.Helper()
	f, err := os.OpenFile(s.path(name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		s.t.Fatal(err)
	}
}

// copytruncate does what logrotate's copytruncate does.
func (s *scenario) copytruncate(name, to string) {
	s.t.Helper()
	data, err := os.ReadFile(s.path(name))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(s.path(to), data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Truncate(s.path(name), 0); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) rename(from, to string) {
	s.t.Helper()
	if err := os.Rename(s.path(from), s.path(to)); err != nil {
		s.t.Fatal(err)
	}
}

var (
	nRe  = regexp.MustCompile(`"n":(\d+)`)
	idRe = regexp.MustCompile(`^\{"event_id":"([^"]+)"`)
)

// tally is what became of the lines written.
type tally struct {
	lost         []int
	stored, dups int
	dead         int
	badDL        []string       // dead-letter lines that are not whole JSON entries
	reasons      map[int]string // dead-letter reason per n
	idsOf        map[int]map[string]bool
	collisions   []string
	extra        []string // lines accounted for elsewhere (stderr, a pipe)
	extraHandled map[int]bool
}

func (s *scenario) count() tally {
	tl := tally{reasons: map[int]string{}, idsOf: map[int]map[string]bool{}, extraHandled: map[int]bool{}}
	stored := map[int]int{}
	nOf := map[string]int{}
	for _, rec := range s.api.Events() {
		// Keys come out sorted (event_id, event_time, n, pad, s): the start
		// of a record is enough, and quick with 500 KiB lines.
		head := rec[:min(len(rec), 200)]
		m, id := nRe.FindSubmatch(head), idRe.FindSubmatch(head)
		if m == nil || id == nil {
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		eventID := string(id[1])
		stored[n]++
		tl.stored++
		if tl.idsOf[n] == nil {
			tl.idsOf[n] = map[string]bool{}
		}
		tl.idsOf[n][eventID] = true
		if other, ok := nOf[eventID]; ok && other != n {
			tl.collisions = append(tl.collisions, fmt.Sprintf("id %s for lines %d and %d", eventID, other, n))
		}
		nOf[eventID] = n
	}
	dead := map[int]bool{}
	if raw, err := os.ReadFile(s.dl); err == nil {
		for _, l := range strings.SplitAfter(string(raw), "\n") {
			if l == "" {
				continue
			}
			var d struct {
				Reason    string          `json:"reason"`
				Event     json.RawMessage `json:"event"`
				Raw       string          `json:"raw"`
				RawBase64 []byte          `json:"raw_base64"`
			}
			if !strings.HasSuffix(l, "\n") || json.Unmarshal([]byte(l), &d) != nil {
				tl.badDL = append(tl.badDL, l)
				continue
			}
			d.Raw += string(d.RawBase64)
			if strings.Contains(d.Reason, "cut off at shutdown") {
				tl.extra = append(tl.extra, d.Raw) // its n may be cut: see stdinRest
				continue
			}
			if m := nRe.FindStringSubmatch(string(d.Event) + d.Raw); m != nil {
				n, _ := strconv.Atoi(m[1])
				dead[n] = true
				tl.reasons[n] = d.Reason
			}
		}
	}
	tl.dead = len(dead)
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.written {
		switch {
		case stored[n] > 0:
			tl.dups += stored[n] - 1
		case dead[n]:
		default:
			tl.lost = append(tl.lost, n)
		}
	}
	return tl
}

// finish waits until every line is stored or dead-lettered, then stops p
// with SIGTERM, which must exit 0, or 3 if it dead-lettered events.
func (s *scenario) finish(p *proc) {
	s.t.Helper()
	s.waitAll(p)
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		s.t.Errorf("exit %d, want %d", code, p.wantExit())
	}
}

// waitAll waits until every line written is stored or dead-lettered.
func (s *scenario) waitAll(running ...*proc) tally {
	s.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		tl := s.count()
		if len(tl.lost) == 0 {
			return tl
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d lines still neither stored nor dead-lettered after 45 s (first: %v); logs:\n%s", len(tl.lost), first(tl.lost), tail(s.logs(running...)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func first(ns []int) []int { return ns[:min(len(ns), 10)] }

// check is the scenario's verdict: no line lost, no id shared by two lines,
// no half entry in the dead-letter file; a line of a file keeps its id.
func (s *scenario) check(fileIDsStable bool) tally {
	s.t.Helper()
	tl := s.count()
	if len(tl.lost) > 0 {
		s.t.Errorf("LOST %d lines (first: %v)", len(tl.lost), first(tl.lost))
	}
	for _, c := range tl.collisions {
		s.t.Errorf("distinct lines share an id: %s", c)
	}
	for _, b := range tl.badDL {
		s.t.Errorf("dead-letter file holds a line that is not a whole entry: %.200q", b)
	}
	unstable := 0
	for _, ids := range tl.idsOf {
		if len(ids) > 1 {
			unstable++
		}
	}
	if fileIDsStable && unstable > 0 {
		s.t.Errorf("%d lines were sent with more than one id: duplicates that deduplication by event_id cannot remove", unstable)
	}
	s.t.Logf("RESULT %-40s lines %5d  lost %d  duplicates %4d  dead-lettered %4d  peak RSS %6d KiB",
		s.t.Name(), len(s.written), len(tl.lost), tl.dups, tl.dead, s.peakRSS)
	return tl
}

// 1. logrotate's copytruncate, while the producer runs and while it is stopped.
func TestFaultCopytruncateAPIUp(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 200, 40))
	s.waitAll(p)
	s.appendFile("app.log", s.lines(200, 300, 40))
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(300, 400, 40))
	s.finish(p)
	// Stopped: more lines, a copytruncate, and a new content longer than the
	// old offset (the case that used to resume in the middle of it).
	s.appendFile("app.log", s.lines(400, 500, 40))
	if err := os.Remove(s.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(500, 900, 40))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// 1b. copytruncate while the API is down and the queue is full: the rest of
// the old content is read from the copy.
func TestFaultCopytruncateAPIDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.flags = []string{"-files", s.path("app.log*"), "-queue-mib", "1"}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 1000, 2000)) // 2 MB: more than the queue takes
	waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(1000, 1300, 2000))
	time.Sleep(300 * time.Millisecond)
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
}

// 2. Truncated and rewritten, longer than before, within one poll; once with
// a rewrite that starts with the same header as before.
func TestFaultTruncateAndRewriteWithinOnePoll(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-poll", "500ms"}
	header := `{"header":"app started","pad":"` + strings.Repeat("h", 300) + "\"}\n"
	p := s.start(nil)
	s.appendFile("app.log", header+s.lines(0, 100, 40))
	s.waitAll(p)
	for round := 1; round <= 2; round++ {
		from := round * 1000
		rewrite := s.lines(from, from+200, 40)
		if round == 2 {
			rewrite = header + rewrite
		}
		if err := os.WriteFile(s.path("app.log"), []byte(rewrite), 0o644); err != nil { // truncates, then writes
			t.Fatal(err)
		}
		s.waitAll(p)
	}
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.check(true)
	if headers := bytes.Count(bytes.Join(s.api.Events(), nil), []byte(`"header":"app started"`)); headers != 2 {
		t.Errorf("the header line was stored %d times, want 2 (once per file content, with distinct ids)", headers)
	}
}

// 4. Rename rotation with a writer that keeps appending to the renamed file
// for a moment: read while the file is not matched any more, and across a
// restart.
func TestFaultRenameWithLaggingWriter(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-rotate-wait", "1s"}
	p := s.start(nil, "-files", s.path("app.log")) // the rotated name is not matched
	lag, err := os.OpenFile(s.path("app.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lag.WriteString(s.lines(0, 100, 40))
	s.waitAll(p)
	lag.WriteString(s.lines(100, 150, 40))
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(1000, 1100, 40))
	for i := 150; i < 300; i += 10 {
		lag.WriteString(s.lines(i, i+10, 40))
		time.Sleep(20 * time.Millisecond)
	}
	lag.Close()
	s.finish(p)
	// Across a restart, with the rotated names matched.
	p = s.start(nil, "-files", s.path("app.log*"))
	lag, err = os.OpenFile(s.path("app.log"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lag.WriteString(s.lines(1100, 1200, 40))
	s.waitAll(p)
	s.rename("app.log", "app.log.2")
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	lag.WriteString(s.lines(1200, 1300, 40)) // while stopped, to the renamed file
	s.appendFile("app.log", s.lines(2000, 2100, 40))
	p = s.start(nil, "-files", s.path("app.log*"))
	lag.WriteString(s.lines(1300, 1350, 40))
	lag.Close()
	s.finish(p)
	s.check(true)
}

// 5. The last line of a rotated file without a trailing newline: renamed
// (still matched), and deleted while followed.
func TestFaultUnterminatedLastLine(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	p := s.start(nil, "-files", s.path("app.log*")+","+s.path("other.log"))
	s.appendFile("app.log", s.lines(0, 50, 40)+strings.TrimSuffix(s.lines(50, 51, 40), "\n"))
	s.appendFile("other.log", s.lines(100, 110, 40)+strings.TrimSuffix(s.lines(110, 111, 40), "\n"))
	waitFor(t, "the complete lines", func() bool { return s.api.Requests() > 0 && len(s.api.Events()) >= 60 })
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(51, 60, 40))
	if err := os.Remove(s.path("other.log")); err != nil {
		t.Fatal(err)
	}
	s.finish(p)
	s.check(true)
}

// 6. Two rotations while the producer was stopped: the file in between is
// found, and so is the rest of the one being read.
func TestFaultTwoRotationsWhileStopped(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 100, 40))
	s.finish(p)
	s.appendFile("app.log", s.lines(100, 150, 40))
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(150, 250, 40))
	s.rename("app.log.1", "app.log.2")
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(250, 300, 40))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// 3. Inode reuse: rm + mv + create, three times across restarts and three
// times while running; new contents as long as the old ones.
func TestFaultInodeReuse(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log")}
	replace := func(from int) uint64 {
		if err := os.Remove(s.path("app.log")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.path("app.log.new"), []byte(s.lines(from, from+100, 40)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.rename("app.log.new", "app.log")
		return inode(t, s.path("app.log"))
	}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 100, 40))
	s.waitAll(p)
	reused := 0
	for round := 1; round <= 3; round++ {
		before := inode(t, s.path("app.log"))
		if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
			t.Errorf("exit %d, want %d", code, p.wantExit())
		}
		if replace(round*1000) == before {
			reused++
		}
		p = s.start(nil)
		s.waitAll(p)
	}
	for round := 4; round <= 6; round++ {
		before := inode(t, s.path("app.log"))
		if err := os.Remove(s.path("app.log")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the producer closes the deleted file after -rotate-wait
		if err := os.WriteFile(s.path("app.log.new"), []byte(s.lines(round*1000, round*1000+100, 40)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.rename("app.log.new", "app.log")
		if inode(t, s.path("app.log")) == before {
			reused++
		}
		s.waitAll(p)
	}
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	t.Logf("the file system reused the inode %d times of 6", reused)
	s.check(true)
}

func inode(t *testing.T, path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stdinPipe is a blocking pipe, as a shell gives one; the test keeps the read
// end too, to read afterwards what the producer never read.
func stdinPipe(t *testing.T) (r, w *os.File) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "stdin-r"), os.NewFile(uintptr(fds[1]), "stdin-w")
}

// stdinRest accounts for the lines still in the pipe after the producer
// exited (never read by it) and for a line it read part of at shutdown
// (dead-lettered as cut off, the rest still in the pipe). The writer closes
// its end when it has written everything.
func (s *scenario) stdinRest(r *os.File) {
	rest, _ := io.ReadAll(r)
	r.Close()
	tl := s.count()
	text := string(rest)
	if len(tl.extra) > 0 {
		text = strings.Join(tl.extra, "") + text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unread := 0
	for _, l := range strings.Split(text, "\n") {
		if m := nRe.FindStringSubmatch(l); m != nil && strings.HasSuffix(strings.TrimSpace(l), "}") {
			n, _ := strconv.Atoi(m[1])
			delete(s.written, n) // never read by the producer: not its to lose
			unread++
		}
	}
	s.t.Logf("%d lines were still in the pipe, unread (and %d cut off at shutdown)", unread, len(tl.extra))
}

// 7. stdin and SIGTERM: every line read is delivered, or kept in the spool
// and delivered by the next start, with the API down and with a slow API.
func TestFaultStdinSIGTERM(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
	}{{"api_down", fakeapi.Faults{Down: true}}, {"api_slow", fakeapi.Faults{Delay: 150 * time.Millisecond}}} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			r, w := stdinPipe(t)
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-concurrency", "2", "-queue-mib", "1")
			go func() {
				defer w.Close()
				for i := 0; i < 40000; i += 100 {
					if _, err := w.WriteString(s.lines(i, i+100, 60)); err != nil {
						t.Errorf("writing to the pipe: %v", err)
						return
					}
				}
			}()
			waitFor(t, "requests", func() bool { return s.api.Requests() > 3 })
			time.Sleep(200 * time.Millisecond)
			code := p.stop(syscall.SIGTERM)
			s.stdinRest(r)
			if code != p.wantExit() {
				t.Errorf("exit %d, want %d", code, p.wantExit())
			}
			if kept := len(s.spooled()); kept == 0 && c.faults.Down {
				t.Error("nothing was kept in the spool although the API was down")
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			if tl := s.check(false); len(tl.extra) > 0 {
				t.Errorf("%d lines cut off at shutdown; a stop reads the line in progress to its newline", len(tl.extra))
			}
		})
	}
}

// 7b. An idle stdin does not hold up the shutdown (the read waiting is
// ended, not waited for until -shutdown-timeout, an hour here), and lines
// written after the stop stay in the pipe.
func TestFaultStdinIdleAtSIGTERM(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1h")
	w.WriteString(s.lines(0, 100, 20))
	s.waitAll(p)
	code := p.stop(syscall.SIGTERM) // fails the test if it takes a minute
	late := s.lines(100, 110, 20)
	w.WriteString(late)
	w.Close()
	s.stdinRest(r)
	if code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.check(false)
	if tl := s.count(); tl.stored != 100 {
		t.Errorf("%d stored, want the 100 lines written before the stop", tl.stored)
	}
}

// 8. Trailing content after the JSON object dead-letters the whole line.
func TestFaultTrailingContent(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	var b strings.Builder
	b.WriteString(s.lines(0, 10, 10))
	bad := map[int]string{10: `{"n":10},{"n":99990}`, 11: `{"n":11}xyz`, 12: `{"n":12}}`, 13: `{"n":13} {"n":99991}`}
	for n := 10; n < 14; n++ {
		b.WriteString(bad[n] + "\n")
		s.written[n] = true
	}
	b.WriteString(s.lines(14, 20, 10))
	if err := os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := s.start(nil, "-files", s.path("app.log"))
	s.waitAll(p)
	p.stop(syscall.SIGTERM)
	tl := s.check(true)
	for n := range bad {
		if !strings.Contains(tl.reasons[n], "content after the object") {
			t.Errorf("line %d: dead-letter reason %q", n, tl.reasons[n])
		}
		if len(tl.idsOf[n]) > 0 {
			t.Errorf("line %d with trailing content was stored", n)
		}
	}
	if bytes.Contains(bytes.Join(s.api.Events(), nil), []byte("9999")) {
		t.Error("a value after the first object was stored")
	}
}

// 9. The dead-letter file cannot be written.
func TestFaultDeadLetterUnwritable(t *testing.T) {
	t.Run("refuses_to_start", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.WriteFile(s.path("a-file"), nil, 0o644)
		s.dl = filepath.Join(s.path("a-file"), "dead-letter.ndjson")
		s.appendFile("app.log", `{"n":1}`+"\n")
		p := s.start(nil, "-files", s.path("app.log"))
		code := p.wait()
		if code == 0 || !strings.Contains(s.logs(), "dead-letter file") || s.api.Requests() != 0 {
			t.Errorf("exit %d with %d requests; want a refusal to start; logs:\n%s", code, s.api.Requests(), s.logs())
		}
		if _, err := os.Stat(s.cp); !os.IsNotExist(err) {
			t.Error("a checkpoint was written by a producer that refused to start")
		}
	})

	// A file source: /dev/full (a full disk), loud, the checkpoint stays
	// before the events, exit 1; restarted, then fixed while running.
	t.Run("full_disk_file_source", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.MkdirAll(filepath.Dir(s.dl), 0o755)
		link := s.path("dl-link") // the producer's dead-letter path; s.dl is where it points once fixed
		if err := os.Symlink("/dev/full", link); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(s.lines(0, 50, 40))
		for n := 50; n < 60; n++ {
			fmt.Fprintf(&b, `{"n":%d, not json`+"\n", n)
			s.written[n] = true
		}
		b.WriteString(s.lines(60, 5000, 40))
		os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644)
		badAt := int64(strings.Index(b.String(), `{"n":50, not`))
		s.flags = []string{"-files", s.path("app.log"), "-queue-mib", "1", "-dead-letter", link}
		p := s.start(nil)
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		waitFor(t, "the lines before the bad ones", func() bool { return len(s.api.Events()) >= 50 })
		time.Sleep(1500 * time.Millisecond) // a checkpoint save or two
		if off := checkpointOffset(t, s.cp); off > badAt {
			t.Errorf("the checkpoint moved to %d, past the events not yet dead-lettered (at %d)", off, badAt)
		}
		if code := p.stop(syscall.SIGTERM); code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		p = s.start(nil) // still full: keeps retrying, then the disk is freed
		waitFor(t, "the error again", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		os.Symlink(s.dl, link+".new")
		os.Rename(link+".new", link)
		s.waitAll(p)
		waitFor(t, "a log line saying the dead-letter file recovered", func() bool { // logged just after the write
			return strings.Contains(p.stderr.String(), "can be written again")
		})
		if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
			t.Errorf("exit %d after the dead-letter file recovered", code)
		}
		s.check(true)
	})

	// A file size limit (RLIMIT_FSIZE, what a full disk does mid-write): the
	// write that crosses it is partial and must be cut back.
	t.Run("partial_write_cut_back", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		var b strings.Builder
		for n := 0; n < 300; n++ {
			fmt.Fprintf(&b, `{"n":%d, "not json":"%s"`+"\n", n, strings.Repeat("y", 700))
			s.written[n] = true
		}
		b.WriteString(s.lines(300, 400, 40))
		os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644)
		s.flags = []string{"-files", s.path("app.log")}
		// dash counts ulimit -f in 512-byte blocks: 64 KiB.
		p := s.startWith([]string{"/bin/sh", "-c", `ulimit -f 128 && exec "$0" "$@"`}, nil)
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		if code := p.stop(syscall.SIGTERM); code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		if tl := s.count(); len(tl.badDL) > 0 {
			t.Errorf("a partial write left %d half entries", len(tl.badDL))
		}
		p = s.start(nil)
		s.finish(p)
		s.check(true)
	})

	// stdin cannot be read again: at shutdown what the file did not take is
	// written in full to stderr, and the exit code says so.
	t.Run("full_disk_stdin", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{}) // s.dl stays a path that is never written
		r, w := stdinPipe(t)
		p := s.start(r, "-source", "stdin", "-shutdown-timeout", "500ms", "-dead-letter", "/dev/full")
		for n := 0; n < 20; n++ {
			fmt.Fprintf(w, `{"n":%d, not json`+"\n", n)
			s.written[n] = true
		}
		w.WriteString(s.lines(20, 40, 10))
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		waitFor(t, "the good lines", func() bool { return len(s.api.Events()) >= 20 })
		code := p.stop(syscall.SIGTERM)
		w.Close()
		s.stdinRest(r)
		if code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		logs := s.logs()
		for n := 0; n < 20; n++ {
			if !strings.Contains(logs, fmt.Sprintf(`{\"n\":%d, not json`, n)) {
				t.Errorf("line %d is neither in the dead-letter file nor on stderr", n)
			}
			delete(s.written, n) // accounted for on stderr
		}
		s.check(false)
	})
}

func checkpointOffset(t *testing.T, path string) int64 {
	off := int64(0)
	for _, f := range checkpointFiles(t, path) {
		off = max(off, f.Offset)
	}
	return off
}

// cpFile is what the scenarios look at in a checkpoint's record.
type cpFile struct {
	Generation uint64 `json:"generation"`
	Offset     int64  `json:"offset"`
}

// checkpointFiles is the records the producer would resume from: the
// checkpoint's, then the lines of its journal (<checkpoint>.journal) when
// the journal's epoch is the checkpoint's, a torn last line ignored. Read
// here independently of the producer's own reader.
func checkpointFiles(t *testing.T, path string) []cpFile {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var cp struct {
		Journal string   `json:"journal"`
		Files   []cpFile `json:"files"`
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatalf("checkpoint: %v: %s", err, raw)
	}
	files := make([]*cpFile, len(cp.Files))
	for i := range cp.Files {
		files[i] = &cp.Files[i]
	}
	journal, _ := os.ReadFile(path + ".journal")
	lines := strings.Split(string(journal), "\n")
	var header struct {
		Journal string `json:"journal"`
	}
	if cp.Journal != "" && len(lines) > 1 && json.Unmarshal([]byte(lines[0]), &header) == nil && header.Journal == cp.Journal {
		for _, l := range lines[1 : len(lines)-1] { // the last is "" or torn
			var jl struct {
				Slot      int     `json:"slot"`
				File      *cpFile `json:"file"`
				Forgotten bool    `json:"forgotten"`
			}
			if err := json.Unmarshal([]byte(l), &jl); err != nil {
				t.Fatalf("journal: %v: %s", err, l)
			}
			if jl.Slot == len(files) {
				files = append(files, nil)
			}
			files[jl.Slot] = jl.File // nil when forgotten
		}
	}
	var out []cpFile
	for _, f := range files {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// 10. A damaged checkpoint is set aside and the files read from the start;
// a source that does not use it leaves it alone.
func TestFaultDamagedCheckpoint(t *testing.T) {
	for name, content := range map[string]string{
		"empty":                          "",
		"truncated":                      `{"version":2,"files":[{"path":"/var/log/a`,
		"not_an_object":                  `[1,2,3]`,
		"negative_offset":                `{"version":2,"files":[{"path":"x","fingerprint":"00000000000000000000000000000000","fingerprint_bytes":10,"offset":-5,"chain":"` + strings.Repeat("0", 64) + `","tail":"0000000000000000","tail_bytes":0}]}`,
		"earlier_format_negative_offset": `{"files":{"/var/log/app.log":{"inode":1,"offset":-3}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{})
			os.MkdirAll(filepath.Dir(s.cp), 0o755)
			os.WriteFile(s.cp, []byte(content), 0o644)
			s.appendFile("app.log", s.lines(0, 100, 20))
			p := s.start(nil, "-files", s.path("app.log"))
			s.finish(p)
			aside, _ := filepath.Glob(s.cp + ".damaged-*")
			if len(aside) != 1 || !strings.Contains(s.logs(), "the checkpoint is damaged") {
				t.Errorf("set aside: %v; want one copy and a warning; logs:\n%s", aside, tail(s.logs()))
			} else if got, _ := os.ReadFile(aside[0]); string(got) != content {
				t.Errorf("the set-aside copy is %q, want the damaged checkpoint", got)
			}
			s.check(true)
		})
	}
	t.Run("synthetic_source_does_not_read_it", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.MkdirAll(filepath.Dir(s.cp), 0o755)
		os.WriteFile(s.cp, nil, 0o644)
		p := s.start(nil, "-source", "synthetic", "-rate", "200")
		waitFor(t, "events", func() bool { return len(s.api.Events()) > 20 })
		if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
			t.Errorf("exit %d; logs:\n%s", code, tail(s.logs()))
		}
		if got, err := os.ReadFile(s.cp); err != nil || len(got) != 0 {
			t.Errorf("the synthetic source touched the checkpoint: %q, %v", got, err)
		}
		if aside, _ := filepath.Glob(s.cp + ".damaged-*"); len(aside) > 0 {
			t.Errorf("the synthetic source set the checkpoint aside: %v", aside)
		}
	})
}

// 11. Answers that are not the documented ones, and partial batch failures:
// resent, never dead-lettered, never lost.
func TestFaultUndocumentedAnswersAndPartialFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
		batch  string
	}{
		{"408_202_204_200empty_batch", fakeapi.Faults{TimeoutEvery: 3, AcceptedEvery: 5, NoContentEvery: 7, EmptyOKEvery: 4}, "20"},
		{"408_202_204_200empty_single", fakeapi.Faults{TimeoutEvery: 3, AcceptedEvery: 5, NoContentEvery: 7, EmptyOKEvery: 4}, "1"},
		{"partial_batch_failures", fakeapi.Faults{PartialEvery: 2, ThrottleEvery: 5, FailEvery: 7, DropEvery: 11}, "20"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			s.appendFile("app.log", s.lines(0, 600, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-batch-size", c.batch)
			s.finish(p)
			tl := s.check(true)
			if tl.dead > 0 {
				t.Errorf("%d events dead-lettered: retrying fixes all of these answers", tl.dead)
			}
			if tl.dups == 0 && c.faults.AcceptedEvery > 0 {
				t.Error("no duplicates although 202 answers came after storing: were they counted as stored?")
			}
		})
	}
}

// 12. kill -9 at random moments, three times in a row, while a writer
// appends and rotates.
func TestFaultKill9ThreeTimes(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{ThrottleEvery: 5})
	s.flags = []string{"-files", s.path("app.log*")}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for n := 0; ; n += 20 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			s.appendFile("app.log", s.lines(n, n+20, 30))
			if n%6000 == 5980 { // a file lives about 4 s: time for a race-built producer to catch up after a restart
				os.Rename(s.path("app.log.1"), s.path("app.log.2"))
				os.Rename(s.path("app.log"), s.path("app.log.1"))
			}
		}
	}()
	for i := 0; i < 3; i++ {
		p := s.start(nil)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		p.stop(syscall.SIGKILL)
	}
	close(stop)
	<-writerDone
	p := s.start(nil)
	s.finish(p)
	s.check(true)
}

// A checkpoint of the earlier format is adopted where the inode still matches.
func TestFaultEarlierCheckpointFormat(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	first := s.lines(0, 50, 20)
	s.appendFile("a.log", first)
	s.mu.Lock()
	for n := 0; n < 50; n++ {
		delete(s.written, n) // confirmed by the earlier producer
	}
	s.mu.Unlock()
	s.appendFile("a.log", s.lines(50, 100, 20))
	s.appendFile("b.log", s.lines(100, 150, 20))
	os.MkdirAll(filepath.Dir(s.cp), 0o755)
	os.WriteFile(s.cp, fmt.Appendf(nil, `{"files":{%q:{"inode":%d,"offset":%d},%q:{"inode":%d,"offset":100}}}`,
		s.path("a.log"), inode(t, s.path("a.log")), len(first), s.path("b.log"), inode(t, s.path("b.log"))+1), 0o644)
	p := s.start(nil, "-files", s.path("*.log"))
	s.finish(p)
	tl := s.check(true)
	for n := 0; n < 50; n++ {
		if len(tl.idsOf[n]) > 0 {
			t.Fatalf("line %d, before the adopted offset, was sent again", n)
		}
	}
	logs := s.logs()
	if !strings.Contains(logs, "earlier checkpoint entry adopted") || !strings.Contains(logs, "earlier checkpoint entry not adopted") {
		t.Errorf("the adoption is not logged:\n%s", tail(logs))
	}
}

// Compressed rotated files matched by the patterns are skipped with a warning.
func TestFaultCompressedRotatedFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"n":777777}` + "\n"))
	zw.Close()
	os.WriteFile(s.path("app.log.2.gz"), gz.Bytes(), 0o644)
	s.appendFile("app.log", s.lines(0, 100, 20))
	p := s.start(nil, "-files", s.path("app.log*"))
	s.waitAll(p)
	time.Sleep(200 * time.Millisecond)
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	tl := s.check(true)
	if tl.stored != 100 || tl.dead != 0 {
		t.Errorf("stored %d, dead-lettered %d: want the 100 lines and nothing of the .gz file", tl.stored, tl.dead)
	}
	if dl, _ := os.ReadFile(s.dl); len(dl) > 0 {
		t.Errorf("the gzip file reached the dead-letter file: %.200q", dl)
	}
	if !strings.Contains(s.logs(), "skipping a compressed file") {
		t.Error("no warning about the compressed file")
	}
}

// Memory is bounded by -queue-mib while the API is down and lines are big:
// with a small queue and with the default one.
func TestFaultMemoryBoundedWithBigLines(t *testing.T) {
	for _, queueMiB := range []int64{16, 32} {
		t.Run(fmt.Sprintf("queue_%d_MiB", queueMiB), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			s.bin = plainBin // the race detector's shadow memory would hide the figure
			f, err := os.Create(s.path("big.log"))
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(f)
			for i := 0; i < 300; i++ { // 150 MB of 500 KiB lines
				w.WriteString(s.lines(i, i+1, 500<<10))
			}
			w.Flush()
			f.Close()
			p := s.start(nil, "-files", s.path("big.log"), "-queue-mib", fmt.Sprint(queueMiB), "-concurrency", "4", "-batch-size", "500")
			waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 20 })
			time.Sleep(time.Second)
			s.api.SetFaults(fakeapi.Faults{})
			s.finish(p)
			s.check(true)
			// The queue, 4 requests of up to 4 MiB with their bodies, the
			// runtime and the garbage collector's headroom: far below the
			// 150 MB an unbounded queue would hold.
			if bound := 3*queueMiB<<10 + 64<<10; s.peakRSS > bound {
				t.Errorf("peak RSS %d KiB with -queue-mib %d, above %d KiB: the queue is not bounded in bytes", s.peakRSS, queueMiB, bound)
			}
		})
	}
}

// SigV4 with -concurrency 8 (the deployed mode) under the race detector.
func TestFaultIAMAuthConcurrency8NoRace(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{RequireSigV4: true})
	s.appendFile("app.log", s.lines(0, 2000, 20))
	os.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", "/dev/null")
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	defer func() {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
			os.Unsetenv(k)
		}
	}()
	p := s.start(nil, "-files", s.path("app.log"), "-auth", "iam", "-region", "eu-west-1", "-concurrency", "8", "-batch-size", "1")
	s.finish(p)
	s.check(true)
}

// 13. Files are found while reading waits: the API is down, the queue full,
// and the live file is renamed over app.log.1 (deleting the one before) every
// second, as logrotate's create with rotate 1 does. Each file must be opened
// before the rename that deletes it.
func TestFaultFilesFoundWhileTheAPIIsDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	p := s.start(nil, "-files", s.path("app.log*"), "-queue-mib", "1")
	n := 0
	for i := 0; i < 40; i++ { // 4 files of 2,000 lines: far more than 1 MiB and the 1,024 lines in the channel
		s.appendFile("app.log", s.lines(n, n+200, 100))
		n += 200
		time.Sleep(100 * time.Millisecond)
		if i%10 == 9 {
			s.rename("app.log", "app.log.1")
		}
	}
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
}

// 14. copytruncate with a writer that does not append (no O_APPEND): its
// next line lands at its old offset, after a hole of NULs larger than the
// 4 MiB a line may take. The line after the hole must be read.
func TestFaultCopytruncateWriterWithoutAppend(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	w, err := os.OpenFile(s.path("app.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644) // no O_APPEND
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := s.start(nil, "-files", s.path("app.log*"), "-batch-size", "500")
	for n := 0; n < 2200; n += 100 { // 4.5 MB, more than the 4 MiB a line may hold
		w.WriteString(s.lines(n, n+100, 2000))
	}
	s.waitAll(p)
	s.copytruncate("app.log", "app.log.1")
	w.WriteString(s.lines(100000, 100050, 20))
	s.finish(p)
	s.check(true)
	if fi, err := os.Stat(s.path("app.log")); err != nil || fi.Size() < 4<<20+100 {
		t.Errorf("app.log should hold a hole of more than 4 MiB before its lines: %v, %v", fi.Size(), err)
	}
}

// 15. Blank lines count in the memory bound: one event, then 4 MiB of empty
// lines (4 million lines), then another, read while the API is down and the
// first event cannot be confirmed.
func TestFaultBlankLinesWhileTheAPIIsDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.bin = plainBin // the race detector's shadow memory would hide the figure
	content := s.lines(0, 1, 10) + strings.Repeat("\n", 4<<20) + s.lines(1, 2, 10)
	s.appendFile("app.log", content)
	p := s.start(nil, "-files", s.path("app.log"), "-queue-mib", "1", "-stats-interval", "50ms")
	waitFor(t, "both events to be read", func() bool { return strings.Contains(p.stderr.String(), `"read":2,`) })
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
	if bound := int64(64 << 10); s.peakRSS > bound { // the plain binary's baseline is about 20 MiB
		t.Errorf("peak RSS %d KiB with -queue-mib 1 and blank lines, above %d KiB: blank lines are held outside the queue's bound", s.peakRSS, bound)
	}
	if cp := checkpointOffset(t, s.cp); cp != int64(len(content)) {
		t.Errorf("the checkpoint is at %d, not at the end of the file", cp)
	}
}

// 16. A file read to its end is rewritten, within one poll, with other lines
// of the same byte length: no new bytes, yet every new line must be sent;
// then it is rotated to a name the patterns do not match.
func TestFaultRewriteOfTheSameLength(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-poll", "300ms"}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(100, 200, 20))
	s.waitAll(p)
	rewrite := s.lines(300, 400, 20) // as long, line for line
	if err := os.WriteFile(s.path("app.log"), []byte(rewrite), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitAll(p)
	s.rename("app.log", "app.log.1")
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.check(true)
	if !strings.Contains(s.logs(), "file truncated or rewritten") {
		t.Error("the rewrite is not logged")
	}
}

// 17. The patterns match the producer's own checkpoint and dead-letter file
// through another path (a symlinked directory): they must not be read as
// events, which would send them and dead-letter the dead-letter entries
// again, without end.
func TestFaultOwnFilesThroughASymlinkedDirectory(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{RejectContaining: "poison"})
	os.Mkdir(s.path("real"), 0o755)
	if err := os.Symlink("real", s.path("link")); err != nil {
		t.Fatal(err)
	}
	s.dl, s.cp = s.path("link/dead-letter.ndjson"), s.path("link/checkpoint.json")
	s.appendFile("real/app.log", s.lines(0, 50, 10)+"not json at all\n"+`{"n":50,"poison":true}`+"\n")
	s.written[50] = true
	p := s.start(nil, "-files", s.path("real/*"))
	s.waitAll(p)
	waitFor(t, "a checkpoint", func() bool { _, err := os.Stat(s.cp); return err == nil })
	// Once this line is stored, every file the patterns matched before it
	// was written has been read: what was read of them is delivered by the
	// SIGTERM.
	s.appendFile("real/app.log", s.lines(51, 52, 10))
	s.finish(p)
	tl := s.check(true)
	if events := s.api.Events(); len(events) != 51 {
		t.Errorf("%d events stored, want the 51 lines of app.log that are events; the first ones not of app.log:\n%s", len(events), notOf(events))
	}
	if raw, _ := os.ReadFile(s.dl); bytes.Count(raw, []byte("\n")) != 2 || tl.dead != 1 {
		t.Errorf("the dead-letter file holds %d entries, want the line that is not JSON and the poison event:\n%.600s", bytes.Count(raw, []byte("\n")), raw)
	}
}

var lineRe = regexp.MustCompile(`^\{"event_id":"[^"]+","event_time":"[^"]+","n":`)

// notOf lists stored events that are not lines the scenarios write.
func notOf(events [][]byte) string {
	var b strings.Builder
	for _, e := range events {
		if !lineRe.Match(e) && b.Len() < 600 {
			b.Write(e)
		}
	}
	return b.String()
}

// 18. A truncation is seen, the same content is written again, the producer
// is killed (kill -9) part-way through it, with the record from before the
// truncation still in the checkpoint (-rotate-wait 1m keeps it). The
// restart must resume the new content where it was, not where the old
// record says: every line must end up stored twice, with two ids.
func TestFaultKill9AfterATruncationAndTheSameContent(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-rotate-wait", "1m", "-concurrency", "1"}
	content := s.lines(0, 2000, 20)
	s.appendFile("app.log", content)
	p := s.start(nil)
	s.waitAll(p)
	s.api.SetFaults(fakeapi.Faults{Delay: 50 * time.Millisecond}) // 400 lines a second
	if err := os.Truncate(s.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the truncation to be seen", func() bool { return strings.Contains(p.stderr.String(), "file truncated or rewritten") })
	s.appendFile("app.log", content)
	waitFor(t, "a checkpoint part-way through the new content", func() bool {
		gens := checkpointGenerations(t, s.cp)
		return gens[0] == int64(len(content)) && gens[1] > 0 && gens[1] < int64(len(content))
	})
	p.stop(syscall.SIGKILL)
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil)
	waitFor(t, "every line to be stored twice", func() bool {
		tl := s.count()
		for n := range s.written {
			if len(tl.idsOf[n]) < 2 {
				return false
			}
		}
		return true
	})
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	tl := s.check(false)
	for n := range s.written {
		if len(tl.idsOf[n]) != 2 {
			t.Fatalf("line %d was stored with %d ids, want 2 (one per time it was written)", n, len(tl.idsOf[n]))
		}
	}
}

// checkpointGenerations is the offset of each generation in the checkpoint.
func checkpointGenerations(t *testing.T, path string) map[uint64]int64 {
	out := map[uint64]int64{}
	for _, f := range checkpointFiles(t, path) {
		out[f.Generation] = f.Offset
	}
	return out
}

// 19. Files that start like an idle followed file: worker logs that begin
// with the same banner line (one worker idle), and a file that begins with
// the same 300-byte header as an idle one and is deleted soon after it was
// written. Both must be read, banner and header included.
func TestFaultFilesStartingLikeAnIdleFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	banner := `{"msg":"worker started","version":"1.2.3"}` + "\n"
	header := `{"msg":"app started","pad":"` + strings.Repeat("h", 300) + `"}` + "\n"
	s.appendFile("w1.log", banner)
	s.appendFile("h1.log", header)
	p := s.start(nil, "-files", s.path("w*.log")+","+s.path("h*.log"))
	waitFor(t, "the banner and the header", func() bool { return len(s.api.Events()) == 2 })
	s.appendFile("w2.log", banner+s.lines(0, 50, 20))
	s.appendFile("h2.log", header+s.lines(50, 100, 20))
	waitFor(t, "the producer to open h2.log", func() bool { return p.holds(s.path("h2.log")) })
	if err := os.Remove(s.path("h2.log")); err != nil {
		t.Fatal(err)
	}
	s.waitAll(p)
	waitFor(t, "both banners and both headers", func() bool { return len(s.api.Events()) == 104 })
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.check(true)
	all := bytes.Join(s.api.Events(), nil)
	if b, h := bytes.Count(all, []byte("worker started")), bytes.Count(all, []byte(`"app started"`)); b != 2 || h != 2 {
		t.Errorf("stored %d banners and %d headers, want 2 of each (one per file)", b, h)
	}
}

// holds reports whether the producer has path open.
func (p *proc) holds(path string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	fds, _ := os.ReadDir(dir)
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}

// 20. Each new log starts with the same banner line: two events, which must
// get two ids (deduplication by event_id would delete one), across a
// rotation and a kill -9.
func TestFaultTheSameBannerInEachNewFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	banner := `{"msg":"app started"}` + "\n"
	p := s.start(nil)
	s.appendFile("app.log", banner+s.lines(0, 100, 20))
	s.waitAll(p)
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", banner+s.lines(100, 200, 20))
	s.waitAll(p)
	p.stop(syscall.SIGKILL)
	s.appendFile("app.log", s.lines(200, 300, 20))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
	ids := map[string]bool{}
	for _, e := range s.api.Events() {
		if bytes.Contains(e, []byte(`"app started"`)) {
			ids[string(idRe.FindSubmatch(e)[1])] = true
		}
	}
	if len(ids) != 2 {
		t.Errorf("the two banners were stored with %d distinct ids, want 2", len(ids))
	}
}

// 21. A second producer started on the same checkpoint (a second systemd
// unit, a manual run) refuses to start, saying why, instead of sending every
// line again; the first goes on. Once the first is killed (kill -9), its
// lock is gone and a new one starts.
func TestFaultSecondProducerOnTheSameCheckpoint(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	s.appendFile("app.log", s.lines(0, 100, 20))
	p := s.start(nil)
	s.waitAll(p)
	second := s.start(nil)
	if code := second.wait(); code == 0 || !strings.Contains(second.stderr.String(), "another producer is running with the checkpoint") {
		t.Errorf("second producer: exit %d; want a refusal:\n%s", code, tail(second.stderr.String()))
	}
	s.appendFile("app.log", s.lines(100, 200, 20))
	s.waitAll(p)
	p.stop(syscall.SIGKILL)
	s.appendFile("app.log", s.lines(200, 300, 20))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// 22. Lines that are not valid UTF-8 (a key, a value, a line that is not
// JSON): JSON text must be UTF-8, so each is dead-lettered with the reason
// and its exact bytes (raw_base64), never sent with bytes replaced or a
// field merged away.
func TestFaultLinesNotValidUTF8(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	bad := map[int]string{
		10: "{\"n\":10,\"\xffkey\":1,\"\xfekey\":2}",
		11: "{\"n\":11,\"v\":\"caf\xe9 \xff\xfe\"}",
		12: "\"n\":12 \xff\xfe latin-1 caf\xe9",
	}
	text := s.lines(0, 10, 10)
	for n := 10; n < 13; n++ {
		text += bad[n] + "\n"
		s.written[n] = true
	}
	s.appendFile("app.log", text+s.lines(13, 20, 10))
	p := s.start(nil, "-files", s.path("app.log"))
	s.finish(p)
	tl := s.check(true)
	for n := range bad {
		if len(tl.idsOf[n]) > 0 || !strings.Contains(tl.reasons[n], "UTF-8") {
			t.Errorf("line %d: stored %d times, dead-letter reason %q; want it dead-lettered as not UTF-8", n, len(tl.idsOf[n]), tl.reasons[n])
		}
	}
	raw, _ := os.ReadFile(s.dl)
	for n, line := range bad {
		var found bool
		for _, l := range strings.Split(string(raw), "\n") {
			var d struct {
				RawBase64 []byte `json:"raw_base64"`
			}
			if json.Unmarshal([]byte(l), &d) == nil && string(d.RawBase64) == line {
				found = true
			}
		}
		if !found {
			t.Errorf("line %d is not in the dead-letter file byte for byte", n)
		}
	}
}

// 23. Lines at the 4 MiB a line may hold: one of exactly 4 MiB is
// dead-lettered as too large an event (what it is), one over it as longer
// than 4 MiB (kept truncated); the lines around them are sent.
func TestFaultLinesAtTheLineLimit(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	exact := func(n, size int) string { // {"n":..,"pad":"yyy"} of size bytes, newline not counted
		head := fmt.Sprintf(`{"n":%d,"pad":"`, n)
		s.written[n] = true
		return head + strings.Repeat("y", size-len(head)-2) + `"}` + "\n"
	}
	s.appendFile("app.log", s.lines(0, 5, 10)+exact(5, 4<<20)+exact(6, 4<<20+3)+s.lines(7, 12, 10))
	p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "500")
	s.finish(p)
	tl := s.check(true)
	if r := tl.reasons[5]; !strings.Contains(r, "event is") || strings.Contains(r, "longer than") {
		t.Errorf("a line of exactly 4 MiB: reason %q, want the event's size, not longer than 4 MiB", r)
	}
	if r := tl.reasons[6]; !strings.Contains(r, "line longer than 4194304 bytes") {
		t.Errorf("a line over 4 MiB: reason %q", r)
	}
}

// A redirect is never followed: with the API key and with SigV4 (whose
// session token would travel too), a 301, 302, 307 or 308 to another host
// sends that host nothing, and every event is dead-lettered with the status
// and the location it named.
func TestFaultRedirectsAreNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var seen []string // what reached the other host
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s x-api-key=%q token=%q", r.Method, r.URL.Path, r.Header.Get("x-api-key"), r.Header.Get("X-Amz-Security-Token")))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"sequenceNumber":"1","shardId":"shardId-000000000000"}`) // as if it were the API
	}))
	defer elsewhere.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	for i, status := range []int{301, 302, 307, 308} {
		auth := []string{"-auth", "api-key", "-api-key", "the-key"}
		if i%2 == 1 {
			auth = []string{"-auth", "iam", "-region", "eu-west-1"}
		}
		t.Run(fmt.Sprintf("%d %s", status, auth[1]), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Redirect: status, RedirectTo: elsewhere.URL})
			s.appendFile("app.log", s.lines(0, 1000, 20))
			p := s.start(nil, append([]string{"-files", s.path("app.log")}, auth...)...)
			s.waitAll(p)
			p.stop(syscall.SIGTERM)
			tl := s.check(true)
			want := fmt.Sprintf("HTTP %d redirect to %q, not followed", status, elsewhere.URL+"/PROD/v1/batch")
			if tl.dead != 1000 || tl.stored != 0 || !strings.HasPrefix(tl.reasons[0], want) {
				t.Errorf("dead-lettered %d, stored %d, reason %q; want 1000 dead-lettered with a reason starting %q", tl.dead, tl.stored, tl.reasons[0], want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) > 0 {
				t.Errorf("%d requests reached the host the redirect named, first: %s", len(seen), seen[0])
			}
		})
	}
}

// SIGHUP and SIGQUIT stop the producer as SIGTERM does: every line read
// from stdin is delivered or dead-lettered, with the API down and slow.
func TestFaultStdinSIGHUPAndSIGQUIT(t *testing.T) {
	for _, c := range []struct {
		name   string
		sig    syscall.Signal
		faults fakeapi.Faults
	}{
		{"SIGHUP_api_down", syscall.SIGHUP, fakeapi.Faults{Down: true}},
		{"SIGQUIT_api_slow", syscall.SIGQUIT, fakeapi.Faults{Delay: 150 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			r, w := stdinPipe(t)
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-concurrency", "2", "-queue-mib", "1")
			go func() {
				defer w.Close()
				for i := 0; i < 5000; i += 100 {
					if _, err := w.WriteString(s.lines(i, i+100, 60)); err != nil {
						t.Errorf("writing to the pipe: %v", err)
						return
					}
				}
			}()
			waitFor(t, "requests", func() bool { return s.api.Requests() > 3 })
			code := p.stop(c.sig)
			s.stdinRest(r)
			if code != p.wantExit() {
				t.Errorf("exit %d, want %d (killed by %v?)", code, p.wantExit(), c.sig)
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			tl := s.check(false)
			if tl.stored+tl.dead == 0 {
				t.Error("nothing stored or dead-lettered")
			}
		})
	}
}

// A stderr whose reader has gone (a closed pipe) does not stop the
// producer: its log lines fail, and every event is still stored.
func TestFaultStderrReaderGone(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stderr = w
	p := s.start(nil, "-files", s.path("app.log"))
	w.Close()
	if _, err := r.Read(make([]byte, 1)); err != nil { // the producer has started logging
		t.Fatal(err)
	}
	r.Close()
	s.appendFile("app.log", s.lines(0, 1000, 20)) // -log-level debug: a log line per batch at least
	s.waitAll(p)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	s.check(true)
}

// A packed answer that counts fewer events than were sent (the API stored
// the first half of each batch and said so) confirms only those: the rest
// are sent again, and nothing is lost.
func TestFaultPackedAnswerCountsFewerEvents(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{PackedShortEvery: 2})
	s.appendFile("app.log", s.lines(0, 2000, 20))
	p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "100")
	s.finish(p)
	if tl := s.check(true); tl.dead > 0 {
		t.Errorf("%d events dead-lettered; the API stored them when they were sent again", tl.dead)
	}
}

// An API that does not decode gzip (415, or 400 for the bytes read as JSON,
// while the same events sent plain are taken): the producer sends plain from
// then on, says so once, and every event is stored.
func TestFaultAPIDoesNotDecodeGzip(t *testing.T) {
	for _, status := range []int{415, 400} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{GzipRefused: status})
			s.appendFile("app.log", s.lines(0, 2000, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "100", "-log-level", "info")
			s.finish(p)
			tl := s.check(true)
			if tl.dead > 0 || tl.stored < 2000 {
				t.Errorf("%d stored, %d dead-lettered; want all 2000 stored", tl.stored, tl.dead)
			}
			if n := strings.Count(s.logs(), "sending them plain from now on"); n != 1 {
				t.Errorf("%d log lines say the producer sends plain, want 1:\n%s", n, tail(s.logs()))
			}
		})
	}
}

// The end of stdin with the API down: the producer stops on its own once
// the API has confirmed nothing for -shutdown-timeout, every event kept in
// the spool, and exits 3; the next start sends them.
func TestFaultStdinEndWithTheAPIDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	if err := os.WriteFile(s.path("events.ndjson"), []byte(s.lines(0, 500, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(s.path("events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := s.start(in, "-source", "stdin", "-shutdown-timeout", "1s")
	select {
	case <-p.done:
	case <-time.After(30 * time.Second): // bounds the test, not the producer's speed
		t.Fatalf("the producer is still running 30 s after the end of its input with -shutdown-timeout 1s:\n%s", tail(p.stderr.String()))
	}
	if code := p.wait(); code != 3 {
		t.Errorf("exit %d, want 3 (events kept in the spool)", code)
	}
	if kept, dead := len(s.spooled()), s.dlEntries(); kept != 500 || dead != 0 {
		t.Errorf("%d kept in the spool, %d dead-lettered; want all 500 kept", kept, dead)
	}
	s.api.SetFaults(fakeapi.Faults{})
	s.sendSpool()
	if tl := s.check(false); tl.stored != 500 {
		t.Errorf("%d stored after the restart, want 500", tl.stored)
	}
}

// The exit status says whether the run handed everything to the API: 0
// when every event was stored, 3 when an event was dead-lettered, or when
// the checkpoint could not be saved (every event stored, but a restart
// would send them again).
func TestFaultExitStatus(t *testing.T) {
	for _, c := range []struct {
		name    string
		bad     bool // a line that is not an object
		cpStuck bool // once the file's seed is saved, the checkpoint's temporary file cannot be created, even by root
		want    int
		log     string
	}{
		{"all_stored", false, false, 0, `"msg":"stopped"`},
		{"dead_lettered", true, false, 3, `"dead_lettered":1`},
		{"checkpoint_not_saved", false, true, 3, "the checkpoint could not be saved"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{})
			text := s.lines(0, 100, 20)
			if c.bad {
				text += `{"n":100}x` + "\n"
				s.written[100] = true
			}
			s.appendFile("app.log", text+s.lines(101, 200, 20))
			p := s.start(nil, "-files", s.path("app.log"))
			s.waitAll(p)
			if c.cpStuck { // a new file's lines wait for its seed to be saved: these are sent
				waitFor(t, "the checkpoint", func() bool { return checkpointOffset(t, s.cp) > 0 })
				waitFor(t, "a directory in the way", func() bool { return os.Mkdir(s.cp+".tmp", 0o755) == nil })
				s.appendFile("app.log", s.lines(200, 300, 20))
				s.waitAll(p)
			}
			if code := p.stop(syscall.SIGTERM); code != c.want {
				t.Errorf("exit %d, want %d; logs:\n%s", code, c.want, tail(s.logs()))
			}
			s.check(true)
			if !strings.Contains(s.logs(), c.log) {
				t.Errorf("no log line says %s:\n%s", c.log, tail(s.logs()))
			}
		})
	}
}

// A line with a key twice is never merged (one value silently dropped): it
// is dead-lettered whole, event_id included. An event's own event_id is
// kept, a number too.
func TestFaultDuplicateKeysAndOwnEventIDs(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	dup := map[int]string{
		10: `{"n":10,"v":1,"v":2}`,
		11: `{"event_id":"mine-11","n":11,"event_id":"other-11"}`,
	}
	text := s.lines(0, 10, 10)
	for n := 10; n < 12; n++ {
		text += dup[n] + "\n"
		s.written[n] = true
	}
	text += `{"event_id":12,"n":12}` + "\n" + s.lines(13, 20, 10)
	s.appendFile("app.log", text)
	p := s.start(nil, "-files", s.path("app.log"))
	waitFor(t, "18 events stored", func() bool { return len(s.api.Events()) >= 18 })
	delete(s.written, 12) // its own id is not a string: count cannot tell it
	s.finish(p)
	tl := s.check(true)
	for n, key := range map[int]string{10: "v", 11: "event_id"} {
		if want := fmt.Sprintf("duplicate key %q", key); len(tl.idsOf[n]) > 0 || !strings.Contains(tl.reasons[n], want) {
			t.Errorf("line %d: stored %d times, reason %q; want it dead-lettered with %q", n, len(tl.idsOf[n]), tl.reasons[n], want)
		}
	}
	if !bytes.Contains(bytes.Join(s.api.Events(), nil), []byte(`{"event_id":12,`)) {
		t.Error(`the event's own "event_id":12 was not kept`)
	}
}

// Answers that never confirm, each given after the API stored the events (a
// 200 too large or too malformed to read, a 200 with the wrong record count,
// a 500): each batch is sent a bounded number of times, then dead-lettered
// with a reason naming the answer, said at the default level; never an
// endless loop of copies. Reading answers through a limit keeps memory
// bounded at -concurrency 64.
func TestFaultAnswersThatNeverConfirm(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
		reason string
		sends  int // the most a batch is sent: the first try and the bounded retries
	}{
		{"200_over_16MiB", fakeapi.Faults{HugeOKEvery: 1}, "HTTP 200 with an answer over 512 KiB, not read", 11},
		{"200_malformed", fakeapi.Faults{MalformedOKEvery: 1}, "unreadable batch answer", 11},
		{"200_wrong_record_count", fakeapi.Faults{ShortRecordsEvery: 1, Packing: ingest.PerEvent}, "batch answer with 19 records for 20 events", 11},
		{"500_after_storing", fakeapi.Faults{FailAfterStoreEvery: 1}, "HTTP 500: Internal server error", 21},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			s.bin = plainBin // the race detector's memory would hide the producer's
			s.appendFile("app.log", s.lines(0, 2000, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-concurrency", "64", "-log-level", "info")
			waitFor(t, "every line dead-lettered", func() bool { return s.count().dead == 2000 })
			if code := p.stop(syscall.SIGTERM); code != 3 {
				t.Errorf("exit %d, want 3 (events dead-lettered)", code)
			}
			tl := s.check(true)
			if tl.stored > 2000*c.sends {
				t.Errorf("%d copies stored for 2000 lines: more than %d sends each", tl.stored, c.sends)
			}
			if r := tl.reasons[0]; !strings.Contains(r, "no answer confirmed these events after") || !strings.Contains(r, c.reason) {
				t.Errorf("dead-letter reason %q, want one naming %q", r, c.reason)
			}
			if !strings.Contains(s.logs(), `"level":"WARN","msg":"events not stored; writing them to the dead-letter file"`) {
				t.Errorf("no log line at the default level says why:\n%s", tail(s.logs()))
			}
			if s.peakRSS > 200<<10 {
				t.Errorf("peak RSS %d KiB at -concurrency 64, want under 200 MiB", s.peakRSS)
			}
		})
	}
}

// Every condition that stops delivery is said at the default level at once,
// with what to do, and again at a bounded rate while it lasts (once every
// 10 s), never once per request: no AWS credentials with -auth iam (the
// README's stdin example, which then stops on its own, its events kept in
// the spool for the next start), an API answering 403 to everything, TLS
// to a plain HTTP listener.
func TestFaultSaysWhyDeliveryStops(t *testing.T) {
	// said waits (5 s at most: the promise is "within seconds") for a
	// WARN line holding what, and returns how many there are at the end.
	said := func(t *testing.T, p *proc, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("nothing at the default level says %q within 5 s:\n%s", what, tail(p.stderr.String()))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	count := func(s *scenario, msg, what string) (n int) {
		for _, l := range strings.Split(s.logs(), "\n") {
			if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, msg) && strings.Contains(l, what) {
				n++
			}
		}
		return n
	}
	stdinFile := func(s *scenario, n int) *os.File {
		if err := os.WriteFile(s.path("events.ndjson"), []byte(s.lines(0, n, 20)), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(s.path("events.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close() })
		return in
	}

	t.Run("no_credentials", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{RequireSigV4: true})
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
				s.env = append(s.env, kv)
			}
		}
		empty := s.path("empty")
		os.WriteFile(empty, nil, 0o644)
		s.env = append(s.env, "HOME="+s.dir, "AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty, "AWS_EC2_METADATA_DISABLED=true")
		// -shutdown-timeout 12s: the end of stdin with nothing confirmed
		// for 12 s stops it, time for the condition to be said twice.
		p := s.start(stdinFile(s, 500), "-source", "stdin", "-auth", "iam", "-region", "eu-west-1", "-log-level", "info", "-shutdown-timeout", "12s")
		said(t, p, "no usable AWS credentials for -auth iam")
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			t.Fatalf("still running 45 s after the end of stdin with -shutdown-timeout 12s:\n%s", tail(p.stderr.String()))
		}
		if code := p.wait(); code != 3 || !strings.Contains(p.stderr.String(), `"kept":500`) {
			t.Errorf("exit %d, want 3 with the 500 events kept in the spool:\n%s", code, tail(p.stderr.String()))
		}
		if n := count(s, "events not confirmed", "no usable AWS credentials"); n < 2 || n > 3 {
			t.Errorf("said %d times in about 12 s, want 2 or 3 (at once, then every 10 s):\n%s", n, tail(s.logs()))
		}
		if n, dl := len(s.spooled()), s.dlEntries(); n != 500 || dl != 0 {
			t.Errorf("%d events in the spool, %d dead-lettered; want all 500 kept for the next start", n, dl)
		}
		// Credentials fixed: the next start sends what the spool kept.
		s.env = nil
		s.api.SetFaults(fakeapi.Faults{})
		s.sendSpool()
		if tl := s.check(false); tl.stored != 500 || tl.dups != 0 {
			t.Errorf("%d stored, %d duplicates after the restart; want 500 exactly once", tl.stored, tl.dups)
		}
	})

	t.Run("403_to_everything", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{APIKey: "the-key"})
		s.appendFile("app.log", s.lines(0, 1000, 20))
		p := s.start(nil, "-files", s.path("app.log"), "-auth", "api-key", "-api-key", "another-key", "-log-level", "info")
		said(t, p, "the API refuses the requests: check that -auth is the API's apiAuth")
		s.waitAll(p)
		if code := p.stop(syscall.SIGTERM); code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		tl := s.check(true)
		if tl.dead != 1000 || !strings.HasPrefix(tl.reasons[0], "HTTP 403") {
			t.Errorf("%d dead-lettered, reason %q; want all 1000 with the 403", tl.dead, tl.reasons[0])
		}
		if n := count(s, "events not stored", "HTTP 403"); n < 1 || n > 2 {
			t.Errorf("said %d times for 50 batches refused, want once or twice:\n%s", n, tail(s.logs()))
		}
	})

	t.Run("tls_to_plain_http", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		url := strings.Replace(s.api.URL, "http://", "https://", 1)
		p := s.start(stdinFile(s, 100), "-source", "stdin", "-url", url, "-log-level", "info", "-shutdown-timeout", "2s")
		said(t, p, "TLS failed: check that -url is the API's https:// URL")
		if code := p.wait(); code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		if n, dl := len(s.spooled()), s.dlEntries(); n != 100 || dl != 0 {
			t.Errorf("%d events in the spool, %d dead-lettered; want all 100 kept for the next start", n, dl)
		}
		s.sendSpool() // -url fixed: the next start sends them
		if tl := s.check(false); tl.stored != 100 || tl.dups != 0 {
			t.Errorf("%d stored, %d duplicates after the restart; want 100 exactly once", tl.stored, tl.dups)
		}
	})
}

// The checkpoint's disk full (a file size limit that a checkpoint of one
// file fits and one of two does not): said at the default level, exit 3, and
// no id changes. The new file's lines wait until its seed is saved;
// after a restart (the disk freed) the lines since the last save are sent
// again with the ids they had, which deduplication removes.
func TestFaultCheckpointDiskFull(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app-*.log"), "-log-level", "info"}
	s.appendFile("app-a.log", s.lines(0, 500, 20))
	// dash counts ulimit -f in 512-byte blocks: 1,024 bytes, which a
	// checkpoint of one file (about 520 bytes with its journal epoch) fits
	// and one of two (the second's long name makes it about 1,130) does
	// not. The journal gets the same limit: an append that does not fit
	// folds instead. The second file's seed may reach the journal just
	// after a fold: its lines are then sent, and sent again after the
	// restart with the same ids.
	p := s.startWith([]string{"/bin/sh", "-c", `ulimit -f 2 && exec "$0" "$@"`}, nil)
	s.waitAll(p)
	waitFor(t, "the checkpoint saved with the first file", func() bool { return checkpointOffset(t, s.cp) > 0 })
	s.appendFile("app-b-"+strings.Repeat("x", 150)+".log", s.lines(500, 1000, 20))
	waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT SAVE THE CHECKPOINT") })
	s.appendFile("app-a.log", s.lines(1000, 1500, 20))
	waitFor(t, "the first file's new lines", func() bool { return len(s.api.Events()) >= 1000 })
	if code := p.stop(syscall.SIGTERM); code != 3 {
		t.Errorf("exit %d, want 3 (the checkpoint could not be saved)", code)
	}
	if !strings.Contains(s.logs(), `"level":"ERROR","msg":"CANNOT SAVE THE CHECKPOINT`) || !strings.Contains(s.logs(), "the checkpoint could not be saved") {
		t.Errorf("no error at the default level says the checkpoint was not saved:\n%s", tail(s.logs()))
	}
	p = s.start(nil)
	s.finish(p)
	if tl := s.check(true); tl.dups < 500 {
		t.Errorf("%d duplicates: want the lines since the last save sent again", tl.dups)
	}
}

// More matched files than descriptors (ulimit -n 256, 1,000 files with
// lines): delivery and the checkpoint keep theirs, the files beyond the
// budget wait, a warning names how many, and every line is stored.
func TestFaultMoreFilesThanDescriptors(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	for i := 0; i < 1000; i++ {
		s.appendFile(fmt.Sprintf("f%04d.log", i), s.lines(i*5, i*5+5, 20))
	}
	s.flags = []string{"-files", s.path("f*.log"), "-log-level", "info"}
	p := s.startWith([]string{"/bin/sh", "-c", `ulimit -n 256 && exec "$0" "$@"`}, nil)
	s.waitAll(p)
	if !strings.Contains(p.stderr.String(), `"msg":"matched files wait for a file descriptor`) {
		t.Errorf("no warning says files wait:\n%s", tail(p.stderr.String()))
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(s.logs()))
	}
	if tl := s.check(true); tl.stored != 5000 {
		t.Errorf("%d stored, want each of the 5,000 lines once", tl.stored)
	}
}

// spoolPath is where the producer keeps its spool: beside the checkpoint.
func (s *scenario) spoolPath() string {
	return filepath.Join(filepath.Dir(s.cp), "tributary-spool.ndjson")
}

// spooled is the spool's records not acknowledged: event_id to the line.
func (s *scenario) spooled() map[string]string {
	raw, _ := os.ReadFile(s.spoolPath())
	live := map[string]string{}
	bySeq := map[uint64]string{}
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		var r struct {
			Seq  uint64   `json:"seq"`
			ID   string   `json:"id"`
			Line string   `json:"line"`
			Ack  []uint64 `json:"ack"`
		}
		if !strings.HasSuffix(l, "\n") || json.Unmarshal([]byte(l), &r) != nil {
			continue
		}
		if r.Seq > 0 {
			live[r.ID], bySeq[r.Seq] = r.Line, r.ID
		}
		for _, a := range r.Ack {
			delete(live, bySeq[a])
		}
	}
	return live
}

// sendSpool starts a producer on an empty stdin with the API up: it sends
// what the spool holds and stops on its own, exit 0, the spool removed.
func (s *scenario) sendSpool() {
	s.t.Helper()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		s.t.Fatal(err)
	}
	defer devNull.Close()
	p := s.start(devNull, "-source", "stdin")
	if code := p.wait(); code != 0 {
		s.t.Errorf("the restart that sends the spool exited %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
	}
	if _, err := os.Stat(s.spoolPath()); !os.IsNotExist(err) {
		s.t.Errorf("the spool is still there after everything in it was sent: %v", err)
	}
}

// checkSpoolIDs checks that each event the spool held was stored exactly
// once, with the event_id the spool gave it.
func (s *scenario) checkSpoolIDs(ids map[string]string) {
	s.t.Helper()
	stored := map[string]int{}
	for _, rec := range s.api.Events() {
		if m := idRe.FindSubmatch(rec[:min(len(rec), 200)]); m != nil {
			stored[string(m[1])]++
		}
	}
	bad := 0
	for id := range ids {
		if stored[id] != 1 {
			bad++
		}
	}
	if bad > 0 {
		s.t.Errorf("%d of the %d events the spool held were not stored exactly once under their event_id", bad, len(ids))
	}
}

// Stdin with the API down: 5,000 events read (in the spool), then kill -9
// or SIGTERM; the restart with the API up stores all of them, each exactly
// once under the event_id it had. A SIGTERM keeps them in the spool, not
// the dead-letter file, says how many, and exits 3.
func TestFaultStdinSpoolKill9AndSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			r, w := stdinPipe(t)
			// Full batches of 500: 8 of them in flight and waiting, and
			// the lines between, hold the 5,000 while the API is down.
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-batch-size", "500", "-linger", "1s")
			text := s.lines(0, 5000, 60)
			go func() { _, _ = w.WriteString(text) }()
			waitFor(t, "5,000 events in the spool", func() bool { return len(s.spooled()) == 5000 })
			code := p.stop(sig)
			w.Close()
			r.Close()
			ids := s.spooled()
			if sig == syscall.SIGTERM {
				if code != 3 || !strings.Contains(p.stderr.String(), `"kept":5000`) {
					t.Errorf("exit %d, want 3 with 5000 kept in the spool; logs:\n%s", code, tail(p.stderr.String()))
				}
				if n := s.dlEntries(); n != 0 {
					t.Errorf("%d events dead-lettered; they belong in the spool", n)
				}
			}
			if len(ids) != 5000 {
				t.Fatalf("%d events in the spool after %v, want 5000", len(ids), sig)
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			if tl := s.check(true); tl.stored != 5000 || tl.dups != 0 {
				t.Errorf("%d stored, %d duplicates; want 5000 exactly once", tl.stored, tl.dups)
			}
			s.checkSpoolIDs(ids)
		})
	}
}

// The spool full (-spool-mib 1, about 3 MB of stdin, the API down): reading
// stops, the log and the stats say so, the file stays within its bound, and
// once the API is back every event is stored.
func TestFaultSpoolFull(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin", "-spool-mib", "1", "-stats-interval", "100ms")
	go func() {
		defer w.Close()
		for i := 0; i < 3000; i += 100 {
			if _, err := w.WriteString(s.lines(i, i+100, 1000)); err != nil {
				t.Errorf("writing to the pipe: %v", err)
				return
			}
		}
	}()
	waitFor(t, "the log to say the spool is full", func() bool {
		return strings.Contains(p.stderr.String(), "the spool is full") && strings.Contains(p.stderr.String(), `"spool_full":true`)
	})
	if fi, err := os.Stat(s.spoolPath()); err != nil || fi.Size() > 1<<20 {
		t.Errorf("spool %v, %v: want at most 1 MiB", fi.Size(), err)
	}
	if n := len(s.spooled()); n >= 3000 || n == 0 {
		t.Errorf("%d events in the spool; reading should have stopped before 3000", n)
	}
	s.api.SetFaults(fakeapi.Faults{})
	if code := p.wait(); code != 0 { // the end of stdin, every event confirmed
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
	}
	if !strings.Contains(p.stderr.String(), "the spool has room again") {
		t.Error("the log never said reading went on")
	}
	if tl := s.check(true); tl.stored != 3000 || tl.dups != 0 {
		t.Errorf("%d stored, %d duplicates; want 3000 exactly once", tl.stored, tl.dups)
	}
}

// The synthetic source with the API down, then kill -9: the restart stores
// every event that was in the spool, under its event_id.
func TestFaultSpoolSyntheticKill9(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	p := s.start(nil, "-source", "synthetic", "-rate", "500")
	waitFor(t, "events in the spool", func() bool { return len(s.spooled()) >= 300 })
	p.stop(syscall.SIGKILL)
	ids := s.spooled()
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil, "-source", "synthetic", "-rate", "1")
	waitFor(t, "the spool's events stored", func() bool { return len(s.api.Events()) >= len(ids) })
	if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.checkSpoolIDs(ids)
	t.Logf("RESULT %-40s spooled %5d at kill -9, stored %d", t.Name(), len(ids), len(s.api.Events()))
}

// copytruncate with a copy the patterns do not match: app.log only is
// followed, the API is down, 200 lines are read, logrotate copies app.log
// to app.log.1 and truncates it, then SIGTERM. The 200 lines cannot be read
// again from any followed file: they go to the spool at shutdown, and the
// restart with the API up stores each of them under its id.
func TestFaultCopytruncateUnmatchedCopy(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.flags = []string{"-files", s.path("app.log")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 200, 40))
	waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
	s.copytruncate("app.log", "app.log.1")
	waitFor(t, "the truncation seen", func() bool { return strings.Contains(p.stderr.String(), "file truncated or rewritten") })
	if code := p.stop(syscall.SIGTERM); code != 3 || !strings.Contains(p.stderr.String(), `"kept":200`) {
		t.Errorf("exit %d, want 3 with the 200 lines kept in the spool; logs:\n%s", code, tail(p.stderr.String()))
	}
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil)
	s.finish(p)
	if tl := s.check(true); tl.stored != 200 || tl.dead != 0 {
		t.Errorf("%d stored, %d dead-lettered; want the 200 lines stored", tl.stored, tl.dead)
	}
}

// The same with kill -9 instead of SIGTERM, and with a plain truncation
// and a deletion too: app.log only is followed, the API is down, 200 lines
// are read; then the file is copied (to app.log.1, not matched) and
// truncated, truncated, or deleted; a few polls later, kill -9. Nothing
// can read those lines again: they went to the spool when the follower saw
// it, and the restart with the API up stores each exactly once, with its
// id.
func TestFaultLinesOfAFileGoneKill9(t *testing.T) {
	for _, c := range []struct {
		name   string
		do     func(s *scenario)
		seenBy string // what the log says once the follower saw it
	}{
		{"copytruncate", func(s *scenario) { s.copytruncate("app.log", "app.log.1") }, "file truncated or rewritten"},
		{"truncate", func(s *scenario) {
			if err := os.Truncate(s.path("app.log"), 0); err != nil {
				s.t.Fatal(err)
			}
		}, "file truncated or rewritten"},
		{"delete", func(s *scenario) {
			if err := os.Remove(s.path("app.log")); err != nil {
				s.t.Fatal(err)
			}
		}, "stopped following a rotated file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			s.flags = []string{"-files", s.path("app.log")}
			p := s.start(nil)
			s.appendFile("app.log", s.lines(0, 200, 40))
			waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
			c.do(s)
			waitFor(t, "the follower to see it", func() bool { return strings.Contains(p.stderr.String(), c.seenBy) })
			time.Sleep(50 * time.Millisecond) // a poll or two
			p.stop(syscall.SIGKILL)
			s.api.SetFaults(fakeapi.Faults{})
			p = s.start(nil)
			s.finish(p)
			if tl := s.check(true); tl.stored != 200 || tl.dups != 0 || tl.dead != 0 {
				t.Errorf("%d stored, %d duplicates, %d dead-lettered; want the 200 lines stored exactly once", tl.stored, tl.dups, tl.dead)
			}
		})
	}
}

// A stop never cuts a stdin line: SIGTERM while half a line is in the pipe,
// the rest written 300 ms later (within -shutdown-timeout 2s). The line is
// read to its newline and stored whole; the line after it stays in the pipe.
func TestFaultStdinStopFinishesTheLine(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin")
	w.WriteString(s.lines(0, 10, 20))
	s.waitAll(p)
	whole := s.lines(10, 11, 2000)
	w.WriteString(whole[:1000])
	time.Sleep(200 * time.Millisecond) // the producer reads the first half
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	w.WriteString(whole[1000:] + s.lines(11, 12, 20))
	w.Close()
	code := p.wait()
	s.stdinRest(r)
	if code != 0 {
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
	}
	tl := s.check(false)
	if len(tl.idsOf[10]) != 1 || len(tl.extra) != 0 || tl.dead != 0 {
		t.Errorf("line 10: stored %d times, %d cut off, %d dead-lettered; want it stored whole", len(tl.idsOf[10]), len(tl.extra), tl.dead)
	}
	if _, unread := s.written[11]; unread {
		t.Error("line 11, written after the stop, was not left in the pipe")
	}
}

// storedIDs is the event_id of every stored event, with how many times.
func (s *scenario) storedIDs() map[string]int {
	ids := map[string]int{}
	for _, rec := range s.api.Events() {
		if m := idRe.FindSubmatch(rec[:min(len(rec), 200)]); m != nil {
			ids[string(m[1])]++
		}
	}
	return ids
}

// deadIDs is the event_id of every event in a dead-letter file.
func deadIDs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var d struct {
			Event struct {
				ID string `json:"event_id"`
			} `json:"event"`
		}
		if json.Unmarshal([]byte(l), &d) == nil && d.Event.ID != "" {
			ids = append(ids, d.Event.ID)
		}
	}
	return ids
}

// Replay: 300 lines refused with 403 (a wrong API key) are dead-lettered.
// A replay with the key fixed stores every one under its event_id and
// exits 0; one with the API still refusing writes them to a new
// dead-letter file, named in the log, and exits 3. The file replayed from
// is never changed.
func TestFaultReplay(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{APIKey: "right"})
	s.appendFile("app.log", s.lines(0, 300, 20))
	p := s.start(nil, "-files", s.path("app.log"), "-auth", "api-key", "-api-key", "wrong")
	s.finish(p)
	if tl := s.check(true); tl.dead != 300 {
		t.Fatalf("%d dead-lettered, want the 300 refused", tl.dead)
	}
	before, _ := os.ReadFile(s.dl)
	ids := deadIDs(t, s.dl)

	t.Run("still_refused", func(t *testing.T) {
		p := s.start(nil, "replay", "-from", s.dl, "-reason", "403", "-auth", "api-key", "-api-key", "wrong")
		code := p.wait()
		m := regexp.MustCompile(`"dead_letter_file":"([^"]+replay-[^"]+)"`).FindStringSubmatch(p.stderr.String())
		if code != 3 || m == nil {
			t.Fatalf("exit %d, want 3 naming a new dead-letter file; logs:\n%s", code, tail(p.stderr.String()))
		}
		if again := deadIDs(t, m[1]); len(again) != 300 {
			t.Errorf("the new dead-letter file holds %d events, want the 300", len(again))
		}
		if after, _ := os.ReadFile(s.dl); !bytes.Equal(before, after) {
			t.Error("the dead-letter file replayed from was changed")
		}
	})
	t.Run("fixed", func(t *testing.T) {
		p := s.start(nil, "replay", "-from", s.dl, "-reason", "403", "-auth", "api-key", "-api-key", "right")
		if code := p.wait(); code != 0 {
			t.Fatalf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
		}
		stored := s.storedIDs()
		for _, id := range ids {
			if stored[id] != 1 {
				t.Errorf("event %s stored %d times, want once under its id", id, stored[id])
				break
			}
		}
		if tl := s.check(true); tl.stored != 300 {
			t.Errorf("%d stored, want 300", tl.stored)
		}
		if after, _ := os.ReadFile(s.dl); !bytes.Equal(before, after) {
			t.Error("the dead-letter file replayed from was changed")
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(s.dl), "*replay-*")); len(left) != 1 {
			t.Errorf("replay files %v: want only the one of the replay that failed (an empty one is removed)", left)
		}
	})
}

// Replay chooses by reason: 403, shutdown (any last attempt), 5xx (also
// as the last attempt), all (a line that is not JSON fails again).
func TestFaultReplayReasonFilter(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	entry := func(n int, reason string, status int) string {
		ev := fmt.Sprintf(`{"event_id":"id-%d","event_time":"2026-01-01T00:00:00.000Z","n":%d}`, n, n)
		b, _ := json.Marshal(map[string]any{"time": "2026-01-01T00:00:00Z", "reason": reason, "status": status, "event": json.RawMessage(ev)})
		return string(b) + "\n"
	}
	var b strings.Builder
	for n := 0; n < 30; n++ {
		switch {
		case n < 10:
			b.WriteString(entry(n, "HTTP 403: Forbidden", 403))
		case n < 20:
			b.WriteString(entry(n, "not confirmed by the API before the shutdown deadline; last attempt: network: EOF", 0))
		default:
			b.WriteString(entry(n, "not confirmed by the API before the shutdown deadline; last attempt: HTTP 500: x", 0))
		}
	}
	b.WriteString(`{"time":"2026-01-01T00:00:00Z","reason":"not a JSON object","raw":"n 30 not json"}` + "\n")
	from := s.path("dl.ndjson")
	if err := os.WriteFile(from, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		reason string
		want   []int // the n stored once the replay is done
		exit   int
	}{
		{"5xx", rangeOf(20, 30), 0},
		{"403", rangeOf(0, 10), 0},
		{"shutdown", rangeOf(10, 30), 0},
		{"all", nil, 3}, // the line that is not JSON fails again
	} {
		before := len(s.api.Events())
		p := s.start(nil, "replay", "-from", from, "-reason", c.reason, "-dead-letter", s.path("again-"+c.reason+".ndjson"))
		if code := p.wait(); code != c.exit {
			t.Errorf("-reason %s: exit %d, want %d", c.reason, code, c.exit)
		}
		var got []int
		for _, rec := range s.api.Events()[before:] {
			if m := nRe.FindSubmatch(rec); m != nil {
				n, _ := strconv.Atoi(string(m[1]))
				got = append(got, n)
			}
		}
		slices.Sort(got)
		if c.want != nil && !slices.Equal(got, c.want) {
			t.Errorf("-reason %s stored %v, want %v", c.reason, got, c.want)
		}
		if c.reason == "all" && (len(got) != 30 || len(deadIDs(t, s.path("again-all.ndjson"))) != 0 || s.dlLines(s.path("again-all.ndjson")) != 1) {
			t.Errorf("-reason all stored %d (want 30) and should dead-letter only the line that is not JSON", len(got))
		}
	}
}

func rangeOf(from, to int) []int {
	var ns []int
	for n := from; n < to; n++ {
		ns = append(ns, n)
	}
	return ns
}

func (s *scenario) dlLines(path string) int {
	raw, _ := os.ReadFile(path)
	return bytes.Count(raw, []byte("\n"))
}

// A matched file found empty is held open, so that lines written to it and
// the file deleted before the next poll are still read; once deleted it is
// let go, also when nothing was ever written to it.
func TestFaultLinesWrittenToAnEmptyFileThenDeleted(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("*.log"), "-poll", "500ms"}
	p := s.start(nil)
	for round := 0; round < 4; round++ {
		name := fmt.Sprintf("job-%d.log", round)
		s.appendFile(name, "")
		waitFor(t, "the producer to hold "+name+" open", func() bool { return p.holds(s.path(name)) })
		if round < 3 {
			s.appendFile(name, s.lines(round*10, round*10+3, 40))
		}
		if err := os.Remove(s.path(name)); err != nil {
			t.Fatal(err)
		}
		s.waitAll(p)
		waitFor(t, "the producer to let the deleted "+name+" go", func() bool { return !p.holds(s.path(name) + " (deleted)") })
	}
	s.finish(p)
	if tl := s.check(true); tl.stored != 9 {
		t.Errorf("%d stored, want the 9 lines once each", tl.stored)
	}
}
