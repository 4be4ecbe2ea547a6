//go:build faults

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

var (
	modelSeed = flag.Uint64("model.seed", 0, "first seed of TestModelFileSource (0: the CI seeds 1..modelCIRuns)")
	modelRuns = flag.Int("model.runs", 0, "sequences TestModelFileSource runs, seeds model.seed, model.seed+1, ... (0: 1 with -model.seed, else the CI number)")
	modelPlan = flag.String("model.plan", "", "run this action list (as a failure prints it) instead of seeded ones")
)

// modelCIRuns is how many seeded sequences run by default (seeds 1..12):
// about 35 s on a shared 2-core machine, with the limit plans. Later seeds
// are for runs on demand (seeds 13..112 pass, in about 3 minutes).
const modelCIRuns = 12

// TestModelFileSource drives the built producer (-source file) through
// random sequences of what happens to log files and to the producer and the
// API: appends (some lines written in two parts), rename rotation (the new
// file created at once or some polls later; two rotations within one poll),
// copytruncate, truncation (to nothing, or rewritten), deletes, new files,
// restarts (SIGTERM, SIGHUP, SIGQUIT), kill -9, a checkpoint that
// cannot be written (RLIMIT_FSIZE 0), and the API down, slow, storing half
// of each packed batch, or refusing (403). Each sequence is drawn from its
// seed; at its end the API is up, the producer runs until every line is
// accounted for (bounded) and is stopped with SIGTERM. Then every line
// written must be stored by the API or dead-lettered with a reason, except
// where following-files.md names a limit (each modelled where it applies),
// and every copy of a line must carry the same event_id, again except where
// the docs say otherwise.
//
//	go test -tags faults -count=1 ./cmd/producer/ -run TestModelFileSource               # CI: seeds 1..12 and modelLimitPlans
//	go test -tags faults -count=1 ./cmd/producer/ -run TestModelFileSource -model.runs=50 # seeds 1..50
//	go test -tags faults -count=1 ./cmd/producer/ -run TestModelFileSource -model.seed=N  # replay seed N
//	go test -tags faults -count=1 ./cmd/producer/ -run TestModelFileSource -model.plan='append:app.log:3 rotate ...'
//
// A failure prints its seed and its action list; the list replays the same
// actions (not the same timing) and can be cut down by hand.
func TestModelFileSource(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "producer-model")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if *modelPlan != "" {
		plan, err := parsePlan(*modelPlan)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("plan", func(t *testing.T) { runModel(t, bin, 0, plan) })
		return
	}
	first, runs := *modelSeed, *modelRuns
	switch {
	case first == 0 && runs == 0:
		first, runs = 1, modelCIRuns
		for _, name := range slices.Sorted(maps.Keys(modelLimitPlans)) {
			plan, err := parsePlan(modelLimitPlans[name])
			if err != nil {
				t.Fatal(err)
			}
			t.Run(name, func(t *testing.T) { runModel(t, bin, 0, plan) })
		}
	case first == 0:
		first = 1
	case runs == 0:
		runs = 1
	}
	for seed := first; seed < first+uint64(runs); seed++ {
		plan := genPlan(rand.New(rand.NewPCG(seed, 17)))
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runModel(t, bin, seed, plan) })
	}
}

// modelLimitPlans run by default beside the seeds: each meets one documented
// limit the model allows for, which the CI seeds may not reach (without the
// allowance, each fails).
var modelLimitPlans = map[string]string{
	// Lines 3 and 4 start a file of less than 256 bytes; copied while the
	// checkpoint knew it that short, they are sent again with other ids.
	"short_copy_other_ids":  "append:app.log:2 rotate append:app.log:2 stop:TERM append:app.log:4 start copytruncate wait:300 kill9",
	"deleted_while_stopped": "append:app.log:3 api:down wait:100 rotate stop:TERM delete:app.log.1 start",
	"rewritten_before_read": "stop:TERM append:app.log:3 rewrite:app.log:2 start",
}

// action is one step of a sequence, written op[:arg][:n] (see parseAction).
type action struct {
	op  string // append, split, create, rewrite, truncate, rotate, copytruncate, delete, stop, start, restart, kill9, api, wait
	arg string // a file name, a signal (TERM, HUP, QUIT), an API mode, or "fsize" for start
	n   int    // lines to write, or milliseconds to wait (for rotate: before app.log is created again)
}

func (a action) String() string {
	switch a.op {
	case "append", "split", "create", "rewrite":
		return fmt.Sprintf("%s:%s:%d", a.op, a.arg, a.n)
	case "wait":
		return fmt.Sprintf("wait:%d", a.n)
	case "rotate":
		if a.n > 0 {
			return fmt.Sprintf("rotate:%d", a.n)
		}
	case "delete", "truncate", "stop", "restart", "api":
		return a.op + ":" + a.arg
	case "start":
		if a.arg != "" {
			return "start:" + a.arg
		}
	}
	return a.op
}

func planString(plan []action) string {
	s := make([]string, len(plan))
	for i, a := range plan {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func parsePlan(s string) ([]action, error) {
	var plan []action
	for _, f := range strings.Fields(s) {
		parts := strings.Split(f, ":")
		a := action{op: parts[0]}
		switch {
		case len(parts) == 3 && slices.Contains([]string{"append", "split", "create", "rewrite"}, a.op):
			a.arg = parts[1]
			n, err := strconv.Atoi(parts[2])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("action %q: want a line count", f)
			}
			a.n = n
		case len(parts) == 2 && (a.op == "wait" || a.op == "rotate"):
			n, err := strconv.Atoi(parts[1])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("action %q: want milliseconds", f)
			}
			a.n = n
		case len(parts) == 2 && slices.Contains([]string{"delete", "truncate", "stop", "restart", "api", "start"}, a.op):
			a.arg = parts[1]
		case len(parts) == 1 && slices.Contains([]string{"rotate", "copytruncate", "start", "kill9"}, a.op):
		default:
			return nil, fmt.Errorf("action %q not understood", f)
		}
		plan = append(plan, a)
	}
	return plan, nil
}

// genPlan draws a sequence. It tracks which files exist and whether the
// producer runs, so that every action applies (a delete has a file to
// delete), and the plan alone replays the sequence.
func genPlan(r *rand.Rand) []action {
	files := []string{"app.log"}
	running := true
	extra := 0
	has := func(name string) bool { return slices.Contains(files, name) }
	shift := func() { // app.log.1 -> app.log.2 (over the old one), as logrotate rotate 2 does
		if has("app.log.1") {
			if !has("app.log.2") {
				files = append(files, "app.log.2")
			}
			files = slices.DeleteFunc(files, func(f string) bool { return f == "app.log.1" })
		}
		files = append(files, "app.log.1")
		sort.Strings(files)
	}
	sigs := []string{"TERM", "TERM", "HUP", "QUIT"}
	modes := []string{"up", "up", "down", "slow", "partial", "403"}
	plan := []action{{op: "append", arg: "app.log", n: 1 + r.IntN(8)}}
	for want := 15 + r.IntN(26); len(plan) < want; {
		var a action
		switch k := r.IntN(100); {
		case k < 26:
			a = action{op: "append", arg: "app.log", n: 1 + r.IntN(12)}
			if len(files) > 1 && r.IntN(5) == 0 { // a writer still writing a rotated file
				a.arg = files[r.IntN(len(files))]
			}
		case k < 30:
			// The live file only: a rotated file's unterminated last
			// line is sent once idle for -rotate-wait (following-files.md).
			a = action{op: "split", arg: "app.log", n: 1 + r.IntN(6)}
		case k < 38:
			a = action{op: "rotate"}
			if r.IntN(3) == 0 { // app.log created again only some polls later
				a.n = 30 + 10*r.IntN(18)
			}
			shift()
		case k < 41:
			// Two rotations within one poll: the first new app.log,
			// with a few lines, is app.log.1 before a poll may see it.
			plan = append(plan, action{op: "rotate"}, action{op: "append", arg: "app.log", n: 1 + r.IntN(4)})
			shift()
			a = action{op: "rotate"}
			shift()
		case k < 45:
			a = action{op: "copytruncate"}
			shift()
		case k < 47:
			a = action{op: "rewrite", arg: "app.log", n: 1 + r.IntN(6)}
		case k < 49:
			a = action{op: "truncate", arg: "app.log"} // the lines after it come with the next appends
		case k < 53:
			others := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == "app.log" })
			if len(others) == 0 {
				continue
			}
			a = action{op: "delete", arg: others[r.IntN(len(others))]}
			files = slices.DeleteFunc(files, func(f string) bool { return f == a.arg })
		case k < 57:
			extra++
			a = action{op: "create", arg: fmt.Sprintf("app.log-%d", extra), n: 1 + r.IntN(6)}
			files = append(files, a.arg)
			sort.Strings(files)
		case k < 63:
			if a = (action{op: "start"}); running {
				a = action{op: "restart", arg: sigs[r.IntN(len(sigs))]}
			}
			running = true
		case k < 68:
			if a = (action{op: "start"}); running {
				a = action{op: "kill9"}
			}
			running = true
		case k < 74:
			if running {
				a = action{op: "stop", arg: sigs[r.IntN(len(sigs))]}
			} else if a = (action{op: "start"}); r.IntN(3) == 0 {
				a.arg = "fsize"
			}
			running = !running
		case k < 84:
			a = action{op: "api", arg: modes[r.IntN(len(modes))]}
		default:
			a = action{op: "wait", n: 10 * r.IntN(40)}
		}
		plan = append(plan, a)
	}
	return plan
}

const (
	modelPoll = 20 * time.Millisecond
	// modelSeen is how long a running producer must have had a file in
	// view before the model deletes it or renames another over it: many
	// polls, so that a loss there is not the documented "less than a -poll
	// after it was created, before any poll found it".
	modelSeen = 500 * time.Millisecond
	// modelDetect is how long the model waits after destroying a file's
	// bytes (truncate, copytruncate, delete, a rename over it) before a
	// stop: see afterDetect.
	modelDetect = 10 * modelPoll
)

// mfile is what the model knows of a file: the lines it holds, in order.
type mfile struct {
	lines []int
	size  int64
	seen  time.Time // since when a running producer has had it in view (zero: not yet)
	short bool      // its first line is shorter than 256 bytes
	rest  []byte    // the end of its last line, not written yet (split)
	saved bool      // the checkpoint holds its record (this generation's)
}

// mline is where a line was written, for the report.
type mline struct {
	file   string
	action int
}

type mproc struct {
	cmd    *exec.Cmd
	stderr *modelBuffer
	done   chan struct{}
	cancel context.CancelFunc
	dlAt   int
	fsize  bool
	exited bool // on its own, noted once
}

type modelRun struct {
	t        *testing.T
	bin      string
	logs     string // the followed directory
	cp, dl   string
	api      *fakeapi.API
	p        *mproc
	files    map[string]*mfile
	written  map[int]mline
	exempt   map[int]string // lines a documented limit allows to be lost, and why
	idFree   map[int]string // lines the docs allow to carry more than one id, and why
	seq      int
	step     int
	stderrs  []string
	problems []string
	goneAt   time.Time // when the last action destroyed bytes of a followed file
}

func runModel(t *testing.T, bin string, seed uint64, plan []action) {
	dir := t.TempDir()
	m := &modelRun{t: t, bin: bin, logs: filepath.Join(dir, "logs"), cp: filepath.Join(dir, "state", "checkpoint.json"),
		dl: filepath.Join(dir, "state", "dead-letter.ndjson"), api: fakeapi.Start(fakeapi.Faults{}),
		files: map[string]*mfile{}, written: map[int]mline{}, exempt: map[int]string{}, idFree: map[int]string{}}
	defer m.api.Close()
	if err := os.MkdirAll(m.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if m.p != nil { // a sequence that stopped half-way leaves no producer running
			_ = m.p.cmd.Process.Kill()
			<-m.p.done
			m.p.cancel()
		}
	}()
	m.start(false)
	for i, a := range plan {
		m.step = i
		m.do(a)
	}
	m.step = len(plan)
	m.endLines()
	m.api.SetFaults(fakeapi.Faults{})
	if m.p != nil && m.p.fsize { // the disk freed: a producer that can save its checkpoint
		m.stop(syscall.SIGTERM)
	}
	if m.p == nil {
		m.start(false)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(m.verdict().lost) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	dlAt := m.p.dlAt
	code := m.stop(syscall.SIGTERM)
	if want := m.wantExit(dlAt); code != want {
		m.problems = append(m.problems, fmt.Sprintf("the last producer exited %d after SIGTERM, want %d", code, want))
	}
	v := m.verdict()
	for _, n := range v.lost {
		w := m.written[n]
		m.problems = append(m.problems, fmt.Sprintf("LOST line %d (written to %s by action %d: %s), neither stored nor dead-lettered",
			n, w.file, w.action, plan[min(w.action, len(plan)-1)]))
	}
	m.problems = append(m.problems, v.problems...)
	if len(m.problems) > 0 {
		replay := fmt.Sprintf("-model.plan='%s'", planString(plan))
		if seed != 0 {
			replay = fmt.Sprintf("-model.seed=%d (or %s)", seed, replay)
		}
		t.Errorf("seed %d: %d problems:\n  %s\nactions: %s\nreplay: go test -tags faults -count=1 ./cmd/producer/ -run TestModelFileSource %s\nexempt by documented limits: %d lines; ids allowed to differ: %d lines\nthe producers' stderr, oldest first:\n%s",
			seed, len(m.problems), strings.Join(m.problems[:min(len(m.problems), 20)], "\n  "), planString(plan), replay,
			len(m.exempt), len(m.idFree), modelTail(strings.Join(m.stderrs, "--- restarted\n")))
	}
}

func (m *modelRun) path(name string) string { return filepath.Join(m.logs, name) }

func (m *modelRun) do(a action) {
	t := m.t
	switch a.op {
	case "stop", "restart", "kill9":
		if m.p == nil {
			t.Logf("action %d: %v: the producer is not running, skipped", m.step, a)
			return
		}
	case "start":
		if m.p != nil {
			t.Logf("action %d: %v: the producer runs already, skipped", m.step, a)
			return
		}
	case "rotate", "copytruncate":
		if m.files["app.log"] == nil {
			t.Logf("action %d: %v: no app.log, skipped", m.step, a)
			return
		}
		m.endLines()
		m.shift()
	case "delete", "truncate":
		if m.files[a.arg] == nil { // a hand-cut plan may have dropped its creation
			t.Logf("action %d: %v: no such file, skipped", m.step, a)
			return
		}
		m.endLines()
	case "rewrite":
		m.endLines()
	}
	switch a.op {
	case "append", "create":
		m.write(a.arg, a.n, os.O_APPEND|os.O_CREATE|os.O_WRONLY)
	case "split":
		m.writeSplit(a.arg, a.n)
	case "truncate":
		// As rewrite, the lines after it written by later actions.
		m.exemptUnhandled(a.arg, "cut off by a truncation before it was read")
		if err := os.Truncate(m.path(a.arg), 0); err != nil {
			t.Fatal(err)
		}
		m.goneAt = time.Now()
		mf := m.files[a.arg]
		mf.lines, mf.size, mf.saved = nil, 0, false // a new generation
	case "rewrite":
		// following-files.md, Truncated: "it is read again from its
		// start": the bytes a truncation destroys before the producer read
		// them cannot be read by anyone; a line overwritten so may be lost.
		m.exemptUnhandled(a.arg, "overwritten by a truncate-and-rewrite before it was read")
		m.goneAt = time.Now()
		m.files[a.arg] = nil
		m.write(a.arg, a.n, os.O_TRUNC|os.O_CREATE|os.O_WRONLY)
	case "rotate":
		if err := os.Rename(m.path("app.log"), m.path("app.log.1")); err != nil {
			t.Fatal(err)
		}
		m.files["app.log.1"] = m.files["app.log"]
		m.files["app.log"] = nil
		time.Sleep(time.Duration(a.n) * time.Millisecond)
		m.write("app.log", 0, os.O_CREATE|os.O_WRONLY) // logrotate's create
	case "copytruncate":
		data, err := os.ReadFile(m.path("app.log"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.path("app.log.1"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(m.path("app.log"), 0); err != nil {
			t.Fatal(err)
		}
		m.goneAt = time.Now()
		old := m.files["app.log"]
		m.files["app.log.1"] = &mfile{lines: slices.Clone(old.lines), size: old.size, seen: m.seenNow(), short: old.short, saved: old.saved}
		if old.short {
			// following-files.md: "A file shorter than 256 bytes is known
			// only by its inode: ... and so is a copytruncate copy of it
			// (its few lines are sent again, with other ids)." What the
			// producer last knew of the file may be that short (it may
			// not have read it since, or saved it), whatever its size now.
			for _, n := range old.lines {
				m.idFree[n] = "in a copytruncate copy of a file that was shorter than 256 bytes"
			}
		}
		old.lines, old.size, old.saved = nil, 0, false // a new generation
	case "delete":
		m.gone(a.arg)
		if err := os.Remove(m.path(a.arg)); err != nil {
			t.Fatal(err)
		}
		m.goneAt = time.Now()
		delete(m.files, a.arg)
	case "stop":
		m.afterDetect()
		m.stop(signalOf(a.arg))
	case "start":
		m.start(a.arg == "fsize")
	case "restart":
		m.afterDetect()
		m.stop(signalOf(a.arg))
		m.start(false)
	case "kill9":
		m.afterDetect()
		m.stop(syscall.SIGKILL)
		m.start(false)
	case "api":
		m.api.SetFaults(map[string]fakeapi.Faults{
			"up": {}, "down": {Down: true}, "slow": {Delay: 100 * time.Millisecond},
			"partial": {PackedShortEvery: 2}, "403": {APIKey: "not-the-producer's"},
		}[a.arg])
	case "wait":
		time.Sleep(time.Duration(a.n) * time.Millisecond)
	default:
		t.Fatalf("unknown action %v", a)
	}
}

// afterDetect waits, before a stop, until the producer has seen the last
// destruction of a followed file's bytes: the windows the docs give
// (docs/producer.md, the source x fault table; following-files.md, what it
// cannot: lines written less than a -poll before their file was deleted are
// not read by a stop within that -poll) are not what the model checks.
func (m *modelRun) afterDetect() { time.Sleep(time.Until(m.goneAt.Add(modelDetect))) }

func signalOf(s string) syscall.Signal {
	return map[string]syscall.Signal{"TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT}[s]
}

func (m *modelRun) seenNow() time.Time {
	if m.running() {
		return time.Now()
	}
	return time.Time{}
}

// write writes n new lines to name, opened with flag; a nil or missing
// model entry starts a new file.
func (m *modelRun) write(name string, n int, flag int) { m.writeLines(name, n, flag, false) }

// writeSplit writes n new lines to name, the last of them in part: its end
// is written by the next write to name (or endLines), as a writer that
// writes a line in two parts, the first without its newline. The cut falls
// inside the line's JSON, so a part sent alone would be dead-lettered.
func (m *modelRun) writeSplit(name string, n int) {
	m.writeLines(name, n, os.O_APPEND|os.O_CREATE|os.O_WRONLY, true)
}

func (m *modelRun) writeLines(name string, n int, flag int, split bool) {
	f, err := os.OpenFile(m.path(name), flag, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	mf := m.files[name]
	if mf == nil {
		mf = &mfile{seen: m.seenNow()}
		m.files[name] = mf
	}
	var b bytes.Buffer
	b.Write(mf.rest) // a writer ends the line it began first
	mf.rest = nil
	for i := range n {
		m.seq++
		// Lines of varied length, so that files cross 256 bytes at
		// different lines; two files in three start with a line of more
		// than 256 bytes, out of reach of the limits of shorter files.
		pad := m.seq * 37 % 61
		if i == 0 && mf.size == 0 {
			if mf.short = m.seq%3 == 0; !mf.short {
				pad = 260
			}
		}
		fmt.Fprintf(&b, `{"k":"%d","p":"%s"}`+"\n", m.seq, strings.Repeat("x", pad))
		m.written[m.seq] = mline{file: name, action: m.step}
		mf.lines = append(mf.lines, m.seq)
	}
	out := b.Bytes()
	if split && n > 0 {
		start := bytes.LastIndexByte(out[:len(out)-1], '\n') + 1
		cut := start + 1 + (len(out)-start)*(m.seq%5+1)/7
		mf.rest = slices.Clone(out[cut:])
		out = out[:cut]
	}
	if _, err := f.Write(out); err != nil {
		m.t.Fatal(err)
	}
	mf.size += int64(len(out))
}

// endLines writes the end of every line written in part: before a file
// is renamed or destroyed, and before the end of a sequence.
func (m *modelRun) endLines() {
	for _, name := range slices.Sorted(maps.Keys(m.files)) {
		if mf := m.files[name]; mf != nil && mf.rest != nil {
			m.write(name, 0, os.O_APPEND|os.O_WRONLY)
		}
	}
}

// shift renames app.log.1 to app.log.2 (over the old one), as logrotate's
// rotate 2 does, before app.log becomes app.log.1.
func (m *modelRun) shift() {
	if m.files["app.log.1"] == nil {
		return
	}
	if m.files["app.log.2"] != nil {
		m.gone("app.log.2")
	}
	if err := os.Rename(m.path("app.log.1"), m.path("app.log.2")); err != nil {
		m.t.Fatal(err)
	}
	if m.files["app.log.2"] != nil {
		m.goneAt = time.Now() // renamed over
	}
	m.files["app.log.2"] = m.files["app.log.1"]
	delete(m.files, "app.log.1")
}

// gone is called before name disappears (deleted, or renamed over).
func (m *modelRun) gone(name string) {
	mf := m.files[name]
	if !m.running() || mf.seen.IsZero() {
		// following-files.md, what it cannot: "a file deleted (or
		// compressed away) while the producer was stopped, or less than a
		// -poll after it was created, before any poll found it".
		m.exemptUnhandled(name, "in a file deleted while the producer was stopped")
		return
	}
	time.Sleep(time.Until(mf.seen.Add(modelSeen))) // not the "less than a -poll" limit
	if m.p.fsize && !mf.saved {
		// docs/producer.md, a checkpoint that cannot be saved: a new file's
		// lines (a new generation's too) wait until it can be saved; gone
		// before then, they are lost.
		m.exemptUnhandled(name, "in a file new to the checkpoint, gone while it could not be saved")
	}
}

// exemptUnhandled allows the lines of name that are neither stored nor
// dead-lettered yet to be lost.
func (m *modelRun) exemptUnhandled(name, why string) {
	mf := m.files[name]
	if mf == nil {
		return
	}
	v := m.verdict()
	for _, n := range mf.lines {
		if !v.handled[n] {
			if _, ok := m.exempt[n]; !ok {
				m.exempt[n] = why
			}
		}
	}
}

// running tells whether a producer runs. One started on a full disk may
// exit 1 on its own (docs/producer.md, exit status: events that could be
// neither delivered nor dead-lettered); any other that exits is a problem.
func (m *modelRun) running() bool {
	if m.p == nil {
		return false
	}
	select {
	case <-m.p.done:
		if !m.p.fsize && !m.p.exited {
			m.problems = append(m.problems, fmt.Sprintf("action %d: the producer exited on its own (%v)", m.step, m.p.cmd.ProcessState))
		}
		m.p.exited = true
		return false
	default:
		return true
	}
}

func (m *modelRun) start(fsize bool) {
	args := []string{m.bin, "-url", m.api.URL, "-source", "file", "-auth", "none", "-files", m.path("app.log*"),
		"-checkpoint", m.cp, "-dead-letter", m.dl, "-poll", modelPoll.String(), "-rotate-wait", "300ms",
		"-linger", "10ms", "-max-backoff", "50ms", "-shutdown-timeout", "500ms", "-stats-interval", "1h",
		"-batch-size", "20", "-log-level", "info"}
	if fsize {
		// RLIMIT_FSIZE 0: every write to a regular file fails (EFBIG), as
		// on a full disk; the checkpoint cannot be saved.
		args = append([]string{"/bin/sh", "-c", `ulimit -f 0 && exec "$0" "$@"`}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	p := &mproc{cmd: cmd, stderr: &modelBuffer{}, done: make(chan struct{}), cancel: cancel, dlAt: m.dlEntries(), fsize: fsize}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		m.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	m.p = p
	now := time.Now()
	for _, mf := range m.files {
		if mf != nil {
			mf.seen = now // in view of this process from now on
		}
	}
}

// stop signals the running producer and waits for it (bounded); it returns
// the exit code and notes a code the docs do not give for a stop.
func (m *modelRun) stop(sig syscall.Signal) int {
	p := m.p
	if sig != syscall.SIGKILL {
		// A signal before main has set its handlers kills the process
		// (Go's default): wait for its first log line, written after.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.stderr.String(), `"msg":"starting"`) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cancel()
		<-p.done
		m.problems = append(m.problems, fmt.Sprintf("action %d: the producer did not exit within 30 s of %v", m.step, sig))
	}
	p.cancel()
	m.p = nil
	m.stderrs = append(m.stderrs, p.stderr.String())
	for _, mf := range m.files {
		// Saved at a stop, or by the save every second: a file in view of
		// a producer that could save for some polls (kill -9: for more
		// than a second) is in the checkpoint.
		if mf != nil && !p.fsize && !mf.seen.IsZero() && (time.Since(mf.seen) > 100*time.Millisecond && sig != syscall.SIGKILL || time.Since(mf.seen) > 1500*time.Millisecond) {
			mf.saved = true
		}
	}
	code := p.cmd.ProcessState.ExitCode()
	// docs/producer.md, exit status: 0, or 3 when events were
	// dead-lettered or the checkpoint could not be saved; 1 when events
	// could be neither delivered nor dead-lettered (a full disk).
	ok := code == 0 || code == 3 || (p.fsize && code == 1)
	if sig != syscall.SIGKILL && !ok {
		m.problems = append(m.problems, fmt.Sprintf("action %d: exit %d after %v; stderr:\n%s", m.step, code, sig, modelTail(p.stderr.String())))
	}
	return code
}

func (m *modelRun) dlEntries() int {
	raw, _ := os.ReadFile(m.dl)
	return bytes.Count(raw, []byte("\n"))
}

// wantExit is the exit code of a SIGTERM when nothing failed: 3 if the
// dead-letter file grew while the process ran.
func (m *modelRun) wantExit(dlAt int) int {
	if m.dlEntries() > dlAt {
		return 3
	}
	return 0
}

type modelVerdict struct {
	handled  map[int]bool // stored or dead-lettered
	lost     []int        // written, not handled, not exempt
	problems []string
}

// verdict reads what the API stored and the dead-letter file holds.
func (m *modelRun) verdict() modelVerdict {
	v := modelVerdict{handled: map[int]bool{}}
	ids := map[int]map[string]bool{}
	lineOf := map[string]int{}
	note := func(k, id string) {
		n, err := strconv.Atoi(k)
		if err != nil {
			v.problems = append(v.problems, fmt.Sprintf("an event with k %q, not a line written", k))
			return
		}
		v.handled[n] = true
		if id == "" {
			return
		}
		if ids[n] == nil {
			ids[n] = map[string]bool{}
		}
		ids[n][id] = true
		if other, ok := lineOf[id]; ok && other != n {
			v.problems = append(v.problems, fmt.Sprintf("lines %d and %d share the event_id %s", other, n, id))
		}
		lineOf[id] = n
	}
	type ev struct {
		EventID string `json:"event_id"`
		K       string `json:"k"`
	}
	for _, raw := range m.api.Events() {
		var e ev
		if err := json.Unmarshal(raw, &e); err != nil {
			v.problems = append(v.problems, fmt.Sprintf("a stored event that is not JSON: %.200q", raw))
			continue
		}
		note(e.K, e.EventID)
	}
	raw, _ := os.ReadFile(m.dl)
	for _, l := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var d struct {
			Reason string `json:"reason"`
			Event  ev     `json:"event"`
		}
		if !bytes.HasSuffix(l, []byte("\n")) || json.Unmarshal(l, &d) != nil || d.Event.K == "" {
			v.problems = append(v.problems, fmt.Sprintf("a dead-letter line that is not a whole entry with its event: %.200q", l))
			continue
		}
		if d.Reason == "" {
			v.problems = append(v.problems, fmt.Sprintf("line %s dead-lettered without a reason", d.Event.K))
		}
		note(d.Event.K, d.Event.EventID)
	}
	// docs/producer.md, a checkpoint that cannot be saved: on a full disk,
	// lines the spool could not take whose file is gone are logged in full
	// at shutdown, the last resort (exit 1).
	logs := slices.Clone(m.stderrs)
	if m.p != nil {
		logs = append(logs, m.p.stderr.String())
	}
	for _, l := range strings.Split(strings.Join(logs, "\n"), "\n") {
		var e struct {
			Msg   string `json:"msg"`
			Event ev     `json:"event"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "event neither delivered nor dead-lettered: it is written here so it is not lost" {
			note(e.Event.K, e.Event.EventID)
		}
	}
	for n := range m.written {
		if !v.handled[n] && m.exempt[n] == "" {
			v.lost = append(v.lost, n)
		}
		if len(ids[n]) > 1 && m.idFree[n] == "" {
			v.problems = append(v.problems, fmt.Sprintf("line %d (written to %s by action %d) has %d event_ids: duplicates deduplication cannot remove",
				n, m.written[n].file, m.written[n].action, len(ids[n])))
		}
	}
	sort.Ints(v.lost)
	return v
}

// modelBuffer is a producer's stderr, written by exec's copier while the
// test reads it.
type modelBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *modelBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *modelBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func modelTail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
