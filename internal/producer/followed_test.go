package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/filesource"
)

// followed follows a file of n lines, {"n":1} to {"n":n}, with a checkpoint
// at cpPath, and returns the checkpoint and the lines handed out, none
// confirmed: delivery's side of the file source, as Run drives it.
func followed(t *testing.T, n int) (*filesource.Checkpoints, string, []filesource.Line) {
	t.Helper()
	dir := t.TempDir()
	var content []byte
	for i := 1; i <= n; i++ {
		content = fmt.Appendf(content, `{"n":%d}`+"\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.log"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	cpPath := filepath.Join(dir, "cp.json")
	cp := filesource.LoadCheckpoints(cpPath, quiet())
	var mu sync.Mutex
	var got []filesource.Line
	all := make(chan struct{})
	take := func(l filesource.Line) bool {
		mu.Lock()
		defer mu.Unlock()
		if got = append(got, l); len(got) == n {
			close(all)
		}
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl := filesource.New(filesource.Config{Patterns: []string{filepath.Join(dir, "*.log")}, Exclude: filesource.CheckpointFiles(cpPath), Checkpoints: cp,
		Poll: 5 * time.Millisecond, RotateWait: 5 * time.Millisecond, Log: quiet(), Concurrency: 1, TryEmit: take, Emit: func(_ context.Context, l filesource.Line) bool { return take(l) }})
	done := make(chan error)
	go func() { done <- fl.Run(ctx) }()
	<-all
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return cp, cpPath, got
}

// committedOffset is the offset the checkpoint at cpPath keeps for its one
// file, once folded.
func committedOffset(t *testing.T, cp *filesource.Checkpoints, cpPath string) int64 {
	t.Helper()
	if err := cp.Fold(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Files []struct {
			Offset int64 `json:"offset"`
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Files) != 1 {
		t.Fatalf("checkpoint %s: %v", raw, err)
	}
	return st.Files[0].Offset
}

// A line confirmed out of order keeps a position until the checkpoint moves
// past it: that memory stays counted in the queue's bytes, so a line that
// stays unconfirmed (retried for a long time) cannot let them grow unbounded.
func TestPositionsConfirmedOutOfOrderStayInTheQueueBytes(t *testing.T) {
	cp, _, ls := followed(t, 3)
	r := &run{cp: cp, budget: newBudget(1 << 20)}
	const cost = 1000
	for range ls {
		r.budget.take(cost)
	}
	r.handled(ls[1].Pos, 0, cost)
	r.handled(ls[2].Pos, 0, cost)
	if got, want := r.budget.inUse(), int64(cost+2*positionOverhead); got != want {
		t.Errorf("in use %d with one line unconfirmed and two confirmed after it, want %d", got, want)
	}
	r.handled(ls[0].Pos, 0, cost)
	if got := r.budget.inUse(); got != 0 {
		t.Errorf("in use %d once every line is confirmed, want 0", got)
	}
}
