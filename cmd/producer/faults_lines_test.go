//go:build faults

// Lines: what is refused, the dead-letter file, and memory bounds.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// Trailing content after the JSON object dead-letters the whole line.
func TestFaultTrailingContent(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	var b strings.Builder
	b.WriteString(s.lines(0, 10, 10))
	bad := map[int]string{10: `{"n":10},{"n":99990}`, 11: `{"n":11}xyz`, 12: `{"n":12}}`, 13: `{"n":13} {"n":99991}`}
	for n := 10; n < 14; n++ {
		b.WriteString(bad[n] + "\n")
		s.written[n] = true
	}
	b.WriteString(s.lines(14, 20, 10))
	if err := os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := s.start(nil, "-files", s.path("app.log"))
	s.waitAll(p)
	p.stop(syscall.SIGTERM)
	tl := s.check(true)
	for n := range bad {
		if !strings.Contains(tl.reasons[n], "content after the object") {
			t.Errorf("line %d: dead-letter reason %q", n, tl.reasons[n])
		}
		if len(tl.idsOf[n]) > 0 {
			t.Errorf("line %d with trailing content was stored", n)
		}
	}
	if bytes.Contains(bytes.Join(s.api.Events(), nil), []byte("9999")) {
		t.Error("a value after the first object was stored")
	}
}

// The dead-letter file cannot be written.
func TestFaultDeadLetterUnwritable(t *testing.T) {
	t.Run("refuses_to_start", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.WriteFile(s.path("a-file"), nil, 0o644)
		s.dl = filepath.Join(s.path("a-file"), "dead-letter.ndjson")
		s.appendFile("app.log", `{"n":1}`+"\n")
		p := s.start(nil, "-files", s.path("app.log"))
		code := p.wait()
		if code == 0 || !strings.Contains(s.logs(), "dead-letter file") || s.api.Requests() != 0 {
			t.Errorf("exit %d with %d requests; want a refusal to start; logs:\n%s", code, s.api.Requests(), s.logs())
		}
		if _, err := os.Stat(s.cp); !os.IsNotExist(err) {
			t.Error("a checkpoint was written by a producer that refused to start")
		}
	})

	// A file source: /dev/full (a full disk), loud, the checkpoint stays
	// before the events, exit 1; restarted, then fixed while running.
	t.Run("full_disk_file_source", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.MkdirAll(filepath.Dir(s.dl), 0o755)
		link := s.path("dl-link") // the producer's dead-letter path; s.dl is where it points once fixed
		if err := os.Symlink("/dev/full", link); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(s.lines(0, 50, 40))
		for n := 50; n < 60; n++ {
			fmt.Fprintf(&b, `{"n":%d, not json`+"\n", n)
			s.written[n] = true
		}
		b.WriteString(s.lines(60, 5000, 40))
		os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644)
		badAt := int64(strings.Index(b.String(), `{"n":50, not`))
		s.flags = []string{"-files", s.path("app.log"), "-queue-mib", "1", "-dead-letter", link}
		p := s.start(nil)
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		waitFor(t, "the lines before the bad ones", func() bool { return len(s.api.Events()) >= 50 })
		time.Sleep(1500 * time.Millisecond) // a checkpoint save or two
		if off := checkpointOffset(t, s.cp); off > badAt {
			t.Errorf("the checkpoint moved to %d, past the events not yet dead-lettered (at %d)", off, badAt)
		}
		if code := p.stop(syscall.SIGTERM); code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		p = s.start(nil) // still full: keeps retrying, then the disk is freed
		waitFor(t, "the error again", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		os.Symlink(s.dl, link+".new")
		os.Rename(link+".new", link)
		s.waitAll(p)
		waitFor(t, "a log line saying the dead-letter file recovered", func() bool { // logged just after the write
			return strings.Contains(p.stderr.String(), "can be written again")
		})
		if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
			t.Errorf("exit %d after the dead-letter file recovered", code)
		}
		s.check(true)
	})

	// A file size limit (RLIMIT_FSIZE, what a full disk does mid-write): the
	// write that crosses it is partial and must be cut back.
	t.Run("partial_write_cut_back", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		var b strings.Builder
		for n := 0; n < 300; n++ {
			fmt.Fprintf(&b, `{"n":%d, "not json":"%s"`+"\n", n, strings.Repeat("y", 700))
			s.written[n] = true
		}
		b.WriteString(s.lines(300, 400, 40))
		os.WriteFile(s.path("app.log"), []byte(b.String()), 0o644)
		s.flags = []string{"-files", s.path("app.log")}
		// dash counts ulimit -f in 512-byte blocks: 64 KiB.
		p := s.startWith([]string{"/bin/sh", "-c", `ulimit -f 128 && exec "$0" "$@"`}, nil)
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		if code := p.stop(syscall.SIGTERM); code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		if tl := s.count(); len(tl.badDL) > 0 {
			t.Errorf("a partial write left %d half entries", len(tl.badDL))
		}
		p = s.start(nil)
		s.finish(p)
		s.check(true)
	})

	// stdin cannot be read again: at shutdown what the file did not take is
	// written in full to stderr, and the exit code says so.
	t.Run("full_disk_stdin", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{}) // s.dl stays a path that is never written
		r, w := stdinPipe(t)
		p := s.start(r, "-source", "stdin", "-shutdown-timeout", "500ms", "-dead-letter", "/dev/full")
		for n := 0; n < 20; n++ {
			fmt.Fprintf(w, `{"n":%d, not json`+"\n", n)
			s.written[n] = true
		}
		w.WriteString(s.lines(20, 40, 10))
		waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT WRITE THE DEAD-LETTER FILE") })
		waitFor(t, "the good lines", func() bool { return len(s.api.Events()) >= 20 })
		code := p.stop(syscall.SIGTERM)
		w.Close()
		s.stdinRest(r)
		if code == 0 {
			t.Error("exit 0 although events could not be dead-lettered")
		}
		logs := s.logs()
		for n := 0; n < 20; n++ {
			if !strings.Contains(logs, fmt.Sprintf(`{\"n\":%d, not json`, n)) {
				t.Errorf("line %d is neither in the dead-letter file nor on stderr", n)
			}
			delete(s.written, n) // accounted for on stderr
		}
		s.check(false)
	})
}

// Memory is bounded by -queue-mib while the API is down and lines are big:
// with a small queue and with the default one.
func TestFaultMemoryBoundedWithBigLines(t *testing.T) {
	for _, queueMiB := range []int64{16, 32} {
		t.Run(fmt.Sprintf("queue_%d_MiB", queueMiB), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			s.bin = plainBin // the race detector's shadow memory would hide the figure
			f, err := os.Create(s.path("big.log"))
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(f)
			for i := 0; i < 300; i++ { // 150 MB of 500 KiB lines
				w.WriteString(s.lines(i, i+1, 500<<10))
			}
			w.Flush()
			f.Close()
			p := s.start(nil, "-files", s.path("big.log"), "-queue-mib", fmt.Sprint(queueMiB), "-concurrency", "4", "-batch-size", "500")
			waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 20 })
			time.Sleep(time.Second)
			s.api.SetFaults(fakeapi.Faults{})
			s.finish(p)
			s.check(true)
			// The queue, 4 requests of up to 4 MiB with their bodies, the
			// runtime and the garbage collector's headroom: far below the
			// 150 MB an unbounded queue would hold.
			if bound := 3*queueMiB<<10 + 64<<10; s.peakRSS > bound {
				t.Errorf("peak RSS %d KiB with -queue-mib %d, above %d KiB: the queue is not bounded in bytes", s.peakRSS, queueMiB, bound)
			}
		})
	}
}

// Blank lines count in the memory bound: one event, then 4 MiB of empty
// lines (4 million lines), then another, read while the API is down and the
// first event cannot be confirmed.
func TestFaultBlankLinesWhileTheAPIIsDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.bin = plainBin // the race detector's shadow memory would hide the figure
	content := s.lines(0, 1, 10) + strings.Repeat("\n", 4<<20) + s.lines(1, 2, 10)
	s.appendFile("app.log", content)
	p := s.start(nil, "-files", s.path("app.log"), "-queue-mib", "1", "-stats-interval", "50ms")
	waitFor(t, "both events to be read", func() bool { return strings.Contains(p.stderr.String(), `"read":2,`) })
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
	if bound := int64(64 << 10); s.peakRSS > bound { // the plain binary's baseline is about 20 MiB
		t.Errorf("peak RSS %d KiB with -queue-mib 1 and blank lines, above %d KiB: blank lines are held outside the queue's bound", s.peakRSS, bound)
	}
	if cp := checkpointOffset(t, s.cp); cp != int64(len(content)) {
		t.Errorf("the checkpoint is at %d, not at the end of the file", cp)
	}
}

// Lines that are not valid UTF-8 (a key, a value, a line that is not
// JSON): JSON text must be UTF-8, so each is dead-lettered with the reason
// and its exact bytes (raw_base64), never sent with bytes replaced or a
// field merged away.
func TestFaultLinesNotValidUTF8(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	bad := map[int]string{
		10: "{\"n\":10,\"\xffkey\":1,\"\xfekey\":2}",
		11: "{\"n\":11,\"v\":\"caf\xe9 \xff\xfe\"}",
		12: "\"n\":12 \xff\xfe latin-1 caf\xe9",
	}
	text := s.lines(0, 10, 10)
	for n := 10; n < 13; n++ {
		text += bad[n] + "\n"
		s.written[n] = true
	}
	s.appendFile("app.log", text+s.lines(13, 20, 10))
	p := s.start(nil, "-files", s.path("app.log"))
	s.finish(p)
	tl := s.check(true)
	for n := range bad {
		if len(tl.idsOf[n]) > 0 || !strings.Contains(tl.reasons[n], "UTF-8") {
			t.Errorf("line %d: stored %d times, dead-letter reason %q; want it dead-lettered as not UTF-8", n, len(tl.idsOf[n]), tl.reasons[n])
		}
	}
	raw, _ := os.ReadFile(s.dl)
	for n, line := range bad {
		var found bool
		for _, l := range strings.Split(string(raw), "\n") {
			var d struct {
				RawBase64 []byte `json:"raw_base64"`
			}
			if json.Unmarshal([]byte(l), &d) == nil && string(d.RawBase64) == line {
				found = true
			}
		}
		if !found {
			t.Errorf("line %d is not in the dead-letter file byte for byte", n)
		}
	}
}

// Lines at the 4 MiB a line may hold: one of exactly 4 MiB is
// dead-lettered as too large an event (what it is), one over it as longer
// than 4 MiB (kept truncated); the lines around them are sent.
func TestFaultLinesAtTheLineLimit(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	exact := func(n, size int) string { // {"n":..,"pad":"yyy"} of size bytes, newline not counted
		head := fmt.Sprintf(`{"n":%d,"pad":"`, n)
		s.written[n] = true
		return head + strings.Repeat("y", size-len(head)-2) + `"}` + "\n"
	}
	s.appendFile("app.log", s.lines(0, 5, 10)+exact(5, 4<<20)+exact(6, 4<<20+3)+s.lines(7, 12, 10))
	p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "500")
	s.finish(p)
	tl := s.check(true)
	if r := tl.reasons[5]; !strings.Contains(r, "event is") || strings.Contains(r, "longer than") {
		t.Errorf("a line of exactly 4 MiB: reason %q, want the event's size, not longer than 4 MiB", r)
	}
	if r := tl.reasons[6]; !strings.Contains(r, "line longer than 4194304 bytes") {
		t.Errorf("a line over 4 MiB: reason %q", r)
	}
}

// A line with a key twice is never merged (one value silently dropped): it
// is dead-lettered whole, event_id included. An event's own event_id is
// kept, a number too.
func TestFaultDuplicateKeysAndOwnEventIDs(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	dup := map[int]string{
		10: `{"n":10,"v":1,"v":2}`,
		11: `{"event_id":"mine-11","n":11,"event_id":"other-11"}`,
	}
	text := s.lines(0, 10, 10)
	for n := 10; n < 12; n++ {
		text += dup[n] + "\n"
		s.written[n] = true
	}
	text += `{"event_id":12,"n":12}` + "\n" + s.lines(13, 20, 10)
	s.appendFile("app.log", text)
	p := s.start(nil, "-files", s.path("app.log"))
	waitFor(t, "18 events stored", func() bool { return len(s.api.Events()) >= 18 })
	delete(s.written, 12) // its own id is not a string: count cannot tell it
	s.finish(p)
	tl := s.check(true)
	for n, key := range map[int]string{10: "v", 11: "event_id"} {
		if want := fmt.Sprintf("duplicate key %q", key); len(tl.idsOf[n]) > 0 || !strings.Contains(tl.reasons[n], want) {
			t.Errorf("line %d: stored %d times, reason %q; want it dead-lettered with %q", n, len(tl.idsOf[n]), tl.reasons[n], want)
		}
	}
	kept := false
	for _, e := range s.api.Events() {
		var ev map[string]json.RawMessage
		// Once, as written (whatever the order of the keys): not replaced, nor a second id added.
		if json.Unmarshal(e, &ev) == nil && string(ev["event_id"]) == "12" && string(ev["n"]) == "12" && bytes.Count(e, []byte(`"event_id"`)) == 1 {
			kept = true
		}
	}
	if !kept {
		t.Error(`the event's own "event_id":12 was not kept`)
	}
}
