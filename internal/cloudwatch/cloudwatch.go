// Package cloudwatch publishes the producer's own figures to CloudWatch
// (PutMetricData) and ships its JSON log lines to CloudWatch Logs
// (PutLogEvents). It speaks both APIs directly, signed with SigV4, so the
// producer carries no service SDK. Neither side ever blocks its caller: work
// happens on its own goroutine with a bounded buffer and bounded retries, and
// an outage is logged once when it starts and once when it ends.
package cloudwatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// DefaultTimeout bounds each request: a slow CloudWatch costs at most this
// per attempt.
const DefaultTimeout = 10 * time.Second

// maxAnswerBytes bounds what is read of an answer: the documented ones
// (an empty success, an error with a message) are well under it.
const maxAnswerBytes = 64 << 10

// Endpoint is the base URL of service ("monitoring" or "logs") in region,
// or base when it is set (a local endpoint, used for both APIs).
func Endpoint(base, service, region string) (string, error) {
	if base != "" {
		if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
			return "", fmt.Errorf("cloudwatch endpoint must be an http:// or https:// URL, got %q", base)
		}
		return base, nil
	}
	if region == "" {
		return "", errors.New("cloudwatch: no Region (and no endpoint): the Region's endpoints need one")
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return fmt.Sprintf("https://%s.%s.%s/", service, region, domain), nil
}

// signer signs requests for one service with credentials from a provider
// (the instance role on EC2), as the producer signs its API requests.
type signer struct {
	creds   aws.CredentialsProvider
	region  string
	service string
	v4      *v4.Signer
}

func newSigner(creds aws.CredentialsProvider, region, service string) (*signer, error) {
	if creds == nil {
		return nil, errors.New("cloudwatch: no credentials provider")
	}
	if region == "" {
		// A signature is scoped to a Region even for a local endpoint.
		return nil, errors.New("cloudwatch: no Region to sign requests for")
	}
	return &signer{creds: creds, region: region, service: service, v4: v4.NewSigner()}, nil
}

// failure is why a request did not succeed: the service's error code (or
// "network"), its message, and whether the same request may succeed later.
type failure struct {
	status    int
	code, msg string
	retry     bool
}

func (f *failure) Error() string {
	if f.status == 0 {
		return f.code + ": " + f.msg
	}
	return fmt.Sprintf("HTTP %d %s: %s", f.status, f.code, f.msg)
}

// post signs and sends one request and returns the answer's body on a 2xx;
// any other outcome is a *failure.
func (s *signer) post(ctx context.Context, hc *http.Client, url string, header http.Header, body []byte, errorOf func(int, []byte) *failure) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &failure{code: "request", msg: err.Error()}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return nil, &failure{code: "credentials", msg: err.Error(), retry: true}
	}
	sum := sha256.Sum256(body)
	if err := s.v4.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), s.service, s.region, time.Now()); err != nil {
		return nil, &failure{code: "signing", msg: err.Error()}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &failure{code: "network", msg: err.Error(), retry: true}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, &failure{status: resp.StatusCode, code: "network", msg: "reading the answer: " + err.Error(), retry: true}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer, nil
	}
	f := errorOf(resp.StatusCode, answer)
	f.status = resp.StatusCode
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || throttled(f.code) {
		f.retry = true
	}
	return nil, f
}

// throttled reports whether an error code is one of the services' throttling
// codes: the request is fine, later.
func throttled(code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "RequestTimeout":
		return true
	}
	return false
}

// outage logs the start of a run of failures once and its end once, so a
// CloudWatch that refuses for hours costs two log lines, not one a minute.
type outage struct {
	log   *slog.Logger
	what  string // "metrics" or "logs", for the messages
	since time.Time
}

// failed records a failure; the first of a run is logged.
func (o *outage) failed(err error, hint string, attrs ...any) {
	if !o.since.IsZero() {
		return
	}
	o.since = time.Now()
	o.log.Warn("cloudwatch "+o.what+": cannot publish, backing off; "+hint, append([]any{"error", err.Error()}, attrs...)...)
}

// recovered records a success; the first after a failure is logged.
func (o *outage) recovered(attrs ...any) {
	if o.since.IsZero() {
		return
	}
	o.log.Info("cloudwatch "+o.what+": publishing again", append([]any{"failing_for", time.Since(o.since).Round(time.Second).String()}, attrs...)...)
	o.since = time.Time{}
}

func (o *outage) failing() bool { return !o.since.IsZero() }

// sleep waits d or until ctx ends, and says which.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
