package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// The producer refuses to start when the dead-letter file cannot be opened
// (here its directory would have to be a file), before sending anything.
func TestRunRefusesAnUnwritableDeadLetterFile(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	parent := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(parent, nil, 0o644)
	cfg.DeadLetterPath = filepath.Join(parent, "dead-letter.ndjson")
	cfg.Source, cfg.Stdin = SourceStdin, strings.NewReader(numbered(0, 5, nil))
	err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "dead-letter file") || api.Requests() != 0 {
		t.Errorf("Run = %v after %d requests; want a refusal to start", err, api.Requests())
	}
}

// An entry cut off by a crash in the middle of a write is removed when the
// file is opened, so the next entry starts on its own line.
func TestDeadLetterFileRepairsAnIncompleteLastEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.ndjson")
	whole := `{"time":"t","reason":"r","raw":"a"}` + "\n"
	os.WriteFile(path, []byte(whole+`{"time":"t","reas`), 0o640)
	d, err := openDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.write([]deadLetter{{Reason: "second", Raw: "b"}}); err != nil {
		t.Fatal(err)
	}
	d.close()
	got, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	var second deadLetter
	if len(lines) != 2 || lines[0]+"\n" != whole || json.Unmarshal([]byte(lines[1]), &second) != nil || second.Reason != "second" {
		t.Errorf("file after repair and a write:\n%s", got)
	}
}

// While the dead-letter file cannot be written (a full disk: /dev/full) the
// events wait, unconfirmed, and the write is retried; when the path works
// again they are written and Run ends without error. Nothing is lost.
func TestDeadLetterWritesAreRetriedUntilTheyWork(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{RejectContaining: `"bad"`})
	defer api.Close()
	cfg := testConfig(t, api)
	dir := t.TempDir()
	real := filepath.Join(dir, "dl.ndjson")
	link := filepath.Join(dir, "dl-link")
	if err := os.Symlink("/dev/full", link); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	cfg.DeadLetterPath = link
	bad := func(i int) bool { return i%10 == 0 }
	cfg.Source, cfg.Stdin = SourceStdin, strings.NewReader(numbered(0, 100, bad)+"not json\n")
	done := make(chan error)
	go func() { done <- Run(context.Background(), cfg) }()
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
	waitUntil(t, func() bool { return len(api.Events()) == 90 })
	if c := cfg.Stats.Snapshot(); c.DeadLettered != 0 {
		t.Errorf("%d events counted dead-lettered while the file could not be written", c.DeadLettered)
	}
	os.Symlink(real, link+".new")
	os.Rename(link+".new", link)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after the dead-letter file recovered", err)
	}
	dead := readDeadLetters(t, real)
	if len(dead) != 11 || cfg.Stats.Snapshot().DeadLettered != 11 {
		t.Errorf("%d dead letters written, %d counted; want the 10 rejected events and the line that is not JSON",
			len(dead), cfg.Stats.Snapshot().DeadLettered)
	}
}

// When the dead-letter file still cannot be written at shutdown, events from
// stdin (which cannot be read again) are written to the log in full, and Run
// returns an error.
func TestEventsTheDeadLetterFileRefusesGoToTheLogAtShutdown(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	var logs syncBuffer
	cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	cfg.DeadLetterPath, cfg.ShutdownTimeout = "/dev/full", 50*time.Millisecond
	pr, pw := io.Pipe()
	cfg.Source, cfg.Stdin = SourceStdin, pr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()
	pw.Write([]byte("{\"n\":1} trailing\n{\"n\":2}\n"))
	waitUntil(t, func() bool {
		return strings.Contains(logs.String(), "CANNOT WRITE THE DEAD-LETTER FILE") && len(api.Events()) == 1
	})
	cancel()
	err := <-done
	pw.Close()
	if err == nil || !strings.Contains(err.Error(), "1 events could not be written to the dead-letter file") {
		t.Errorf("Run = %v", err)
	}
	if !strings.Contains(logs.String(), `"raw":"{\"n\":1} trailing"`) {
		t.Errorf("the event is not in the log:\n%s", logs.String())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a log destination that tests read while Run writes.
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

// Two producers on one checkpoint would each send every line: the second
// refuses to start, saying why, and so does one that would write to the
// dead-letter file another producer writes to (opening it cuts off an
// incomplete last entry, which may be the other's write in progress).
func TestASecondProducerOnTheSameFilesRefusesToStart(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.log"), []byte(numbered(0, 10, nil)), 0o644)
	cfg := testConfig(t, api)
	cfg.Source, cfg.Files, cfg.CheckpointPath = SourceFile, []string{filepath.Join(dir, "*.log")}, filepath.Join(dir, "cp.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()
	waitStored(t, api, 10)

	// Not refused, they would run until this bound.
	bounded, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	second := cfg
	second.Stats, second.DeadLetterPath = &Stats{}, filepath.Join(dir, "other-dead-letter.ndjson")
	if err := Run(bounded, second); err == nil || !strings.Contains(err.Error(), "another producer") {
		t.Errorf("a second producer on the same checkpoint: %v; want a refusal", err)
	}
	third := testConfig(t, api) // stdin, its own checkpoint, the first one's dead-letter file
	third.Source, third.Stdin, third.DeadLetterPath = SourceStdin, strings.NewReader(""), cfg.DeadLetterPath
	if err := Run(bounded, third); err == nil || !strings.Contains(err.Error(), "another producer") {
		t.Errorf("a second producer on the same dead-letter file: %v; want a refusal", err)
	}
	if n := len(api.Events()); n != 10 {
		t.Errorf("%d events stored, want the 10 lines once", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), third); err != nil {
		t.Errorf("once the first producer stopped: %v", err)
	}
}
