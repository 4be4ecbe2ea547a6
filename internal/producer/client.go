package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/klauspost/compress/gzip"

	"github.com/tributary/tributary/internal/ingest"
)

// Auth adds credentials to a request, as the API's authorization mode wants.
type Auth interface {
	Apply(ctx context.Context, req *http.Request, body []byte) error
}

// SigV4 signs requests for execute-api with credentials from the provider
// (the default chain: the instance role on EC2). Safe for concurrent use.
type SigV4 struct {
	Credentials aws.CredentialsProvider
	Region      string
	once        sync.Once
	signer      *v4.Signer
}

// Apply signs req.
func (s *SigV4) Apply(ctx context.Context, req *http.Request, body []byte) error {
	s.once.Do(func() { s.signer = v4.NewSigner() })
	creds, err := s.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	return s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", s.Region, time.Now())
}

// NewAuth is the Auth of an authorization mode: SigV4 with creds in region
// for ingest.AuthIAM, the key for ingest.AuthAPIKey, nothing for
// ingest.AuthNone.
func NewAuth(mode ingest.Auth, apiKey string, creds aws.CredentialsProvider, region string) Auth {
	switch mode {
	case ingest.AuthAPIKey:
		return APIKey(apiKey)
	case ingest.AuthNone:
		return NoAuth{}
	}
	return &SigV4{Credentials: creds, Region: region}
}

// APIKey sends the usage plan's key.
type APIKey string

// Apply sets x-api-key.
func (k APIKey) Apply(_ context.Context, req *http.Request, _ []byte) error {
	req.Header.Set(ingest.APIKeyHeader, string(k))
	return nil
}

// NoAuth sends requests as they are (apiAuth=NONE).
type NoAuth struct{}

// Apply does nothing.
func (NoAuth) Apply(context.Context, *http.Request, []byte) error { return nil }

// RegionFromURL reads the Region from an execute-api host name
// (<id>.execute-api.<region>.amazonaws.com), or returns "".
func RegionFromURL(url string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	parts := strings.Split(host, ".")
	for i, p := range parts {
		if p == "execute-api" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

// outcome is what one request achieved for its events.
type outcome struct {
	stored []int  // indexes of events the API confirmed
	retry  []int  // indexes to send again after a pause
	split  bool   // a 400/413 for several events: send halves to find the bad one
	dead   []int  // indexes that retrying cannot fix
	status int    // HTTP status, 0 for a network error
	reason string // why, for logs and the dead-letter file
	// unknown: a 2xx that is not the documented answer (unreadable, too
	// large, the wrong record count): the events may be stored, or not.
	unknown bool
}

// maxAnswerBytes bounds what is read of an answer. The largest documented
// one, a PER_EVENT answer for 500 events each with Kinesis's error message,
// is under 128 KiB; a larger one is not the API's, and reading it whole
// would cost -concurrency times its size.
const maxAnswerBytes = 512 << 10

type client struct {
	url   string      // the /v1 URL
	batch bool        // send to /v1/batch
	gzip  bool        // compress batches: API Gateway decompresses them before its templates run
	plain atomic.Bool // the API took plain what it refused compressed: gzip is off
	auth  Auth
	http  *http.Client
	log   *slog.Logger
}

// send posts events (one, to /v1, or several, to /v1/batch) and sorts them
// by what happened. Compression is negotiated: an API that does not decode
// gzip answers a compressed batch 415, or 400 when it reads the bytes as
// JSON; the same events are then sent plain at once, and when the API takes
// them every batch goes plain from then on.
func (c *client) send(ctx context.Context, events []*Event) outcome {
	gz := c.batch && c.gzip && !c.plain.Load()
	o := c.post(ctx, events, gz)
	if !gz || (o.status != http.StatusUnsupportedMediaType && o.status != http.StatusBadRequest) {
		return o
	}
	p := c.post(ctx, events, false)
	if p.status >= 200 && p.status < 300 && c.plain.CompareAndSwap(false, true) && c.log != nil {
		c.log.Warn("the API does not take gzip-compressed batches: sending them plain from now on; set -gzip=false to skip this, or let the API decode gzip",
			"gzip_answer", o.reason, "plain_status", p.status)
	}
	return p
}

// post sends events once, the batch compressed when gz.
func (c *client) post(ctx context.Context, events []*Event, gz bool) outcome {
	all := make([]int, len(events))
	for i := range all {
		all[i] = i
	}
	url, body, encoding := c.url, events[0].Data, ""
	if c.batch {
		url = strings.TrimSuffix(c.url, "/") + "/batch"
		if gz {
			// The plain body is only compressed: its buffer is reused.
			raw := plainBodies.Get().(*[]byte)
			*raw = appendBatch((*raw)[:0], events)
			body, encoding = gzipped(*raw), "gzip"
			if cap(*raw) <= batchBytes+batchBytes/4 {
				plainBodies.Put(raw)
			}
		} else {
			body = appendBatch(make([]byte, 0, batchLen(events)), events)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return outcome{dead: all, reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if err := c.auth.Apply(ctx, req, body); err != nil {
		return outcome{retry: all, reason: err.Error()}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return outcome{retry: all, reason: "network: " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return outcome{dead: all, status: resp.StatusCode, reason: redirected(resp.StatusCode, resp.Header.Get("Location"))}
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return outcome{retry: all, status: resp.StatusCode, reason: "network: reading the answer: " + err.Error()}
	}
	if len(respBody) > maxAnswerBytes {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return outcome{retry: all, status: resp.StatusCode, unknown: true,
				reason: fmt.Sprintf("HTTP %d with an answer over %d KiB, not read (outcome unknown, sent again)", resp.StatusCode, maxAnswerBytes>>10)}
		}
		respBody = respBody[:maxAnswerBytes] // only its message counts
	}
	return c.classify(resp.StatusCode, respBody, len(events))
}

// redirected is the dead-letter reason of a 3xx: the status, where it
// pointed, and what to do.
func redirected(status int, location string) string {
	return fmt.Sprintf("HTTP %d redirect to %q, not followed: events and credentials go only to -url; set -url to the API's own /v1 URL", status, location)
}

// classify sorts the events of a request by its answer; docs/producer.md's table
// "What the producer does with each answer" says the same.
func (c *client) classify(status int, body []byte, n int) outcome {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	o := outcome{status: status, reason: fmt.Sprintf("HTTP %d: %s", status, message(body))}
	switch {
	case status == http.StatusOK && c.batch:
		c.batchAnswer(&o, body, n)
	case status == http.StatusOK && singleStored(body):
		o.stored = all
	case status >= 200 && status < 300:
		// Not the documented answer: the events may or may not be stored.
		// Sending them again risks duplicates; not sending risks loss.
		o.retry, o.unknown = all, true
		o.reason = fmt.Sprintf("HTTP %d without the documented answer (outcome unknown, sent again): %s", status, message(body))
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		o.retry = all
	case (status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge) && n > 1:
		o.split = true
	default: // 400, 401, 403, 404, 413, 415, other 4xx, unexpected 1xx/3xx: retrying the same request cannot fix them
		o.dead = all
	}
	return o
}

// singleStored reports whether a /v1 answer is the documented one: a
// sequence number for the stored record.
func singleStored(body []byte) bool {
	var r struct {
		SequenceNumber string `json:"sequenceNumber"`
	}
	return json.Unmarshal(body, &r) == nil && r.SequenceNumber != ""
}

// batchAnswer reads a 200 from /v1/batch. A packed batch (recordPacking
// PACKED) is stored in one record: its answer's events count says how many
// of the batch's first events that record holds (the rest are resent); an
// answer without the count (null: the template could not see it) confirms
// every event. Otherwise (PER_EVENT) each record is stored, or to resend.
func (c *client) batchAnswer(o *outcome, body []byte, n int) {
	var r struct {
		SequenceNumber string `json:"sequenceNumber"`
		Events         *int   `json:"events"`
		Records        []struct {
			SequenceNumber string `json:"sequenceNumber"`
			ErrorCode      string `json:"errorCode"`
			ErrorMessage   string `json:"errorMessage"`
		} `json:"records"`
	}
	err := json.Unmarshal(body, &r)
	if err == nil && r.Records == nil && r.SequenceNumber != "" && (r.Events == nil || *r.Events >= 0 && *r.Events <= n) {
		k := n
		if r.Events != nil {
			k = *r.Events
		}
		for i := range n {
			if i < k {
				o.stored = append(o.stored, i)
			} else {
				o.retry = append(o.retry, i)
			}
		}
		o.reason = fmt.Sprintf("packed answer stored %d of the %d events sent", k, n)
		return
	}
	if err != nil || len(r.Records) != n {
		// Cannot tell what was stored: send all again (duplicates, not loss).
		o.retry = make([]int, n)
		for i := range o.retry {
			o.retry[i] = i
		}
		o.unknown = true
		o.reason = "unreadable batch answer (outcome unknown, sent again): " + message(body)
		if err == nil && r.Records != nil {
			o.reason = fmt.Sprintf("batch answer with %d records for %d events (outcome unknown, sent again)", len(r.Records), n)
		}
		return
	}
	for i, rec := range r.Records {
		if rec.ErrorCode == "" && rec.SequenceNumber != "" {
			o.stored = append(o.stored, i)
			continue
		}
		o.retry = append(o.retry, i) // throttled or failed in Kinesis, or no answer for it
		o.reason = fmt.Sprintf("%s: %s", rec.ErrorCode, rec.ErrorMessage)
	}
}

// gzipped compresses a request body: with klauspost/compress, the same
// format as compress/gzip at about a third of its CPU on these bodies (it
// was a third of the producer's). Writers are reused: each new one
// allocates hundreds of KiB of compressor state.
func gzipped(body []byte) []byte {
	b := bytes.NewBuffer(make([]byte, 0, len(body)/4+64)) // JSON logs shrink about fivefold at BestSpeed
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(b)
	_, _ = zw.Write(body) // writes to memory do not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	return b.Bytes()
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // JSON shrinks several times even so; a small host keeps its CPU
	return zw
}}

var plainBodies = sync.Pool{New: func() any { return new([]byte) }}

// batchLen is the length of events' batch body.
func batchLen(events []*Event) int {
	n := 2
	for _, e := range events {
		n += len(e.Data) + 1
	}
	return n
}

// appendBatch appends events as a JSON array, the batch body.
func appendBatch(b []byte, events []*Event) []byte {
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.Data...)
	}
	return append(b, ']')
}

// message is the API's "message", or the start of the body.
func message(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}
