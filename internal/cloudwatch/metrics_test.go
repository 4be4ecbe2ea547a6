package cloudwatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tributary/tributary/internal/cloudwatch"
	"github.com/tributary/tributary/internal/fakecloudwatch"
)

var creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
})

// logBuf is the producer's log as JSON lines, safe for concurrent writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines are the records whose message starts with msg.
func (l *logBuf) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// script returns figs one call at a time, then the last one again.
func script(figs ...cloudwatch.Figures) func() cloudwatch.Figures {
	var mu sync.Mutex
	i := 0
	return func() cloudwatch.Figures {
		mu.Lock()
		defer mu.Unlock()
		f := figs[min(i, len(figs)-1)]
		i++
		return f
	}
}

// startMetrics runs a publisher against fake until the test ends.
func startMetrics(t *testing.T, fake *fakecloudwatch.Server, log *logBuf, snap func() cloudwatch.Figures, interval, timeout time.Duration, hc *http.Client) *cloudwatch.Metrics {
	t.Helper()
	m, err := cloudwatch.NewMetrics(cloudwatch.MetricsConfig{
		Namespace: "Tributary/trial", Pipeline: "trial", Host: "i-0abc", Endpoint: fake.URL, Region: "eu-west-1",
		Credentials: creds, Snapshot: snap, Interval: interval, Timeout: timeout, Log: log.logger(), HTTP: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

type metric struct {
	unit   string
	value  float64
	reason string
}

// metrics reads a request as name/reason -> metric, checking the
// dimensions every metric carries.
func metrics(t *testing.T, r fakecloudwatch.MetricRequest) map[string]metric {
	t.Helper()
	if r.Namespace != "Tributary/trial" {
		t.Errorf("namespace %q", r.Namespace)
	}
	out := map[string]metric{}
	for _, d := range r.Data {
		if d.Dimensions["Pipeline"] != "trial" || d.Dimensions["Host"] != "i-0abc" {
			t.Errorf("%s: dimensions %v, want Pipeline=trial and Host=i-0abc", d.Name, d.Dimensions)
		}
		reason, hasReason := d.Dimensions["Reason"]
		if want := 2 + btoi(hasReason); len(d.Dimensions) != want || (hasReason && d.Name != "EventsDeadLettered") {
			t.Errorf("%s: dimensions %v", d.Name, d.Dimensions)
		}
		if time.Since(d.Timestamp) > time.Minute || time.Until(d.Timestamp) > time.Second {
			t.Errorf("%s: timestamp %v is not the interval's end", d.Name, d.Timestamp)
		}
		key := d.Name
		if hasReason {
			key += "/" + reason
		}
		if _, dup := out[key]; dup {
			t.Errorf("%s sent twice in one request", key)
		}
		out[key] = metric{d.Unit, d.Value, reason}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMetricsOneRequestAnIntervalOfIncreases(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.AllowNamespace = "Tributary/trial"
	var log logBuf
	m := startMetrics(t, fake, &log, script(
		cloudwatch.Figures{Read: 10, Sent: 8, Retried: 1, DeadLettered: map[string]int64{"http-400": 2},
			QueueBytes: 500, OldestUnconfirmed: 1500 * time.Millisecond, FileLagBytes: 100},
		cloudwatch.Figures{Read: 25, Sent: 20, Retried: 1, DeadLettered: map[string]int64{"http-400": 2, "network": 3},
			FilesGoneUnread: 1},
		cloudwatch.Figures{Read: 25, Sent: 25, Retried: 4, DeadLettered: map[string]int64{"http-400": 2, "network": 3},
			FilesGoneUnread: 1, QueueBytes: 7, OldestUnconfirmed: 2 * time.Second, FileLagBytes: 50},
	), 30*time.Millisecond, 0, nil)
	waitFor(t, "three requests", func() bool { return len(fake.MetricRequests()) >= 3 })

	base := func(read, sent, retried, dead, gone, queue, oldest, lag float64) map[string]metric {
		return map[string]metric{
			"EventsRead": {"Count", read, ""}, "EventsSent": {"Count", sent, ""}, "EventsRetried": {"Count", retried, ""},
			"EventsDeadLettered": {"Count", dead, ""}, "FilesGoneUnread": {"Count", gone, ""},
			"QueueBytes": {"Bytes", queue, ""}, "OldestUnconfirmedSeconds": {"Seconds", oldest, ""},
			"FileLagBytes": {"Bytes", lag, ""}, "Heartbeat": {"Count", 1, ""},
		}
	}
	want := []map[string]metric{
		base(10, 8, 1, 2, 0, 500, 1.5, 100),
		base(15, 12, 0, 3, 1, 0, 0, 0),
		base(0, 5, 3, 0, 0, 7, 2, 50),
	}
	// Only the classes that grew that interval, so unused ones create no metric.
	want[0]["EventsDeadLettered/http-400"] = metric{"Count", 2, "http-400"}
	want[1]["EventsDeadLettered/network"] = metric{"Count", 3, "network"}

	for i, r := range fake.MetricRequests()[:3] {
		got := metrics(t, r)
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("interval %d:\n got  %v\n want %v", i+1, got, want[i])
		}
	}
	if m.Dropped() != 0 || len(log.lines(t, "cloudwatch")) != 0 {
		t.Errorf("dropped %d intervals, logged %v", m.Dropped(), log.lines(t, "cloudwatch"))
	}
}

func TestMetricsSplitOnlyAtTheDocumentedLimit(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	dead := map[string]int64{}
	for i := range 1500 {
		dead[fmt.Sprintf("class-%04d", i)] = 1
	}
	var log logBuf
	m := startMetrics(t, fake, &log, script(cloudwatch.Figures{DeadLettered: dead}, cloudwatch.Figures{DeadLettered: dead}), time.Second, 0, nil)
	// The fake refuses more than 1,000 metrics a request, as the API does.
	waitFor(t, "an interval's requests", func() bool { return len(fake.MetricRequests()) >= 2 })
	r := fake.MetricRequests()
	if len(r[0].Data) != cloudwatch.MaxMetricsPerRequest || len(r[1].Data) != 9+1500-cloudwatch.MaxMetricsPerRequest {
		t.Errorf("requests of %d and %d metrics, want 1000 and 509", len(r[0].Data), len(r[1].Data))
	}
	seen := map[string]int{}
	for _, req := range r[:2] {
		for _, d := range req.Data {
			seen[d.Dimensions["Reason"]]++
		}
	}
	if len(seen) != 1501 || seen["class-0000"] != 1 || seen["class-1499"] != 1 || seen[""] != 9 {
		t.Errorf("reasons across the interval's requests: %d distinct", len(seen))
	}
	if m.Dropped() != 0 {
		t.Errorf("dropped %d: %v", m.Dropped(), log.lines(t, ""))
	}
}

func TestMetricsRefusedDropsIntervalsLogsOnceThenRecovers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fakecloudwatch.Fault
		code  string
	}{
		{"access denied", fakecloudwatch.Fault{Refuse: true}, "AccessDenied"},
		{"throttled", fakecloudwatch.Fault{Throttle: true}, "Throttling"},
		{"failing", fakecloudwatch.Fault{Fail: true}, "InternalFailure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakecloudwatch.New()
			defer fake.Close()
			fake.SetFault(fakecloudwatch.Metrics, tc.fault)
			var log logBuf
			m := startMetrics(t, fake, &log, script(cloudwatch.Figures{Read: 1}), 30*time.Millisecond, 0, nil)
			waitFor(t, "three dropped intervals", func() bool { return m.Dropped() >= 3 })
			// Bounded retries: at most three tries for the first interval,
			// then one an interval.
			if n, d := fake.Requests(fakecloudwatch.Metrics), m.Dropped(); n > 3+int(d) {
				t.Errorf("%d requests for %d dropped intervals", n, d)
			}
			warns := log.lines(t, "cloudwatch metrics: cannot publish")
			if len(warns) != 1 || !strings.Contains(warns[0]["error"].(string), tc.code) || warns[0]["level"] != "WARN" {
				t.Fatalf("want one warning naming %s, got %v", tc.code, warns)
			}
			if len(fake.MetricRequests()) != 0 {
				t.Fatal("the fake stored a refused request")
			}

			fake.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{})
			waitFor(t, "a request after recovery", func() bool { return len(fake.MetricRequests()) >= 2 })
			rec := log.lines(t, "cloudwatch metrics: publishing again")
			if len(rec) != 1 || rec[0]["dropped_intervals"].(float64) < 3 {
				t.Errorf("want one recovery line with the dropped intervals, got %v", rec)
			}
			if n := len(log.lines(t, "cloudwatch metrics: cannot publish")); n != 1 {
				t.Errorf("%d outage warnings, want 1", n)
			}
		})
	}
}

// countingTransport counts the requests a client has open at once (the
// fake notices a client giving up only later).
type countingTransport struct {
	mu      sync.Mutex
	n, peak int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.peak = max(c.peak, c.n)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.n--
		c.mu.Unlock()
	}()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

func TestMetricsHangingCloudWatchNeverPilesUp(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{Hang: true})
	var log logBuf
	var ct countingTransport
	m := startMetrics(t, fake, &log, script(cloudwatch.Figures{}), 30*time.Millisecond, 20*time.Millisecond, &http.Client{Transport: &ct})
	waitFor(t, "three intervals dropped", func() bool { return m.Dropped() >= 3 })
	if p := ct.max(); p != 1 {
		t.Errorf("%d requests held at once, want 1: an interval's requests must end before the next", p)
	}
	if n := len(log.lines(t, "cloudwatch metrics: cannot publish")); n != 1 {
		t.Errorf("%d outage warnings, want 1", n)
	}
	fake.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{})
	waitFor(t, "recovery", func() bool { return len(log.lines(t, "cloudwatch metrics: publishing again")) == 1 })
}

func TestNewMetricsRefusesBadConfig(t *testing.T) {
	ok := cloudwatch.MetricsConfig{Namespace: "Tributary/trial", Pipeline: "trial", Host: "h", Region: "eu-west-1",
		Credentials: creds, Snapshot: func() cloudwatch.Figures { return cloudwatch.Figures{} }, Log: slog.Default()}
	if _, err := cloudwatch.NewMetrics(ok); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(*cloudwatch.MetricsConfig)
		want string
	}{
		"no namespace":  {func(c *cloudwatch.MetricsConfig) { c.Namespace = "" }, "no namespace"},
		"AWS namespace": {func(c *cloudwatch.MetricsConfig) { c.Namespace = "AWS/EC2" }, "reserved"},
		"no host":       {func(c *cloudwatch.MetricsConfig) { c.Host = "" }, "Host"},
		"no region":     {func(c *cloudwatch.MetricsConfig) { c.Region = "" }, "Region"},
		"bad endpoint":  {func(c *cloudwatch.MetricsConfig) { c.Endpoint = "localhost:4566" }, "http:// or https://"},
		"no snapshot":   {func(c *cloudwatch.MetricsConfig) { c.Snapshot = nil }, "Snapshot"},
	} {
		c := ok
		tc.edit(&c)
		if _, err := cloudwatch.NewMetrics(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ base, service, region, want string }{
		{"", "monitoring", "eu-west-1", "https://monitoring.eu-west-1.amazonaws.com/"},
		{"", "logs", "cn-north-1", "https://logs.cn-north-1.amazonaws.com.cn/"},
		{"http://127.0.0.1:4566", "logs", "", "http://127.0.0.1:4566"},
	} {
		if got, err := cloudwatch.Endpoint(tc.base, tc.service, tc.region); err != nil || got != tc.want {
			t.Errorf("Endpoint(%q, %q, %q) = %q, %v; want %q", tc.base, tc.service, tc.region, got, err, tc.want)
		}
	}
	if _, err := cloudwatch.Endpoint("", "logs", ""); err == nil || !strings.Contains(err.Error(), "Region") {
		t.Errorf("no Region: %v", err)
	}
}

func TestMetricsDeadLetteredMapUpdatedInPlace(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	var mu sync.Mutex
	dead := map[string]int64{}
	var log logBuf
	startMetrics(t, fake, &log, func() cloudwatch.Figures {
		mu.Lock()
		defer mu.Unlock()
		dead["http-403"] += 2 // the producer's own map, counting on
		return cloudwatch.Figures{DeadLettered: dead}
	}, 30*time.Millisecond, 0, nil)
	waitFor(t, "three requests", func() bool { return len(fake.MetricRequests()) >= 3 })
	for i, r := range fake.MetricRequests()[:3] {
		if got := metrics(t, r)["EventsDeadLettered/http-403"]; got.value != 2 {
			t.Errorf("interval %d: Reason=http-403 %v, want 2", i+1, got)
		}
	}
}
