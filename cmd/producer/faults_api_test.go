//go:build faults

// The API's answers: only its own confirms, and credentials go only to it.

package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// Answers that are not the documented ones, and partial batch failures:
// resent, never dead-lettered, never lost.
func TestFaultUndocumentedAnswersAndPartialFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
		batch  string
	}{
		{"408_202_204_200empty_batch", fakeapi.Faults{TimeoutEvery: 3, AcceptedEvery: 5, NoContentEvery: 7, EmptyOKEvery: 4}, "20"},
		{"408_202_204_200empty_single", fakeapi.Faults{TimeoutEvery: 3, AcceptedEvery: 5, NoContentEvery: 7, EmptyOKEvery: 4}, "1"},
		{"partial_batch_failures", fakeapi.Faults{PartialEvery: 2, ThrottleEvery: 5, FailEvery: 7, DropEvery: 11}, "20"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			s.appendFile("app.log", s.lines(0, 600, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-batch-size", c.batch)
			s.finish(p)
			tl := s.check(true)
			if tl.dead > 0 {
				t.Errorf("%d events dead-lettered: retrying fixes all of these answers", tl.dead)
			}
			if tl.dups == 0 && c.faults.AcceptedEvery > 0 {
				t.Error("no duplicates although 202 answers came after storing: were they counted as stored?")
			}
		})
	}
}

// SigV4 with -concurrency 8 (the deployed mode) under the race detector.
func TestFaultIAMAuthConcurrency8NoRace(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{RequireSigV4: true})
	s.appendFile("app.log", s.lines(0, 2000, 20))
	os.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", "/dev/null")
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	defer func() {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
			os.Unsetenv(k)
		}
	}()
	p := s.start(nil, "-files", s.path("app.log"), "-auth", "iam", "-region", "eu-west-1", "-concurrency", "8", "-batch-size", "1")
	s.finish(p)
	s.check(true)
}

// A redirect is never followed: with the API key and with SigV4 (whose
// session token would travel too), a 301, 302, 307 or 308 to another host
// sends that host nothing, and every event is dead-lettered with the status
// and the location it named.
func TestFaultRedirectsAreNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var seen []string // what reached the other host
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s x-api-key=%q token=%q", r.Method, r.URL.Path, r.Header.Get("x-api-key"), r.Header.Get("X-Amz-Security-Token")))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"sequenceNumber":"1","shardId":"shardId-000000000000"}`) // as if it were the API
	}))
	defer elsewhere.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	for i, status := range []int{301, 302, 307, 308} {
		auth := []string{"-auth", "api-key", "-api-key", "the-key"}
		if i%2 == 1 {
			auth = []string{"-auth", "iam", "-region", "eu-west-1"}
		}
		t.Run(fmt.Sprintf("%d %s", status, auth[1]), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{Redirect: status, RedirectTo: elsewhere.URL})
			s.appendFile("app.log", s.lines(0, 1000, 20))
			p := s.start(nil, append([]string{"-files", s.path("app.log")}, auth...)...)
			s.waitAll(p)
			p.stop(syscall.SIGTERM)
			tl := s.check(true)
			want := fmt.Sprintf("HTTP %d redirect to %q, not followed", status, elsewhere.URL+"/PROD/v1/batch")
			if tl.dead != 1000 || tl.stored != 0 || !strings.HasPrefix(tl.reasons[0], want) {
				t.Errorf("dead-lettered %d, stored %d, reason %q; want 1000 dead-lettered with a reason starting %q", tl.dead, tl.stored, tl.reasons[0], want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) > 0 {
				t.Errorf("%d requests reached the host the redirect named, first: %s", len(seen), seen[0])
			}
		})
	}
}

// A packed answer that counts fewer events than were sent (the API stored
// the first half of each batch and said so) confirms only those: the rest
// are sent again, and nothing is lost.
func TestFaultPackedAnswerCountsFewerEvents(t *testing.T) {
	s := newScenario(t, fakeapi.Faults{PackedShortEvery: 2})
	s.appendFile("app.log", s.lines(0, 2000, 20))
	p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "100")
	s.finish(p)
	if tl := s.check(true); tl.dead > 0 {
		t.Errorf("%d events dead-lettered; the API stored them when they were sent again", tl.dead)
	}
}

// An API that does not decode gzip (415, or 400 for the bytes read as JSON,
// while the same events sent plain are taken): the producer sends plain from
// then on, says so once, and every event is stored.
func TestFaultAPIDoesNotDecodeGzip(t *testing.T) {
	for _, status := range []int{415, 400} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{GzipRefused: status})
			s.appendFile("app.log", s.lines(0, 2000, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-batch-size", "100", "-log-level", "info")
			s.finish(p)
			tl := s.check(true)
			if tl.dead > 0 || tl.stored < 2000 {
				t.Errorf("%d stored, %d dead-lettered; want all 2000 stored", tl.stored, tl.dead)
			}
			if n := strings.Count(s.logs(), "sending them plain from now on"); n != 1 {
				t.Errorf("%d log lines say the producer sends plain, want 1:\n%s", n, tail(s.logs()))
			}
		})
	}
}

// The exit status says whether the run handed everything to the API: 0
// when every event was stored, 3 when an event was dead-lettered, or when
// the checkpoint could not be saved (every event stored, but a restart
// would send them again).
func TestFaultExitStatus(t *testing.T) {
	for _, c := range []struct {
		name    string
		bad     bool // a line that is not an object
		cpStuck bool // once the file's seed is saved, the checkpoint's temporary file cannot be created, even by root
		want    int
		log     string
	}{
		{"all_stored", false, false, 0, `"msg":"stopped"`},
		{"dead_lettered", true, false, 3, `"dead_lettered":1`},
		{"checkpoint_not_saved", false, true, 3, "the checkpoint could not be saved"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, fakeapi.Faults{})
			text := s.lines(0, 100, 20)
			if c.bad {
				text += `{"n":100}x` + "\n"
				s.written[100] = true
			}
			s.appendFile("app.log", text+s.lines(101, 200, 20))
			p := s.start(nil, "-files", s.path("app.log"))
			s.waitAll(p)
			if c.cpStuck { // a new file's lines wait for its seed to be saved: these are sent
				waitFor(t, "the checkpoint", func() bool { return checkpointOffset(t, s.cp) > 0 })
				waitFor(t, "a directory in the way", func() bool { return os.Mkdir(s.cp+".tmp", 0o755) == nil })
				s.appendFile("app.log", s.lines(200, 300, 20))
				s.waitAll(p)
			}
			if code := p.stop(syscall.SIGTERM); code != c.want {
				t.Errorf("exit %d, want %d; logs:\n%s", code, c.want, tail(s.logs()))
			}
			s.check(true)
			if !strings.Contains(s.logs(), c.log) {
				t.Errorf("no log line says %s:\n%s", c.log, tail(s.logs()))
			}
		})
	}
}

// Answers that never confirm, each given after the API stored the events (a
// 200 too large or too malformed to read, a 200 with the wrong record count,
// a 500): each batch is sent a bounded number of times, then dead-lettered
// with a reason naming the answer, said at the default level; never an
// endless loop of copies. Reading answers through a limit keeps memory
// bounded at -concurrency 64.
func TestFaultAnswersThatNeverConfirm(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults fakeapi.Faults
		reason string
		sends  int // the most a batch is sent: the first try and the bounded retries
	}{
		{"200_over_16MiB", fakeapi.Faults{HugeOKEvery: 1}, "HTTP 200 with an answer over 512 KiB, not read", 11},
		{"200_malformed", fakeapi.Faults{MalformedOKEvery: 1}, "unreadable batch answer", 11},
		{"200_wrong_record_count", fakeapi.Faults{ShortRecordsEvery: 1, Packing: ingest.PerEvent}, "batch answer with 19 records for 20 events", 11},
		{"500_after_storing", fakeapi.Faults{FailAfterStoreEvery: 1}, "HTTP 500: Internal server error", 21},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.faults)
			s.bin = plainBin // the race detector's memory would hide the producer's
			s.appendFile("app.log", s.lines(0, 2000, 20))
			p := s.start(nil, "-files", s.path("app.log"), "-concurrency", "64", "-log-level", "info")
			waitFor(t, "every line dead-lettered", func() bool { return s.count().dead == 2000 })
			if code := p.stop(syscall.SIGTERM); code != 3 {
				t.Errorf("exit %d, want 3 (events dead-lettered)", code)
			}
			tl := s.check(true)
			if tl.stored > 2000*c.sends {
				t.Errorf("%d copies stored for 2000 lines: more than %d sends each", tl.stored, c.sends)
			}
			if r := tl.reasons[0]; !strings.Contains(r, "no answer confirmed these events after") || !strings.Contains(r, c.reason) {
				t.Errorf("dead-letter reason %q, want one naming %q", r, c.reason)
			}
			if !strings.Contains(s.logs(), `"level":"WARN","msg":"events not stored; writing them to the dead-letter file"`) {
				t.Errorf("no log line at the default level says why:\n%s", tail(s.logs()))
			}
			if s.peakRSS > 200<<10 {
				t.Errorf("peak RSS %d KiB at -concurrency 64, want under 200 MiB", s.peakRSS)
			}
		})
	}
}

// Every condition that stops delivery is said at the default level at once,
// with what to do, and again at a bounded rate while it lasts (once every
// 10 s), never once per request: no AWS credentials with -auth iam (the
// README's stdin example, which then stops on its own, its events kept in
// the spool for the next start), an API answering 403 to everything, TLS
// to a plain HTTP listener.
func TestFaultSaysWhyDeliveryStops(t *testing.T) {
	// said waits (5 s at most: the promise is "within seconds") for a
	// WARN line holding what, and returns how many there are at the end.
	said := func(t *testing.T, p *proc, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("nothing at the default level says %q within 5 s:\n%s", what, tail(p.stderr.String()))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	count := func(s *scenario, msg, what string) (n int) {
		for _, l := range strings.Split(s.logs(), "\n") {
			if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, msg) && strings.Contains(l, what) {
				n++
			}
		}
		return n
	}
	stdinFile := func(s *scenario, n int) *os.File {
		if err := os.WriteFile(s.path("events.ndjson"), []byte(s.lines(0, n, 20)), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(s.path("events.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close() })
		return in
	}

	t.Run("no_credentials", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{RequireSigV4: true})
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
				s.env = append(s.env, kv)
			}
		}
		empty := s.path("empty")
		os.WriteFile(empty, nil, 0o644)
		s.env = append(s.env, "HOME="+s.dir, "AWS_CONFIG_FILE="+empty, "AWS_SHARED_CREDENTIALS_FILE="+empty, "AWS_EC2_METADATA_DISABLED=true")
		// -shutdown-timeout 12s: the end of stdin with nothing confirmed
		// for 12 s stops it, time for the condition to be said twice.
		p := s.start(stdinFile(s, 500), "-source", "stdin", "-auth", "iam", "-region", "eu-west-1", "-log-level", "info", "-shutdown-timeout", "12s")
		said(t, p, "no usable AWS credentials for -auth iam")
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			t.Fatalf("still running 45 s after the end of stdin with -shutdown-timeout 12s:\n%s", tail(p.stderr.String()))
		}
		if code := p.wait(); code != 3 || !strings.Contains(p.stderr.String(), `"kept":500`) {
			t.Errorf("exit %d, want 3 with the 500 events kept in the spool:\n%s", code, tail(p.stderr.String()))
		}
		if n := count(s, "events not confirmed", "no usable AWS credentials"); n < 2 || n > 3 {
			t.Errorf("said %d times in about 12 s, want 2 or 3 (at once, then every 10 s):\n%s", n, tail(s.logs()))
		}
		if n, dl := len(s.spooled()), s.dlEntries(); n != 500 || dl != 0 {
			t.Errorf("%d events in the spool, %d dead-lettered; want all 500 kept for the next start", n, dl)
		}
		// Credentials fixed: the next start sends what the spool kept.
		s.env = nil
		s.api.SetFaults(fakeapi.Faults{})
		s.sendSpool()
		if tl := s.check(false); tl.stored != 500 || tl.dups != 0 {
			t.Errorf("%d stored, %d duplicates after the restart; want 500 exactly once", tl.stored, tl.dups)
		}
	})

	t.Run("403_to_everything", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{APIKey: "the-key"})
		s.appendFile("app.log", s.lines(0, 1000, 20))
		p := s.start(nil, "-files", s.path("app.log"), "-auth", "api-key", "-api-key", "another-key", "-log-level", "info")
		said(t, p, "the API refuses the requests: check that -auth is the API's apiAuth")
		s.waitAll(p)
		if code := p.stop(syscall.SIGTERM); code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		tl := s.check(true)
		if tl.dead != 1000 || !strings.HasPrefix(tl.reasons[0], "HTTP 403") {
			t.Errorf("%d dead-lettered, reason %q; want all 1000 with the 403", tl.dead, tl.reasons[0])
		}
		if n := count(s, "events not stored", "HTTP 403"); n < 1 || n > 2 {
			t.Errorf("said %d times for 50 batches refused, want once or twice:\n%s", n, tail(s.logs()))
		}
	})

	t.Run("tls_to_plain_http", func(t *testing.T) {
		s := newScenario(t, fakeapi.Faults{})
		url := strings.Replace(s.api.URL, "http://", "https://", 1)
		p := s.start(stdinFile(s, 100), "-source", "stdin", "-url", url, "-log-level", "info", "-shutdown-timeout", "2s")
		said(t, p, "TLS failed: check that -url is the API's https:// URL")
		if code := p.wait(); code != 3 {
			t.Errorf("exit %d, want 3", code)
		}
		if n, dl := len(s.spooled()), s.dlEntries(); n != 100 || dl != 0 {
			t.Errorf("%d events in the spool, %d dead-lettered; want all 100 kept for the next start", n, dl)
		}
		s.sendSpool() // -url fixed: the next start sends them
		if tl := s.check(false); tl.stored != 100 || tl.dups != 0 {
			t.Errorf("%d stored, %d duplicates after the restart; want 100 exactly once", tl.stored, tl.dups)
		}
	})
}
