// Package fakeapi is a local stand-in for the Tributary ingest API (POST /v1
// and /v1/batch, with the deployed API's answers) for tests and benchmarks.
// It stores what the mapping templates store, in either record packing, and
// decompresses request bodies as API Gateway does; faults can be injected:
// throttling, 5xx, 408, answers the API does not document (202, 204, 200
// without the expected body), dropped connections, partial batch failures,
// a packed batch half stored (and said so), answers that never confirm (too large, malformed, the wrong record count, a 500 after storing), gzip not decoded, slow answers, being down, redirects, rejected events and wrong credentials.
package fakeapi

import (
	"bytes"
	"cmp"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tributary/tributary/internal/ingest"
)

// Faults says which requests fail and how. Counters are per request (1-based).
type Faults struct {
	ThrottleEvery  int // 429
	FailEvery      int // 500
	TimeoutEvery   int // 408, nothing stored
	AcceptedEvery  int // store the events, then answer 202 (not the documented answer)
	NoContentEvery int // answer 204 without storing
	EmptyOKEvery   int // store the events, then answer 200 with {} (no sequence numbers)
	DropEvery      int // store the events, then close the connection without an answer
	// Answers that never confirm, each after storing the events: a 200
	// with a 17 MiB body, a 200 whose body is not JSON, a PER_EVENT 200
	// listing one record fewer than were sent, a 500.
	HugeOKEvery, MalformedOKEvery, ShortRecordsEvery, FailAfterStoreEvery int
	PartialEvery                                                          int // PER_EVENT: 200 with every other record throttled (not stored); PACKED: the record throttled, 429
	// PackedShortEvery: PACKED, store only the first half of the batch (its
	// first (n+1)/2 events) and say so in the answer's events count.
	PackedShortEvery int
	// GzipRefused: a gzip-compressed body is answered with this status
	// (415, or 400 as if its bytes were read as JSON), nothing stored: an
	// API that does not decode gzip.
	GzipRefused      int
	RejectContaining string        // a request with an event containing this answers 400 (not stored)
	APIKey           string        // when set, requests need this x-api-key (else 403)
	RequireSigV4     bool          // requests need an AWS4-HMAC-SHA256 Authorization header (else 403)
	Delay            time.Duration // wait this long before handling each request
	Down             bool          // close every connection at once: nothing stored, no answer
	// Redirect answers every request with this 3xx status and a Location
	// of RedirectTo plus the request's path: what a proxy or a moved
	// endpoint does. Nothing is stored.
	Redirect   int
	RedirectTo string
	// Packing is how /v1/batch stores a batch, as the setting recordPacking
	// (not a fault). Default: ingest.Packed.
	Packing ingest.Packing
	// MaxBatch is the most events a batch may carry, as the API's request
	// model says (not a fault). Default: ingest.MaxBatch.
	MaxBatch int
	// RecordLimit lowers Kinesis's record limit (data and partition key),
	// to make the API refuse batches a client thinks fit. Default:
	// ingest.MaxRecordBytes.
	RecordLimit int
	// Kinesis, when set, stores the records instead of the fake's memory
	// and decides which are throttled (not a fault: the local pipeline's
	// stream, with a shard's limits).
	Kinesis Kinesis
}

// Kinesis is a stream the API writes to: Put stores what it can of
// records, in order, and says for each what Kinesis would (a sequence
// number and shard, or an error code and message), as PutRecords does.
type Kinesis interface {
	Put(records []Record) []Result
}

// Record is a Kinesis record the request templates write.
type Record struct {
	PartitionKey string
	Data         []byte
}

// Result is Kinesis's answer for one record.
type Result struct {
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	ShardID        string `json:"shardId,omitempty"`
	ErrorCode      string `json:"errorCode,omitempty"`
	ErrorMessage   string `json:"errorMessage,omitempty"`
}

// Throttled is the error code of a record over a shard's limits.
const Throttled = "ProvisionedThroughputExceededException"

// API is a running fake.
type API struct {
	URL string // the /v1 URL

	srv      *httptest.Server
	mu       sync.Mutex
	faults   Faults
	requests int
	records  [][]byte
}

// Start starts a fake on loopback; Close stops it.
func Start(f Faults) *API {
	a := New(f)
	a.srv = httptest.NewServer(a)
	a.URL = a.srv.URL + "/PROD/v1"
	return a
}

// New is a fake to serve on a listener of the caller's (ServeHTTP); its
// URL and Close are unset.
func New(f Faults) *API { return &API{faults: f} }

// SetFaults changes the faults for the requests that arrive from now on.
func (a *API) SetFaults(f Faults) {
	a.mu.Lock()
	a.faults = f
	a.mu.Unlock()
}

// Close stops the server.
func (a *API) Close() { a.srv.Close() }

// Records returns a copy of every stored Kinesis record: newline-terminated
// lines, one per event (several in a packed batch's record).
func (a *API) Records() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.records...)
}

// Events returns every stored event, one line each with its newline, in the
// order they were stored: what Firehose writes to S3.
func (a *API) Events() [][]byte {
	var out [][]byte
	for _, r := range a.Records() {
		for len(r) > 0 {
			i := bytes.IndexByte(r, '\n')
			out = append(out, r[:i+1])
			r = r[i+1:]
		}
	}
	return out
}

// Requests is how many requests arrived.
func (a *API) Requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

func answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func msg(m string) map[string]string { return map[string]string{"message": m} }

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
}

// ServeHTTP answers one request as the deployed API would.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	n := a.requests
	f := a.faults
	a.mu.Unlock()
	every := func(k int) bool { return k > 0 && n%k == 0 }
	if f.Down {
		hangUp(w)
		return
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}

	if f.Redirect != 0 {
		w.Header().Set("Location", f.RedirectTo+r.URL.Path)
		w.WriteHeader(f.Redirect)
		return
	}
	batch := strings.HasSuffix(r.URL.Path, "/v1/batch")
	switch {
	case r.Method != http.MethodPost || (!batch && !strings.HasSuffix(r.URL.Path, "/v1")):
		answer(w, http.StatusForbidden, msg("Missing Authentication Token"))
		return
	case f.APIKey != "" && r.Header.Get("x-api-key") != f.APIKey:
		answer(w, http.StatusForbidden, msg("Forbidden"))
		return
	case f.RequireSigV4 && !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		answer(w, http.StatusForbidden, msg("Missing Authentication Token"))
		return
	case r.Header.Get("Content-Type") != "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		answer(w, http.StatusUnsupportedMediaType, msg("Content-Type must be application/json"))
		return
	case f.GzipRefused != 0 && strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip"):
		m := "Unsupported Media Type"
		if f.GzipRefused == http.StatusBadRequest {
			m = "Invalid request body"
		}
		answer(w, f.GzipRefused, msg(m))
		return
	case every(f.ThrottleEvery):
		answer(w, http.StatusTooManyRequests, msg("Too many requests; retry with backoff"))
		return
	case every(f.FailEvery):
		answer(w, http.StatusInternalServerError, msg("Nothing was stored: Kinesis is unavailable; retry with backoff."))
		return
	case every(f.TimeoutEvery):
		answer(w, http.StatusRequestTimeout, msg("Request Timeout"))
		return
	case every(f.NoContentEvery):
		w.WriteHeader(http.StatusNoContent)
		return
	}

	body, err := decoded(r)
	if err != nil {
		answer(w, http.StatusUnsupportedMediaType, msg("Unsupported Media Type: "+err.Error()))
		return
	}
	var events []json.RawMessage
	if batch {
		if err := json.Unmarshal(body, &events); err != nil || len(events) < 1 || len(events) > cmp.Or(f.MaxBatch, ingest.MaxBatch) {
			answer(w, http.StatusBadRequest, msg("Invalid request body"))
			return
		}
	} else {
		events = []json.RawMessage{body}
	}
	for _, e := range events {
		var obj map[string]any
		if json.Unmarshal(e, &obj) != nil || obj == nil {
			answer(w, http.StatusBadRequest, msg("Invalid request body"))
			return
		}
		if f.RejectContaining != "" && bytes.Contains(e, []byte(f.RejectContaining)) {
			answer(w, http.StatusBadRequest, msg("Kinesis rejected the request: 1 validation error detected"))
			return
		}
	}

	// What the request templates make of the events: the records, each with
	// its partition key.
	key := r.Header.Get(ingest.PartitionKeyHeader)
	requestID := fmt.Sprintf("req-%d", n)
	packed := batch && f.Packing != ingest.PerEvent
	var records []Record
	switch {
	case !batch: // as sent, without CR and LF
		line := strings.NewReplacer("\r", "", "\n", "").Replace(string(body))
		records = []Record{{PartitionKey: or(key, requestID), Data: []byte(line + "\n")}}
	case packed: // re-serialised, one record of lines
		if every(f.PackedShortEvery) {
			events = events[:(len(events)+1)/2]
		}
		var data []byte
		for _, e := range events {
			data = append(data, compact(e)...)
		}
		records = []Record{{PartitionKey: or(key, requestID), Data: data}}
	default: // re-serialised, a record each
		for i, e := range events {
			records = append(records, Record{PartitionKey: or(key, fmt.Sprintf("%s-%d", requestID, i)), Data: compact(e)})
		}
	}
	limit := ingest.MaxRecordBytes
	if f.RecordLimit > 0 {
		limit = f.RecordLimit
	}
	for _, rec := range records {
		if len(rec.Data)+len(rec.PartitionKey) > limit {
			answer(w, http.StatusRequestEntityTooLarge, msg("Over Kinesis's record limit of 1 MiB: split the batch (an event alone cannot be stored)."))
			return
		}
	}
	if packed && every(f.PartialEvery) { // all or nothing
		answer(w, http.StatusTooManyRequests, msg("Kinesis is throttling writes; retry with backoff."))
		return
	}

	var results []Result
	if f.Kinesis != nil {
		results = f.Kinesis.Put(records)
	} else {
		results = a.store(records, batch && !packed && every(f.PartialEvery))
	}
	failed, throttled := 0, 0
	for _, r := range results {
		if r.ErrorCode != "" {
			failed++
			if r.ErrorCode == Throttled {
				throttled++
			}
		}
	}
	// The response templates: a request nothing of which was stored is not
	// a 200. PutRecord (/v1, a packed batch): throttling is a 429, any other
	// error a 500; PutRecords: a 429 when any record was throttled, else a
	// 500, with every record's error.
	if failed == len(results) {
		switch {
		case batch && !packed:
			status := http.StatusInternalServerError
			if throttled > 0 {
				status = http.StatusTooManyRequests
			}
			answer(w, status, map[string]any{"message": "No event was stored; resend them with backoff.", "failedRecordCount": failed, "records": results})
		case throttled > 0:
			answer(w, http.StatusTooManyRequests, msg("Kinesis is throttling writes; retry with backoff."))
		default:
			answer(w, http.StatusInternalServerError, msg("Nothing was stored: the pipeline could not write to Kinesis."))
		}
		return
	}

	switch {
	case every(f.DropEvery):
		hangUp(w)
	case every(f.HugeOKEvery):
		w.Header().Set("Content-Type", "application/json")
		pad := bytes.Repeat([]byte(" "), 1<<20)
		for range 17 {
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
		fmt.Fprint(w, `{"sequenceNumber":"1"}`)
	case every(f.MalformedOKEvery):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"sequenceNumber":"1",`)
	case every(f.ShortRecordsEvery) && batch && !packed:
		answer(w, http.StatusOK, map[string]any{"failedRecordCount": failed, "records": results[:len(results)-1]})
	case every(f.FailAfterStoreEvery):
		answer(w, http.StatusInternalServerError, msg("Internal server error"))
	case every(f.AcceptedEvery):
		answer(w, http.StatusAccepted, map[string]any{})
	case every(f.EmptyOKEvery):
		answer(w, http.StatusOK, map[string]any{})
	case !batch:
		answer(w, http.StatusOK, results[0])
	case packed:
		answer(w, http.StatusOK, map[string]any{"sequenceNumber": results[0].SequenceNumber, "shardId": results[0].ShardID, "events": len(events)})
	default:
		answer(w, http.StatusOK, map[string]any{"failedRecordCount": failed, "records": results})
	}
}

// store keeps records in memory, throttling every other one when partial.
func (a *API) store(records []Record, partial bool) []Result {
	results := make([]Result, len(records))
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, rec := range records {
		if partial && i%2 == 1 {
			results[i] = Result{ErrorCode: Throttled, ErrorMessage: "Rate exceeded for shard shardId-000000000000"}
			continue
		}
		a.records = append(a.records, rec.Data)
		results[i] = Result{SequenceNumber: fmt.Sprint(len(a.records)), ShardID: "shardId-000000000000"}
	}
	return results
}

func or(v, otherwise string) string {
	if v != "" {
		return v
	}
	return otherwise
}

// compact is an event re-serialised on one line, as the request templates'
// $input.json does (as the tests' Velocity emulation renders it: strings
// with only the escapes JSON needs, numbers as written, keys in order), with
// its newline.
func compact(e json.RawMessage) []byte {
	dec := json.NewDecoder(bytes.NewReader(e))
	dec.UseNumber()
	var b []byte
	type level struct{ object, keyNext bool } // keyNext: the next token is an object key
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			break // the end (the event was checked to be an object)
		}
		if n := len(stack); n > 0 && b[len(b)-1] != '{' && b[len(b)-1] != '[' {
			if _, closing := tok.(json.Delim); !closing || (tok != json.Delim('}') && tok != json.Delim(']')) {
				if stack[n-1].object && !stack[n-1].keyNext {
					b = append(b, ':')
				} else {
					b = append(b, ',')
				}
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			b = append(b, byte(t))
			switch t {
			case '{', '[':
				stack = append(stack, level{object: t == '{', keyNext: true})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			b = appendString(b, t)
		case json.Number:
			b = append(b, t...)
		case bool:
			b = fmt.Appendf(b, "%t", t)
		case nil:
			b = append(b, "null"...)
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].keyNext = !stack[n-1].keyNext
		}
	}
	return append(b, '\n')
}

// appendString writes s as a JSON string with only the escapes JSON needs.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// decoded is the request body as the templates see it.
func decoded(r *http.Request) ([]byte, error) {
	return Decode(r.Header.Get("Content-Encoding"), r.Body)
}

// Decode undoes a Content-Encoding as API Gateway does: it decompresses
// gzip and deflate, and refuses any other coding, or a body that is not
// what the header says (a 415).
func Decode(coding string, body io.Reader) ([]byte, error) {
	rd := body
	switch coding := strings.ToLower(strings.TrimSpace(coding)); coding {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("the body is not gzip: %v", err)
		}
		rd = zr
	case "deflate":
		rd = flate.NewReader(body)
	default:
		return nil, fmt.Errorf("unknown Content-Encoding %q", coding)
	}
	plain, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("the body is not what Content-Encoding says: %v", err)
	}
	return plain, nil
}
