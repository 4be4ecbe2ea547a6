package filesource

import (
	"bytes"
	"testing"
	"time"
)

// The registry's transitions and queries, on records alone: no file.
func TestCandidatesInTheOrderClaimTriesThem(t *testing.T) {
	head := bytes.Repeat([]byte("h"), fpBytes)
	fp := fingerprintOf(head)
	at := func(off int64) mark { return mark{offset: off} }
	own := &record{fp: fp, dev: 1, ino: 9, read: at(10)}
	near := &record{fp: fp, dev: 1, ino: 2, read: at(50)}
	far := &record{fp: fp, dev: 1, ino: 3, read: at(500)}
	followed := &record{fp: fp, dev: 1, ino: 4, read: at(900), held: true}
	other := &record{fp: fingerprintOf(bytes.Repeat([]byte("o"), fpBytes)), dev: 1, ino: 5}
	short := &record{fp: fingerprintOf(head[:10]), dev: 1, ino: 6} // another inode's short fingerprint
	c := &Checkpoints{records: []*record{followed, near, other, short, far, own}}
	var got []*record
	for _, cand := range c.candidates(head, fileID{1, 9}) {
		got = append(got, cand.r)
		if cand.read != cand.r.read || cand.held != cand.r.held {
			t.Errorf("candidate %+v does not say what its record does", cand)
		}
	}
	want := []*record{own, far, near, followed}
	if len(got) != len(want) {
		t.Fatalf("%d candidates, want %d (own inode, others not followed furthest first, followed)", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("candidate %d is the record of inode %d, want %d", i, got[i].ino, want[i].ino)
		}
	}
}

func TestRegistryTransitions(t *testing.T) {
	c := &Checkpoints{}
	r := &record{path: "/l/app.log", dev: 1, ino: 2, size: 100}
	c.records = []*record{r}

	c.resume(r, "/l/app.log", fileID{1, 3}, 120)
	if !r.held || r.rotated || r.ino != 3 || r.size != 120 || r.seen.IsZero() {
		t.Errorf("resumed under its own name: %+v", r)
	}
	c.release(r, time.Now(), false)
	c.resume(r, "/l/app.log.1", fileID{1, 3}, 120)
	if r.path != "/l/app.log.1" || !r.rotated {
		t.Errorf("resumed under another name: path %q rotated %v, want the new path and rotated", r.path, r.rotated)
	}
	if h := c.hinted(); h[fileID{1, 3}] {
		t.Error("a followed record's inode goes first in a scan")
	}
	now := time.Now()
	c.release(r, now, false)
	if r.held || !r.seen.Equal(now) || r.ino != 3 || !c.hinted()[fileID{1, 3}] {
		t.Errorf("parked: %+v, want not held, its hint kept", r)
	}
	c.release(r, now, true)
	if r.dev != 0 || r.ino != 0 {
		t.Errorf("released with its inode gone: hint %d/%d kept", r.dev, r.ino)
	}
	c.sawSize(r, 80)
	if r.size != 120 {
		t.Errorf("size %d, want the largest seen", r.size)
	}
}

func TestForgetKeepsWhatIsStillNeededAndSaysWhatWasUnread(t *testing.T) {
	now := time.Now()
	old := now.Add(-time.Minute)
	done := &record{path: "done", seen: old, size: 10, committed: mark{offset: 10}}
	unreadR := &record{path: "cut", seen: old, size: 30, committed: mark{offset: 10}}
	held := &record{path: "held", seen: old, held: true}
	recent := &record{path: "recent", seen: now}
	inFlight := &record{path: "flight", seen: old, readSeq: 2, doneSeq: 1}
	c := &Checkpoints{records: []*record{done, unreadR, held, recent, inFlight}}
	lost := c.forget(now, 10*time.Second)
	if len(lost) != 1 || lost[0] != (unread{"cut", 10, 30}) {
		t.Errorf("said unread %+v, want the one file cut at 10 of 30", lost)
	}
	if len(c.records) != 3 || c.records[0] != held || c.records[1] != recent || c.records[2] != inFlight {
		t.Errorf("%d records kept, want the held, the recent and the one with lines in flight", len(c.records))
	}
}
