package producer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// problemEvery is how often a condition that lasts is said again.
const problemEvery = 10 * time.Second

// rateLog says a condition at once at the default level, then again at
// most once per every while it lasts, with how many times it recurred in
// between: a cause that stops delivery (no credentials, TLS, the API
// answering 403 to everything) is seen within seconds, without a line per
// request.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	last  map[string]time.Time
	since map[string]int // occurrences not logged since the last line
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, now: time.Now, last: map[string]time.Time{}, since: map[string]int{}}
}

// at logs msg at level unless key was logged less than every ago.
func (l *rateLog) at(level slog.Level, key, msg string, args ...any) {
	l.mu.Lock()
	now := l.now()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.since[key]++
		l.mu.Unlock()
		return
	}
	n := l.since[key]
	l.last[key], l.since[key] = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "times_since_last_said", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// advice names the cause of a failed request (a key for rateLog) and says
// what to do about it.
func advice(o outcome) (key, what string) {
	r := o.reason
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(r, s) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(r, "AWS credentials:"):
		return "credentials", "no usable AWS credentials for -auth iam: on EC2 attach the instance role (the deployed host has one); elsewhere set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (refresh them if they expired); or use the API's own -auth (api-key, none)"
	case has("too many open files"):
		return "descriptors", "out of file descriptors: raise the limit (ulimit -n, LimitNOFILE= in systemd) or match fewer files with -files"
	case has("tls:", "x509:", "certificate", "HTTP response to HTTPS client", "TLS handshake"):
		return "tls", "TLS failed: check that -url is the API's https:// URL and that this host trusts its certificate (CA bundle, clock)"
	case has("no such host", "server misbehaving", "lookup "):
		return "dns", "the API's host name does not resolve: check -url and this host's DNS"
	case strings.HasPrefix(r, "network:"):
		return "network", "the API cannot be reached: check -url, the network and any proxy; events are sent again with backoff"
	case o.status == 401 || o.status == 403:
		return fmt.Sprint(o.status), "the API refuses the requests: check that -auth is the API's apiAuth, the API key, the Region of the signature (-region), that the credentials have not expired and may call execute-api:Invoke, and that -url is the stack output IngestUrl (API Gateway answers 403 to a path it does not have)"
	case o.status == 404:
		return "404", "-url is not the API: use the stack output IngestUrl (https://<id>.execute-api.<region>.amazonaws.com/<stage>/v1)"
	case o.status == 429 || has("ProvisionedThroughputExceeded"):
		return "throttled", "the API or the stream throttles: events are sent again with backoff; if it lasts, raise the stream's shards or lower -rate"
	case o.status >= 500:
		return "5xx", "the API fails: events are sent again with backoff, then dead-lettered if it lasts"
	case o.unknown:
		return "unknown", "the answers are not the API's documented ones: a proxy in between, or a -url that is not the API"
	}
	return fmt.Sprintf("status %d", o.status), "see the reason"
}
