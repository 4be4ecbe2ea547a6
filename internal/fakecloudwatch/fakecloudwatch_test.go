package fakecloudwatch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/tributary/tributary/internal/fakecloudwatch"
)

// do posts body, signed for service unless it is empty, and returns the
// status and answer.
func do(t *testing.T, f *fakecloudwatch.Server, service string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if service != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var form = map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

func logsCall(action string) map[string]string {
	return map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328." + action}
}

// metricBody is a PutMetricData form of n metrics; edit changes the form.
func metricBody(n int, edit func(url.Values)) string {
	v := url.Values{"Action": {"PutMetricData"}, "Version": {"2010-08-01"}, "Namespace": {"Tributary/trial"}}
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("MetricData.member.%d.", i)
		v.Set(p+"MetricName", "EventsRead")
		v.Set(p+"Unit", "Count")
		v.Set(p+"Value", "3")
		v.Set(p+"Dimensions.member.1.Name", "Host")
		v.Set(p+"Dimensions.member.1.Value", fmt.Sprint("h", i))
	}
	if edit != nil {
		edit(v)
	}
	return v.Encode()
}

func TestPutMetricData(t *testing.T) {
	f := fakecloudwatch.New()
	defer f.Close()
	f.AllowNamespace = "Tributary/trial"
	for _, tc := range []struct {
		name, service, body string
		status              int
		want                string
	}{
		{"unsigned", "", metricBody(1, nil), 403, "<Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code>"},
		{"signed for logs", "logs", metricBody(1, nil), 403, "<Code>SignatureDoesNotMatch</Code><Message>Credential should be scoped to correct service: &#39;monitoring&#39;."},
		{"1,001 metrics", "monitoring", metricBody(1001, nil), 400, "<Code>InvalidParameterValue</Code><Message>The collection MetricData must not have a size greater than 1000."},
		{"a bad unit", "monitoring", metricBody(1, func(v url.Values) { v.Set("MetricData.member.1.Unit", "Events") }), 400, "<Code>InvalidParameterValue</Code>"},
		{"no value", "monitoring", metricBody(1, func(v url.Values) { v.Del("MetricData.member.1.Value") }), 400, "<Code>InvalidParameterValue</Code>"},
		{"another namespace", "monitoring", metricBody(1, func(v url.Values) { v.Set("Namespace", "Other") }), 403, "<Code>AccessDenied</Code>"},
		{"over 1 MB", "monitoring", metricBody(1, func(v url.Values) { v.Set("Pad", strings.Repeat("x", 1<<20)) }), 413, "<Code>RequestEntityTooLarge</Code>"},
		{"ok", "monitoring", metricBody(2, nil), 200, `<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>`},
	} {
		status, body := do(t, f, tc.service, form, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d and %q", tc.name, status, body, tc.status, tc.want)
		}
	}
	r := f.MetricRequests()
	if len(r) != 1 || len(r[0].Data) != 2 || r[0].Data[1].Dimensions["Host"] != "h2" || r[0].Data[0].Value != 3 || r[0].Data[0].Unit != "Count" {
		t.Errorf("recorded %+v, want only the good request", r)
	}
}

func TestLogs(t *testing.T) {
	f := fakecloudwatch.New()
	defer f.Close()
	f.CreateLogGroup("g")
	events := func(ts ...int64) string {
		var e []map[string]any
		for i, t := range ts {
			e = append(e, map[string]any{"timestamp": t, "message": fmt.Sprint("m", i)})
		}
		b, _ := json.Marshal(map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": e})
		return string(b)
	}
	now := time.Now().UnixMilli()
	many := make([]int64, 10_001)
	for i := range many {
		many[i] = now
	}
	big, _ := json.Marshal(map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []map[string]any{
		{"timestamp": now, "message": strings.Repeat("x", 200_000)}, {"timestamp": now, "message": strings.Repeat("x", 200_000)},
		{"timestamp": now, "message": strings.Repeat("x", 200_000)}, {"timestamp": now, "message": strings.Repeat("x", 200_000)},
		{"timestamp": now, "message": strings.Repeat("x", 200_000)}, {"timestamp": now, "message": strings.Repeat("x", 200_000)},
	}})
	stream := `{"logGroupName":"g","logStreamName":"s"}`
	for _, tc := range []struct {
		name, service, action, body string
		status                      int
		want                        string
	}{
		{"unsigned", "", "PutLogEvents", events(now), 400, `{"__type":"MissingAuthenticationTokenException"`},
		{"signed for monitoring", "monitoring", "PutLogEvents", events(now), 400, `{"__type":"InvalidSignatureException","message":"Credential should be scoped to correct service: 'logs'."}`},
		{"no stream", "logs", "PutLogEvents", events(now), 400, `{"__type":"ResourceNotFoundException","message":"The specified log stream does not exist."}`},
		{"no group", "logs", "CreateLogStream", `{"logGroupName":"nope","logStreamName":"s"}`, 400, `"ResourceNotFoundException","message":"The specified log group does not exist."`},
		{"create", "logs", "CreateLogStream", stream, 200, ""},
		{"create again", "logs", "CreateLogStream", stream, 400, `{"__type":"ResourceAlreadyExistsException"`},
		{"out of order", "logs", "PutLogEvents", events(now, now-1), 400, `"InvalidParameterException","message":"Log events in a single PutLogEvents request must be in chronological order."`},
		{"over 24 hours", "logs", "PutLogEvents", events(now-25*3600_000, now), 400, `cannot span more than 24 hours`},
		{"10,001 events", "logs", "PutLogEvents", events(many...), 400, `"InvalidParameterException"`},
		{"over 1,048,576 bytes", "logs", "PutLogEvents", string(big), 400, `"InvalidParameterException","message":"Upload too large: 1200156 bytes exceeds limit of 1048576"`},
		{"unknown action", "logs", "DeleteLogGroup", stream, 400, `"UnknownOperationException"`},
		{"too old", "logs", "PutLogEvents", events(now-15*24*3600_000, now-15*24*3600_000), 200, `"rejectedLogEventsInfo":{"tooOldLogEventEndIndex":1}`},
		{"ok", "logs", "PutLogEvents", events(now, now), 200, `{"nextSequenceToken":`},
	} {
		status, body := do(t, f, tc.service, logsCall(tc.action), tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d and %q", tc.name, status, body, tc.status, tc.want)
		}
	}
	if e := f.Events("g", "s"); len(e) != 2 || e[0].Message != "m0" || e[1].Message != "m1" || e[0].Timestamp != now {
		t.Errorf("stored %v, want only the last batch (the too old one is left out)", e)
	}
	if n := len(f.LogBatches()); n != 2 {
		t.Errorf("%d batches recorded, want 2", n)
	}
}

func TestFaults(t *testing.T) {
	f := fakecloudwatch.New()
	defer f.Close()
	for _, tc := range []struct {
		fault  fakecloudwatch.Fault
		status int
		want   string
	}{
		{fakecloudwatch.Fault{Refuse: true}, 403, "<Code>AccessDenied</Code>"},
		{fakecloudwatch.Fault{Throttle: true}, 400, "<Code>Throttling</Code>"},
		{fakecloudwatch.Fault{Fail: true}, 500, "<Type>Receiver</Type><Code>InternalFailure</Code>"},
	} {
		f.SetFault(fakecloudwatch.Metrics, tc.fault)
		if status, body := do(t, f, "monitoring", form, metricBody(1, nil)); status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%+v: %d %s", tc.fault, status, body)
		}
	}
	f.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{Delay: 50 * time.Millisecond})
	start := time.Now()
	if status, _ := do(t, f, "monitoring", form, metricBody(1, nil)); status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("slow: %d after %v, want 200 after 50ms", status, time.Since(start))
	}
	// A hung request is answered under the fault that replaces it.
	f.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{Hang: true})
	done := make(chan int)
	go func() {
		status, _ := do(t, f, "monitoring", form, metricBody(1, nil))
		done <- status
	}()
	for f.Requests(fakecloudwatch.Metrics) < 5 {
		time.Sleep(time.Millisecond)
	}
	select {
	case s := <-done:
		t.Fatalf("a hung request was answered %d", s)
	case <-time.After(50 * time.Millisecond):
	}
	f.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{})
	if s := <-done; s != 200 || len(f.MetricRequests()) != 2 {
		t.Errorf("released: %d, %d stored", s, len(f.MetricRequests()))
	}
	if f.MaxInFlight() != 1 {
		t.Errorf("max in flight %d", f.MaxInFlight())
	}
}
