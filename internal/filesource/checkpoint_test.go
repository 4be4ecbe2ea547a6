package filesource

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A damaged checkpoint never stops the producer: it is renamed aside, with a
// warning, and every file is read from the start.
func TestDamagedCheckpointIsSetAside(t *testing.T) {
	zeros := strings.Repeat("0", 64)
	entry := func(fp string, offset, lineBytes int) string {
		return fmt.Sprintf(`{"version":2,"files":[{"path":"/var/log/a.log","fingerprint":%q,"fingerprint_bytes":4,"offset":%d,"chain":%q,"previous_chain":%q,"line_bytes":%d}]}`,
			fp, offset, zeros, zeros, lineBytes)
	}
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	os.WriteFile(path, []byte(entry(zeros[:32], 10, 5)), 0o640)
	if c := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); len(c.records) != 1 {
		t.Fatalf("a sound checkpoint gave %d records", len(c.records))
	}
	for name, content := range map[string]string{
		"empty":             "",
		"truncated":         `{"version":2,"files":[{"pa`,
		"not an object":     `["files"]`,
		"null":              `null`,
		"negative offset":   entry(zeros[:32], -1, 0),
		"line past offset":  entry(zeros[:32], 3, 9),
		"bad fingerprint":   entry("xyz", 0, 0),
		"unknown version":   `{"version":3,"files":[]}`,
		"earlier, negative": `{"files":{"/var/log/a.log":{"inode":1,"offset":-3}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "checkpoint.json")
			os.WriteFile(path, []byte(content), 0o640)
			var logs syncBuffer
			c := LoadCheckpoints(path, slog.New(slog.NewJSONHandler(&logs, nil)))
			aside, _ := filepath.Glob(path + ".damaged-*")
			if len(c.records) != 0 || len(aside) != 1 || !strings.Contains(logs.String(), "the checkpoint is damaged") {
				t.Fatalf("%d records, set aside as %v, logs %s", len(c.records), aside, logs.String())
			}
			if got, _ := os.ReadFile(aside[0]); string(got) != content {
				t.Errorf("set aside %q, want the damaged content", got)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Error("the damaged checkpoint is still in place")
			}
		})
	}
}

// What save writes, load reads back: identity, generation, offset, chain
// and last line of each followed file.
func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c := &Checkpoints{path: path}
	r := c.newRecord([]byte("first bytes"), 3, newSeed(), "/var/log/app.log", fileID{7, 42}, 300)
	p := c.read(r, mark{offset: 120, chain: [32]byte{1, 2, 3}, prev: [32]byte{9}, lineLen: 64}, Line{})
	c.read(r, mark{offset: 200, chain: [32]byte{4}, prev: [32]byte{1, 2, 3}, lineLen: 80}, Line{}) // not confirmed
	p.Confirm()
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	got := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	if len(got.records) != 1 {
		t.Fatalf("%d records", len(got.records))
	}
	g := got.records[0]
	if g.fp != fingerprintOf([]byte("first bytes")) || g.fp.n != 11 || g.gen != 3 || g.seed != r.seed || g.path != "/var/log/app.log" ||
		g.dev != 7 || g.ino != 42 || g.size != 300 || g.committed != p.end || g.read != p.end {
		t.Errorf("loaded %+v, want the record with the confirmed mark %+v", g, p.end)
	}
}

// Lines are confirmed in any order; the checkpoint moves only past lines
// that are all confirmed.
func TestCheckpointMovesOnlyPastConfirmedLines(t *testing.T) {
	c := &Checkpoints{}
	r := c.newRecord([]byte("x"), 0, newSeed(), "f", fileID{}, 0)
	var ps []*Position
	for i := 1; i <= 4; i++ {
		ps = append(ps, c.read(r, mark{offset: int64(10 * i)}, Line{}))
	}
	ps[1].Confirm()
	ps[3].Confirm()
	if r.committed.offset != 0 {
		t.Errorf("committed %d before the first line was confirmed", r.committed.offset)
	}
	ps[0].Confirm()
	if r.committed.offset != 20 {
		t.Errorf("committed %d, want 20 (lines 1 and 2)", r.committed.offset)
	}
	ps[2].Confirm()
	if r.committed.offset != 40 {
		t.Errorf("committed %d, want 40", r.committed.offset)
	}
}

// A checkpoint of the earlier format is adopted where the file at the path
// still has the inode, with the chain computed by reading up to the offset,
// so ids are those a fresh read gives; elsewhere it is dropped.
func TestEarlierCheckpointFormatIsAdopted(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(a, []byte("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), 0o644)
	os.WriteFile(b, []byte("{\"n\":4}\n"), 0o644)
	ino := func(p string) uint64 {
		fi, _ := os.Stat(p)
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	path := filepath.Join(dir, "checkpoint.json")
	os.WriteFile(path, fmt.Appendf(nil, `{"files":{%q:{"inode":%d,"offset":16},%q:{"inode":%d,"offset":8}}}`, a, ino(a), b, ino(b)+1), 0o640)
	var logs syncBuffer
	c := LoadCheckpoints(path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if len(c.records) != 1 || c.records[0].path != a || c.records[0].committed.offset != 16 {
		t.Fatalf("records %+v; want a.log at 16 only; logs %s", c.records, logs.String())
	}
	if !strings.Contains(logs.String(), "earlier checkpoint entry not adopted") {
		t.Errorf("no warning for b.log: %s", logs.String())
	}
	f, _ := os.Open(a)
	defer f.Close()
	ls := lineState{h: newLineHash()}
	ls.start(chainSeed(0))
	ls.add([]byte("{\"n\":1}\n"))
	m := ls.end(0)
	ls.start(m.chain)
	ls.add([]byte("{\"n\":2}\n"))
	if want := ls.end(m.offset); c.records[0].committed != want {
		t.Errorf("adopted mark %+v, want %+v: the mark reading the lines gives", c.records[0].committed, want)
	}
}

// A record of a checkpoint written before seeds were random starts its chain
// where every record's did then: a copy of its file read from its start
// gives the ids it gave. A seed that is not 32 hex bytes is damage.
func TestCheckpointWithoutSeedsIsRead(t *testing.T) {
	dir := t.TempDir()
	entry := func(seed string) string {
		return `{"version":2,"files":[{"path":"/var/log/app.log","device":1,"inode":2,"fingerprint":"` + strings.Repeat("0", 32) +
			`","fingerprint_bytes":10,"generation":2,` + seed + `"offset":0,"chain":"` + strings.Repeat("0", 64) +
			`","previous_chain":"` + strings.Repeat("0", 64) + `","line_bytes":0,"size":0}]}`
	}
	path := filepath.Join(dir, "old.json")
	os.WriteFile(path, []byte(entry("")), 0o640)
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	if len(c.records) != 1 || c.records[0].seed != chainSeed(2) {
		t.Errorf("records %+v: want one, seeded as generation 2 was", c.records)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(entry(`"seed":"abc",`)), 0o640)
	if c := LoadCheckpoints(bad, slog.New(slog.DiscardHandler)); len(c.records) != 0 {
		t.Errorf("a seed that is not 32 hex bytes was accepted: %+v", c.records)
	}
}

// A fold syncs the checkpoint's directory after the rename (else a power
// loss can undo the rename), then again once the journal is begun (it may
// be new); a save with nothing changed writes nothing; a save appended to
// the journal renames nothing; a failed sync is a failed save, and the next
// save folds again. At shutdown, a fold that fails after its save went to
// the journal is an error, and the files on disk hold every record.
func TestCheckpointSaveSyncsItsDirectoryAfterTheRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.json")
	c := LoadCheckpoints(path, slog.New(slog.DiscardHandler))
	var synced []string
	var failSync error
	c.syncDir = func(d string) error {
		if raw, err := os.ReadFile(path); err != nil || !strings.Contains(string(raw), "/var/log/app.log") {
			t.Errorf("directory synced before the rename: %q, %v", raw, err)
		}
		synced = append(synced, d)
		return failSync
	}
	c.newRecord([]byte("first bytes"), 0, newSeed(), "/var/log/app.log", fileID{7, 42}, 300)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if err := c.save(); err != nil { // unchanged
		t.Fatal(err)
	}
	if len(synced) != 2 || synced[0] != dir || synced[1] != dir {
		t.Fatalf("synced %v, want [%s %s]: after the rename and after the journal began", synced, dir, dir)
	}
	c.newRecord([]byte("other bytes"), 0, newSeed(), "/var/log/other.log", fileID{7, 43}, 300)
	if err := c.save(); err != nil || len(synced) != 2 {
		t.Fatalf("a save to the journal: %v, %d syncs; want no directory sync", err, len(synced))
	}
	failSync = syscall.EIO
	c.Close() // without a journal the next save folds, as after a failed append
	c.newRecord([]byte("third bytes"), 0, newSeed(), "/var/log/third.log", fileID{7, 44}, 300)
	if err := c.save(); err == nil || !strings.Contains(err.Error(), "syncing the checkpoint's directory") {
		t.Errorf("a fold with a failed directory sync: %v, want the error", err)
	}
	failSync = nil
	if err := c.save(); err != nil || len(synced) != 5 {
		t.Errorf("after a failed sync, the next save: %v, %d syncs; want a fold, synced twice again", err, len(synced))
	}
	failSync = syscall.EIO
	c.newRecord([]byte("fourth bytes"), 0, newSeed(), "/var/log/fourth.log", fileID{7, 45}, 300)
	if err := c.Fold(); err == nil || len(synced) != 6 {
		t.Errorf("a shutdown fold failing after its save: %v, %d syncs; want the error, the fold tried", err, len(synced))
	}
	if got := LoadCheckpoints(path, slog.New(slog.DiscardHandler)); len(got.records) != 4 {
		t.Errorf("after a shutdown fold failed, %d records on disk, want 4", len(got.records))
	}
}

// The lock's refusal never suggests what would send every line twice: two
// producers on the same files with separate checkpoints.
func TestLockRefusalSaysNotToFollowTheSameFilesTwice(t *testing.T) {
	cp := filepath.Join(t.TempDir(), "checkpoint.json")
	f, err := LockCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = LockCheckpoint(cp)
	if err == nil || !strings.Contains(err.Error(), "must never follow the same files, even with separate checkpoints") ||
		!strings.Contains(err.Error(), "-files matching different files") {
		t.Errorf("second lock: %v", err)
	}
}

// A file that can no longer be read again hands Keep its lines in flight,
// and only those: not one confirmed before, out of order. Kept moves the
// checkpoint past them and names the spool records of lines confirmed
// while they were written; their later confirmations move it no further.
func TestKeptLinesAreThoseInFlight(t *testing.T) {
	c := &Checkpoints{}
	rec := c.newRecord([]byte("x"), 0, newSeed(), "f", fileID{}, 0)
	var ps []*Position
	for i := 1; i <= 4; i++ {
		ps = append(ps, c.read(rec, mark{offset: int64(10 * i)}, Line{Data: []byte{byte('0' + i)}}))
	}
	ps[1].Confirm()
	var kept []*Position
	var data []string
	fl := &Follower{cp: c, keep: func(ps []*Position, ls []Line) {
		kept = ps
		for _, l := range ls {
			data = append(data, string(l.Data))
		}
	}}
	fl.keepFlight(rec)
	if len(kept) != 3 || kept[0] != ps[0] || kept[1] != ps[2] || kept[2] != ps[3] || strings.Join(data, ",") != "1,3,4" {
		t.Fatalf("kept %v (%q), want lines 1, 3 and 4", kept, data)
	}
	ps[2].Confirm() // while they are written to the spool
	ack, freed := c.Kept(kept, []uint64{11, 13, 14})
	if len(ack) != 1 || ack[0] != 13 || freed != 2 || rec.committed.offset != 40 {
		t.Errorf("Kept: ack %v, freed %d, committed %d; want [13], 2 (the positions of lines 2 and 3), 40", ack, freed, rec.committed.offset)
	}
	for i, want := range []uint64{11, 0, 0, 14} {
		if got := ps[i].KeptIn(); got != want {
			t.Errorf("line %d kept in %d, want %d", i+1, got, want)
		}
	}
	if moved, spool := ps[3].Confirm(); moved != 1 || spool != 14 || rec.committed.offset != 40 {
		t.Errorf("a kept line's confirmation: moved %d, spool %d, committed %d; want 1, 14, 40", moved, spool, rec.committed.offset)
	}
	kept = nil
	fl.keepFlight(rec)
	if kept != nil {
		t.Errorf("nothing in flight, yet Keep was called again with %d lines", len(kept))
	}
}
