package producer

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

func testConfig(t testing.TB, api *fakeapi.API) Config {
	return Config{
		URL: api.URL, BatchSize: 50, Linger: 20 * time.Millisecond, Concurrency: 4, QueueBytes: 8 << 20,
		Auth: NoAuth{}, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		MaxBackoff: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second, StatsInterval: time.Hour,
		Poll: 10 * time.Millisecond, RotateWait: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DeadLetterPath: filepath.Join(t.TempDir(), "dead-letter.ndjson"), Stats: &Stats{},
	}
}

// numbered makes input lines {"n":i,...} for i in [from, to), optionally marked bad.
func numbered(from, to int, bad func(i int) bool) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		mark := ""
		if bad != nil && bad(i) {
			mark = `,"note":"bad"`
		}
		fmt.Fprintf(&b, `{"n":%d,"text":"event %d"%s}`+"\n", i, i, mark)
	}
	return b.String()
}

// storedByN counts stored records per "n", and checks each record is one
// JSON line with an event_id and an RFC 3339 UTC event_time.
func storedByN(t *testing.T, api *fakeapi.API) (map[int]int, map[string]int) {
	t.Helper()
	byN, byID := map[int]int{}, map[string]int{}
	for _, rec := range api.Events() {
		var e struct {
			N         int    `json:"n"`
			EventID   string `json:"event_id"`
			EventTime string `json:"event_time"`
		}
		if err := json.Unmarshal(rec, &e); err != nil {
			t.Fatalf("stored record is not JSON: %q", rec)
		}
		if _, err := time.Parse(time.RFC3339, e.EventTime); err != nil || !strings.HasSuffix(e.EventTime, "Z") || e.EventID == "" {
			t.Errorf("record lacks event_id or a UTC RFC 3339 event_time: %s", rec)
		}
		byN[e.N]++
		byID[e.EventID]++
	}
	return byN, byID
}

func readDeadLetters(t *testing.T, path string) []deadLetter {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var d deadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead-letter line is not JSON: %q", sc.Text())
		}
		out = append(out, d)
	}
	return out
}

// Throttling, 5xx, dropped connections and partial batch failures lose no
// event; duplicates come only from requests whose answer was lost after the
// API stored them (dropped connections).
func TestNoEventLostUnderFaults(t *testing.T) {
	for _, c := range []struct {
		batchSize int
		packing   ingest.Packing
	}{{1, ingest.Packed}, {50, ingest.Packed}, {50, ingest.PerEvent}} {
		batchSize := c.batchSize
		t.Run(fmt.Sprintf("batch=%d,%s", batchSize, c.packing), func(t *testing.T) {
			api := fakeapi.Start(fakeapi.Faults{ThrottleEvery: 7, FailEvery: 11, DropEvery: 13, PartialEvery: 5, Packing: c.packing})
			defer api.Close()
			cfg := testConfig(t, api)
			cfg.BatchSize, cfg.Source = batchSize, SourceStdin
			const n = 1500
			cfg.Stdin = strings.NewReader(numbered(0, n, nil))
			if err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			byN, _ := storedByN(t, api)
			dups := 0
			for i := range n {
				if byN[i] == 0 {
					t.Fatalf("event %d was lost", i)
				}
				dups += byN[i] - 1
			}
			// At most the events of the dropped requests can be stored twice.
			if maxDups := (api.Requests() / 13) * batchSize; dups > maxDups {
				t.Errorf("%d duplicates, more than the %d events of dropped requests", dups, maxDups)
			}
			c := cfg.Stats.Snapshot()
			if c.Read != n || c.Sent < n || c.DeadLettered != 0 || c.Retried == 0 {
				t.Errorf("stats %+v: want read %d, sent >= %d, retries, no dead letters", c, n, n)
			}
		})
	}
}

// What retrying cannot fix goes to the dead-letter file with the reason, and
// only that: a rejected event is isolated from its batch.
func TestRejectedEventsAreDeadLetteredNotDropped(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{RejectContaining: `"bad"`})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source = SourceStdin
	bad := func(i int) bool { return i%97 == 3 }
	input := numbered(0, 400, bad) + "not json\n" + `["an","array"]` + "\n"
	cfg.Stdin = strings.NewReader(input)
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	byN, _ := storedByN(t, api)
	wantDead := map[string]string{"not json": "not a JSON object", `["an","array"]`: "not a JSON object"}
	for i := range 400 {
		if bad(i) {
			if byN[i] != 0 {
				t.Errorf("rejected event %d was stored", i)
			}
			wantDead[fmt.Sprintf(`"n":%d,`, i)] = "HTTP 400"
		} else if byN[i] != 1 {
			t.Errorf("event %d stored %d times, want 1", i, byN[i])
		}
	}
	dead := readDeadLetters(t, cfg.DeadLetterPath)
	if len(dead) != len(wantDead) {
		t.Errorf("%d dead letters, want %d: %+v", len(dead), len(wantDead), dead)
	}
	for key, reason := range wantDead {
		found := false
		for _, d := range dead {
			if strings.Contains(string(d.Event)+d.Raw, key) && strings.Contains(d.Reason, reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("no dead letter for %s with reason %q", key, reason)
		}
	}
	if c := cfg.Stats.Snapshot(); c.DeadLettered != int64(len(wantDead)) {
		t.Errorf("dead-lettered counter %d, want %d", c.DeadLettered, len(wantDead))
	}
}

func TestWrongCredentialsAreDeadLettered(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{APIKey: "right"})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source, cfg.Stdin, cfg.Auth = SourceStdin, strings.NewReader(numbered(0, 10, nil)), APIKey("wrong")
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	dead := readDeadLetters(t, cfg.DeadLetterPath)
	if len(dead) != 10 || dead[0].Status != 403 || len(api.Events()) != 0 {
		t.Errorf("want 10 dead letters with status 403 and nothing stored, got %d (%+v), %d stored", len(dead), dead, len(api.Events()))
	}
}

// A 3xx is the answer, never followed: the events and the API key stay away
// from the host it names, and each event is dead-lettered with the status
// and the location, even with a client that would follow redirects.
func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := fakeapi.Start(fakeapi.Faults{})
	defer elsewhere.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		api := fakeapi.Start(fakeapi.Faults{Redirect: status, RedirectTo: strings.TrimSuffix(elsewhere.URL, "/PROD/v1")})
		cfg := testConfig(t, api)
		cfg.Source, cfg.Stdin, cfg.Auth = SourceStdin, strings.NewReader(numbered(0, 10, nil)), APIKey("secret")
		if err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		api.Close()
		dead := readDeadLetters(t, cfg.DeadLetterPath)
		want := fmt.Sprintf("HTTP %d redirect to %q, not followed", status, strings.TrimSuffix(elsewhere.URL, "/PROD/v1")+"/PROD/v1/batch")
		if len(dead) != 10 || dead[0].Status != status || !strings.HasPrefix(dead[0].Reason, want) {
			t.Errorf("%d: want 10 dead letters with status %d and a reason starting %q, got %d (first: %+v)", status, status, want, len(dead), first(dead))
		}
		if n := elsewhere.Requests(); n != 0 {
			t.Fatalf("%d: %d requests went to the host the redirect named", status, n)
		}
	}
}

func first(dead []deadLetter) any {
	if len(dead) == 0 {
		return nil
	}
	return struct {
		Status int
		Reason string
	}{dead[0].Status, dead[0].Reason}
}

// Events still unconfirmed at the shutdown deadline are not dropped: they go
// to the dead-letter file (lines of followed files are read again instead).
func TestShutdownDeadlineDeadLettersWhatIsUnconfirmed(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{FailEvery: 1})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source, cfg.ShutdownTimeout = SourceStdin, 100*time.Millisecond
	pr, pw := io.Pipe()
	cfg.Stdin = pr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()
	fmt.Fprint(pw, numbered(0, 20, nil))
	time.Sleep(300 * time.Millisecond)
	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after the shutdown deadline")
	}
	pw.Close()
	dead := readDeadLetters(t, cfg.DeadLetterPath)
	if len(dead) != 20 || !strings.Contains(dead[0].Reason, "shutdown deadline") {
		t.Errorf("want the 20 unconfirmed events dead-lettered, got %d: %+v", len(dead), dead)
	}
}

// A restart mid-file resumes at the checkpoint: every line is stored, and
// a line read twice keeps its event_id, so the duplicate is removable.
func TestRestartMidFileResumesFromCheckpoint(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{ThrottleEvery: 9, DropEvery: 17})
	defer api.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "events.log")
	if err := os.WriteFile(file, []byte(numbered(0, 1000, nil)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, api)
	cfg.Source, cfg.Files, cfg.CheckpointPath = SourceFile, []string{file}, filepath.Join(dir, "checkpoint.json")
	cfg.BatchSize, cfg.Concurrency = 20, 2

	// First run: stop (SIGTERM) part-way through, with a short deadline.
	ctx, cancel := context.WithCancel(context.Background())
	first := cfg
	first.Stats, first.ShutdownTimeout = &Stats{}, 20*time.Millisecond
	done := make(chan error)
	go func() { done <- Run(ctx, first) }()
	for first.Stats.Sent.Load() < 300 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(api.Events()); n >= 1000 || n == 0 {
		t.Fatalf("first run stored %d records; the test needs a stop part-way", n)
	}

	// The file grows while the producer is down; the restart catches up.
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, numbered(1000, 1200, nil))
	f.Close()

	ctx2, cancel2 := context.WithCancel(context.Background())
	second := cfg
	second.Stats = &Stats{}
	go func() { done <- Run(ctx2, second) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if byN, _ := storedByN(t, api); len(byN) == 1200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	byN, byID := storedByN(t, api)
	for i := range 1200 {
		if byN[i] == 0 {
			t.Fatalf("line %d was lost", i)
		}
	}
	if len(byID) != 1200 {
		t.Errorf("%d distinct event_ids for 1200 lines: a line read twice got a new id", len(byID))
	}
	if d := readDeadLetters(t, cfg.DeadLetterPath); len(d) != 0 {
		t.Errorf("dead letters from a clean file: %+v", d)
	}
	if second.Stats.Read.Load() >= 1200 {
		t.Errorf("the restart read %d lines: it did not resume from the checkpoint", second.Stats.Read.Load())
	}
}

// A rotated file (renamed, a new one created at the path) is read to its
// end before the new one, and a truncated file is read again from the start.
func TestFollowsRotation(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "app.log")
	cfg := testConfig(t, api)
	cfg.Source, cfg.Files, cfg.CheckpointPath = SourceFile, []string{file}, filepath.Join(dir, "cp.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()

	write := func(name, content string, flag int) {
		f, err := os.OpenFile(filepath.Join(dir, name), flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, content)
		f.Close()
	}
	write("app.log", numbered(0, 100, nil), os.O_APPEND)
	waitStored(t, api, 100)
	// logrotate: the old file gets a last line, then is renamed; a new one starts.
	write("app.log", numbered(100, 110, nil), os.O_APPEND)
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	write("app.log", numbered(110, 150, nil), os.O_APPEND)
	waitStored(t, api, 150)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	byN, _ := storedByN(t, api)
	for i := range 150 {
		if byN[i] != 1 {
			t.Errorf("line %d stored %d times, want 1", i, byN[i])
		}
	}
}

func waitStored(t *testing.T, api *fakeapi.API, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(api.Events()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records stored", len(api.Events()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnrich(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 5, 6, 7_000_000, time.FixedZone("CET", 3600))
	id := "new-id"
	for _, c := range []struct {
		in, want, err string
	}{
		{`{"value":"30","type":"Tip 3"}`, `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z","value":"30","type":"Tip 3"}`, ""},
		{`{"event_id":"mine","event_time":"2020-01-01T00:00:00Z","big":12345678901234567890}`, `{"event_id":"mine","event_time":"2020-01-01T00:00:00Z","big":12345678901234567890}`, ""},
		{"{\n  \"html\": \"<b>&</b>\",\n  \"u\": \"Grüße 🎉\"\n}", `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z","html":"<b>&</b>","u":"Grüße 🎉"}`, ""},
		{`[1,2]`, "", "not a JSON object"},
		{`{"a":1} {"b":2}`, "", "content after the object"},
		{`{"n":1},{"n":2}`, "", "content after the object"},
		{`{"n":3}xyz`, "", "content after the object"},
		{`{"n":4}}`, "", "content after the object"},
		{"{\"n\":5} \t\r\n", `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z","n":5}`, ""},
		{`null`, "", "not a JSON object"},
		{`"text"`, "", "not a JSON object: a JSON string"},
		{`{"a":1`, "", "not a JSON object"},
		// A key twice is never merged (the last value kept, the other
		// dropped): the line is dead-lettered whole. event_id included.
		{`{"a":1,"b":2,"a":3}`, "", `duplicate key "a"`},
		{`{"event_id":"mine","n":1,"event_id":"other"}`, "", `duplicate key "event_id"`},
		{`{"a":1,"a":2}`, "", `duplicate key "a"`},
		// Within a value, the object is kept as written, twice the key and all.
		{`{"o":{"a":1,"a":2}}`, `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z","o":{"a":1,"a":2}}`, ""},
		// The event's own event_id is never replaced, whatever it is.
		{`{"event_id":42}`, `{"event_time":"2026-11-24T22:05:06.007Z","event_id":42}`, ""},
		{`{"event_id":""}`, `{"event_time":"2026-11-24T22:05:06.007Z","event_id":""}`, ""},
		{`{"event_id":null}`, `{"event_time":"2026-11-24T22:05:06.007Z","event_id":null}`, ""},
		{`{"a":` + `"` + strings.Repeat("x", MaxEventBytes) + `"}`, "", "the most a Kinesis record takes"},
		// JSON text is UTF-8: keys "\xffkey" and "\xfekey" would both become
		// "\ufffdkey" and one field would be dropped; a value would be
		// sent as bytes no JSON reader takes.
		{"{\"k\":1,\"\xffkey\":1,\"\xfekey\":2}", "", "not valid UTF-8"},
		{"{\"v\":\"caf\xe9\"}", "", "not valid UTF-8"},
		// The user's keys stay in the user's order, as written (escapes and
		// all), after the two added; only white space between tokens goes.
		{"{ \"z\" : [ 1 , {\"y\" : \"a b\"} ] ,\n\"a\":\"\\u0041\u2028\", \"m\":1.50e+3 }", `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z","z":[1,{"y":"a b"}],"a":"\u0041` + "\u2028" + `","m":1.50e+3}`, ""},
		{`{}`, `{"event_id":"new-id","event_time":"2026-11-24T22:05:06.007Z"}`, ""},
		// A key is the same key however it is escaped.
		{`{"event\u005fid":"x","n":1}`, `{"event_time":"2026-11-24T22:05:06.007Z","event\u005fid":"x","n":1}`, ""},
		{`{"a":1,"\u0061":2}`, "", `duplicate key "a"`},
		{"\ufeff{}", "", "not a JSON object: invalid character"},
		{``, "", "not a JSON object: EOF"},
	} {
		got, _, err := enrich([]byte(c.in), id, now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%.40s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%.40s:\n got %s (%v)\nwant %s", c.in, got, err, c.want)
		}
	}
	if randomID() == randomID() || len(randomID()) != 36 {
		t.Error("random ids must be unique UUIDs")
	}
}

// SigV4 signs for execute-api in the API's Region; the fake checks the header.
func TestSigV4AndAPIKeyAuth(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{RequireSigV4: true})
	defer api.Close()
	cfg := testConfig(t, api)
	var seen *http.Request
	cfg.HTTPClient = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = r
		return http.DefaultTransport.RoundTrip(r)
	})}
	cfg.Source, cfg.Stdin = SourceStdin, strings.NewReader(numbered(0, 3, nil))
	cfg.Auth = &SigV4{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "token")}
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	auth := seen.Header.Get("Authorization")
	if !strings.Contains(auth, "Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/execute-api/aws4_request") ||
		seen.Header.Get("X-Amz-Security-Token") != "token" || len(api.Events()) != 3 {
		t.Errorf("Authorization %q, token %q, %d stored", auth, seen.Header.Get("X-Amz-Security-Token"), len(api.Events()))
	}
	if got := RegionFromURL("https://abc123.execute-api.ap-southeast-2.amazonaws.com/PROD/v1"); got != "ap-southeast-2" {
		t.Errorf("RegionFromURL = %q", got)
	}
	var _ aws.CredentialsProvider = cfg.Auth.(*SigV4).Credentials
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The queue holds a bounded number of bytes: a reader waits for room, one
// item larger than the bound passes alone, and a wait ends with its context.
func TestBudgetBoundsBytes(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	b.acquire(ctx, 60)
	got := make(chan bool)
	go func() { got <- b.acquire(ctx, 60) }()
	select {
	case <-got:
		t.Fatal("60 more bytes were taken with 60 of 100 in use")
	case <-time.After(20 * time.Millisecond):
	}
	b.release(60)
	if !<-got || b.inUse() != 60 {
		t.Fatalf("after a release: in use %d, want 60", b.inUse())
	}
	b.release(60)
	if !b.acquire(ctx, 500) {
		t.Fatal("an item larger than the bound must pass when nothing else is held")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if b.acquire(cctx, 1) || b.inUse() != 500 {
		t.Errorf("a cancelled wait took bytes: in use %d", b.inUse())
	}
}

// stdin and SIGTERM: every line the producer read is delivered or
// dead-lettered; what it did not read is still in the pipe. Here the API is
// down, so each line read must be in the dead-letter file.
func TestStdinLinesReadAtShutdownAreDeadLetteredNotDropped(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{Down: true})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.QueueBytes, cfg.ShutdownTimeout = 32<<10, 100*time.Millisecond
	r, w, err := os.Pipe() // pollable: a blocked read ends at shutdown
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	go func() {
		defer w.Close()
		w.WriteString(numbered(0, n, nil))
	}()
	cfg.Source, cfg.Stdin = SourceStdin, r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()
	waitUntil(t, func() bool { return api.Requests() > 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	seen := map[int]int{}
	cut := ""
	for _, d := range readDeadLetters(t, cfg.DeadLetterPath) {
		if strings.Contains(d.Reason, "cut off at shutdown") {
			cut = d.Raw
			continue
		}
		var e struct{ N int }
		json.Unmarshal(d.Event, &e)
		seen[e.N]++
	}
	for _, l := range strings.Split(cut+string(rest), "\n") {
		var e struct{ N *int }
		if json.Unmarshal([]byte(l), &e) == nil && e.N != nil {
			seen[*e.N]++
		}
	}
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("line %d: found %d times in the dead-letter file and the unread rest of the pipe, want once", i, seen[i])
		}
	}
	if len(rest) == int(len(numbered(0, n, nil))) {
		t.Error("the producer read nothing: the test proves nothing")
	}
}

// A read from stdin that is waiting when the producer stops is ended: what
// arrives afterwards stays in the pipe, for whoever reads it next, instead
// of being read and dropped.
func TestStdinReadWaitingAtShutdownIsEnded(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	r, w, err := os.Pipe() // pollable, as cmd/producer makes stdin
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source, cfg.Stdin = SourceStdin, r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, cfg) }()
	w.WriteString(numbered(0, 10, nil))
	waitUntil(t, func() bool { return len(api.Events()) == 10 }) // the reader now waits for more
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	late := numbered(10, 20, nil)
	w.WriteString(late)
	w.Close()
	if rest, _ := io.ReadAll(r); string(rest) != late {
		t.Errorf("the pipe holds %q after the stop, want the 10 lines written after it", rest)
	}
}

// A caller that does not set QueueBytes (cmd/smoke) gets the default bound,
// not a queue of one event: with a batch of 50 and an hour of linger, 100
// events go out as two full batches.
func TestZeroQueueBytesMeansTheDefault(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.QueueBytes, cfg.Linger, cfg.BatchSize = 0, time.Hour, 50
	pr, pw := io.Pipe()
	cfg.Source, cfg.Stdin = SourceStdin, pr
	done := make(chan error)
	go func() { done <- Run(context.Background(), cfg) }()
	pw.Write([]byte(numbered(0, 100, nil)))
	waitUntil(t, func() bool { return len(api.Events()) == 100 })
	pw.Close()
	if err := <-done; err != nil || api.Requests() != 2 {
		t.Errorf("Run = %v after %d requests, want 2", err, api.Requests())
	}
}

// A line that is not valid UTF-8 is dead-lettered with the reason, its bytes
// kept exactly (base64): JSON cannot hold them.
func TestLinesNotValidUTF8AreDeadLetteredExactly(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source = SourceStdin
	bad := []string{"{\"k\":1,\"\xffkey\":1,\"\xfekey\":2}", "{\"v\":\"caf\xe9 \xff\xfe\"}", "not json \xff\xfe caf\xe9"}
	cfg.Stdin = strings.NewReader(numbered(0, 5, nil) + strings.Join(bad, "\n") + "\n" + numbered(5, 10, nil))
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if byN, _ := storedByN(t, api); len(byN) != 10 || len(api.Events()) != 10 {
		t.Errorf("stored %d events, want the 10 valid lines only", len(api.Events()))
	}
	dl := readDeadLetters(t, cfg.DeadLetterPath)
	if len(dl) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dl), len(bad))
	}
	for i, d := range dl {
		raw, err := base64.StdEncoding.DecodeString(d.RawBase64)
		if err != nil || string(raw) != bad[i] || d.Raw != "" || d.Event != nil || !strings.Contains(d.Reason, "UTF-8") {
			t.Errorf("dead letter %d: %+v; want the line's exact bytes in raw_base64 and a reason about UTF-8", i, d)
		}
	}
}

// Lines are parsed on every core, yet reach the batches and the dead-letter
// file in the order read, each once: a file's order and its checkpoint
// depend on it.
func TestParallelParseKeepsOrder(t *testing.T) {
	r := &run{cfg: Config{BatchSize: 7, Linger: time.Hour}, stats: &Stats{}, dlIn: make(chan []dlItem, 100000)}
	lines, batches := make(chan line, 1024), make(chan []*Event, 16)
	work, chunks := make(chan *parseChunk, 4), make(chan *parseChunk, 16)
	go chunkLines(lines, work, chunks)
	for range 4 {
		go parseChunks(work)
	}
	go r.batch(chunks, batches)
	const n = 20000
	go func() {
		for i := range n {
			l := line{data: []byte(fmt.Sprintf(`{"seq":%d}`, i)), id: fmt.Sprint(i)}
			if i%97 == 0 {
				l.data = []byte(fmt.Sprintf(`{"seq":%d}x`, i)) // refused
			}
			lines <- l
			if i%1000 == 0 {
				time.Sleep(time.Millisecond) // chunks of one line, too
			}
		}
		close(lines)
	}()
	next := 0
	for b := range batches {
		if len(b) > 7 {
			t.Fatalf("a batch of %d", len(b))
		}
		for _, ev := range b {
			for next%97 == 0 {
				next++
			}
			want := fmt.Sprintf(`{"event_id":"%d","event_time":`, next)
			if ev.ID != fmt.Sprint(next) || !strings.HasPrefix(string(ev.Data), want) || !strings.HasSuffix(string(ev.Data), fmt.Sprintf(`"seq":%d}`, next)) {
				t.Fatalf("event %q (id %s), want line %d", ev.Data, ev.ID, next)
			}
			next++
		}
	}
	for next%97 == 0 && next < n {
		next++
	}
	if next != n {
		t.Fatalf("%d lines reached the batches, want %d", next, n)
	}
	close(r.dlIn)
	dead := 0
	for items := range r.dlIn {
		for _, it := range items {
			if want := fmt.Sprintf(`{"seq":%d}x`, dead*97); it.entry.Raw != want || !strings.Contains(it.entry.Reason, "content after the object") {
				t.Fatalf("dead letter %q (%s), want %s", it.entry.Raw, it.entry.Reason, want)
			}
			dead++
		}
	}
	if want := (n + 96) / 97; dead != want || r.stats.Read.Load() != n {
		t.Fatalf("%d dead-lettered, want %d; %d read", dead, want, r.stats.Read.Load())
	}
}
