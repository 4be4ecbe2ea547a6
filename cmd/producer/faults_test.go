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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
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
	s.stopWanted(p)
}

// stopWanted stops p with SIGTERM and checks that it exits as it must (see
// wantExit).
func (s *scenario) stopWanted(p *proc) {
	s.t.Helper()
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

// feedStdin writes lines 0 to n-1, width bytes each, to the pipe w in the
// background, in groups of 100 so that the producer's reading paces it, then
// closes w.
func (s *scenario) feedStdin(w *os.File, n, width int) {
	go func() {
		defer w.Close()
		for i := 0; i < n; i += 100 {
			if _, err := w.WriteString(s.lines(i, min(i+100, n), width)); err != nil {
				s.t.Errorf("writing to the pipe: %v", err)
				return
			}
		}
	}()
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

// checkpointGenerations is the offset of each generation in the checkpoint.
func checkpointGenerations(t *testing.T, path string) map[uint64]int64 {
	out := map[uint64]int64{}
	for _, f := range checkpointFiles(t, path) {
		out[f.Generation] = f.Offset
	}
	return out
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
