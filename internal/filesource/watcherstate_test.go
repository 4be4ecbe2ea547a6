package filesource

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// The watcher's transitions change only the watcher: no file is opened.
func TestWatcherTransitions(t *testing.T) {
	r := &record{read: mark{offset: 120, chain: chainSeed(0).then([]byte("x\n"))}}
	copyOf := &record{}

	w := &watcher{}
	if w.state != unidentified {
		t.Fatalf("a new watcher is %v, want unidentified", w.state)
	}
	w.holdAsCopy(copyOf)
	if w.state != possibleCopy || w.copyOf != copyOf || w.rec != nil || w.state.reading() {
		t.Fatalf("held as a copy: %+v", w)
	}
	w.startReading(r, false)
	if w.state != following || w.rec != r || w.copyOf != nil || w.next != 120 || w.line.prev != r.read.chain || !w.state.reading() {
		t.Fatalf("reading a record not rotated: state %v next %d", w.state, w.next)
	}
	w.rotate()
	if w.state != draining || !w.state.reading() {
		t.Fatalf("renamed: %v, want draining", w.state)
	}
	gen := &record{read: mark{chain: newSeed()}}
	w.line.add([]byte("half a li")) // cut off by the truncation
	w.restart(gen)
	if w.state != following || w.rec != gen || w.next != 0 || w.line.n != 0 || w.line.prev != gen.read.chain {
		t.Fatalf("truncated: state %v next %d line %d, want following the new generation from 0", w.state, w.next, w.line.n)
	}

	resumed := &watcher{}
	resumed.startReading(r, true) // its record says it was renamed (while the producer was stopped)
	if resumed.state != draining {
		t.Errorf("a record read under another name: %v, want draining", resumed.state)
	}
}

// Which watchers are left unread until the next scan, and which may be
// parked to make room, follows from their state alone.
func TestWatcherStateDecidesRestingAndParking(t *testing.T) {
	now := time.Now()
	idle := now.Add(-time.Minute)
	newW := func(st watcherState) *watcher {
		w := &watcher{state: st, changed: idle, nlink: 1, size: 10, next: 10, id: fileID{1, uint64(st) + 1}}
		switch st {
		case following, draining:
			w.rec = &record{held: true}
		case possibleCopy:
			w.copyOf = &record{held: true}
		}
		return w
	}
	fl := New(Config{Checkpoints: &Checkpoints{}, Poll: time.Second, RotateWait: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ws := map[watcherState]*watcher{}
	for _, st := range []watcherState{unidentified, possibleCopy, following, draining} {
		ws[st] = newW(st)
		fl.watchers = append(fl.watchers, ws[st])
	}
	for st, want := range map[watcherState]bool{unidentified: true, possibleCopy: false, following: true, draining: false} {
		if got := fl.resting(ws[st], now); got != want {
			t.Errorf("resting(%v) = %v, want %v", st, got, want)
		}
	}
	fl.park(4, func(fileID) (int64, bool) { return 10, true }, now)
	for st, parked := range map[watcherState]bool{unidentified: true, possibleCopy: false, following: true, draining: false} {
		w := ws[st]
		if (w.state == closed) != parked {
			t.Errorf("a %v watcher parked: %v, want %v", st, w.state == closed, parked)
		}
	}
	if len(fl.watchers) != 2 || fl.parked[ws[following].id] != ws[following].rec || ws[following].rec.held {
		t.Errorf("after parking: %d watchers, parked %v; the following one's record must be parked, not held", len(fl.watchers), fl.parked)
	}
	if size, ok := fl.passed[ws[unidentified].id]; !ok || size != 10 {
		t.Errorf("the unidentified file is not passed over until it grows: %v", fl.passed)
	}
}

// The watcher being read is not parked by a scan while it waits for room
// in the queue (send): the rest of the chunk it read is still to go out,
// and it would read on from a closed descriptor.
func TestTheWatcherReadNowIsNotParked(t *testing.T) {
	now := time.Now()
	fl := New(Config{Checkpoints: &Checkpoints{}, Poll: time.Second, RotateWait: time.Second, Log: slog.New(slog.DiscardHandler)})
	busy := &watcher{state: following, rec: &record{held: true}, changed: now.Add(-time.Minute), nlink: 1, size: 10, next: 10, id: fileID{1, 1}}
	other := &watcher{state: following, rec: &record{held: true}, changed: now.Add(-time.Minute), nlink: 1, size: 10, next: 10, id: fileID{1, 2}}
	fl.watchers = []*watcher{busy, other}
	fl.reading = busy
	fl.park(2, func(fileID) (int64, bool) { return 10, true }, now)
	if busy.state != following || other.state != closed || len(fl.watchers) != 1 || fl.watchers[0] != busy {
		t.Errorf("read now: %v, the other: %v, %d watchers open; want the one read now still following, the other parked", busy.state, other.state, len(fl.watchers))
	}
}

func (s watcherState) String() string {
	return [...]string{"unidentified", "possibleCopy", "following", "draining", "closed"}[s]
}
