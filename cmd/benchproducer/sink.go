package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary/internal/ingest"
)

// sink stands in for the ingest API on loopback, leaner than
// internal/fakeapi (which decodes every event into a map and keeps every
// record: at a million events it would be slower than the client measured).
// It decompresses each body as API Gateway does, counts the events by their
// "seq", and answers as the deployed API: a sequence number for /v1; for
// /v1/batch the packed answer (how many events the record holds) or, with
// PER_EVENT, a record each.
type sink struct {
	URL      string // the /v1 URL
	perEvent bool

	srv  *http.Server
	wire atomic.Int64 // bytes read from the connections: requests as sent, headers included

	mu       sync.Mutex
	expect   int
	seen     []uint64 // bit per seq counted
	distinct int
	dupes    int
	unknown  int // events without a seq in [0, expect)
	requests int
	track    bool
	lat      []time.Duration // arrival - "wt", first copies only
	done     chan struct{}   // closed when every expected seq was counted
	doneAt   time.Time
	records  int64 // sequence numbers handed out
}

// counts is what a sink counted since its reset.
type counts struct {
	distinct, dupes, unknown, requests int
	wire                               int64
	lat                                []time.Duration
}

func startSink(perEvent bool) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{perEvent: perEvent, done: make(chan struct{})}
	s.URL = "http://" + ln.Addr().String() + "/PROD/v1"
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(&countingListener{Listener: ln, n: &s.wire}) }()
	return s, nil
}

func (s *sink) close() { _ = s.srv.Close() }

// reset starts a count of expect events (seq 0 to expect-1), recording
// their latency when track.
func (s *sink) reset(expect int, track bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expect, s.track = expect, track
	s.seen = make([]uint64, (expect+63)/64)
	s.distinct, s.dupes, s.unknown, s.requests = 0, 0, 0, 0
	s.lat = nil
	s.done = make(chan struct{})
	s.doneAt = time.Time{}
	s.wire.Store(0)
}

// finished is closed once every expected event was counted, and when.
func (s *sink) finished() (<-chan struct{}, func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.doneAt
	}
}

func (s *sink) counts() counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return counts{distinct: s.distinct, dupes: s.dupes, unknown: s.unknown, requests: s.requests,
		wire: s.wire.Load(), lat: append([]time.Duration(nil), s.lat...)}
}

var (
	gzipReaders sync.Pool
	bodies      = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	batch := strings.HasSuffix(r.URL.Path, ingest.BatchPath)
	if r.Method != http.MethodPost || !batch && !strings.HasSuffix(r.URL.Path, ingest.EventPath) {
		answer(w, http.StatusForbidden, `{"message":"Missing Authentication Token"}`)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	if err := decode(buf, r); err != nil {
		answer(w, http.StatusUnsupportedMediaType, fmt.Sprintf(`{"message":%q}`, "Unsupported Media Type: "+err.Error()))
		return
	}
	arrival := time.Now()
	body := buf.Bytes()
	var events [][]byte
	if batch {
		var ok bool
		if events, ok = splitArray(body); !ok || len(events) < 1 || len(events) > ingest.MaxBatch {
			answer(w, http.StatusBadRequest, `{"message":"Invalid request body"}`)
			return
		}
	} else {
		if e, ok := splitObject(bytes.TrimSpace(body)); !ok || len(e) != len(bytes.TrimSpace(body)) {
			answer(w, http.StatusBadRequest, `{"message":"Invalid request body"}`)
			return
		}
		events = [][]byte{body}
	}
	first := s.count(events, arrival)

	b := make([]byte, 0, 96)
	switch {
	case !batch:
		b = append(b, `{"sequenceNumber":"`...)
		b = strconv.AppendInt(b, first, 10)
		b = append(b, `","shardId":"shardId-000000000000"}`...)
	case !s.perEvent:
		b = append(b, `{"sequenceNumber":"`...)
		b = strconv.AppendInt(b, first, 10)
		b = append(b, `","shardId":"shardId-000000000000","events":`...)
		b = strconv.AppendInt(b, int64(len(events)), 10)
		b = append(b, '}')
	default:
		b = append(b, `{"failedRecordCount":0,"records":[`...)
		for i := range events {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"sequenceNumber":"`...)
			b = strconv.AppendInt(b, first+int64(i), 10)
			b = append(b, `","shardId":"shardId-000000000000"}`...)
		}
		b = append(b, "]}"...)
	}
	answer(w, http.StatusOK, string(b))
}

// count counts events that arrived at arrival and returns the first of the
// Kinesis sequence numbers they take (one per event with PER_EVENT, and a
// packed batch's one record still gets a number per event: only unique).
func (s *sink) count(events [][]byte, arrival time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	first := s.records + 1
	s.records += int64(len(events))
	for _, e := range events {
		seq, ok := intField(e, `"seq":`)
		if !ok || seq < 0 || seq >= int64(s.expect) {
			s.unknown++
			continue
		}
		word, bit := seq/64, uint64(1)<<(seq%64)
		if s.seen[word]&bit != 0 {
			s.dupes++
			continue
		}
		s.seen[word] |= bit
		s.distinct++
		if s.track {
			if wt, ok := intField(e, `"wt":`); ok {
				s.lat = append(s.lat, arrival.Sub(time.Unix(0, wt)))
			}
		}
	}
	if s.distinct == s.expect && s.doneAt.IsZero() {
		s.doneAt = arrival
		close(s.done)
	}
	return first
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// decode reads the request body into buf, decompressed as its
// Content-Encoding says (gzip or none, as the producer sends).
func decode(buf *bytes.Buffer, r *http.Request) error {
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		_, err := buf.ReadFrom(r.Body)
		return err
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r.Body)
		} else {
			err = zr.Reset(r.Body)
		}
		if err != nil {
			return fmt.Errorf("the body is not gzip: %v", err)
		}
		defer gzipReaders.Put(zr)
		if _, err := buf.ReadFrom(zr); err != nil {
			return fmt.Errorf("the body is not what Content-Encoding says: %v", err)
		}
		return nil
	default:
		return fmt.Errorf("unknown Content-Encoding %q", enc)
	}
}

// splitArray splits a JSON array of objects into its objects. It checks
// the structure (brackets, braces, strings), not every token: the events
// come from the client measured, and the sink must stay cheap.
func splitArray(b []byte) ([][]byte, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var out [][]byte
	for i = skipSpace(b, i+1); ; {
		e, ok := splitObject(b[i:])
		if !ok {
			return nil, false
		}
		out = append(out, e)
		i = skipSpace(b, i+len(e))
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ']' {
			return out, skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return nil, false
		}
		i = skipSpace(b, i+1)
	}
}

// splitObject returns the object b starts with.
func splitObject(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return b[:i+1], c == '}'
			}
		}
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// intField reads the integer after key (e.g. `"seq":`) in an event.
func intField(e []byte, key string) (int64, bool) {
	i := bytes.Index(e, []byte(key))
	if i < 0 {
		return 0, false
	}
	i += len(key)
	j := i
	for j < len(e) && e[j] >= '0' && e[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(e[i:j]), 10, 64)
	return n, err == nil
}

// countingListener counts the bytes read from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
