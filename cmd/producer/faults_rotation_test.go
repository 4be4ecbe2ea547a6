//go:build faults

// Rotation, truncation and the files the patterns match.

package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// Logrotate's copytruncate, while the producer runs and while it is stopped.
func TestFaultCopytruncateAPIUp(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 200, 40))
	s.waitAll(p)
	s.appendFile("app.log", s.lines(200, 300, 40))
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(300, 400, 40))
	s.finish(p)
	// Stopped: more lines, a copytruncate, and a new content longer than the
	// old offset (the case that used to resume in the middle of it).
	s.appendFile("app.log", s.lines(400, 500, 40))
	if err := os.Remove(s.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(500, 900, 40))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// Copytruncate while the API is down and the queue is full: the rest of
// the old content is read from the copy.
func TestFaultCopytruncateAPIDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.flags = []string{"-files", s.path("app.log*"), "-queue-mib", "1"}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 1000, 2000)) // 2 MB: more than the queue takes
	waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
	s.copytruncate("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(1000, 1300, 2000))
	time.Sleep(300 * time.Millisecond)
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
}

// Truncated and rewritten, longer than before, within one poll; once with
// a rewrite that starts with the same header as before.
func TestFaultTruncateAndRewriteWithinOnePoll(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-poll", "500ms"}
	header := `{"header":"app started","pad":"` + strings.Repeat("h", 300) + "\"}\n"
	p := s.start(nil)
	s.appendFile("app.log", header+s.lines(0, 100, 40))
	s.waitAll(p)
	for round := 1; round <= 2; round++ {
		from := round * 1000
		rewrite := s.lines(from, from+200, 40)
		if round == 2 {
			rewrite = header + rewrite
		}
		if err := os.WriteFile(s.path("app.log"), []byte(rewrite), 0o644); err != nil { // truncates, then writes
			t.Fatal(err)
		}
		s.waitAll(p)
	}
	s.stopWanted(p)
	s.check(true)
	if headers := bytes.Count(bytes.Join(s.api.Events(), nil), []byte(`"header":"app started"`)); headers != 2 {
		t.Errorf("the header line was stored %d times, want 2 (once per file content, with distinct ids)", headers)
	}
}

// Rename rotation with a writer that keeps appending to the renamed file
// for a moment: read while the file is not matched any more, and across a
// restart.
func TestFaultRenameWithLaggingWriter(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-rotate-wait", "1s"}
	p := s.start(nil, "-files", s.path("app.log")) // the rotated name is not matched
	lag, err := os.OpenFile(s.path("app.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lag.WriteString(s.lines(0, 100, 40))
	s.waitAll(p)
	lag.WriteString(s.lines(100, 150, 40))
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(1000, 1100, 40))
	for i := 150; i < 300; i += 10 {
		lag.WriteString(s.lines(i, i+10, 40))
		time.Sleep(20 * time.Millisecond)
	}
	lag.Close()
	s.finish(p)
	// Across a restart, with the rotated names matched.
	p = s.start(nil, "-files", s.path("app.log*"))
	lag, err = os.OpenFile(s.path("app.log"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	lag.WriteString(s.lines(1100, 1200, 40))
	s.waitAll(p)
	s.rename("app.log", "app.log.2")
	s.stopWanted(p)
	lag.WriteString(s.lines(1200, 1300, 40)) // while stopped, to the renamed file
	s.appendFile("app.log", s.lines(2000, 2100, 40))
	p = s.start(nil, "-files", s.path("app.log*"))
	lag.WriteString(s.lines(1300, 1350, 40))
	lag.Close()
	s.finish(p)
	s.check(true)
}

// The last line of a rotated file without a trailing newline: renamed
// (still matched), and deleted while followed.
func TestFaultUnterminatedLastLine(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	p := s.start(nil, "-files", s.path("app.log*")+","+s.path("other.log"))
	s.appendFile("app.log", s.lines(0, 50, 40)+strings.TrimSuffix(s.lines(50, 51, 40), "\n"))
	s.appendFile("other.log", s.lines(100, 110, 40)+strings.TrimSuffix(s.lines(110, 111, 40), "\n"))
	waitFor(t, "the complete lines", func() bool { return s.api.Requests() > 0 && len(s.api.Events()) >= 60 })
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(51, 60, 40))
	if err := os.Remove(s.path("other.log")); err != nil {
		t.Fatal(err)
	}
	s.finish(p)
	s.check(true)
}

// Two rotations while the producer was stopped: the file in between is
// found, and so is the rest of the one being read.
func TestFaultTwoRotationsWhileStopped(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 100, 40))
	s.finish(p)
	s.appendFile("app.log", s.lines(100, 150, 40))
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(150, 250, 40))
	s.rename("app.log.1", "app.log.2")
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", s.lines(250, 300, 40))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// Inode reuse: rm + mv + create, three times across restarts and three
// times while running; new contents as long as the old ones.
func TestFaultInodeReuse(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log")}
	replace := func(from int) uint64 {
		if err := os.Remove(s.path("app.log")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.path("app.log.new"), []byte(s.lines(from, from+100, 40)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.rename("app.log.new", "app.log")
		return inode(t, s.path("app.log"))
	}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 100, 40))
	s.waitAll(p)
	reused := 0
	for round := 1; round <= 3; round++ {
		before := inode(t, s.path("app.log"))
		s.stopWanted(p)
		if replace(round*1000) == before {
			reused++
		}
		p = s.start(nil)
		s.waitAll(p)
	}
	for round := 4; round <= 6; round++ {
		before := inode(t, s.path("app.log"))
		if err := os.Remove(s.path("app.log")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the producer closes the deleted file after -rotate-wait
		if err := os.WriteFile(s.path("app.log.new"), []byte(s.lines(round*1000, round*1000+100, 40)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.rename("app.log.new", "app.log")
		if inode(t, s.path("app.log")) == before {
			reused++
		}
		s.waitAll(p)
	}
	s.stopWanted(p)
	t.Logf("the file system reused the inode %d times of 6", reused)
	s.check(true)
}

// Compressed rotated files matched by the patterns are skipped with a warning.
func TestFaultCompressedRotatedFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"n":777777}` + "\n"))
	zw.Close()
	os.WriteFile(s.path("app.log.2.gz"), gz.Bytes(), 0o644)
	s.appendFile("app.log", s.lines(0, 100, 20))
	p := s.start(nil, "-files", s.path("app.log*"))
	s.waitAll(p)
	time.Sleep(200 * time.Millisecond)
	s.stopWanted(p)
	tl := s.check(true)
	if tl.stored != 100 || tl.dead != 0 {
		t.Errorf("stored %d, dead-lettered %d: want the 100 lines and nothing of the .gz file", tl.stored, tl.dead)
	}
	if dl, _ := os.ReadFile(s.dl); len(dl) > 0 {
		t.Errorf("the gzip file reached the dead-letter file: %.200q", dl)
	}
	if !strings.Contains(s.logs(), "skipping a compressed file") {
		t.Error("no warning about the compressed file")
	}
}

// Files are found while reading waits: the API is down, the queue full,
// and the live file is renamed over app.log.1 (deleting the one before) every
// second, as logrotate's create with rotate 1 does. Each file must be opened
// before the rename that deletes it.
func TestFaultFilesFoundWhileTheAPIIsDown(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	p := s.start(nil, "-files", s.path("app.log*"), "-queue-mib", "1")
	n := 0
	for i := 0; i < 40; i++ { // 4 files of 2,000 lines: far more than 1 MiB and the 1,024 lines in the channel
		s.appendFile("app.log", s.lines(n, n+200, 100))
		n += 200
		time.Sleep(100 * time.Millisecond)
		if i%10 == 9 {
			s.rename("app.log", "app.log.1")
		}
	}
	s.api.SetFaults(fakeapi.Faults{})
	s.finish(p)
	s.check(true)
}

// Copytruncate with a writer that does not append (no O_APPEND): its
// next line lands at its old offset, after a hole of NULs larger than the
// 4 MiB a line may take. The line after the hole must be read.
func TestFaultCopytruncateWriterWithoutAppend(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	w, err := os.OpenFile(s.path("app.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644) // no O_APPEND
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := s.start(nil, "-files", s.path("app.log*"), "-batch-size", "500")
	for n := 0; n < 2200; n += 100 { // 4.5 MB, more than the 4 MiB a line may hold
		w.WriteString(s.lines(n, n+100, 2000))
	}
	s.waitAll(p)
	s.copytruncate("app.log", "app.log.1")
	w.WriteString(s.lines(100000, 100050, 20))
	s.finish(p)
	s.check(true)
	if fi, err := os.Stat(s.path("app.log")); err != nil || fi.Size() < 4<<20+100 {
		t.Errorf("app.log should hold a hole of more than 4 MiB before its lines: %v, %v", fi.Size(), err)
	}
}

// A file read to its end is rewritten, within one poll, with other lines
// of the same byte length: no new bytes, yet every new line must be sent;
// then it is rotated to a name the patterns do not match.
func TestFaultRewriteOfTheSameLength(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-poll", "300ms"}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(100, 200, 20))
	s.waitAll(p)
	rewrite := s.lines(300, 400, 20) // as long, line for line
	if err := os.WriteFile(s.path("app.log"), []byte(rewrite), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitAll(p)
	s.rename("app.log", "app.log.1")
	s.stopWanted(p)
	s.check(true)
	if !strings.Contains(s.logs(), "file truncated or rewritten") {
		t.Error("the rewrite is not logged")
	}
}

// The patterns match the producer's own checkpoint and dead-letter file
// through another path (a symlinked directory): they must not be read as
// events, which would send them and dead-letter the dead-letter entries
// again, without end.
func TestFaultOwnFilesThroughASymlinkedDirectory(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{RejectContaining: "poison"})
	os.Mkdir(s.path("real"), 0o755)
	if err := os.Symlink("real", s.path("link")); err != nil {
		t.Fatal(err)
	}
	s.dl, s.cp = s.path("link/dead-letter.ndjson"), s.path("link/checkpoint.json")
	s.appendFile("real/app.log", s.lines(0, 50, 10)+"not json at all\n"+`{"n":50,"poison":true}`+"\n")
	s.written[50] = true
	p := s.start(nil, "-files", s.path("real/*"))
	s.waitAll(p)
	waitFor(t, "a checkpoint", func() bool { _, err := os.Stat(s.cp); return err == nil })
	// Once this line is stored, every file the patterns matched before it
	// was written has been read: what was read of them is delivered by the
	// SIGTERM.
	s.appendFile("real/app.log", s.lines(51, 52, 10))
	s.finish(p)
	tl := s.check(true)
	if events := s.api.Events(); len(events) != 51 {
		t.Errorf("%d events stored, want the 51 lines of app.log that are events; the first ones not of app.log:\n%s", len(events), notOf(events))
	}
	if raw, _ := os.ReadFile(s.dl); bytes.Count(raw, []byte("\n")) != 2 || tl.dead != 1 {
		t.Errorf("the dead-letter file holds %d entries, want the line that is not JSON and the poison event:\n%.600s", bytes.Count(raw, []byte("\n")), raw)
	}
}

// A truncation is seen, the same content is written again, the producer
// is killed (kill -9) part-way through it, with the record from before the
// truncation still in the checkpoint (-rotate-wait 1m keeps it). The
// restart must resume the new content where it was, not where the old
// record says: every line must end up stored twice, with two ids.
func TestFaultKill9AfterATruncationAndTheSameContent(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log"), "-rotate-wait", "1m", "-concurrency", "1"}
	content := s.lines(0, 2000, 20)
	s.appendFile("app.log", content)
	p := s.start(nil)
	s.waitAll(p)
	s.api.SetFaults(fakeapi.Faults{Delay: 50 * time.Millisecond}) // 400 lines a second
	if err := os.Truncate(s.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the truncation to be seen", func() bool { return strings.Contains(p.stderr.String(), "file truncated or rewritten") })
	s.appendFile("app.log", content)
	waitFor(t, "a checkpoint part-way through the new content", func() bool {
		gens := checkpointGenerations(t, s.cp)
		return gens[0] == int64(len(content)) && gens[1] > 0 && gens[1] < int64(len(content))
	})
	p.stop(syscall.SIGKILL)
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil)
	waitFor(t, "every line to be stored twice", func() bool {
		tl := s.count()
		for n := range s.written {
			if len(tl.idsOf[n]) < 2 {
				return false
			}
		}
		return true
	})
	s.stopWanted(p)
	tl := s.check(false)
	for n := range s.written {
		if len(tl.idsOf[n]) != 2 {
			t.Fatalf("line %d was stored with %d ids, want 2 (one per time it was written)", n, len(tl.idsOf[n]))
		}
	}
}

// Files that start like an idle followed file: worker logs that begin
// with the same banner line (one worker idle), and a file that begins with
// the same 300-byte header as an idle one and is deleted soon after it was
// written. Both must be read, banner and header included.
func TestFaultFilesStartingLikeAnIdleFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	banner := `{"msg":"worker started","version":"1.2.3"}` + "\n"
	header := `{"msg":"app started","pad":"` + strings.Repeat("h", 300) + `"}` + "\n"
	s.appendFile("w1.log", banner)
	s.appendFile("h1.log", header)
	p := s.start(nil, "-files", s.path("w*.log")+","+s.path("h*.log"))
	waitFor(t, "the banner and the header", func() bool { return len(s.api.Events()) == 2 })
	s.appendFile("w2.log", banner+s.lines(0, 50, 20))
	s.appendFile("h2.log", header+s.lines(50, 100, 20))
	waitFor(t, "the producer to open h2.log", func() bool { return p.holds(s.path("h2.log")) })
	if err := os.Remove(s.path("h2.log")); err != nil {
		t.Fatal(err)
	}
	s.waitAll(p)
	waitFor(t, "both banners and both headers", func() bool { return len(s.api.Events()) == 104 })
	s.stopWanted(p)
	s.check(true)
	all := bytes.Join(s.api.Events(), nil)
	if b, h := bytes.Count(all, []byte("worker started")), bytes.Count(all, []byte(`"app started"`)); b != 2 || h != 2 {
		t.Errorf("stored %d banners and %d headers, want 2 of each (one per file)", b, h)
	}
}

// Each new log starts with the same banner line: two events, which must
// get two ids (deduplication by event_id would delete one), across a
// rotation and a kill -9.
func TestFaultTheSameBannerInEachNewFile(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	banner := `{"msg":"app started"}` + "\n"
	p := s.start(nil)
	s.appendFile("app.log", banner+s.lines(0, 100, 20))
	s.waitAll(p)
	s.rename("app.log", "app.log.1")
	s.appendFile("app.log", banner+s.lines(100, 200, 20))
	s.waitAll(p)
	p.stop(syscall.SIGKILL)
	s.appendFile("app.log", s.lines(200, 300, 20))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
	ids := map[string]bool{}
	for _, e := range s.api.Events() {
		if bytes.Contains(e, []byte(`"app started"`)) {
			ids[string(idRe.FindSubmatch(e)[1])] = true
		}
	}
	if len(ids) != 2 {
		t.Errorf("the two banners were stored with %d distinct ids, want 2", len(ids))
	}
}

// More matched files than descriptors (ulimit -n 256, 1,000 files with
// lines): delivery and the checkpoint keep theirs, the files beyond the
// budget wait, a warning names how many, and every line is stored.
func TestFaultMoreFilesThanDescriptors(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	for i := 0; i < 1000; i++ {
		s.appendFile(fmt.Sprintf("f%04d.log", i), s.lines(i*5, i*5+5, 20))
	}
	s.flags = []string{"-files", s.path("f*.log"), "-log-level", "info"}
	p := s.startWith([]string{"/bin/sh", "-c", `ulimit -n 256 && exec "$0" "$@"`}, nil)
	s.waitAll(p)
	if !strings.Contains(p.stderr.String(), `"msg":"matched files wait for a file descriptor`) {
		t.Errorf("no warning says files wait:\n%s", tail(p.stderr.String()))
	}
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(s.logs()))
	}
	if tl := s.check(true); tl.stored != 5000 {
		t.Errorf("%d stored, want each of the 5,000 lines once", tl.stored)
	}
}

// copytruncate with a copy the patterns do not match: app.log only is
// followed, the API is down, 200 lines are read, logrotate copies app.log
// to app.log.1 and truncates it, then SIGTERM. The 200 lines cannot be read
// again from any followed file: they go to the spool at shutdown, and the
// restart with the API up stores each of them under its id.
func TestFaultCopytruncateUnmatchedCopy(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	s.flags = []string{"-files", s.path("app.log")}
	p := s.start(nil)
	s.appendFile("app.log", s.lines(0, 200, 40))
	waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
	s.copytruncate("app.log", "app.log.1")
	waitFor(t, "the truncation seen", func() bool { return strings.Contains(p.stderr.String(), "file truncated or rewritten") })
	if code := p.stop(syscall.SIGTERM); code != 3 || !strings.Contains(p.stderr.String(), `"kept":200`) {
		t.Errorf("exit %d, want 3 with the 200 lines kept in the spool; logs:\n%s", code, tail(p.stderr.String()))
	}
	s.api.SetFaults(fakeapi.Faults{})
	p = s.start(nil)
	s.finish(p)
	if tl := s.check(true); tl.stored != 200 || tl.dead != 0 {
		t.Errorf("%d stored, %d dead-lettered; want the 200 lines stored", tl.stored, tl.dead)
	}
}

// The same with kill -9 instead of SIGTERM, and with a plain truncation
// and a deletion too: app.log only is followed, the API is down, 200 lines
// are read; then the file is copied (to app.log.1, not matched) and
// truncated, truncated, or deleted; a few polls later, kill -9. Nothing
// can read those lines again: they went to the spool when the follower saw
// it, and the restart with the API up stores each exactly once, with its
// id.
func TestFaultLinesOfAFileGoneKill9(t *testing.T) {
	for _, c := range []struct {
		name   string
		do     func(s *scenario)
		seenBy string // what the log says once the follower saw it
	}{
		{"copytruncate", func(s *scenario) { s.copytruncate("app.log", "app.log.1") }, "file truncated or rewritten"},
		{"truncate", func(s *scenario) {
			if err := os.Truncate(s.path("app.log"), 0); err != nil {
				s.t.Fatal(err)
			}
		}, "file truncated or rewritten"},
		{"delete", func(s *scenario) {
			if err := os.Remove(s.path("app.log")); err != nil {
				s.t.Fatal(err)
			}
		}, "stopped following a rotated file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Down: true})
			s.flags = []string{"-files", s.path("app.log")}
			p := s.start(nil)
			s.appendFile("app.log", s.lines(0, 200, 40))
			waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 5 })
			c.do(s)
			waitFor(t, "the follower to see it", func() bool { return strings.Contains(p.stderr.String(), c.seenBy) })
			time.Sleep(50 * time.Millisecond) // a poll or two
			p.stop(syscall.SIGKILL)
			s.api.SetFaults(fakeapi.Faults{})
			p = s.start(nil)
			s.finish(p)
			if tl := s.check(true); tl.stored != 200 || tl.dups != 0 || tl.dead != 0 {
				t.Errorf("%d stored, %d duplicates, %d dead-lettered; want the 200 lines stored exactly once", tl.stored, tl.dups, tl.dead)
			}
		})
	}
}

// A matched file found empty is held open, so that lines written to it and
// the file deleted before the next poll are still read; once deleted it is
// let go, also when nothing was ever written to it.
func TestFaultLinesWrittenToAnEmptyFileThenDeleted(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("*.log"), "-poll", "500ms"}
	p := s.start(nil)
	for round := 0; round < 4; round++ {
		name := fmt.Sprintf("job-%d.log", round)
		s.appendFile(name, "")
		waitFor(t, "the producer to hold "+name+" open", func() bool { return p.holds(s.path(name)) })
		if round < 3 {
			s.appendFile(name, s.lines(round*10, round*10+3, 40))
		}
		if err := os.Remove(s.path(name)); err != nil {
			t.Fatal(err)
		}
		s.waitAll(p)
		waitFor(t, "the producer to let the deleted "+name+" go", func() bool { return !p.holds(s.path(name) + " (deleted)") })
	}
	s.finish(p)
	if tl := s.check(true); tl.stored != 9 {
		t.Errorf("%d stored, want the 9 lines once each", tl.stored)
	}
}

// Files parked while the queue is full: 600 files under ulimit -n 64, every
// other one empty when found (too short to identify), the API down and a 1
// MiB queue, so that reading waits while scans park idle files, some of them
// still to be read in the same pass. A parked file is passed over until it
// grows (no "cannot stat" of its closed descriptor); once every file has
// its two lines and the API is up, each of the 1,200 is stored exactly once.
func TestFaultFilesParkedWhileTheQueueIsFull(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{Down: true})
	name := func(i int) string { return fmt.Sprintf("f%04d.log", i) }
	for i := range 600 {
		text := ""
		if i%2 == 0 {
			text = s.lines(2*i, 2*i+2, 2000)
		}
		s.appendFile(name(i), text)
	}
	s.flags = []string{"-files", s.path("f*.log"), "-log-level", "info", "-queue-mib", "1"}
	p := s.startWith([]string{"/bin/sh", "-c", `ulimit -n 64 && exec "$0" "$@"`}, nil)
	waitFor(t, "files to wait for a descriptor", func() bool {
		return strings.Contains(p.stderr.String(), `"msg":"matched files wait for a file descriptor`)
	})
	waitFor(t, "the producer to try the API", func() bool { return s.api.Requests() > 20 })
	time.Sleep(500 * time.Millisecond) // scans while reading waits
	for i := 1; i < 600; i += 2 {
		s.appendFile(name(i), s.lines(2*i, 2*i+2, 2000))
	}
	s.api.SetFaults(fakeapi.Faults{})
	s.waitAll(p)
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d, want 0; logs:\n%s", code, tail(s.logs()))
	}
	if tl := s.check(true); tl.stored != 1200 || tl.dups != 0 || tl.dead != 0 {
		t.Errorf("%d stored, %d duplicates, %d dead-lettered; want each of the 1,200 lines stored once", tl.stored, tl.dups, tl.dead)
	}
	logs := s.logs()
	for _, bad := range []string{`"msg":"cannot stat a`, "file already closed"} {
		if i := strings.Index(logs, bad); i >= 0 {
			t.Errorf("a parked file's closed descriptor was used (%s):\n%s", bad, logs[max(0, i-200):min(len(logs), i+300)])
		}
	}
}
