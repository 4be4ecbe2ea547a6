package filesource

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// offsets is each record's path and committed offset, in order.
func offsets(records []*record) []string {
	var out []string
	for _, r := range records {
		out = append(out, fmt.Sprintf("%s:%d", r.path, r.committed.offset))
	}
	return out
}

// advance confirms a line of r ending at offset.
func advance(c *Checkpoints, r *record, offset int64) {
	(c.read(r, mark{offset: offset, chain: [32]byte{byte(offset)}, lineLen: 10}, Line{})).Confirm()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Saves after the first append to the journal, in order, one line a record
// that changed or was forgotten, and leave the checkpoint as the fold
// wrote it; a start reads the checkpoint, then the journal's lines in
// order: the last state of each record, new records after the others, the
// forgotten gone.
func TestJournalReplaysSavesInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	a := c.newRecord([]byte("a bytes"), 0, newSeed(), "a", fileID{1, 1}, 100)
	b := c.newRecord([]byte("b bytes"), 0, newSeed(), "b", fileID{1, 2}, 100)
	advance(c, a, 10)
	if err := c.save(); err != nil { // the first save folds
		t.Fatal(err)
	}
	folded, _ := os.ReadFile(path)
	ino := inodeOf(t, path)
	journal := fileSize(t, journalPath(path))

	advance(c, a, 20)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if grew := fileSize(t, journalPath(path)) - journal; grew <= 0 || grew > 2*int64(len(a.encoded.encode())) {
		t.Errorf("a save of one changed record appended %d bytes to the journal, want about one record (%d)", grew, len(a.encoded.encode()))
	}
	advance(c, a, 30)
	d := c.newRecord([]byte("d bytes"), 4, newSeed(), "d", fileID{1, 4}, 100)
	advance(c, d, 40)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	c.update(func() { c.records = slices.DeleteFunc(c.records, func(r *record) bool { return r == b }) }) // as follower.forget does
	advance(c, a, 50)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(path); inodeOf(t, path) != ino || !bytes.Equal(now, folded) {
		t.Error("saves after the first rewrote the checkpoint: they should append to the journal only")
	}
	lines := strings.Split(strings.TrimSuffix(readString(t, journalPath(path)), "\n"), "\n")
	if len(lines) != 6 || !strings.Contains(lines[5], `"forgotten":true`) {
		t.Errorf("journal lines %q: want the header, then a, a and d, b forgotten, a", lines)
	}

	got := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	if o := offsets(got.records); !slices.Equal(o, []string{"a:50", "d:40"}) {
		t.Errorf("loaded %v, want a at 50 and d at 40 (b forgotten)", o)
	}
	if g := got.records[1]; g.seed != d.seed || g.gen != 4 || g.committed != d.committed {
		t.Errorf("the record new in the journal came back as %+v, want %+v", g, d)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// A crash while a save appends leaves a torn last line: it is ignored, and
// the records are as the saves before it left them; a line damaged in the
// middle ends the replay there, with a warning.
func TestJournalTornLastLineIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	a := c.newRecord([]byte("a bytes"), 0, newSeed(), "a", fileID{1, 1}, 100)
	for _, off := range []int64{10, 20, 30} {
		advance(c, a, off)
		if err := c.save(); err != nil {
			t.Fatal(err)
		}
	}
	whole := readString(t, journalPath(path))
	c.Close()
	cut := whole[:len(whole)-5] // the line of offset 30, torn
	os.WriteFile(journalPath(path), []byte(cut), 0o640)
	var logs syncBuffer
	got := LoadCheckpoints(path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if o := offsets(got.records); !slices.Equal(o, []string{"a:20"}) || logs.String() != "" {
		t.Errorf("with a torn last line: %v, logs %s; want a at 20, silently", o, logs.String())
	}

	lines := strings.SplitAfter(whole, "\n")
	lines[1] = `{"slot":0,"file":{"path":"a","offset":-1}}` + "\n" // offset 20's line
	os.WriteFile(journalPath(path), []byte(strings.Join(lines, "")), 0o640)
	var logs2 syncBuffer
	got = LoadCheckpoints(path, slog.New(slog.NewJSONHandler(&logs2, nil)))
	if o := offsets(got.records); !slices.Equal(o, []string{"a:10"}) || !strings.Contains(logs2.String(), "the checkpoint's journal is damaged") {
		t.Errorf("with a damaged line: %v, logs %s; want a at 10, as the checkpoint says, and a warning", o, logs2.String())
	}
}

// The journal is folded into the checkpoint once it would outgrow its
// limit (and at shutdown): never larger than that, and what a start reads
// is the last save's state. A journal of another epoch (a crash between a
// fold's rename and the journal's reset, or a checkpoint an earlier
// producer rewrote) is ignored.
func TestJournalIsFoldedAndStaleJournalsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	a := c.newRecord([]byte("a bytes"), 0, newSeed(), "a", fileID{1, 1}, 1<<30)
	advance(c, a, 10)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	ino, folds := inodeOf(t, path), 0
	// A checkpoint of one record is far under 128 KiB: the limit is the
	// minimum, 64 KiB of lines (the header's bytes come on top).
	const limit, headerBytes = 64 << 10, 100
	var old []byte // the journal of the first epoch, with lines
	last := fileSize(t, journalPath(path))
	for off := int64(20); folds < 2; off += 10 {
		advance(c, a, off)
		if err := c.save(); err != nil {
			t.Fatal(err)
		}
		size := fileSize(t, journalPath(path))
		if size > limit+headerBytes {
			t.Fatalf("the journal holds %d bytes, over its limit %d", size, limit)
		}
		if now := inodeOf(t, path); now != ino {
			if line := int64(len(a.encoded.encode())) + 32; last+2*line < limit { // two more lines would have fitted
				t.Fatalf("folded with the journal at %d bytes, far under its limit %d", last, limit)
			}
			ino, folds = now, folds+1
		} else if folds == 0 {
			old, _ = os.ReadFile(journalPath(path))
		}
		last = size
		if off > 100000 {
			t.Fatal("never folded")
		}
	}
	want := a.committed.offset
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); len(got.records) != 1 || got.records[0].committed.offset != want {
		t.Fatalf("after folds, loaded %v, want a at %d", offsets(got.records), want)
	}

	advance(c, a, want+10)
	if err := c.Fold(); err != nil { // as at shutdown
		t.Fatal(err)
	}
	if lines := strings.Count(readString(t, journalPath(path)), "\n"); lines != 1 {
		t.Errorf("after a fold the journal has %d lines, want its header only", lines)
	}
	header, _, _ := strings.Cut(readString(t, journalPath(path)), "\n")
	c.Close()
	os.WriteFile(journalPath(path), old, 0o640) // the first epoch's journal, stale
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); len(got.records) != 1 || got.records[0].committed.offset != want+10 {
		t.Errorf("with a journal of another epoch, loaded %v, want a at %d as the checkpoint says", offsets(got.records), want+10)
	}
	// A journal of the checkpoint's epoch that moves a back to 20 is
	// applied; once a producer from before journals rewrote the checkpoint
	// (no epoch), it is not.
	_, oldLines, _ := strings.Cut(string(old), "\n")
	first, _, _ := strings.Cut(oldLines, "\n")
	os.WriteFile(journalPath(path), []byte(header+"\n"+first+"\n"), 0o640)
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); !slices.Equal(offsets(got.records), []string{"a:20"}) {
		t.Fatalf("with a journal of the checkpoint's epoch, loaded %v, want a at 20", offsets(got.records))
	}
	raw := readString(t, path)
	i := strings.Index(raw, `"journal":`)
	os.WriteFile(path, []byte(raw[:i]+raw[i+len(`"journal":"0123456789abcdef",`):]), 0o640)
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); len(got.records) != 1 || got.records[0].committed.offset != want+10 {
		t.Errorf("with a checkpoint without an epoch, loaded %v, want a at %d: its journal ignored", offsets(got.records), want+10)
	}
}

// A save whose append to the journal fails (it may leave a torn line)
// folds instead: the save succeeds, and the next start reads its state.
func TestJournalAppendFailureFolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	a := c.newRecord([]byte("a bytes"), 0, newSeed(), "a", fileID{1, 1}, 100)
	advance(c, a, 10)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, path)
	c.journal.Close() // its writes fail from now
	advance(c, a, 20)
	if err := c.save(); err != nil {
		t.Fatalf("a save whose append failed: %v, want it folded instead", err)
	}
	if inodeOf(t, path) == ino {
		t.Error("the checkpoint was not rewritten")
	}
	advance(c, a, 30)
	if err := c.save(); err != nil { // to the new journal
		t.Fatal(err)
	}
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); !slices.Equal(offsets(got.records), []string{"a:30"}) {
		t.Errorf("loaded %v, want a at 30", offsets(got.records))
	}
}

// A crash after a fold's rename and before its journal begins leaves the
// journal of the epoch before, whose slots no longer match the checkpoint's
// records: applied, its "forgotten" line for slot 0 would drop b, the file
// still followed. It is ignored: the checkpoint alone holds every record.
func TestJournalCrashBetweenFoldAndNewJournalLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	a := c.newRecord([]byte("a bytes"), 0, newSeed(), "a", fileID{1, 1}, 100)
	b := c.newRecord([]byte("b bytes"), 0, newSeed(), "b", fileID{1, 2}, 100)
	advance(c, a, 10)
	advance(c, b, 10)
	if err := c.save(); err != nil { // folds: a in slot 0, b in slot 1
		t.Fatal(err)
	}
	c.update(func() { c.records = slices.DeleteFunc(c.records, func(r *record) bool { return r == a }) })
	advance(c, b, 20)
	if err := c.save(); err != nil { // the journal: b at 20, slot 0 forgotten
		t.Fatal(err)
	}
	stale := readString(t, journalPath(path))
	if !strings.Contains(stale, `{"slot":0,"forgotten":true}`) {
		t.Fatalf("journal %q: want slot 0 forgotten", stale)
	}
	advance(c, b, 30)
	if err := c.Fold(); err != nil { // b now in slot 0
		t.Fatal(err)
	}
	c.Close()
	os.WriteFile(journalPath(path), []byte(stale), 0o640) // as a crash before the journal began leaves it
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); !slices.Equal(offsets(got.records), []string{"b:30"}) {
		t.Errorf("with the journal of the epoch before the fold: loaded %v, want b at 30", offsets(got.records))
	}
}
