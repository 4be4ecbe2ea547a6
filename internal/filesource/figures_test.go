package filesource

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// LagBytes sums what the files being read hold beyond the offset read to;
// files not read (a possible copy, one not identified yet, a closed one)
// and files read to their end add nothing.
func TestLagBytesIsSizeLessReadOverTheFilesRead(t *testing.T) {
	fl := &Follower{watchers: []*watcher{
		{state: following, size: 1000, next: 400},  // 600 behind
		{state: draining, size: 50, next: 20},      // 30 behind
		{state: following, size: 70, next: 70},     // read to its end
		{state: following, size: 10, next: 40},     // shrank: truncation, not a negative lag
		{state: possibleCopy, size: 5000, next: 0}, // held unread on purpose
		{state: unidentified, size: 3000, next: 0}, // not followed yet
		{state: closed, size: 9000, next: 1},       // parked
	}}
	if got := fl.LagBytes(); got != 0 {
		t.Fatalf("lag %d before any pass, want 0", got)
	}
	fl.measureLag()
	if got := fl.LagBytes(); got != 630 {
		t.Errorf("lag %d, want 630 (600 + 30)", got)
	}
	fl.watchers[0].next = 1000
	fl.measureLag()
	if got := fl.LagBytes(); got != 30 {
		t.Errorf("lag %d after the first file is read to its end, want 30", got)
	}
}

// A record forgotten with bytes never read counts once; one read to its end
// does not.
func TestGoneUnreadCountsForgottenFilesWithUnreadBytes(t *testing.T) {
	old := time.Now().Add(-time.Minute)
	cp := &Checkpoints{records: []*record{
		{path: "done", seen: old, size: 10, committed: mark{offset: 10}},
		{path: "cut", seen: old, size: 30, committed: mark{offset: 10}},
		{path: "cut2", seen: old, size: 31, committed: mark{offset: 0}},
	}}
	fl := &Follower{cp: cp, rotateWait: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fl.forget(time.Now())
	if got := fl.GoneUnread(); got != 2 {
		t.Errorf("files gone unread %d, want 2", got)
	}
	fl.forget(time.Now()) // forgotten already: not counted again
	if got := fl.GoneUnread(); got != 2 {
		t.Errorf("files gone unread %d after a second forget, want still 2", got)
	}
}
