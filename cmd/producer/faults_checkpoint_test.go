//go:build faults

// The checkpoint: damage, kill -9, the earlier format, a second producer, a full disk.

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// A damaged checkpoint is set aside and the files read from the start;
// a source that does not use it leaves it alone.
func TestFaultDamagedCheckpoint(t *testing.T) {
	for name, content := range map[string]string{
		"empty":                          "",
		"truncated":                      `{"version":2,"files":[{"path":"/var/log/a`,
		"not_an_object":                  `[1,2,3]`,
		"negative_offset":                `{"version":2,"files":[{"path":"x","fingerprint":"00000000000000000000000000000000","fingerprint_bytes":10,"offset":-5,"chain":"` + strings.Repeat("0", 64) + `","tail":"0000000000000000","tail_bytes":0}]}`,
		"earlier_format_negative_offset": `{"files":{"/var/log/app.log":{"inode":1,"offset":-3}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{})
			os.MkdirAll(filepath.Dir(s.cp), 0o755)
			os.WriteFile(s.cp, []byte(content), 0o644)
			s.appendFile("app.log", s.lines(0, 100, 20))
			p := s.start(nil, "-files", s.path("app.log"))
			s.finish(p)
			aside, _ := filepath.Glob(s.cp + ".damaged-*")
			if len(aside) != 1 || !strings.Contains(s.logs(), "the checkpoint is damaged") {
				t.Errorf("set aside: %v; want one copy and a warning; logs:\n%s", aside, tail(s.logs()))
			} else if got, _ := os.ReadFile(aside[0]); string(got) != content {
				t.Errorf("the set-aside copy is %q, want the damaged checkpoint", got)
			}
			s.check(true)
		})
	}
	t.Run("synthetic_source_does_not_read_it", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		os.MkdirAll(filepath.Dir(s.cp), 0o755)
		os.WriteFile(s.cp, nil, 0o644)
		p := s.start(nil, "-source", "synthetic", "-rate", "200")
		waitFor(t, "events", func() bool { return len(s.api.Events()) > 20 })
		if code := p.stop(syscall.SIGTERM); code != p.wantExit() {
			t.Errorf("exit %d; logs:\n%s", code, tail(s.logs()))
		}
		if got, err := os.ReadFile(s.cp); err != nil || len(got) != 0 {
			t.Errorf("the synthetic source touched the checkpoint: %q, %v", got, err)
		}
		if aside, _ := filepath.Glob(s.cp + ".damaged-*"); len(aside) > 0 {
			t.Errorf("the synthetic source set the checkpoint aside: %v", aside)
		}
	})
}

// Kill -9 at random moments, three times in a row, while a writer
// appends and rotates.
func TestFaultKill9ThreeTimes(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{ThrottleEvery: 5})
	s.flags = []string{"-files", s.path("app.log*")}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for n := 0; ; n += 20 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			s.appendFile("app.log", s.lines(n, n+20, 30))
			if n%6000 == 5980 { // a file lives about 4 s: time for a race-built producer to catch up after a restart
				os.Rename(s.path("app.log.1"), s.path("app.log.2"))
				os.Rename(s.path("app.log"), s.path("app.log.1"))
			}
		}
	}()
	for i := 0; i < 3; i++ {
		p := s.start(nil)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		p.stop(syscall.SIGKILL)
	}
	close(stop)
	<-writerDone
	p := s.start(nil)
	s.finish(p)
	s.check(true)
}

// A checkpoint of the earlier format is adopted where the inode still matches.
func TestFaultEarlierCheckpointFormat(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	first := s.lines(0, 50, 20)
	s.appendFile("a.log", first)
	s.mu.Lock()
	for n := 0; n < 50; n++ {
		delete(s.written, n) // confirmed by the earlier producer
	}
	s.mu.Unlock()
	s.appendFile("a.log", s.lines(50, 100, 20))
	s.appendFile("b.log", s.lines(100, 150, 20))
	os.MkdirAll(filepath.Dir(s.cp), 0o755)
	os.WriteFile(s.cp, fmt.Appendf(nil, `{"files":{%q:{"inode":%d,"offset":%d},%q:{"inode":%d,"offset":100}}}`,
		s.path("a.log"), inode(t, s.path("a.log")), len(first), s.path("b.log"), inode(t, s.path("b.log"))+1), 0o644)
	p := s.start(nil, "-files", s.path("*.log"))
	s.finish(p)
	tl := s.check(true)
	for n := 0; n < 50; n++ {
		if len(tl.idsOf[n]) > 0 {
			t.Fatalf("line %d, before the adopted offset, was sent again", n)
		}
	}
	logs := s.logs()
	if !strings.Contains(logs, "earlier checkpoint entry adopted") || !strings.Contains(logs, "earlier checkpoint entry not adopted") {
		t.Errorf("the adoption is not logged:\n%s", tail(logs))
	}
}

// A second producer started on the same checkpoint (a second systemd
// unit, a manual run) refuses to start, saying why, instead of sending every
// line again; the first goes on. Once the first is killed (kill -9), its
// lock is gone and a new one starts.
func TestFaultSecondProducerOnTheSameCheckpoint(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app.log*")}
	s.appendFile("app.log", s.lines(0, 100, 20))
	p := s.start(nil)
	s.waitAll(p)
	second := s.start(nil)
	if code := second.wait(); code == 0 || !strings.Contains(second.stderr.String(), "another producer is running with the checkpoint") {
		t.Errorf("second producer: exit %d; want a refusal:\n%s", code, tail(second.stderr.String()))
	}
	s.appendFile("app.log", s.lines(100, 200, 20))
	s.waitAll(p)
	p.stop(syscall.SIGKILL)
	s.appendFile("app.log", s.lines(200, 300, 20))
	p = s.start(nil)
	s.finish(p)
	s.check(true)
}

// The checkpoint's disk full (a file size limit that a checkpoint of one
// file fits and one of two does not): said at the default level, exit 3, and
// no id changes. The new file's lines wait until its seed is saved;
// after a restart (the disk freed) the lines since the last save are sent
// again with the ids they had, which deduplication removes.
func TestFaultCheckpointDiskFull(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{})
	s.flags = []string{"-files", s.path("app-*.log"), "-log-level", "info"}
	s.appendFile("app-a.log", s.lines(0, 500, 20))
	// dash counts ulimit -f in 512-byte blocks: 1,024 bytes, which a
	// checkpoint of one file (about 520 bytes with its journal epoch) fits
	// and one of two (the second's long name makes it about 1,130) does
	// not. The journal gets the same limit: an append that does not fit
	// folds instead. The second file's seed may reach the journal just
	// after a fold: its lines are then sent, and sent again after the
	// restart with the same ids.
	p := s.startWith([]string{"/bin/sh", "-c", `ulimit -f 2 && exec "$0" "$@"`}, nil)
	s.waitAll(p)
	waitFor(t, "the checkpoint saved with the first file", func() bool { return checkpointOffset(t, s.cp) > 0 })
	s.appendFile("app-b-"+strings.Repeat("x", 150)+".log", s.lines(500, 1000, 20))
	waitFor(t, "the error", func() bool { return strings.Contains(p.stderr.String(), "CANNOT SAVE THE CHECKPOINT") })
	s.appendFile("app-a.log", s.lines(1000, 1500, 20))
	waitFor(t, "the first file's new lines", func() bool { return len(s.api.Events()) >= 1000 })
	if code := p.stop(syscall.SIGTERM); code != 3 {
		t.Errorf("exit %d, want 3 (the checkpoint could not be saved)", code)
	}
	if !strings.Contains(s.logs(), `"level":"ERROR","msg":"CANNOT SAVE THE CHECKPOINT`) || !strings.Contains(s.logs(), "the checkpoint could not be saved") {
		t.Errorf("no error at the default level says the checkpoint was not saved:\n%s", tail(s.logs()))
	}
	p = s.start(nil)
	s.finish(p)
	if tl := s.check(true); tl.dups < 500 {
		t.Errorf("%d duplicates: want the lines since the last save sent again", tl.dups)
	}
}
