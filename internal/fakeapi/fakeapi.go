// Package fakeapi is a local stand-in for the Tributary ingest API (POST /v1
// and /v1/batch, with the deployed API's answers) for tests and benchmarks,
// with faults to inject: throttling, 5xx, 408, answers the API does not
// document (202, 204, 200 without the expected body), dropped connections,
// partial batch failures, slow answers, being down, rejected events and
// wrong credentials.
package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Faults says which requests fail and how. Counters are per request (1-based).
type Faults struct {
	ThrottleEvery    int           // 429
	FailEvery        int           // 500
	TimeoutEvery     int           // 408, nothing stored
	AcceptedEvery    int           // store the events, then answer 202 (not the documented answer)
	NoContentEvery   int           // answer 204 without storing
	EmptyOKEvery     int           // store the events, then answer 200 with {} (no sequence numbers)
	DropEvery        int           // store the events, then close the connection without an answer
	PartialEvery     int           // batch answers 200 with every other record throttled (not stored)
	RejectContaining string        // a request with an event containing this answers 400 (not stored)
	APIKey           string        // when set, requests need this x-api-key (else 403)
	RequireSigV4     bool          // requests need an AWS4-HMAC-SHA256 Authorization header (else 403)
	Delay            time.Duration // wait this long before handling each request
	Down             bool          // close every connection at once: nothing stored, no answer
}

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
	a := &API{faults: f}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	a.URL = a.srv.URL + "/PROD/v1"
	return a
}

// SetFaults changes the faults for the requests that arrive from now on.
func (a *API) SetFaults(f Faults) {
	a.mu.Lock()
	a.faults = f
	a.mu.Unlock()
}

// Close stops the server.
func (a *API) Close() { a.srv.Close() }

// Records returns a copy of every stored record (event JSON plus newline).
func (a *API) Records() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.records...)
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

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
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

	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	var events []json.RawMessage
	if batch {
		if err := json.Unmarshal(body.Bytes(), &events); err != nil || len(events) < 1 || len(events) > 500 {
			answer(w, http.StatusBadRequest, msg("Invalid request body"))
			return
		}
	} else {
		events = []json.RawMessage{body.Bytes()}
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

	partial := batch && every(f.PartialEvery)
	type result struct {
		SequenceNumber string `json:"sequenceNumber,omitempty"`
		ShardID        string `json:"shardId,omitempty"`
		ErrorCode      string `json:"errorCode,omitempty"`
		ErrorMessage   string `json:"errorMessage,omitempty"`
	}
	results := make([]result, len(events))
	failed := 0
	a.mu.Lock()
	for i, e := range events {
		if partial && i%2 == 1 {
			results[i] = result{ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard shardId-000000000000"}
			failed++
			continue
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, e)
		a.records = append(a.records, append(compact.Bytes(), '\n'))
		results[i] = result{SequenceNumber: fmt.Sprint(len(a.records)), ShardID: "shardId-000000000000"}
	}
	a.mu.Unlock()

	switch {
	case every(f.DropEvery):
		hangUp(w)
		return
	case every(f.AcceptedEvery):
		answer(w, http.StatusAccepted, map[string]any{})
		return
	case every(f.EmptyOKEvery):
		answer(w, http.StatusOK, map[string]any{})
		return
	}
	if !batch {
		answer(w, http.StatusOK, results[0])
		return
	}
	answer(w, http.StatusOK, map[string]any{"failedRecordCount": failed, "records": results})
}
