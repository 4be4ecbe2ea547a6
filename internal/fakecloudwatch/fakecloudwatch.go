// Package fakecloudwatch is a loopback stand-in for CloudWatch's
// PutMetricData (query protocol) and CloudWatch Logs' CreateLogStream and
// PutLogEvents (AWS JSON 1.1) on one URL, for tests. It checks the shape of
// the SigV4 Authorization header and the service it is scoped to (not the
// signature), enforces the APIs' documented limits, answers with the
// services' success and error shapes, records what it took, and can be told
// to refuse, throttle, fail, be slow or hang.
package fakecloudwatch

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API is one of the two APIs the fake serves.
type API int

const (
	Metrics API = iota // PutMetricData, SigV4 service "monitoring"
	Logs               // CloudWatch Logs, SigV4 service "logs"
)

// The documented limits the fake enforces (PutMetricData and PutLogEvents
// API references).
const (
	maxMetricBody   = 1 << 20
	maxDatums       = 1000
	maxDimensions   = 30
	maxLogEvents    = 10_000
	maxLogBatch     = 1_048_576
	logOverhead     = 26
	maxLogEvent     = 256 << 10
	maxLogSpan      = 24 * time.Hour
	maxLogFuture    = 2 * time.Hour
	maxLogPast      = 14 * 24 * time.Hour
	maxRequestBytes = 8 << 20 // what is read of any request
)

// Fault is how the fake answers an API's requests.
type Fault struct {
	Refuse   bool          // AccessDenied, as for a role without the permission
	Throttle bool          // Throttling (query) or ThrottlingException (JSON)
	Fail     bool          // HTTP 500 InternalFailure / ServiceUnavailableException
	Delay    time.Duration // wait this long before answering
	Hang     bool          // answer nothing until the fault changes, the client gives up or Close
}

// Datum is one metric of a PutMetricData request.
type Datum struct {
	Name       string
	Unit       string
	Value      float64
	Dimensions map[string]string
	Timestamp  time.Time
}

// MetricRequest is one PutMetricData request the fake took.
type MetricRequest struct {
	Namespace string
	Data      []Datum
	Bytes     int // of the body
}

// LogEvent is one event of a log stream.
type LogEvent struct {
	Timestamp int64
	Message   string
}

// LogBatch is one PutLogEvents request the fake took.
type LogBatch struct {
	Group, Stream string
	Events        []LogEvent
	Bytes         int // as the API counts a batch: messages plus 26 per event
}

// Server is the fake. Its fields are safe to set before the first request.
type Server struct {
	URL string
	// AllowNamespace, when set, refuses PutMetricData to any other
	// namespace with AccessDenied, as the stack's IAM condition does.
	AllowNamespace string

	srv     *httptest.Server
	mu      sync.Mutex
	faults  [2]Fault
	release chan struct{} // closed when the faults change
	closed  chan struct{}

	calls          [2]int
	inflight, peak int
	metrics        []MetricRequest
	groups         map[string]map[string][]LogEvent
	batches        []LogBatch
	creates        int
}

// New starts a fake on 127.0.0.1.
func New() *Server {
	s := &Server{release: make(chan struct{}), closed: make(chan struct{}), groups: map[string]map[string][]LogEvent{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close releases hung requests and stops the server.
func (s *Server) Close() {
	close(s.closed)
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// CreateLogGroup makes a log group, as the stack does.
func (s *Server) CreateLogGroup(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[name] == nil {
		s.groups[name] = map[string][]LogEvent{}
	}
}

// CreateLogStream makes a log stream in an existing group.
func (s *Server) CreateLogStream(group, stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[group][stream] = []LogEvent{}
}

// DeleteLogStream removes a log stream and its events, as an operator might.
func (s *Server) DeleteLogStream(group, stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups[group], stream)
}

// SetFault sets how api answers from now on; requests hung by the previous
// fault are answered under the new one.
func (s *Server) SetFault(api API, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[api] = f
	close(s.release)
	s.release = make(chan struct{})
}

// MetricRequests is what PutMetricData took, in order.
func (s *Server) MetricRequests() []MetricRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.metrics)
}

// LogBatches is what PutLogEvents took, in order.
func (s *Server) LogBatches() []LogBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

// Events is what a log stream holds.
func (s *Server) Events(group, stream string) []LogEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups[group][stream])
}

// CreateLogStreamCalls counts CreateLogStream requests, answered or not.
func (s *Server) CreateLogStreamCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates
}

// Requests counts the requests api received with a well-formed signature.
func (s *Server) Requests(api API) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[api]
}

// MaxInFlight is the most requests the fake has held at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// authorization is the shape of a SigV4 Authorization header.
var authorization = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/\s]+/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	api, service := Metrics, "monitoring"
	if r.Header.Get("X-Amz-Target") != "" {
		api, service = Logs, "logs"
	}
	fail := func(status int, code, msg string) {
		if api == Logs {
			jsonError(w, status, code, msg)
		} else {
			queryError(w, status, code, msg)
		}
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "InvalidAction", "only POST is served")
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if api == Logs {
			fail(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		} else {
			fail(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
		}
		return
	}
	m := authorization.FindStringSubmatch(auth)
	switch {
	case m == nil || r.Header.Get("X-Amz-Date") == "" || !strings.Contains(";"+m[4]+";", ";host;"):
		fail(http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders (with host) and Signature, and X-Amz-Date is required")
		return
	case m[3] != service:
		code, status := "SignatureDoesNotMatch", http.StatusForbidden
		if api == Logs {
			code, status = "InvalidSignatureException", http.StatusBadRequest
		}
		fail(status, code, fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil || len(body) > maxRequestBytes {
		fail(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request size exceeded")
		return
	}

	s.mu.Lock()
	s.calls[api]++
	if api == Logs && r.Header.Get("X-Amz-Target") == "Logs_20140328.CreateLogStream" {
		s.creates++
	}
	s.inflight++
	s.peak = max(s.peak, s.inflight)
	f, release := s.faults[api], s.release
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	for f.Hang || f.Delay > 0 {
		var timer <-chan time.Time
		if !f.Hang {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		case <-timer:
			f.Delay, f.Hang = 0, false
		case <-release:
			s.mu.Lock()
			f, release = s.faults[api], s.release
			s.mu.Unlock()
		}
	}
	switch {
	case f.Refuse && api == Logs:
		fail(http.StatusBadRequest, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/producer/i-0 is not authorized to perform: logs:PutLogEvents")
		return
	case f.Refuse:
		fail(http.StatusForbidden, "AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/producer/i-0 is not authorized to perform: cloudwatch:PutMetricData")
		return
	case f.Throttle && api == Logs:
		fail(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case f.Throttle:
		fail(http.StatusBadRequest, "Throttling", "Rate exceeded")
		return
	case f.Fail && api == Logs:
		fail(http.StatusInternalServerError, "ServiceUnavailableException", "The service cannot complete the request.")
		return
	case f.Fail:
		fail(http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error.")
		return
	}
	if api == Logs {
		s.logs(w, r, body)
	} else {
		s.putMetricData(w, r, body)
	}
}

// units are PutMetricData's StandardUnit values.
var units = strings.Fields(`Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits
	Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second
	Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second
	Terabits/Second Count/Second None`)

func (s *Server) putMetricData(w http.ResponseWriter, r *http.Request, body []byte) {
	bad := func(code, msg string) { queryError(w, http.StatusBadRequest, code, msg) }
	if len(body) > maxMetricBody {
		queryError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("Request size %d exceeded %d bytes", len(body), maxMetricBody))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		bad("InvalidParameterValue", "Content-Type must be application/x-www-form-urlencoded, got "+ct)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		bad("MalformedQueryString", err.Error())
		return
	}
	if a := form.Get("Action"); a != "PutMetricData" {
		bad("InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", a, form.Get("Version")))
		return
	}
	if v := form.Get("Version"); v != "2010-08-01" {
		bad("InvalidAction", fmt.Sprintf("Could not find operation PutMetricData for version %s", v))
		return
	}
	ns := form.Get("Namespace")
	switch {
	case ns == "":
		bad("MissingParameter", "The parameter Namespace is required.")
		return
	case strings.HasPrefix(ns, "AWS/"):
		bad("InvalidParameterValue", "The value AWS/ for parameter Namespace is invalid.")
		return
	case s.AllowNamespace != "" && ns != s.AllowNamespace:
		queryError(w, http.StatusForbidden, "AccessDenied", "User is not authorized to perform: cloudwatch:PutMetricData with cloudwatch:namespace "+ns)
		return
	}
	count := members(form)
	n := count["MetricData.member."]
	if n == 0 {
		bad("MissingParameter", "The parameter MetricData is required.")
		return
	}
	if n > maxDatums {
		bad("InvalidParameterValue", fmt.Sprintf("The collection MetricData must not have a size greater than %d.", maxDatums))
		return
	}
	req := MetricRequest{Namespace: ns, Bytes: len(body)}
	for i := 1; i <= n; i++ {
		p := "MetricData.member." + strconv.Itoa(i) + "."
		d := Datum{Name: form.Get(p + "MetricName"), Unit: form.Get(p + "Unit"), Dimensions: map[string]string{}}
		if d.Name == "" {
			bad("MissingParameter", "The parameter MetricData.member."+strconv.Itoa(i)+".MetricName is required.")
			return
		}
		if d.Unit != "" && !slices.Contains(units, d.Unit) {
			bad("InvalidParameterValue", fmt.Sprintf("The value %s for parameter MetricData.member.%d.Unit is invalid.", d.Unit, i))
			return
		}
		v, err := strconv.ParseFloat(form.Get(p+"Value"), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			bad("InvalidParameterValue", fmt.Sprintf("The value %q for parameter MetricData.member.%d.Value is invalid.", form.Get(p+"Value"), i))
			return
		}
		d.Value = v
		nd := count[p+"Dimensions.member."]
		if nd > maxDimensions {
			bad("InvalidParameterValue", fmt.Sprintf("The collection MetricData.member.%d.Dimensions must not have a size greater than %d.", i, maxDimensions))
			return
		}
		for j := 1; j <= nd; j++ {
			q := p + "Dimensions.member." + strconv.Itoa(j) + "."
			name, value := form.Get(q+"Name"), form.Get(q+"Value")
			if name == "" || value == "" {
				bad("InvalidParameterValue", fmt.Sprintf("MetricData.member.%d.Dimensions.member.%d needs a Name and a Value.", i, j))
				return
			}
			if _, dup := d.Dimensions[name]; dup {
				bad("InvalidParameterValue", fmt.Sprintf("No Metric may specify the same dimension name twice: %s.", name))
				return
			}
			d.Dimensions[name] = value
		}
		if ts := form.Get(p + "Timestamp"); ts != "" {
			if d.Timestamp, err = time.Parse(time.RFC3339, ts); err != nil {
				bad("InvalidParameterValue", fmt.Sprintf("The value %s for parameter MetricData.member.%d.Timestamp is invalid.", ts, i))
				return
			}
		}
		req.Data = append(req.Data, d)
	}
	s.mu.Lock()
	s.metrics = append(s.metrics, req)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></PutMetricDataResponse>`, requestID())
}

// members is, for each numbered list of the form (MetricData.member. and
// each metric's Dimensions.member.), its highest index: a gap leaves a
// member without fields, which the checks then refuse.
func members(form url.Values) map[string]int {
	n := map[string]int{}
	for k := range form {
		prefix := ""
		rest := k
		for {
			i := strings.Index(rest, ".member.")
			if i < 0 {
				break
			}
			prefix += rest[:i+len(".member.")]
			rest = rest[i+len(".member."):]
			idx, tail, _ := strings.Cut(rest, ".")
			if v, err := strconv.Atoi(idx); err == nil && v > n[prefix] {
				n[prefix] = v
			}
			prefix += idx + "."
			rest = tail
		}
	}
	return n
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request, body []byte) {
	bad := func(code, msg string) { jsonError(w, http.StatusBadRequest, code, msg) }
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		bad("SerializationException", "Content-Type must be application/x-amz-json-1.1, got "+ct)
		return
	}
	var in struct {
		Group     string `json:"logGroupName"`
		Stream    string `json:"logStreamName"`
		LogEvents []struct {
			Timestamp *int64  `json:"timestamp"`
			Message   *string `json:"message"`
		} `json:"logEvents"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		bad("SerializationException", err.Error())
		return
	}
	if in.Group == "" || in.Stream == "" {
		bad("InvalidParameterException", "logGroupName and logStreamName are required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	streams, ok := s.groups[in.Group]
	if !ok {
		bad("ResourceNotFoundException", "The specified log group does not exist.")
		return
	}
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "Logs_20140328.CreateLogStream":
		if _, ok := streams[in.Stream]; ok {
			bad("ResourceAlreadyExistsException", "The specified log stream already exists")
			return
		}
		streams[in.Stream] = []LogEvent{}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		return
	case "Logs_20140328.PutLogEvents":
	default:
		bad("UnknownOperationException", "Unknown operation "+target)
		return
	}
	if _, ok := streams[in.Stream]; !ok {
		bad("ResourceNotFoundException", "The specified log stream does not exist.")
		return
	}
	n := len(in.LogEvents)
	if n == 0 || n > maxLogEvents {
		bad("InvalidParameterException", fmt.Sprintf("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and %d, got %d", maxLogEvents, n))
		return
	}
	batch := LogBatch{Group: in.Group, Stream: in.Stream}
	for i, e := range in.LogEvents {
		if e.Timestamp == nil || e.Message == nil || *e.Message == "" {
			bad("InvalidParameterException", fmt.Sprintf("logEvents.%d needs a timestamp and a non-empty message", i+1))
			return
		}
		if len(*e.Message)+logOverhead > maxLogEvent {
			bad("InvalidParameterException", fmt.Sprintf("Log event too large: %d bytes exceeds limit of %d", len(*e.Message)+logOverhead, maxLogEvent))
			return
		}
		if i > 0 && *e.Timestamp < batch.Events[i-1].Timestamp {
			bad("InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
			return
		}
		batch.Events = append(batch.Events, LogEvent{Timestamp: *e.Timestamp, Message: *e.Message})
		batch.Bytes += len(*e.Message) + logOverhead
	}
	if batch.Bytes > maxLogBatch {
		bad("InvalidParameterException", fmt.Sprintf("Upload too large: %d bytes exceeds limit of %d", batch.Bytes, maxLogBatch))
		return
	}
	if time.Duration(batch.Events[n-1].Timestamp-batch.Events[0].Timestamp)*time.Millisecond > maxLogSpan {
		bad("InvalidParameterException", "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
		return
	}
	// Events too old or too new are left out and said so; the rest are stored.
	now := time.Now()
	tooOld, tooNew := -1, n
	for i, e := range batch.Events {
		t := time.UnixMilli(e.Timestamp)
		if t.Before(now.Add(-maxLogPast)) {
			tooOld = i
		}
		if t.After(now.Add(maxLogFuture)) && tooNew == n {
			tooNew = i
		}
	}
	stored := batch.Events[tooOld+1 : max(tooNew, tooOld+1)]
	streams[in.Stream] = append(streams[in.Stream], stored...)
	s.batches = append(s.batches, batch)
	out := map[string]any{"nextSequenceToken": requestID()}
	if tooOld >= 0 || tooNew < n {
		info := map[string]int{}
		if tooOld >= 0 {
			info["tooOldLogEventEndIndex"] = tooOld
		}
		if tooNew < n {
			info["tooNewLogEventStartIndex"] = tooNew
		}
		out["rejectedLogEventsInfo"] = info
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// queryError writes the query protocol's error shape.
func queryError(w http.ResponseWriter, status int, code, msg string) {
	kind := "Sender"
	if status >= 500 {
		kind = "Receiver"
	}
	var esc strings.Builder
	xml.EscapeText(&esc, []byte(msg))
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		kind, code, esc.String(), requestID())
}

// jsonError writes the JSON protocol's error shape.
func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

var idMu sync.Mutex
var idN int

func requestID() string {
	idMu.Lock()
	defer idMu.Unlock()
	idN++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", idN)
}
