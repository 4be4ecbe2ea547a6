package producer

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/noredirect"
)

// A condition is said at once, then at most once per period while it lasts,
// with how often it recurred in between; another cause has its own period.
func TestRateLogSaysAtOnceThenAtABoundedRate(t *testing.T) {
	var out bytes.Buffer
	l := newRateLog(slog.New(slog.NewTextHandler(&out, nil)), 10*time.Second)
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 25; i++ { // one a second for 25 s
		l.at(slog.LevelWarn, "tls", "TLS failed")
		now = now.Add(time.Second)
	}
	l.at(slog.LevelWarn, "403", "refused")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 for 25 s of one cause (at 0, 10 and 20 s) and 1 for another:\n%s", len(lines), out.String())
	}
	if strings.Contains(lines[0], "times_since") || !strings.Contains(lines[1], "times_since_last_said=9") {
		t.Errorf("want the first line alone, the second saying 9 recurrences:\n%s", out.String())
	}
	if !strings.Contains(lines[3], "refused") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("lines:\n%s", out.String())
	}
}

// Each cause that stops delivery is named, with what to do, from the error
// the client really gets.
func TestAdviceNamesTheCause(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	c := &client{url: strings.Replace(plain.URL, "http://", "https://", 1) + "/v1", auth: NoAuth{}, http: noredirect.Client(nil)}
	tlsOutcome := c.post(context.Background(), []*Event{{Data: []byte(`{}`)}}, false)
	for _, tc := range []struct {
		o    outcome
		key  string
		what string
	}{
		{tlsOutcome, "tls", "https://"},
		{outcome{reason: "AWS credentials: failed to refresh cached credentials, no EC2 IMDS role found"}, "credentials", "AWS_PROFILE"},
		{outcome{reason: "network: dial tcp: lookup api.invalid: no such host"}, "dns", "DNS"},
		{outcome{reason: "network: dial tcp 127.0.0.1:1: socket: too many open files"}, "descriptors", "ulimit -n"},
		{outcome{reason: "network: dial tcp 127.0.0.1:1: connect: connection refused"}, "network", "-url"},
		{outcome{status: 403, reason: "HTTP 403: Forbidden"}, "403", "-auth"},
		{outcome{status: 404, reason: "HTTP 404: Not Found"}, "404", "IngestUrl"},
		{outcome{status: 429, reason: "HTTP 429: slow down"}, "throttled", "shards"},
		{outcome{status: 503, reason: "HTTP 503: down"}, "5xx", "backoff"},
		{outcome{status: 200, unknown: true, reason: "unreadable batch answer"}, "unknown", "proxy"},
	} {
		key, what := advice(tc.o)
		if key != tc.key || !strings.Contains(what, tc.what) {
			t.Errorf("%q: %s (%s), want %s, saying %q", tc.o.reason, key, what, tc.key, tc.what)
		}
	}
}
