package filesource

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFollower drives a follower by hand, one poll at a time, and keeps what
// it hands out (confirmed at once).
type testFollower struct {
	t     *testing.T
	fl    *Follower
	lines []Line
	logs  *syncBuffer
}

func newTestFollower(t *testing.T, cp *Checkpoints, patterns ...string) *testFollower {
	tf := &testFollower{t: t, logs: &syncBuffer{}}
	take := func(l Line) bool {
		tf.lines = append(tf.lines, l)
		l.Pos.Confirm()
		return true
	}
	tf.fl = New(Config{Patterns: patterns, Checkpoints: cp, Poll: time.Hour, RotateWait: time.Hour, Log: slog.New(slog.NewJSONHandler(tf.logs, nil)),
		TryEmit: take, Emit: func(_ context.Context, l Line) bool { return take(l) }})
	return tf
}

// poll is one poll: a scan, then every file read to its end. It returns the
// lines handed out.
func (tf *testFollower) poll() []string {
	start := len(tf.lines)
	now := time.Now()
	tf.fl.scan(now)
	for _, w := range slices.Clone(tf.fl.watchers) {
		for tf.fl.read(context.Background(), w, now) {
		}
	}
	var out []string
	for _, l := range tf.lines[start:] {
		out = append(out, string(l.Data))
	}
	return out
}

func (tf *testFollower) ids() map[[32]byte]string {
	ids := map[[32]byte]string{}
	for _, l := range tf.lines {
		ids[l.Chain] = string(l.Data)
	}
	return ids
}

func nLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"n":%d,"text":"event %d"}`, i, i))
	}
	return out
}

func text(lines []string) string { return strings.Join(lines, "\n") + "\n" }

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(s)
}

// A file truncated and rewritten with more than was read, between two polls,
// is read again from its start: by its first bytes when they change, by the
// bytes before the read offset when a common header hides the change, by its
// size when it shrank.
func TestTruncationIsDetectedWithinOnePoll(t *testing.T) {
	header := `{"header":"app started","pad":"` + strings.Repeat("h", 300) + `"}`
	for _, c := range []struct {
		name         string
		before, next []string
	}{
		{"first bytes changed", nLines(0, 100), nLines(100, 300)},
		{"same header", append([]string{header}, nLines(0, 100)...), append([]string{header}, nLines(100, 300)...)},
		{"shorter", nLines(0, 100), nLines(100, 110)},
		// A last line too long to read back leaves the first bytes to tell.
		{"after a long line", append(nLines(0, 10), `{"long":"`+strings.Repeat("l", maxCheckLine)+`"}`), nLines(100, 60000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			os.WriteFile(path, []byte(text(c.before)), 0o644)
			tf := newTestFollower(t, &Checkpoints{}, path)
			if got := tf.poll(); len(got) != len(c.before) {
				t.Fatalf("first poll: %d lines", len(got))
			}
			os.WriteFile(path, []byte(text(c.next)), 0o644) // truncates, then writes
			if got := tf.poll(); !slices.Equal(got, c.next) {
				t.Errorf("after the rewrite: %d lines, want the %d of the new content (first: %.60q)", len(got), len(c.next), got[:min(len(got), 3)])
			}
			if !strings.Contains(tf.logs.String(), "file truncated or rewritten") {
				t.Error("the truncation is not logged")
			}
			if len(tf.ids()) != len(c.before)+len(c.next) {
				t.Errorf("%d distinct ids for %d lines: the rewritten file's lines reuse ids", len(tf.ids()), len(c.before)+len(c.next))
			}
		})
	}
}

// copytruncate: the lines appended after the last read and before the copy
// are read from the copy, from where the original was read to; the lines
// read before are not read again.
func TestCopytruncateReadsTheRestFromTheCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte(text(nLines(0, 50))), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path+"*")
	tf.poll()
	appendTo(t, path, text(nLines(50, 60)))
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".1", data, 0o644)
	os.Truncate(path, 0)
	appendTo(t, path, text(nLines(60, 70)))
	got := append(tf.poll(), tf.poll()...) // the copy is claimed once the truncation is seen
	slices.Sort(got)
	want := append(nLines(50, 60), nLines(60, 70)...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read %d lines after the copytruncate, want the 20 not read before:\n%q", len(got), got)
	}
}

// A renamed file is the same file; a new file at the old path is another.
// A line keeps its id when it is read again (after a crash, under another
// name) and gets another id in another file, even when the line and its
// offset are the same.
func TestIdsFollowContentNotPathOrInode(t *testing.T) {
	dir := t.TempDir()
	a, b, cpPath := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "cp.json")
	os.WriteFile(a, []byte(text(nLines(0, 10))), 0o644)
	cp := &Checkpoints{path: cpPath}
	first := newTestFollower(t, cp, a)
	first.poll()
	cp.save()
	appendTo(t, a, text(nLines(10, 20)))
	first.poll() // then a crash: the checkpoint is still at line 10
	os.Rename(a, b)
	again := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), b)
	if got := again.poll(); !slices.Equal(got, nLines(10, 20)) {
		t.Fatalf("after the crash: %q, want lines 10 to 19 again", got)
	}
	for id, l := range again.ids() {
		if first.ids()[id] != l {
			t.Errorf("line %s read again under another name got another id", l)
		}
	}
	other := append([]string{`{"n":-1}`}, nLines(1, 20)...) // same lines after another first line
	os.WriteFile(a, []byte(text(other)), 0o644)
	third := newTestFollower(t, &Checkpoints{}, a)
	third.poll()
	for id := range third.ids() {
		if _, shared := first.ids()[id]; shared {
			t.Errorf("line %s has the id of a line of another file", third.ids()[id])
		}
	}
	if len(third.ids()) != 20 {
		t.Errorf("%d distinct ids for 20 lines", len(third.ids()))
	}
}

func mapsEqual(a, b map[[32]byte]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// After a restart, files are known by their first bytes: a rotation while
// the producer was stopped finds the rest of the file being read, under its
// new name, and the new file from its start.
func TestRotationWhileStoppedIsFoundByFingerprint(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	os.WriteFile(path, []byte(text(nLines(0, 30))), 0o644)
	cp := &Checkpoints{path: cpPath}
	newTestFollower(t, cp, path+"*").poll()
	if err := cp.save(); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, text(nLines(30, 40)))
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte(text(nLines(40, 45))), 0o644)
	tf := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), path+"*")
	got := tf.poll()
	slices.Sort(got)
	want := nLines(30, 45)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after the restart: %q, want lines 30 to 44", got)
	}
}

// The unterminated last line of a rotated file is sent once the file has
// been idle for rotate-wait; the live file's is not.
func TestUnterminatedLastLineOfARotatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte(`{"n":1}`+"\n"+`{"n":2}`), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path+"*")
	tf.fl.rotateWait = 0
	if got := tf.poll(); !slices.Equal(got, []string{`{"n":1}`}) {
		t.Fatalf("live file: %q; its unterminated line must wait", got)
	}
	tf.poll()
	os.Rename(path, path+".1")
	if got := tf.poll(); !slices.Equal(got, []string{`{"n":2}`}) || tf.lines[len(tf.lines)-1].Cut == "" {
		t.Errorf("rotated file: %q, want its last line, marked as without newline", got)
	}
}

// Compressed files are skipped with a warning.
func TestCompressedFilesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.log.2.gz"), []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, '\n'}, 0o644)
	os.WriteFile(filepath.Join(dir, "app.log"), []byte(`{"n":1}`+"\n"), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, filepath.Join(dir, "app.log*"))
	if got := tf.poll(); !slices.Equal(got, []string{`{"n":1}`}) {
		t.Errorf("read %q", got)
	}
	if !strings.Contains(tf.logs.String(), "skipping a compressed file") {
		t.Error("no warning")
	}
}

// Two files that start with the same header are two files: after a
// rotation while the producer was stopped, the new file (same header, longer
// than the offset read) is read from its start, not taken for a copy of the
// rotated one.
func TestFilesWithACommonHeaderAreToldApart(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	header := `{"header":"app started","pad":"` + strings.Repeat("h", 300) + `"}`
	os.WriteFile(path, []byte(text(append([]string{header}, nLines(0, 20)...))), 0o644)
	cp := &Checkpoints{path: cpPath}
	newTestFollower(t, cp, path+"*").poll()
	cp.save()
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte(text(append([]string{header}, nLines(100, 200)...))), 0o644)
	got := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), path+"*").poll()
	if want := append([]string{header}, nLines(100, 200)...); !slices.Equal(got, want) {
		t.Errorf("read %d lines after the restart, want the new file's %d", len(got), len(want))
	}
}

// A copy of a followed file (same bytes, an older modification time) does
// not take the original's record at a restart: the original goes on from
// its offset, and the copy waits as a copy.
func TestACopyDoesNotTakeTheOriginalsRecord(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	os.WriteFile(path, []byte(text(nLines(0, 20))), 0o644)
	cp := &Checkpoints{path: cpPath}
	newTestFollower(t, cp, path+"*").poll()
	cp.save()
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".bak", data, 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path+".bak", old, old)
	appendTo(t, path, text(nLines(20, 30)))
	tf := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), path+"*")
	if got := tf.poll(); !slices.Equal(got, nLines(20, 30)) {
		t.Errorf("read %q after the restart, want lines 20 to 29 of the original", got)
	}
}

// copytruncate where lines written between the copy and the truncation were
// read from the original: the copy, shorter than what was read, is read from
// its start, and its lines get the ids they had in the original (here after
// an earlier truncation), so the duplicates can be removed by event_id.
func TestACopyShorterThanWhatWasReadRepeatsTheOriginalsIds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte(text(nLines(0, 10))), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path+"*")
	tf.poll()
	os.WriteFile(path, []byte(text(nLines(10, 30))), 0o644) // a first truncation: generation 1
	tf.poll()
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".1", data[:len(data)/2], 0o644) // the copy, then lines read from the original
	idsBefore := tf.ids()
	os.Truncate(path, 0)
	appendTo(t, path, text(nLines(30, 35)))
	got := append(tf.poll(), tf.poll()...)
	copied := 0
	for _, l := range tf.lines[len(tf.lines)-len(got):] {
		if string(l.Data) == idsBefore[l.Chain] {
			copied++
		} else if _, seen := idsBefore[l.Chain]; seen {
			t.Errorf("line %s has the id of another line", l.Data)
		}
	}
	if copied == 0 || copied+5 != len(got) {
		t.Errorf("%d lines read after the copytruncate, %d of them copies with their original ids; want all lines of the copy with their ids and the 5 new lines", len(got), copied)
	}
}

// blockingQueue stands for the queue to the API: while blocked, nothing is
// taken (reading waits, as when the API is down); then every line is taken
// and confirmed.
type blockingQueue struct {
	cp      *Checkpoints
	open    chan struct{}
	mu      sync.Mutex
	lines   []string
	waiting bool // a line waited for room
}

func (q *blockingQueue) tryPut(l Line) bool {
	select {
	case <-q.open:
		return q.put(context.Background(), l)
	default:
		return false
	}
}

func (q *blockingQueue) put(ctx context.Context, l Line) bool {
	q.mu.Lock()
	q.waiting = true
	q.mu.Unlock()
	select {
	case <-q.open:
	case <-ctx.Done():
		return false
	}
	q.mu.Lock()
	q.lines = append(q.lines, string(l.Data))
	q.mu.Unlock()
	l.Pos.Confirm()
	return true
}

func (q *blockingQueue) got() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.lines)
}

// While reading waits for room in the queue (the API down or slow), new
// files are still found and opened, so a file created and then deleted (or
// rotated away) in that time is read once the queue has room.
func TestFilesAreFoundWhileReadingWaits(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(a, []byte(text(nLines(0, 10))), 0o644)
	cp := &Checkpoints{}
	q := &blockingQueue{cp: cp, open: make(chan struct{})}
	logs := &syncBuffer{}
	fl := New(Config{Patterns: []string{filepath.Join(dir, "*.log")}, Checkpoints: cp, Poll: 5 * time.Millisecond, RotateWait: time.Hour,
		Log: slog.New(slog.NewJSONHandler(logs, nil)), TryEmit: q.tryPut, Emit: q.put})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "reading to wait", func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.waiting })
	os.WriteFile(b, []byte(text(nLines(10, 20))), 0o644)
	waitFor(t, "b.log to be opened while reading waits", func() bool { return strings.Contains(logs.String(), `"path":"`+b+`"`) })
	os.Remove(b) // gone before a line of it was read: only the open descriptor has it
	close(q.open)
	waitFor(t, "20 lines", func() bool { return len(q.got()) >= 20 })
	got := q.got()
	slices.Sort(got)
	want := nLines(0, 20)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read %q, want lines 0 to 19", got)
	}
}

// waitFor waits until cond holds; it fails the test with what after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A writer without O_APPEND leaves a hole of NULs after a copytruncate,
// before its next line: however long the hole, that line is read whole (the
// NULs take no room in the line's buffer), and a hole ended by a newline is
// a blank line.
func TestLineAfterALongRunOfNULsIsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	hole := strings.Repeat("\x00", MaxLineBytes+1<<20)
	os.WriteFile(path, []byte(hole+`{"n":1}`+"\n"+hole+"\n"+`{"n":2}`+"\n"), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path)
	got := tf.poll()
	if want := []string{`{"n":1}`, `{"n":2}`}; !slices.Equal(got, want) {
		t.Errorf("read %.80q, want %q", got, want)
	}
	for _, l := range tf.lines {
		if l.TooLong {
			t.Errorf("line %.40q is marked too long", l.Data)
		}
	}
}

// Blank lines hold nothing while an earlier line is unconfirmed (the API
// down): no position each, however many, and the checkpoint moves past them
// once the lines around them are confirmed.
func TestBlankLinesHoldNoMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	content := `{"n":1}` + "\n" + strings.Repeat("\n", 100000) + `{"n":2}` + "\n" + strings.Repeat("\r\n", 1000)
	os.WriteFile(path, []byte(content), 0o644)
	cp := &Checkpoints{}
	var held []Line
	fl := New(Config{Patterns: []string{path}, Checkpoints: cp, Poll: time.Hour, RotateWait: time.Hour, Log: slog.New(slog.DiscardHandler),
		TryEmit: func(l Line) bool { held = append(held, l); return true }})
	now := time.Now()
	fl.scan(now)
	for fl.read(context.Background(), fl.watchers[0], now) {
	}
	r := fl.watchers[0].rec
	if len(held) != 2 {
		t.Fatalf("handed out %d lines, want 2", len(held))
	}
	if n := len(r.done); n != 0 {
		t.Errorf("%d positions held for blank lines while the first line is unconfirmed", n)
	}
	held[0].Pos.Confirm()
	if want := int64(len(`{"n":1}`) + 1 + 100000); r.committed.offset != want {
		t.Errorf("after the first line: committed %d, want %d (past the blank lines after it)", r.committed.offset, want)
	}
	held[1].Pos.Confirm()
	if r.committed.offset != int64(len(content)) {
		t.Errorf("after both lines: committed %d, want the end, %d", r.committed.offset, len(content))
	}
	if ok, err := lineOK(fl.watchers[0].f, r.committed); !ok || err != nil {
		t.Errorf("the committed mark after blank lines is not one the file holds: %v", err)
	}
}

// A file rewritten with other content of the same length, after it was read
// to its end, is read again: no new bytes, but its first bytes changed.
func TestRewriteOfTheSameLengthIsDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	before, after := nLines(100, 200), nLines(300, 400) // as long, line for line
	os.WriteFile(path, []byte(text(before)), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path)
	tf.poll()
	// As if the last check were more than a second after the file's last
	// change: only its change time can tell the rewrite.
	tf.fl.watchers[0].checkedAt = time.Now().Add(2 * time.Second)
	os.WriteFile(path, []byte(text(after)), 0o644)
	if fi, _ := os.Stat(path); fi.Size() != int64(len(text(before))) {
		t.Fatal("the rewrite must be as long as the file was")
	}
	if got := tf.poll(); !slices.Equal(got, after) {
		t.Errorf("after the rewrite: %d lines, want the %d of the new content", len(got), len(after))
	}
	if !strings.Contains(tf.logs.String(), "file truncated or rewritten") {
		t.Error("the rewrite is not logged")
	}
}

// A change made when the file's change time could not tell it from the
// last check (the same clock tick) is still found: a file changed less
// than a second before it was checked is checked again at the next poll.
func TestRewriteInTheSameClockTickIsDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(path, []byte(text(nLines(100, 200))), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path)
	tf.poll()
	w := tf.fl.watchers[0]
	os.WriteFile(path, []byte(text(nLines(300, 400))), 0o644)
	fi, _ := os.Stat(path)
	w.checked, w.checkedAt = ctimeOf(fi), time.Now() // as if checked in the tick the rewrite happened in
	if got := tf.poll(); !slices.Equal(got, nLines(300, 400)) {
		t.Errorf("after the rewrite: %d lines, want the 100 of the new content", len(got))
	}
}

// The producer's own files are never followed, also when a pattern reaches
// them by another path than the one it was given (a symlinked directory, a
// symlink to the file): they are told by device and inode.
func TestOwnFilesAreExcludedByInode(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	os.Mkdir(real, 0o755)
	os.Symlink("real", link)
	os.WriteFile(filepath.Join(real, "app.log"), []byte(text(nLines(0, 3))), 0o644)
	own := []string{filepath.Join(link, "dead-letter.ndjson"), filepath.Join(link, "checkpoint.json"), filepath.Join(dir, "other.ndjson")}
	for _, p := range own[:2] {
		os.WriteFile(p, []byte(`{"not":"an event of app.log"}`+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(real, "target.ndjson"), []byte(`{"not":"an event of app.log either"}`+"\n"), 0o644)
	os.Symlink(filepath.Join(real, "target.ndjson"), own[2])
	tf := newTestFollower(t, &Checkpoints{}, filepath.Join(real, "*"))
	tf.fl = New(Config{Patterns: tf.fl.patterns, Exclude: own, Checkpoints: tf.fl.cp, Poll: time.Hour, RotateWait: time.Hour, Log: tf.fl.log, TryEmit: tf.fl.tryEmit, Emit: tf.fl.emit})
	if got := tf.poll(); !slices.Equal(got, nLines(0, 3)) {
		t.Errorf("read %q, want only app.log's lines", got)
	}
}

// A truncation seen while running leaves the record from before it for
// lines in flight and for a copy, but that record no longer names the
// file's inode: at a restart the file resumes from the new generation's
// offset, even when it was rewritten with the same content, which the old
// record also matches, further on.
func TestRestartAfterATruncationResumesTheNewGeneration(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	content := text(nLines(0, 100))
	os.WriteFile(path, []byte(content), 0o644)
	cp := &Checkpoints{path: cpPath}
	tf := newTestFollower(t, cp, path)
	tf.poll()
	os.Truncate(path, 0)
	tf.poll()
	half := len(text(nLines(0, 50)))
	appendTo(t, path, content[:half]) // the same content again, half of it read before the stop
	if got := tf.poll(); !slices.Equal(got, nLines(0, 50)) {
		t.Fatalf("after the truncation: %d lines, want 50", len(got))
	}
	if err := cp.save(); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, content[half:])
	if got := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), path).poll(); !slices.Equal(got, nLines(50, 100)) {
		t.Errorf("after the restart: %d lines (%.60q), want lines 50 to 99", len(got), got)
	}
}

// A file deleted while followed is closed, and its record then names no
// inode: a new file that reuses the inode is not taken for it.
func TestRecordOfADeletedFileNamesNoInode(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	os.WriteFile(path, []byte(text(nLines(0, 3))), 0o644)
	cp := &Checkpoints{path: cpPath}
	tf := newTestFollower(t, cp, path)
	tf.fl.rotateWait = 0
	tf.poll()
	os.Remove(path)
	tf.poll()
	if len(tf.fl.watchers) != 0 {
		t.Fatal("the deleted file is still followed")
	}
	cp.save()
	// As a restart reads it: the checkpoint, then its journal.
	if got := LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)).records; len(got) != 1 || got[0].ino != 0 {
		raw, _ := os.ReadFile(cpPath)
		journal, _ := os.ReadFile(journalPath(cpPath))
		t.Errorf("the deleted file's record still names its inode:\n%s\n%s", raw, journal)
	}
}

// A file that starts with the whole of a short followed file (the same
// banner line, that file idle) is another file: it is read at once, banner
// included. A fingerprint of fewer than fpBytes bytes identifies only its
// own inode.
func TestAFileStartingLikeAShortIdleFileIsReadAtOnce(t *testing.T) {
	dir := t.TempDir()
	banner := `{"msg":"worker started","version":"1.2.3"}`
	os.WriteFile(filepath.Join(dir, "w1.log"), []byte(banner+"\n"), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, filepath.Join(dir, "w*.log"))
	if got := tf.poll(); !slices.Equal(got, []string{banner}) {
		t.Fatalf("w1.log: %q", got)
	}
	w2 := append([]string{banner}, nLines(0, 50)...)
	os.WriteFile(filepath.Join(dir, "w2.log"), []byte(text(w2)), 0o644)
	if got := tf.poll(); !slices.Equal(got, w2) {
		t.Errorf("w2.log: %d lines, want its %d, banner first", len(got), len(w2))
	}
}

// A file whose first fpBytes bytes are those of a followed file may be its
// copy (copytruncate makes one just before it truncates the original): it is
// held open, and read once the original is truncated or gone, or once it
// has been idle for rotate-wait while the original goes on. Deleted
// meanwhile, it is still read.
func TestAPossibleCopyOfAFollowedFileIsHeldThenRead(t *testing.T) {
	dir := t.TempDir()
	header := `{"header":"app started","pad":"` + strings.Repeat("h", 300) + `"}`
	first := append([]string{header}, nLines(0, 1)...)
	os.WriteFile(filepath.Join(dir, "w1.log"), []byte(text(first)), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, filepath.Join(dir, "w*.log"))
	tf.poll()
	w2 := append(slices.Clone(first), nLines(1, 50)...)
	os.WriteFile(filepath.Join(dir, "w2.log"), []byte(text(w2)), 0o644)
	if got := tf.poll(); len(got) != 0 {
		t.Fatalf("read %d lines of the possible copy while it is new", len(got))
	}
	os.Remove(filepath.Join(dir, "w2.log"))
	tf.fl.rotateWait = 0
	if got := tf.poll(); !slices.Equal(got, w2) {
		t.Errorf("once idle: %d lines, want the %d of w2.log", len(got), len(w2))
	}
}

// copytruncate of a large file: the copy is seen while logrotate is still
// writing it (shorter than what was read of the original). It waits for the
// truncation, then goes on from where the original was read to: nothing is
// sent twice.
func TestACopyInProgressWaitsForTheTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	content := text(nLines(0, 100))
	os.WriteFile(path, []byte(content), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path+"*")
	tf.poll()
	os.WriteFile(path+".1", []byte(content[:len(content)/2]), 0o644) // the copy, part-way
	if got := tf.poll(); len(got) != 0 {
		t.Fatalf("read %d lines of the copy in progress", len(got))
	}
	appendTo(t, path+".1", content[len(content)/2:])
	os.Truncate(path, 0)
	appendTo(t, path, text(nLines(100, 110)))
	got := append(tf.poll(), tf.poll()...)
	if !slices.Equal(got, nLines(100, 110)) {
		t.Errorf("after the copytruncate: %d lines (%.60q), want only the 10 new ones", len(got), got)
	}
}

// The same first line in two files (the banner an application writes to
// each new log) is two events: each gets its own id, so that keeping one
// record per event_id downstream keeps both.
func TestTheSameFirstLineOfTwoFilesGetsTwoIds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	banner := `{"msg":"app started"}`
	os.WriteFile(path, []byte(text(append([]string{banner}, nLines(0, 20)...))), 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path+"*")
	tf.poll()
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte(text(append([]string{banner}, nLines(20, 40)...))), 0o644)
	tf.poll()
	var ids [][32]byte
	for _, l := range tf.lines {
		if string(l.Data) == banner {
			ids = append(ids, l.Chain)
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("banner chains %x: want two, distinct", ids)
	}
	if len(tf.ids()) != 42 {
		t.Errorf("%d distinct ids for 42 lines", len(tf.ids()))
	}
}

// A new file's seed is on disk before its first line goes out: after a
// crash before any periodic save, the lines read again keep their ids.
func TestANewFilesLinesKeepTheirIdsAfterACrash(t *testing.T) {
	dir := t.TempDir()
	path, cpPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	os.WriteFile(path, []byte(text(nLines(0, 10))), 0o644)
	first := newTestFollower(t, &Checkpoints{path: cpPath}, path)
	first.poll() // then a crash: no save but the follower's own
	again := newTestFollower(t, LoadCheckpoints(cpPath, slog.New(slog.DiscardHandler)), path)
	if got := again.poll(); !slices.Equal(got, nLines(0, 10)) {
		t.Fatalf("after the crash: %q, want the 10 lines again", got)
	}
	if !mapsEqual(again.ids(), first.ids()) {
		t.Error("lines read again after a crash got other ids")
	}
}

// A line of exactly MaxLineBytes is not "longer than" that: its end of line
// does not count.
func TestALineOfExactlyTheLimitIsNotTooLong(t *testing.T) {
	for _, c := range []struct {
		content int
		eol     string
		long    bool
	}{{MaxLineBytes, "\n", false}, {MaxLineBytes, "\r\n", false}, {MaxLineBytes + 3, "\n", true}} {
		var ls lineState
		ls.start([32]byte{})
		ls.add([]byte(strings.Repeat("y", c.content)))
		ls.add([]byte(c.eol))
		if ls.long() != c.long {
			t.Errorf("a line of %d bytes and %q: long %v, want %v", c.content, c.eol, ls.long(), c.long)
		}
	}
}

// syncBuffer is a log destination that tests read while a follower writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A file deleted after lines were added to it, its inode taken within the
// same poll by a new, empty file (ext4 reuses inodes at once; here the scan
// is told so): the scan's stat of the new file is not taken for the open
// one's. The lines added are read, the file is not taken for truncated,
// and it is closed once read, as deleted.
func TestAnInodeReusedWithinAPollIsNotTakenForTheDeletedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte(text(nLines(0, 3))), 0o644)
	tf := newTestFollower(t, &Checkpoints{path: filepath.Join(dir, "cp.json")}, path)
	tf.fl.rotateWait = 0
	if got := tf.poll(); len(got) != 3 {
		t.Fatalf("first poll read %d lines, want 3", len(got))
	}
	appendTo(t, path, text(nLines(3, 5)))
	os.Remove(path)
	os.WriteFile(path, nil, 0o644)
	now := time.Now()
	tf.fl.scan(now)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	w := tf.fl.watchers[0]
	w.scanned, w.missing = fi, time.Time{} // what the scan records when the new file has the old inode
	for tf.fl.read(context.Background(), w, now) {
	}
	var got []string
	for _, l := range tf.lines[3:] {
		got = append(got, string(l.Data))
	}
	if want := nLines(3, 5); !slices.Equal(got, want) {
		t.Errorf("after the deletion, read %q, want the lines added before it %q", got, want)
	}
	if logs := tf.logs.String(); strings.Contains(logs, "truncated") {
		t.Errorf("the deleted file was taken for truncated:\n%s", logs)
	}
	if w.state != closed {
		t.Errorf("the deleted file, read to its end, is %v, want closed", w.state)
	}
}

// A file deleted after its lines were handed out and before any poll saw
// it (the stop came first): at the stop its lines in flight go to Keep, as
// no restart can read them again.
func TestAFileDeletedJustBeforeTheStopHasItsLinesKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte(text(nLines(0, 3))), 0o644)
	var mu sync.Mutex
	var handed, kept []string
	emit := func(l Line) bool { // never confirmed: the API is down
		mu.Lock()
		defer mu.Unlock()
		handed = append(handed, string(l.Data))
		return true
	}
	fl := New(Config{Patterns: []string{path}, Checkpoints: &Checkpoints{path: filepath.Join(dir, "cp.json")}, Poll: time.Hour, RotateWait: time.Hour,
		Log: slog.New(slog.DiscardHandler), TryEmit: emit, Emit: func(_ context.Context, l Line) bool { return emit(l) },
		Keep: func(_ []*Position, ls []Line) {
			for _, l := range ls {
				kept = append(kept, string(l.Data))
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fl.Run(ctx) }()
	waitFor(t, "the lines handed out", func() bool { mu.Lock(); defer mu.Unlock(); return len(handed) == 3 })
	os.Remove(path)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := nLines(0, 3); !slices.Equal(kept, want) {
		t.Errorf("kept %q at the stop, want the lines in flight %q", kept, want)
	}
}

// Lines handed out from one read share a copy of it: every line keeps its
// own bytes (none overwritten by a later read) and its chain, whether it lies
// within one read, spans several, or was cut by an append in progress; with
// leading NULs, CRLF and blank lines among them.
func TestLinesKeepTheirBytesAndChainAcrossReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	var raw []string // each line as written, its end of line included
	for i := range 3000 {
		body := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", (i*7919)%900))
		switch {
		case i%97 == 0: // longer than a read
			body = fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", 70<<10+i))
		case i%31 == 0:
			body = strings.Repeat("\x00", i%50) + body
		case i%29 == 0:
			body = ""
		}
		end := "\n"
		if i%5 == 0 {
			end = "\r\n"
		}
		raw = append(raw, body+end)
	}
	all := strings.Join(raw, "")
	os.WriteFile(path, nil, 0o644)
	tf := newTestFollower(t, &Checkpoints{}, path)
	// Appends that end within lines, a poll after each.
	for from := 0; from < len(all); {
		to := min(len(all), from+50_001+from%77_777)
		appendTo(t, path, all[from:to])
		tf.poll()
		from = to
	}
	chain := tf.fl.watchers[0].rec.seed
	var want []string
	var chains []chainHash
	for _, l := range raw {
		chain = chain.then([]byte(l))
		if data := strings.TrimRight(strings.TrimLeft(l, "\x00"), "\r\n"); data != "" {
			want, chains = append(want, data), append(chains, chain)
		}
	}
	if len(tf.lines) != len(want) {
		t.Fatalf("handed out %d lines, want %d", len(tf.lines), len(want))
	}
	for i, l := range tf.lines {
		if string(l.Data) != want[i] {
			t.Fatalf("line %d is %.60q, want %.60q", i, l.Data, want[i])
		}
		if l.Chain != chains[i] {
			t.Fatalf("line %d (%.40q): chain %x, want %x", i, l.Data, l.Chain, chains[i])
		}
		if l.TooLong {
			t.Errorf("line %d is marked too long", i)
		}
	}
}

// What the follower allocates per line, most of its cost with the GC's: the
// line's position, and its share of its read's copy and of the checkpoint's
// bookkeeping. Not the line's bytes or its chain each on their own.
func TestFollowerAllocationsPerLine(t *testing.T) {
	const lines = 20_000
	path := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(path, []byte(text(nLines(0, lines))), 0o644)
	got := 0
	take := func(l Line) bool { got++; l.Pos.Confirm(); return true }
	allocs := testing.AllocsPerRun(3, func() {
		fl := New(Config{Patterns: []string{path}, Checkpoints: &Checkpoints{}, Poll: time.Hour, RotateWait: time.Hour, Log: slog.New(slog.DiscardHandler),
			TryEmit: take, Emit: func(_ context.Context, l Line) bool { return take(l) }})
		now := time.Now()
		fl.scan(now)
		for fl.read(context.Background(), fl.watchers[0], now) {
		}
		fl.close(fl.watchers[0])
	})
	if got != 4*lines { // AllocsPerRun runs it once more first
		t.Fatalf("handed out %d lines, want %d", got, 4*lines)
	}
	if perLine := allocs / lines; perLine > 2.2 {
		t.Errorf("%.2f allocations per line, want at most 2.2", perLine)
	}
}
