//go:build faults

// Stopping: signals, stdin, the spool and replay.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// Stdin and SIGTERM: every line read is delivered, or kept in the spool
// and delivered by the next start, with the API down and with a slow API.
func TestFaultStdinSIGTERM(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
	}{{"api_down", fakeapi.Faults{Down: true}}, {"api_slow", fakeapi.Faults{Delay: 150 * time.Millisecond}}} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			r, w := stdinPipe(t)
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-concurrency", "2", "-queue-mib", "1")
			s.feedStdin(w, 40000, 60)
			waitFor(t, "requests", func() bool { return s.api.Requests() > 3 })
			time.Sleep(200 * time.Millisecond)
			code := p.stop(syscall.SIGTERM)
			s.stdinRest(r)
			if code != p.wantExit() {
				t.Errorf("exit %d, want %d", code, p.wantExit())
			}
			if kept := len(s.spooled()); kept == 0 && c.faults.Down {
				t.Error("nothing was kept in the spool although the API was down")
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			if tl := s.check(false); len(tl.extra) > 0 {
				t.Errorf("%d lines cut off at shutdown; a stop reads the line in progress to its newline", len(tl.extra))
			}
		})
	}
}

// An idle stdin does not hold up the shutdown (the read waiting is
// ended, not waited for until -shutdown-timeout, an hour here), and lines
// written after the stop stay in the pipe.
func TestFaultStdinIdleAtSIGTERM(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1h")
	w.WriteString(s.lines(0, 100, 20))
	s.waitAll(p)
	code := p.stop(syscall.SIGTERM) // fails the test if it takes a minute
	late := s.lines(100, 110, 20)
	w.WriteString(late)
	w.Close()
	s.stdinRest(r)
	if code != p.wantExit() {
		t.Errorf("exit %d, want %d", code, p.wantExit())
	}
	s.check(false)
	if tl := s.count(); tl.stored != 100 {
		t.Errorf("%d stored, want the 100 lines written before the stop", tl.stored)
	}
}

// SIGHUP and SIGQUIT stop the producer as SIGTERM does: every line read
// from stdin is delivered or dead-lettered, with the API down and slow.
func TestFaultStdinSIGHUPAndSIGQUIT(t *testing.T) {
	for _, c := range []struct {
		name   string
		sig    syscall.Signal
		faults fakeapi.Faults
	}{
		{"SIGHUP_api_down", syscall.SIGHUP, fakeapi.Faults{Down: true}},
		{"SIGQUIT_api_slow", syscall.SIGQUIT, fakeapi.Faults{Delay: 150 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			r, w := stdinPipe(t)
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-concurrency", "2", "-queue-mib", "1")
			s.feedStdin(w, 5000, 60)
			waitFor(t, "requests", func() bool { return s.api.Requests() > 3 })
			code := p.stop(c.sig)
			s.stdinRest(r)
			if code != p.wantExit() {
				t.Errorf("exit %d, want %d (killed by %v?)", code, p.wantExit(), c.sig)
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			tl := s.check(false)
			if tl.stored+tl.dead == 0 {
				t.Error("nothing stored or dead-lettered")
			}
		})
	}
}

// A stderr whose reader has gone (a closed pipe) does not stop the
// producer: its log lines fail, and every event is still stored.
func TestFaultStderrReaderGone(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stderr = w
	p := s.start(nil, "-files", s.path("app.log"))
	w.Close()
	if _, err := r.Read(make([]byte, 1)); err != nil { // the producer has started logging
		t.Fatal(err)
	}
	r.Close()
	s.appendFile("app.log", s.lines(0, 1000, 20)) // -log-level debug: a log line per batch at least
	s.waitAll(p)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	s.check(true)
}

// The end of stdin with the API down: the producer stops on its own once
// the API has confirmed nothing for -shutdown-timeout, every event kept in
// the spool, and exits 3; the next start sends them.
func TestFaultStdinEndWithTheAPIDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	if err := os.WriteFile(s.path("events.ndjson"), []byte(s.lines(0, 500, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(s.path("events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := s.start(in, "-source", "stdin", "-shutdown-timeout", "1s")
	select {
	case <-p.done:
	case <-time.After(30 * time.Second): // bounds the test, not the producer's speed
		t.Fatalf("the producer is still running 30 s after the end of its input with -shutdown-timeout 1s:\n%s", tail(p.stderr.String()))
	}
	if code := p.wait(); code != 3 {
		t.Errorf("exit %d, want 3 (events kept in the spool)", code)
	}
	if kept, dead := len(s.spooled()), s.dlEntries(); kept != 500 || dead != 0 {
		t.Errorf("%d kept in the spool, %d dead-lettered; want all 500 kept", kept, dead)
	}
	s.api.SetFaults(fakeapi.Faults{})
	s.sendSpool()
	if tl := s.check(false); tl.stored != 500 {
		t.Errorf("%d stored after the restart, want 500", tl.stored)
	}
}

// Stdin with the API down: 5,000 events read (in the spool), then kill -9
// or SIGTERM; the restart with the API up stores all of them, each exactly
// once under the event_id it had. A SIGTERM keeps them in the spool, not
// the dead-letter file, says how many, and exits 3.
func TestFaultStdinSpoolKill9AndSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			r, w := stdinPipe(t)
			// Full batches of 500: 8 of them in flight and waiting, and
			// the lines between, hold the 5,000 while the API is down.
			p := s.start(r, "-source", "stdin", "-shutdown-timeout", "1s", "-batch-size", "500", "-linger", "1s")
			text := s.lines(0, 5000, 60)
			go func() { _, _ = w.WriteString(text) }()
			waitFor(t, "5,000 events in the spool", func() bool { return len(s.spooled()) == 5000 })
			code := p.stop(sig)
			w.Close()
			r.Close()
			ids := s.spooled()
			if sig == syscall.SIGTERM {
				if code != 3 || !strings.Contains(p.stderr.String(), `"kept":5000`) {
					t.Errorf("exit %d, want 3 with 5000 kept in the spool; logs:\n%s", code, tail(p.stderr.String()))
				}
				if n := s.dlEntries(); n != 0 {
					t.Errorf("%d events dead-lettered; they belong in the spool", n)
				}
			}
			if len(ids) != 5000 {
				t.Fatalf("%d events in the spool after %v, want 5000", len(ids), sig)
			}
			s.api.SetFaults(fakeapi.Faults{})
			s.sendSpool()
			if tl := s.check(true); tl.stored != 5000 || tl.dups != 0 {
				t.Errorf("%d stored, %d duplicates; want 5000 exactly once", tl.stored, tl.dups)
			}
			s.checkSpoolIDs(ids)
		})
	}
}

// The spool full (-spool-mib 1, about 3 MB of stdin, the API down): reading
// stops, the log and the stats say so, the file stays within its bound, and
// once the API is back every event is stored.
func TestFaultSpoolFull(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin", "-spool-mib", "1", "-stats-interval", "100ms")
	s.feedStdin(w, 3000, 1000)
	waitFor(t, "the log to say the spool is full", func() bool {
		return strings.Contains(p.stderr.String(), "the spool is full") && strings.Contains(p.stderr.String(), `"spool_full":true`)
	})
	if fi, err := os.Stat(s.spoolPath()); err != nil || fi.Size() > 1<<20 {
		t.Errorf("spool %v, %v: want at most 1 MiB", fi.Size(), err)
	}
	if n := len(s.spooled()); n >= 3000 || n == 0 {
		t.Errorf("%d events in the spool; reading should have stopped before 3000", n)
	}
	s.api.SetFaults(fakeapi.Faults{})
	if code := p.wait(); code != 0 { // the end of stdin, every event confirmed
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
	}
	if !strings.Contains(p.stderr.String(), "the spool has room again") {
		t.Error("the log never said reading went on")
	}
	if tl := s.check(true); tl.stored != 3000 || tl.dups != 0 {
		t.Errorf("%d stored, %d duplicates; want 3000 exactly once", tl.stored, tl.dups)
	}
}

// The synthetic source with the API down, then kill -9: the restart stores
// every event that was in the spool, under its event_id.
func TestFaultSpoolSyntheticKill9(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	p := s.start(nil, "-source", "synthetic", "-rate", "500")
	waitFor(t, "events in the spool", func() bool { return len(s.spooled()) >= 300 })
	p.stop(syscall.SIGKILL)
	ids := s.spooled()
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil, "-source", "synthetic", "-rate", "1")
	waitFor(t, "the spool's events stored", func() bool { return len(s.api.Events()) >= len(ids) })
	s.stopWanted(p)
	s.checkSpoolIDs(ids)
	t.Logf("RESULT %-40s spooled %5d at kill -9, stored %d", t.Name(), len(ids), len(s.api.Events()))
}

// A stop never cuts a stdin line: SIGTERM while half a line is in the pipe,
// the rest written 300 ms later (within -shutdown-timeout 2s). The line is
// read to its newline and stored whole; the line after it stays in the pipe.
func TestFaultStdinStopFinishesTheLine(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	r, w := stdinPipe(t)
	p := s.start(r, "-source", "stdin")
	w.WriteString(s.lines(0, 10, 20))
	s.waitAll(p)
	whole := s.lines(10, 11, 2000)
	w.WriteString(whole[:1000])
	time.Sleep(200 * time.Millisecond) // the producer reads the first half
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	w.WriteString(whole[1000:] + s.lines(11, 12, 20))
	w.Close()
	code := p.wait()
	s.stdinRest(r)
	if code != 0 {
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
	}
	tl := s.check(false)
	if len(tl.idsOf[10]) != 1 || len(tl.extra) != 0 || tl.dead != 0 {
		t.Errorf("line 10: stored %d times, %d cut off, %d dead-lettered; want it stored whole", len(tl.idsOf[10]), len(tl.extra), tl.dead)
	}
	if _, unread := s.written[11]; unread {
		t.Error("line 11, written after the stop, was not left in the pipe")
	}
}

// Replay: 300 lines refused with 403 (a wrong API key) are dead-lettered.
// A replay with the key fixed stores every one under its event_id and
// exits 0; one with the API still refusing writes them to a new
// dead-letter file, named in the log, and exits 3. The file replayed from
// is never changed.
func TestFaultReplay(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{APIKey: "right"})
	s.appendFile("app.log", s.lines(0, 300, 20))
	p := s.start(nil, "-files", s.path("app.log"), "-auth", "api-key", "-api-key", "wrong")
	s.finish(p)
	if tl := s.check(true); tl.dead != 300 {
		t.Fatalf("%d dead-lettered, want the 300 refused", tl.dead)
	}
	before, _ := os.ReadFile(s.dl)
	ids := deadIDs(t, s.dl)

	t.Run("still_refused", func(t *testing.T) {
		p := s.start(nil, "replay", "-from", s.dl, "-reason", "403", "-auth", "api-key", "-api-key", "wrong")
		code := p.wait()
		m := regexp.MustCompile(`"dead_letter_file":"([^"]+replay-[^"]+)"`).FindStringSubmatch(p.stderr.String())
		if code != 3 || m == nil {
			t.Fatalf("exit %d, want 3 naming a new dead-letter file; logs:\n%s", code, tail(p.stderr.String()))
		}
		if again := deadIDs(t, m[1]); len(again) != 300 {
			t.Errorf("the new dead-letter file holds %d events, want the 300", len(again))
		}
		if after, _ := os.ReadFile(s.dl); !bytes.Equal(before, after) {
			t.Error("the dead-letter file replayed from was changed")
		}
	})
	t.Run("fixed", func(t *testing.T) {
		p := s.start(nil, "replay", "-from", s.dl, "-reason", "403", "-auth", "api-key", "-api-key", "right")
		if code := p.wait(); code != 0 {
			t.Fatalf("exit %d, want 0; logs:\n%s", code, tail(p.stderr.String()))
		}
		stored := s.storedIDs()
		for _, id := range ids {
			if stored[id] != 1 {
				t.Errorf("event %s stored %d times, want once under its id", id, stored[id])
				break
			}
		}
		if tl := s.check(true); tl.stored != 300 {
			t.Errorf("%d stored, want 300", tl.stored)
		}
		if after, _ := os.ReadFile(s.dl); !bytes.Equal(before, after) {
			t.Error("the dead-letter file replayed from was changed")
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(s.dl), "*replay-*")); len(left) != 1 {
			t.Errorf("replay files %v: want only the one of the replay that failed (an empty one is removed)", left)
		}
	})
}

// Replay chooses by reason: 403, shutdown (any last attempt), 5xx (also
// as the last attempt), all (a line that is not JSON fails again).
func TestFaultReplayReasonFilter(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	entry := func(n int, reason string, status int) string {
		ev := fmt.Sprintf(`{"event_id":"id-%d","event_time":"2026-01-01T00:00:00.000Z","n":%d}`, n, n)
		b, _ := json.Marshal(map[string]any{"time": "2026-01-01T00:00:00Z", "reason": reason, "status": status, "event": json.RawMessage(ev)})
		return string(b) + "\n"
	}
	var b strings.Builder
	for n := 0; n < 30; n++ {
		switch {
		case n < 10:
			b.WriteString(entry(n, "HTTP 403: Forbidden", 403))
		case n < 20:
			b.WriteString(entry(n, "not confirmed by the API before the shutdown deadline; last attempt: network: EOF", 0))
		default:
			b.WriteString(entry(n, "not confirmed by the API before the shutdown deadline; last attempt: HTTP 500: x", 0))
		}
	}
	b.WriteString(`{"time":"2026-01-01T00:00:00Z","reason":"not a JSON object","raw":"n 30 not json"}` + "\n")
	from := s.path("dl.ndjson")
	if err := os.WriteFile(from, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		reason string
		want   []int // the n stored once the replay is done
		exit   int
	}{
		{"5xx", rangeOf(20, 30), 0},
		{"403", rangeOf(0, 10), 0},
		{"shutdown", rangeOf(10, 30), 0},
		{"all", nil, 3}, // the line that is not JSON fails again
	} {
		before := len(s.api.Events())
		p := s.start(nil, "replay", "-from", from, "-reason", c.reason, "-dead-letter", s.path("again-"+c.reason+".ndjson"))
		if code := p.wait(); code != c.exit {
			t.Errorf("-reason %s: exit %d, want %d", c.reason, code, c.exit)
		}
		var got []int
		for _, rec := range s.api.Events()[before:] {
			if m := nRe.FindSubmatch(rec); m != nil {
				n, _ := strconv.Atoi(string(m[1]))
				got = append(got, n)
			}
		}
		slices.Sort(got)
		if c.want != nil && !slices.Equal(got, c.want) {
			t.Errorf("-reason %s stored %v, want %v", c.reason, got, c.want)
		}
		if c.reason == "all" && (len(got) != 30 || len(deadIDs(t, s.path("again-all.ndjson"))) != 0 || s.dlLines(s.path("again-all.ndjson")) != 1) {
			t.Errorf("-reason all stored %d (want 30) and should dead-letter only the line that is not JSON", len(got))
		}
	}
}
