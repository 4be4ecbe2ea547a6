package producer

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/filesource"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recovered opens the spool at path and returns what it hands out, by id.
func recovered(t *testing.T, path string, limit int64) (*spool, map[string]line) {
	t.Helper()
	s, err := openSpool(path, limit, quiet())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]line{}
	s.recoverSpool(context.Background(), func(_ context.Context, l line) bool {
		got[l.id] = l
		return true
	})
	return s, got
}

// Records written survive a reopen with their id, bytes, flags and read
// time; acknowledged ones do not; a torn last record (a crash mid-write)
// is ignored and cut off.
func TestSpoolKeepsWhatIsNotAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "spool.ndjson")
	s, got := recovered(t, path, 1<<20)
	if len(got) != 0 {
		t.Fatalf("a new spool handed out %d records", len(got))
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ls := []line{
		{data: []byte(`{"a":1}`)},
		{data: []byte{0xff, 'x'}, tooLong: true, cut: "why"}, // not UTF-8
		{data: []byte(`{"a":3}`), id: "own-id", read: at},
	}
	if err := s.write(context.Background(), ls, false); err != nil {
		t.Fatal(err)
	}
	if ls[0].id == "" || ls[0].spool == 0 || ls[0].read.IsZero() || ls[2].id != "own-id" || !ls[2].read.Equal(at) {
		t.Fatalf("write did not give ids, seqs and read times as it should: %+v", ls)
	}
	s.ack(ls[0].spool)
	s.close()
	// A crash in the middle of the next write.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":98,"id":"torn-whole","line":"{}"}`) // all but its newline: glued to the next record, it would spoil both
	f.Close()

	s, got = recovered(t, path, 1<<20)
	if len(got) != 2 {
		t.Fatalf("recovered %d records, want the 2 not acknowledged: %v", len(got), got)
	}
	if _, ok := got["torn-whole"]; ok || len(s.live) != 2 {
		t.Errorf("the torn last record was handed out or counted (%d live records, want 2)", len(s.live))
	}
	if _, ok := got[ls[0].id]; ok {
		t.Error("an acknowledged record was handed out again")
	}
	b := got[ls[1].id]
	if string(b.data) != "\xffx" || !b.tooLong || b.cut != "why" || b.spool != ls[1].spool {
		t.Errorf("record 2 came back as %+v", b)
	}
	if c := got["own-id"]; string(c.data) != `{"a":3}` || !c.read.Equal(at) {
		t.Errorf("record 3 came back as %+v", c)
	}
	// New records continue the sequence: an ack of one cannot hit another.
	more := []line{{data: []byte(`{"a":4}`)}}
	if err := s.write(context.Background(), more, false); err != nil {
		t.Fatal(err)
	}
	if more[0].spool <= ls[2].spool {
		t.Errorf("seq %d after a restart, not above the %d kept", more[0].spool, ls[2].spool)
	}
	s.close()
	s, got = recovered(t, path, 1<<20)
	defer s.close()
	if _, ok := got[more[0].id]; !ok || len(got) != 3 {
		t.Errorf("after the torn record, the next start recovered %d records (want 3, the one written after it too)", len(got))
	}
}

// A spool left by an earlier run that cannot be compacted at start (a full
// disk; here its temporary file's name is taken by a directory) does not stop
// the producer: each record not acknowledged is sent once from where it is,
// and a torn end is cut off so that the next record is whole.
func TestSpoolNotCompactedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.ndjson")
	s, _ := recovered(t, path, 1<<20)
	ls := []line{{data: []byte(`{"a":1}`)}, {data: []byte(`{"a":2}`)}, {data: []byte(`{"a":3}`)}}
	if err := s.write(context.Background(), ls, false); err != nil {
		t.Fatal(err)
	}
	s.ack(ls[0].spool)
	s.close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The record of ls[1] written twice (as compaction never keeps), and a
	// crash in the middle of the next write.
	dup := strings.SplitAfter(string(raw), "\n")[1]
	if err := os.WriteFile(path, []byte(string(raw)+dup+`{"seq":98,"id":"torn","line":"{}"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	s, err = openSpool(path, 1<<20, quiet())
	if err != nil {
		t.Fatalf("a spool that cannot be compacted stops the start: %v", err)
	}
	var got []string
	s.recoverSpool(context.Background(), func(_ context.Context, l line) bool {
		got = append(got, l.id)
		return true
	})
	if want := []string{ls[1].id, ls[2].id}; !slices.Equal(got, want) {
		t.Errorf("recovered %q, want %q: each record not acknowledged once, not the acknowledged, doubled or torn ones", got, want)
	}
	more := []line{{data: []byte(`{"a":4}`)}}
	if err := s.write(context.Background(), more, false); err != nil {
		t.Fatal(err)
	}
	s.close()
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	s, all := recovered(t, path, 1<<20)
	defer s.close()
	if _, ok := all[more[0].id]; !ok || len(all) != 3 {
		t.Errorf("the next start recovered %d records, want 3 (the one written after the torn end too)", len(all))
	}
}

// A spool whose every record is acknowledged is removed at close.
func TestSpoolRemovedWhenAllAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.ndjson")
	s, _ := recovered(t, path, 1<<20)
	ls := []line{{data: []byte(`{"a":1}`)}, {data: []byte(`{"a":2}`)}}
	if err := s.write(context.Background(), ls, false); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		s.ack(l.spool)
	}
	if kept := s.close(); kept != 0 {
		t.Errorf("close kept %d", kept)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the spool is still there: %v", err)
	}
}

// When the live records fill the spool, write waits (reading stops) and
// says so; acknowledgements make room (the file is compacted), and the file
// never passes its bound.
func TestSpoolFullWaitsForAcknowledgements(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.ndjson")
	const limit = 4 << 10
	s, _ := recovered(t, path, limit)
	defer s.close()
	rec := func() []line { return []line{{data: []byte(`{"pad":"` + strings.Repeat("x", 560) + `"}`)}} }
	var written [][]line
	for range 6 { // about 640 bytes each: 6 fit, a 7th does not
		ls := rec()
		if err := s.write(context.Background(), ls, false); err != nil {
			t.Fatal(err)
		}
		written = append(written, ls)
	}
	last := rec()
	done := make(chan error, 1)
	go func() { done <- s.write(context.Background(), last, false) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, full := s.state(); full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool never said it was full")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("write returned (%v) with the spool full", err)
	default:
	}
	for _, ls := range written[:3] { // room to compact: 3/4 of the bound
		s.ack(ls[0].spool)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // bounds the test only
		t.Fatal("write still waits after acknowledgements made room")
	}
	if _, full := s.state(); full {
		t.Error("still full after the write went through")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit {
		t.Errorf("spool is %d bytes, over its %d", fi.Size(), limit)
	}
}

// force (shutdown) writes what was read even when the spool is full.
func TestSpoolForceWritesWhenFull(t *testing.T) {
	s, _ := recovered(t, filepath.Join(t.TempDir(), "spool.ndjson"), 1)
	defer s.close()
	if err := s.write(context.Background(), []line{{data: []byte(`{"a":1}`)}}, false); err != nil {
		t.Fatal(err)
	}
	ls := []line{{data: []byte(`{"a":2}`)}}
	if err := s.write(context.Background(), ls, true); err != nil || ls[0].spool == 0 {
		t.Fatalf("forced write: %v, seq %d", err, ls[0].spool)
	}
}

// keepFlight (a followed file that can no longer be read again) writes the
// lines in flight to the spool with their ids and times and moves the
// checkpoint past them; the confirmations that come later acknowledge them
// in the spool, do not move the checkpoint again, and give the queue back
// every byte. Line 2, confirmed before, out of order, is not in flight: the
// follower does not hand it to keepFlight (filesource's
// TestKeptLinesAreThoseInFlight).
func TestKeepFlightSpoolsLinesInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.ndjson")
	sp, err := openSpool(path, 1<<20, quiet())
	if err != nil {
		t.Fatal(err)
	}
	cp, cpPath, fls := followed(t, 4)
	r := &run{cp: cp, spool: sp, budget: newBudget(1 << 20), stats: &Stats{}, problems: newRateLog(quiet(), time.Hour), cfg: Config{Log: quiet()}}
	var ps []*position
	for _, l := range fls {
		r.budget.take(int64(len(l.Data)) + eventOverhead)
		ps = append(ps, l.Pos)
	}
	cost := int64(len(`{"n":1}`)) + eventOverhead
	r.handled(ps[1], 0, cost, 0) // line 2 stored before line 1
	r.keepFlight([]*position{ps[0], ps[2], ps[3]}, []filesource.Line{fls[0], fls[2], fls[3]})
	if off := committedOffset(t, cp, cpPath); off != 32 {
		t.Errorf("committed %d after keeping, want 32 (past every line)", off)
	}
	if used := r.budget.inUse(); used != 3*cost {
		t.Errorf("queue bytes %d after keeping, want %d: the three lines still in flight, nothing for line 2", used, 3*cost)
	}
	sp.flushAcks()
	sp.close()
	sp, got := recovered(t, path, 1<<20)
	id := func(i int) string { return chainID(fls[i].Chain) }
	if len(got) != 3 || got[id(1)].data != nil {
		t.Fatalf("the spool holds %v, want lines 1, 3 and 4", got)
	}
	if l := got[id(2)]; string(l.data) != `{"n":3}` || !l.read.Equal(fls[2].Read) {
		t.Errorf("line 3 kept as %q read at %v, want its bytes and read time %v", l.data, l.read, fls[2].Read)
	}
	sp.close()
	// The same run, as if the process went on: the confirmations arrive.
	sp, err = openSpool(path, 1<<20, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r.spool = sp
	for _, i := range []int{3, 0, 2} {
		r.handled(ps[i], 0, cost, 0)
	}
	if off := committedOffset(t, cp, cpPath); off != 32 {
		t.Errorf("committed %d after the confirmations, want 32", off)
	}
	if used := r.budget.inUse(); used != 0 {
		t.Errorf("queue bytes %d after every line was confirmed, want 0", used)
	}
	if kept := sp.close(); kept != 0 {
		t.Errorf("the spool keeps %d records after their confirmations, want 0", kept)
	}
}

// On a full disk (the spool's writes fail), lines whose file can no longer
// be read again stay only in memory; at shutdown those still unconfirmed
// are logged in full and counted, while lines of files that can be read
// again are left to be read again, not logged.
func TestKeepLinesLogsWhatTheSpoolDidNotTake(t *testing.T) {
	sp, err := openSpool(filepath.Join(t.TempDir(), "spool.ndjson"), 1<<20, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	sp.f.Close() // every write fails from now on
	var logged strings.Builder
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	cp, _, fls := followed(t, 4)
	r := &run{cp: cp, spool: sp, budget: newBudget(1 << 20), stats: &Stats{}, problems: newRateLog(log, time.Hour), cfg: Config{Log: log}}
	var events []*Event
	for _, l := range fls {
		cost := int64(len(l.Data)) + eventOverhead
		r.budget.take(cost)
		events = append(events, &Event{ID: chainID(l.Chain), Data: l.Data, pos: l.Pos, cost: cost})
	}
	r.keepFlight([]*position{fls[0].Pos, fls[2].Pos}, []filesource.Line{fls[0], fls[2]}) // their file deleted
	r.keepLines(events)
	out := logged.String()
	for i, l := range fls {
		in := strings.Contains(out, `"event":`+string(l.Data))
		if want := i == 0 || i == 2; in != want {
			t.Errorf("line %d (%s) logged in full: %v, want %v", i+1, l.Data, in, want)
		}
	}
	if r.notKept != 2 || r.stats.Abandoned.Load() != 4 || r.budget.inUse() != 0 {
		t.Errorf("notKept %d, abandoned %d, queue bytes %d; want 2, 4 and 0", r.notKept, r.stats.Abandoned.Load(), r.budget.inUse())
	}
}
