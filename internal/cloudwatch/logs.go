package cloudwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tributary/tributary/internal/noredirect"
)

// PutLogEvents's documented limits (CloudWatch Logs API Reference,
// PutLogEvents: "The maximum batch size is 1,048,576 bytes. This size is
// calculated as the sum of all event messages in UTF-8, plus 26 bytes for
// each log event", "The maximum number of log events in a batch is 10,000",
// "A batch of log events in a single request cannot span more than 24
// hours", "Each log event can be no larger than 256 KB", events in
// chronological order, none more than 2 hours in the future or 14 days in
// the past):
// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
const (
	MaxLogBatchEvents = 10_000
	MaxLogBatchBytes  = 1_048_576
	LogEventOverhead  = 26
	MaxLogEventBytes  = 256 << 10
	MaxLogBatchSpan   = 24 * time.Hour
	maxLogFuture      = 2 * time.Hour
	maxLogPast        = 14 * 24 * time.Hour
)

// Defaults of a Shipper.
const (
	DefaultFlushEvery  = 5 * time.Second
	DefaultBufferBytes = 4 << 20
)

// maxMessage is the longest line shipped as it is; longer ones are cut.
const maxMessage = MaxLogEventBytes - LogEventOverhead

// LogsConfig configures a Shipper.
type LogsConfig struct {
	Group  string // /tributary/<stage>/producer
	Stream string // the host's name
	// Endpoint is a base URL for the API (a local endpoint); empty: the
	// Region's.
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	FlushEvery  time.Duration // default DefaultFlushEvery
	Timeout     time.Duration // per request; default DefaultTimeout
	// BufferBytes bounds the lines held (counted as the API counts them),
	// besides the batch of a request in flight; when full, the oldest are
	// dropped. Default DefaultBufferBytes.
	BufferBytes int
	// Log gets the outage and recovery lines; it must not write into this
	// Shipper, or reporting an outage would feed the outage.
	Log  *slog.Logger
	HTTP *http.Client
}

// Shipper is an io.Writer of log lines that ships them to a CloudWatch Logs
// stream from its own goroutine (Run). Write never blocks on the network
// and never fails, so it can sit in an io.MultiWriter beside stderr.
type Shipper struct {
	cfg  LogsConfig
	url  string
	sign *signer
	hc   *http.Client

	mu      sync.Mutex
	buf     []entry // oldest first
	bytes   int     // of buf, counted as the API counts a batch
	seq     uint64  // of the last line added
	partial []byte  // a line without its newline yet
	full    chan struct{}

	dropped atomic.Int64
	shipped atomic.Int64

	// Run's own state.
	out      outage
	created  bool
	overflow bool // dropped lines have been reported
}

type entry struct {
	seq  uint64
	line string
	at   time.Time // when it was written: the timestamp of a line without "time"
}

// NewShipper checks cfg and returns a Shipper; Run ships what it is given.
func NewShipper(cfg LogsConfig) (*Shipper, error) {
	switch {
	case cfg.Group == "" || cfg.Stream == "":
		return nil, fmt.Errorf("cloudwatch logs: log group and stream need names, got %q and %q", cfg.Group, cfg.Stream)
	case strings.Contains(cfg.Stream, ":") || strings.Contains(cfg.Stream, "*"):
		return nil, fmt.Errorf("cloudwatch logs: log stream %q: the name cannot contain ':' or '*'", cfg.Stream)
	case cfg.Log == nil:
		return nil, errors.New("cloudwatch logs: no logger")
	case cfg.FlushEvery < 0 || cfg.Timeout < 0 || cfg.BufferBytes < 0:
		return nil, fmt.Errorf("cloudwatch logs: flush interval, timeout and buffer must be positive, got %v, %v and %d", cfg.FlushEvery, cfg.Timeout, cfg.BufferBytes)
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	u, err := Endpoint(cfg.Endpoint, "logs", cfg.Region)
	if err != nil {
		return nil, err
	}
	s, err := newSigner(cfg.Credentials, cfg.Region, "logs")
	if err != nil {
		return nil, err
	}
	return &Shipper{cfg: cfg, url: u, sign: s, hc: noredirect.Client(cfg.HTTP), full: make(chan struct{}, 1),
		out: outage{log: cfg.Log, what: "logs"}}, nil
}

// Dropped is the number of lines not shipped: pushed out of a full buffer,
// or refused by the API.
func (s *Shipper) Dropped() int64 { return s.dropped.Load() }

// Shipped is the number of lines the API took.
func (s *Shipper) Shipped() int64 { return s.shipped.Load() }

// Write takes one or more lines (a line may also come in parts). It only
// copies them into the buffer.
func (s *Shipper) Write(p []byte) (int, error) {
	now := time.Now()
	s.mu.Lock()
	data := p
	if len(s.partial) > 0 {
		data = append(s.partial, p...)
		s.partial = nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.add(data[:i], now)
		data = data[i+1:]
	}
	if len(data) > maxMessage {
		s.add(data, now) // a line this long is cut anyway: do not hold more of it
	} else if len(data) > 0 {
		s.partial = append([]byte(nil), data...)
	}
	ready := s.bytes >= MaxLogBatchBytes || len(s.buf) >= MaxLogBatchEvents
	s.mu.Unlock()
	if ready {
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// add appends a line, dropping the oldest while the buffer is over its
// bound. s.mu is held.
func (s *Shipper) add(line []byte, at time.Time) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return // the API takes no empty message
	}
	if len(line) > maxMessage {
		line = []byte(strings.ToValidUTF8(string(line[:maxMessage]), ""))
	}
	s.seq++
	s.buf = append(s.buf, entry{seq: s.seq, line: string(line), at: at})
	s.bytes += len(line) + LogEventOverhead
	for s.bytes > s.cfg.BufferBytes && len(s.buf) > 1 {
		s.bytes -= len(s.buf[0].line) + LogEventOverhead
		s.buf[0] = entry{}
		s.buf = s.buf[1:]
		s.dropped.Add(1)
	}
}

// Run ships the buffer every FlushEvery (sooner when a batch is full) until
// ctx ends, then makes one last attempt bounded by Timeout. While the API
// fails, it waits longer between attempts (up to twelve flush intervals)
// and the lines stay in the bounded buffer.
func (s *Shipper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.FlushEvery)
	defer t.Stop()
	var backoff time.Duration
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
			s.drain(last)
			cancel()
			return
		case <-t.C:
		case <-s.full:
		}
		if time.Now().Before(next) {
			continue
		}
		if s.drain(ctx) {
			backoff = 0
			next = time.Time{}
			continue
		}
		backoff = min(max(2*backoff, s.cfg.FlushEvery), 12*s.cfg.FlushEvery)
		next = time.Now().Add(backoff)
	}
}

// drain ships the buffer's lines, in as many batches as their number and
// size need (not the lines written meanwhile: those wait for the next
// flush, so a chatty log costs one request a flush, not one a line), and
// reports whether every request succeeded.
func (s *Shipper) drain(ctx context.Context) bool {
	for more := true; more; {
		var events []logEvent
		var last uint64
		events, last, more = s.batch(time.Now())
		if len(events) == 0 {
			break
		}
		if err := s.ship(ctx, events); err != nil {
			var f *failure
			if errors.As(err, &f) && f.code == "InvalidParameterException" {
				// This batch is refused as it is: drop it rather than stop
				// every line behind it.
				s.dropped.Add(int64(s.remove(last)))
			}
			if ctx.Err() == nil {
				s.out.failed(err, "lines wait in a bounded buffer; the oldest are dropped and counted when it is full",
					"log_group", s.cfg.Group, "log_stream", s.cfg.Stream, "endpoint", s.url)
			}
			return false
		}
		// Lines pushed out of the buffer while their batch was in flight
		// were counted dropped, but they were shipped.
		s.dropped.Add(-int64(len(events) - s.remove(last)))
		s.shipped.Add(int64(len(events)))
		if s.out.failing() {
			s.overflow = s.overflow || s.dropped.Load() > 0
			s.out.recovered("dropped_lines", s.dropped.Load())
		}
	}
	s.reportOverflow()
	return true
}

// reportOverflow logs once that lines were dropped while the API was
// answering (a burst larger than the buffer); an outage's drops are in its
// recovery line.
func (s *Shipper) reportOverflow() {
	if n := s.dropped.Load(); n > 0 && !s.overflow {
		s.cfg.Log.Warn("cloudwatch logs: the buffer was full, the oldest lines were dropped", "dropped_lines", n, "buffer_bytes", s.cfg.BufferBytes)
		s.overflow = true
	}
}

type logEvent struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// batch is the oldest lines that fit one PutLogEvents request, stamped with
// their "time" field (or when they were written), in the order written with
// each timestamp at least the one before, as the API wants; last is the
// sequence number of the last line taken, and more whether a limit left
// lines out.
func (s *Shipper) batch(now time.Time) (events []logEvent, last uint64, more bool) {
	// Copy the candidates and read their times outside the lock: Write
	// waits only for the copy.
	s.mu.Lock()
	head := slices.Clone(s.buf[:min(len(s.buf), MaxLogBatchEvents)])
	held := len(s.buf)
	s.mu.Unlock()
	defer func() { more = len(events) > 0 && len(events) < held }()
	size := 0
	var first, prev int64
	for _, e := range head {
		ts := stamp(e, now)
		if len(events) > 0 {
			ts = max(ts, prev)
			if ts-first > MaxLogBatchSpan.Milliseconds() {
				break
			}
		} else {
			first = ts
		}
		if len(events) == MaxLogBatchEvents || size+len(e.line)+LogEventOverhead > MaxLogBatchBytes {
			break
		}
		events = append(events, logEvent{Timestamp: ts, Message: e.line})
		size += len(e.line) + LogEventOverhead
		prev, last = ts, e.seq
	}
	return events, last, false
}

// stamp is a line's time in ms: its "time" field when it is one the API
// takes, else when the line was written.
func stamp(e entry, now time.Time) int64 {
	var l struct {
		Time time.Time `json:"time"`
	}
	if strings.HasPrefix(e.line, "{") && json.Unmarshal([]byte(e.line), &l) == nil && !l.Time.IsZero() &&
		l.Time.Before(now.Add(maxLogFuture-time.Minute)) && l.Time.After(now.Add(-maxLogPast+time.Hour)) {
		return l.Time.UnixMilli()
	}
	return e.at.UnixMilli()
}

// remove drops the lines up to seq and says how many it found: the others
// were pushed out of a full buffer meanwhile.
func (s *Shipper) remove(seq uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.buf) && s.buf[i].seq <= seq {
		s.bytes -= len(s.buf[i].line) + LogEventOverhead
		s.buf[i] = entry{}
		i++
	}
	s.buf = s.buf[i:]
	return i
}

// ship sends one batch, creating the log stream first when it has not been
// (or has been deleted since).
func (s *Shipper) ship(ctx context.Context, events []logEvent) error {
	if !s.created {
		_, err := s.call(ctx, "CreateLogStream", map[string]any{"logGroupName": s.cfg.Group, "logStreamName": s.cfg.Stream})
		var f *failure
		if err != nil && !(errors.As(err, &f) && f.code == "ResourceAlreadyExistsException") {
			return err
		}
		s.created = true
	}
	answer, err := s.call(ctx, "PutLogEvents", map[string]any{"logGroupName": s.cfg.Group, "logStreamName": s.cfg.Stream, "logEvents": events})
	var f *failure
	if errors.As(err, &f) && f.code == "ResourceNotFoundException" {
		s.created = false // the stream (or its group) is gone: create it on the next attempt
	}
	if err != nil {
		return err
	}
	s.dropped.Add(rejected(answer, len(events)))
	return nil
}

// rejected counts the events a 200 answer says were not stored (too old,
// too new, or older than the group's retention).
func rejected(answer []byte, n int) int64 {
	var a struct {
		Info *struct {
			TooNewStart *int `json:"tooNewLogEventStartIndex"`
			TooOldEnd   *int `json:"tooOldLogEventEndIndex"`
			ExpiredEnd  *int `json:"expiredLogEventEndIndex"`
		} `json:"rejectedLogEventsInfo"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Info == nil {
		return 0
	}
	old := 0
	for _, end := range []*int{a.Info.TooOldEnd, a.Info.ExpiredEnd} {
		if end != nil {
			old = max(old, *end+1)
		}
	}
	newer := 0
	if a.Info.TooNewStart != nil {
		newer = n - *a.Info.TooNewStart
	}
	return int64(min(n, old+max(newer, 0)))
}

// call makes one AWS JSON 1.1 request to CloudWatch Logs.
func (s *Shipper) call(ctx context.Context, action string, in any) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, &failure{code: "encoding", msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	header := http.Header{
		"Content-Type": {"application/x-amz-json-1.1"},
		"X-Amz-Target": {"Logs_20140328." + action},
	}
	return s.sign.post(ctx, s.hc, s.url, header, body, jsonError)
}

// jsonError reads the JSON protocol's error answer:
// {"__type":"[namespace#]Code","message":"..."}.
func jsonError(status int, body []byte) *failure {
	var e struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Type == "" {
		return &failure{code: http.StatusText(status), msg: snippet(body)}
	}
	if _, code, ok := strings.Cut(e.Type, "#"); ok {
		e.Type = code
	}
	if e.Message == "" {
		e.Message = e.MessageU
	}
	return &failure{code: e.Type, msg: e.Message}
}
