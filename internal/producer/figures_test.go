package producer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// The oldest unconfirmed age follows the oldest event still counted, to the
// second it was read in, and is 0 once none is.
func TestOldestUnconfirmedAgeMoves(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := newUnconfirmed(func() time.Time { return now })
	if got := u.oldest(); got != 0 {
		t.Fatalf("oldest %v with nothing read, want 0", got)
	}
	first := u.add()
	now = now.Add(5*time.Second + 300*time.Millisecond)
	second := u.add()
	now = now.Add(2 * time.Second)
	if got, want := u.oldest(), 7300*time.Millisecond; got != want {
		t.Errorf("oldest %v, want %v (the first event's)", got, want)
	}
	u.done(first)
	if got, want := u.oldest(), 2300*time.Millisecond; got != want {
		t.Errorf("oldest %v after the first is confirmed, want %v (the second's, from the start of its second)", got, want)
	}
	u.done(0) // an event not counted: no effect
	u.done(second)
	if got := u.oldest(); got != 0 {
		t.Errorf("oldest %v with every event confirmed, want 0", got)
	}
	// Far past the slots: an event that old still shows, at the most the
	// slots tell apart.
	old := u.add()
	now = now.Add(10 * unconfirmedSlots * time.Second)
	if got := u.oldest(); got < (unconfirmedSlots-1)*time.Second {
		t.Errorf("oldest %v for an event read %v ago, want at least %v", got, 10*unconfirmedSlots*time.Second, (unconfirmedSlots-1)*time.Second)
	}
	u.done(old)
	if got := u.oldest(); got != 0 {
		t.Errorf("oldest %v after the old event is confirmed, want 0", got)
	}
}

func TestReasonClassOfEachDeadLetterReason(t *testing.T) {
	for _, c := range []struct {
		entry deadLetter
		want  string
	}{
		{deadLetter{Reason: "not a JSON object: invalid character 'o'"}, ClassInvalid},
		{deadLetter{Reason: errNotUTF8.Error()}, ClassInvalid},
		{deadLetter{Reason: `duplicate key "a": the line is kept here as it is rather than one value dropped`}, ClassInvalid},
		{deadLetter{Reason: "line longer than 1048576 bytes (kept truncated here); the most a Kinesis record takes is 1048064"}, ClassTooLarge},
		{deadLetter{Reason: "event is 1048600 bytes; the most a Kinesis record takes is 1048064"}, ClassTooLarge},
		{deadLetter{Status: 413, Reason: "HTTP 413: too large"}, ClassTooLarge},
		{deadLetter{Status: 403, Reason: "HTTP 403: Forbidden"}, Class403},
		{deadLetter{Status: 401, Reason: "HTTP 401: Unauthorized"}, Class403},
		{deadLetter{Status: 400, Reason: "HTTP 400: bad"}, Class4xx},
		{deadLetter{Status: 404, Reason: "HTTP 404: Not Found"}, Class4xx},
		{deadLetter{Status: 302, Reason: redirected(302, "https://elsewhere/")}, Class4xx},
		{deadLetter{Status: 500, Reason: "no answer confirmed these events after 21 tries (each may have stored a copy); last: HTTP 500: x"}, Class5xx},
		{deadLetter{Status: 200, Reason: "no answer confirmed these events after 11 tries (each may have stored a copy); last: unreadable batch answer"}, Class5xx},
		{deadLetter{Reason: shutdownReason}, ClassShutdown},
		{deadLetter{Reason: shutdownReason + "; last attempt: HTTP 503: x"}, ClassShutdown},
	} {
		if got := deadLetterClass(c.entry); got != c.want {
			t.Errorf("class of %d %q is %q, want %q", c.entry.Status, c.entry.Reason, got, c.want)
		}
	}
}

// A run's figures agree with its counters and with the dead-letter file:
// each class holds the events dead-lettered for it, the classes add up to
// dead_lettered, and nothing is left unconfirmed at the end.
func TestFiguresOfARun(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{RejectContaining: `"bad"`})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source = SourceStdin
	big := `{"big":"` + strings.Repeat("x", MaxEventBytes) + `"}` + "\n"
	cfg.Stdin = strings.NewReader(numbered(0, 100, func(i int) bool { return i%10 == 0 }) + "not json\n[1]\n" + big)
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	f := cfg.Stats.Figures()
	want := map[string]int64{ClassInvalid: 2, ClassTooLarge: 1, Class403: 0, Class4xx: 10, Class5xx: 0, ClassShutdown: 0}
	var sum int64
	for class, n := range want {
		if f.DeadLettered[class] != n {
			t.Errorf("%s: %d dead-lettered, want %d", class, f.DeadLettered[class], n)
		}
		sum += f.DeadLettered[class]
	}
	if len(f.DeadLettered) != len(ReasonClasses) {
		t.Errorf("classes %v, want exactly %v", f.DeadLettered, ReasonClasses)
	}
	c := cfg.Stats.Snapshot()
	if sum != c.DeadLettered || int64(len(readDeadLetters(t, cfg.DeadLetterPath))) != sum {
		t.Errorf("classes add up to %d, the counter says %d", sum, c.DeadLettered)
	}
	if f.Read != 103 || f.Sent != 90 || f.Read != c.Read || f.Sent != c.Sent {
		t.Errorf("read %d sent %d, want 103 and 90, as the counters (%d, %d)", f.Read, f.Sent, c.Read, c.Sent)
	}
	if f.OldestUnconfirmed != 0 || f.QueueBytes != 0 || f.FileLagBytes != 0 {
		t.Errorf("at the end: oldest %v, queue %d, lag %d, want all 0", f.OldestUnconfirmed, f.QueueBytes, f.FileLagBytes)
	}
}

// While the API holds a request, the event's age grows; once confirmed it
// is 0.
func TestOldestUnconfirmedWhileTheAPIIsSlow(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{Delay: 1500 * time.Millisecond})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.Source = SourceStdin
	cfg.Stdin = strings.NewReader(numbered(0, 1, nil))
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg) }()
	var seen time.Duration
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if seen < time.Second {
				t.Errorf("the oldest unconfirmed age reached %v while the API held the event 1.5 s, want at least 1 s", seen)
			}
			if got := cfg.Stats.Figures().OldestUnconfirmed; got != 0 {
				t.Errorf("oldest %v once the event is confirmed, want 0", got)
			}
			return
		case <-time.After(50 * time.Millisecond):
			seen = max(seen, cfg.Stats.Figures().OldestUnconfirmed)
		}
	}
}
