package cloudwatch

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tributary/tributary/internal/noredirect"
)

// DefaultInterval is how often the figures are published: CloudWatch's
// standard resolution, one request a minute.
const DefaultInterval = 60 * time.Second

// PutMetricData's documented limits per request (CloudWatch API Reference,
// PutMetricData: "Each PutMetricData request is limited to 1 MB in size for
// HTTP POST requests" and "no more than 1,000 different metrics"):
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
const (
	MaxMetricsPerRequest = 1000
	MaxMetricBytes       = 1 << 20
)

// metricAttempts bounds the tries of one interval's request while
// CloudWatch has been answering; once it fails, each interval gets one.
const metricAttempts = 3

// Figures is what the producer reports. Read, Sent, Retried,
// DeadLettered and FilesGoneUnread are counters since the producer started
// (the publisher sends their increase over each interval); the others are
// current values.
type Figures struct {
	Read, Sent, Retried int64
	DeadLettered        map[string]int64 // by reason class
	FilesGoneUnread     int64            // files gone with bytes unread
	QueueBytes          int64
	OldestUnconfirmed   time.Duration // 0 when nothing is unconfirmed
	FileLagBytes        int64         // bytes of followed files not yet read
}

// MetricsConfig configures a Metrics publisher.
type MetricsConfig struct {
	Namespace string // Tributary/<stage>
	Pipeline  string // the Pipeline dimension
	Host      string // the Host dimension
	// Endpoint is a base URL for the API (a local endpoint); empty: the
	// Region's.
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	Snapshot    func() Figures
	Interval    time.Duration // default DefaultInterval
	Timeout     time.Duration // per request; default DefaultTimeout
	// Log gets the outage and recovery lines. It must not write into a
	// Shipper that this package feeds, or an outage of both would be
	// reported through the outage.
	Log  *slog.Logger
	HTTP *http.Client // default: http.DefaultClient's settings
}

// Metrics publishes Figures once an interval with PutMetricData.
type Metrics struct {
	cfg     MetricsConfig
	url     string
	sign    *signer
	hc      *http.Client
	prev    Figures
	out     outage
	dropped atomic.Int64
}

// NewMetrics checks cfg and returns a publisher; Run starts it.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	switch {
	case cfg.Namespace == "":
		return nil, errors.New("cloudwatch metrics: no namespace")
	case strings.HasPrefix(cfg.Namespace, "AWS/"):
		return nil, fmt.Errorf("cloudwatch metrics: namespace %q: names starting with AWS/ are reserved for AWS", cfg.Namespace)
	case cfg.Pipeline == "" || cfg.Host == "":
		return nil, fmt.Errorf("cloudwatch metrics: the Pipeline and Host dimensions need values, got %q and %q", cfg.Pipeline, cfg.Host)
	case cfg.Snapshot == nil:
		return nil, errors.New("cloudwatch metrics: no Snapshot func")
	case cfg.Log == nil:
		return nil, errors.New("cloudwatch metrics: no logger")
	case cfg.Interval < 0 || cfg.Timeout < 0:
		return nil, fmt.Errorf("cloudwatch metrics: interval and timeout must be positive, got %v and %v", cfg.Interval, cfg.Timeout)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	u, err := Endpoint(cfg.Endpoint, "monitoring", cfg.Region)
	if err != nil {
		return nil, err
	}
	s, err := newSigner(cfg.Credentials, cfg.Region, "monitoring")
	if err != nil {
		return nil, err
	}
	return &Metrics{cfg: cfg, url: u, sign: s, hc: noredirect.Client(cfg.HTTP), out: outage{log: cfg.Log, what: "metrics"}}, nil
}

// Dropped is the number of intervals that could not be sent.
func (m *Metrics) Dropped() int64 { return m.dropped.Load() }

// Run publishes once an interval until ctx ends. Each interval's work,
// retries included, ends before the next one starts: requests never pile
// up, and an interval that cannot be sent in its time is dropped.
func (m *Metrics) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.publish(ctx, now)
		}
	}
}

// publish sends one interval's figures, as of now.
func (m *Metrics) publish(ctx context.Context, now time.Time) {
	cur := m.cfg.Snapshot()
	bodies := m.bodies(m.datums(cur), now)
	m.prev = cur
	m.prev.DeadLettered = maps.Clone(cur.DeadLettered) // the producer may update its map in place
	stop := ctx
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Interval)
	defer cancel()
	attempts := metricAttempts
	if m.out.failing() {
		attempts = 1 // backing off: one probe an interval
	}
	for _, body := range bodies {
		if err := m.send(ctx, body, attempts); err != nil {
			if stop.Err() != nil {
				return // stopping, not failing
			}
			m.dropped.Add(1)
			m.out.failed(err, "an interval that cannot be sent is dropped and counted",
				"namespace", m.cfg.Namespace, "endpoint", m.url)
			return
		}
	}
	m.out.recovered("dropped_intervals", m.dropped.Load())
}

// send posts body, trying again after a pause while the failure may pass.
func (m *Metrics) send(ctx context.Context, body []byte, attempts int) error {
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}
	pause := m.cfg.Interval / 20
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 && !sleep(ctx, pause) {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		_, e := m.sign.post(rctx, m.hc, m.url, header, body, queryError)
		cancel()
		if e != nil && err != nil && ctx.Err() != nil {
			return err // the interval ran out: the service's answer says more than the deadline
		}
		err = e
		var f *failure
		if err == nil || !errors.As(err, &f) || !f.retry {
			return err
		}
		pause *= 2
	}
	return err
}

// queryError reads the query protocol's error answer:
// <ErrorResponse><Error><Type/><Code/><Message/></Error>...</ErrorResponse>.
func queryError(status int, body []byte) *failure {
	var e struct {
		Error struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	}
	if xml.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return &failure{code: http.StatusText(status), msg: snippet(body)}
	}
	return &failure{code: e.Error.Code, msg: e.Error.Message}
}

// snippet is the start of an undocumented answer, for the log.
func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// datum is one MetricData member.
type datum struct {
	name, unit string
	value      float64
	reason     string // the Reason dimension, when set
}

// datums is one interval's metrics: counters as their increase since the
// last interval, gauges as they are, and a dead-letter metric per reason
// class only for classes that grew, so unused classes create no metric.
func (m *Metrics) datums(cur Figures) []datum {
	inc := func(c, p int64) float64 {
		if c < p { // counters restarted: all of c is new
			return float64(c)
		}
		return float64(c - p)
	}
	var dead float64
	var reasons []datum
	for _, class := range slices.Sorted(maps.Keys(cur.DeadLettered)) {
		n := inc(cur.DeadLettered[class], m.prev.DeadLettered[class])
		if n > 0 {
			dead += n
			reasons = append(reasons, datum{name: "EventsDeadLettered", unit: "Count", value: n, reason: class})
		}
	}
	return append([]datum{
		{name: "EventsRead", unit: "Count", value: inc(cur.Read, m.prev.Read)},
		{name: "EventsSent", unit: "Count", value: inc(cur.Sent, m.prev.Sent)},
		{name: "EventsRetried", unit: "Count", value: inc(cur.Retried, m.prev.Retried)},
		{name: "EventsDeadLettered", unit: "Count", value: dead},
		{name: "QueueBytes", unit: "Bytes", value: float64(cur.QueueBytes)},
		{name: "OldestUnconfirmedSeconds", unit: "Seconds", value: cur.OldestUnconfirmed.Seconds()},
		{name: "FileLagBytes", unit: "Bytes", value: float64(cur.FileLagBytes)},
		{name: "FilesGoneUnread", unit: "Count", value: inc(cur.FilesGoneUnread, m.prev.FilesGoneUnread)},
		{name: "Heartbeat", unit: "Count", value: 1},
	}, reasons...)
}

// bodies encodes the datums as PutMetricData requests: one, unless the
// documented limits need more. Every datum is stamped now, the interval's end.
func (m *Metrics) bodies(data []datum, now time.Time) [][]byte {
	head := "Action=PutMetricData&Version=2010-08-01&Namespace=" + url.QueryEscape(m.cfg.Namespace)
	ts := now.UTC().Format("2006-01-02T15:04:05.000Z")
	var out [][]byte
	var b strings.Builder
	n := 0
	for _, d := range data {
		frag := m.member(n+1, d, ts)
		if n > 0 && (n == MaxMetricsPerRequest || b.Len()+len(frag) > MaxMetricBytes) {
			out = append(out, []byte(b.String()))
			b.Reset()
			n = 0
			frag = m.member(1, d, ts)
		}
		if n == 0 {
			b.WriteString(head)
		}
		b.WriteString(frag)
		n++
	}
	if n > 0 {
		out = append(out, []byte(b.String()))
	}
	return out
}

// member is datum d as the n-th MetricData member, form-encoded.
func (m *Metrics) member(n int, d datum, ts string) string {
	p := "&MetricData.member." + strconv.Itoa(n) + "."
	dims := [][2]string{{"Pipeline", m.cfg.Pipeline}, {"Host", m.cfg.Host}}
	if d.reason != "" {
		dims = append(dims, [2]string{"Reason", d.reason})
	}
	var b strings.Builder
	b.WriteString(p + "MetricName=" + d.name)
	for i, dim := range dims {
		q := p + "Dimensions.member." + strconv.Itoa(i+1) + "."
		b.WriteString(q + "Name=" + dim[0] + q + "Value=" + url.QueryEscape(dim[1]))
	}
	b.WriteString(p + "Unit=" + d.unit)
	b.WriteString(p + "Value=" + strconv.FormatFloat(d.value, 'f', -1, 64))
	b.WriteString(p + "Timestamp=" + ts)
	return b.String()
}
