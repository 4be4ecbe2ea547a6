package filesource

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Followed files get what RLIMIT_NOFILE leaves after the producer's own
// descriptors and two per request in flight; never none.
func TestFileBudgetReservesDeliveryAndOwnFiles(t *testing.T) {
	for _, c := range []struct {
		nofile      uint64
		concurrency int
		want        int
	}{{256, 4, 256 - 17 - 8}, {1024, 64, 1024 - 17 - 128}, {20, 4, 1}, {0, 1, 1}, {1 << 62, 4, 1<<31 - 1}} {
		if got := fileBudget(c.nofile, c.concurrency); got != c.want {
			t.Errorf("fileBudget(%d, %d) = %d, want %d", c.nofile, c.concurrency, got, c.want)
		}
	}
}

// More matched files than descriptors: at most maxOpen are open at once,
// idle ones are parked to make room, every line of every file is read once
// (a parked file that grows is read on from where it was), and a warning
// names how many wait.
func TestFilesBeyondTheBudgetWaitAndNoneStarves(t *testing.T) {
	dir := t.TempDir()
	tf := newTestFollower(t, LoadCheckpoints("", nil), filepath.Join(dir, "*.log"))
	tf.fl.maxOpen = 3
	for i := range 10 {
		appendTo(t, filepath.Join(dir, fmt.Sprintf("f%02d.log", i)), text(nLines(i*100, i*100+5)))
	}
	grow := filepath.Join(dir, "f00.log")
	got := map[string]int{}
	for poll := 0; poll < 20; poll++ {
		if poll == 5 {
			appendTo(t, grow, text(nLines(5, 8))) // parked by now: read on, not again
		}
		for _, l := range tf.poll() {
			got[l]++
		}
		if n := len(tf.fl.watchers); n > 3 {
			t.Fatalf("poll %d: %d files open, want at most 3", poll, n)
		}
	}
	want := map[string]int{}
	for i := range 10 {
		for _, l := range nLines(i*100, i*100+5) {
			want[l] = 1
		}
	}
	for _, l := range nLines(5, 8) {
		want[l] = 1
	}
	if !maps.Equal(got, want) {
		t.Errorf("read %d distinct lines (%v), want each of %d once", len(got), got, len(want))
	}
	if logs := tf.logs.String(); !strings.Contains(logs, `"msg":"matched files wait for a file descriptor`) || !strings.Contains(logs, `"waiting":7`) {
		t.Errorf("no warning names the 7 files waiting:\n%s", logs)
	}
}

// With many matched files the patterns are expanded less often than every
// poll (never less than every maxScanEvery), and an idle file is read only
// after a scan checked it; a file that changed, or is rotated, every poll.
func TestManyFilesAreCheckedLessOften(t *testing.T) {
	fl := &Follower{poll: 250 * time.Millisecond}
	for _, c := range []struct {
		matched int
		want    time.Duration
	}{{0, 250 * time.Millisecond}, {1999, 250 * time.Millisecond}, {3000, 750 * time.Millisecond}, {20000, 5 * time.Second}, {1e6, 5 * time.Second}} {
		fl.matched = c.matched
		if got := fl.scanEvery(); got != c.want {
			t.Errorf("%d files: scanned every %v, want %v", c.matched, got, c.want)
		}
	}
	now := time.Now()
	fl.cp = &Checkpoints{}
	idle := &watcher{state: following, rec: &record{}, changed: now.Add(-restAfter)}
	if !fl.resting(idle, now) {
		t.Error("an idle file not checked by the last scan is read")
	}
	for name, w := range map[string]*watcher{
		"changed":  {state: following, rec: &record{}, changed: now.Add(-restAfter / 2)},
		"scanned":  {state: following, rec: &record{}, changed: now.Add(-restAfter), scanned: fakeInfo{}},
		"rotated":  {state: draining, rec: &record{rotated: true}, changed: now.Add(-restAfter)},
		"missing":  {state: following, rec: &record{}, changed: now.Add(-restAfter), missing: now},
		"mid-line": {state: following, rec: &record{}, changed: now.Add(-restAfter), line: lineState{n: 3}},
	} {
		if fl.resting(w, now) {
			t.Errorf("a %s file is not read", name)
		}
	}
}

type fakeInfo struct{ os.FileInfo }
