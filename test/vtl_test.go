package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// These tests render the synthesized mapping templates with a Velocity engine
// (velocityjs, pinned in .tools) against emulated API Gateway objects
// (test/vtl/render.js). They prove what the templates do given API Gateway's
// documented $input/$util/$context behaviour; they cannot prove API Gateway
// itself behaves as documented.

type vtlCase struct {
	Template  string            `json:"template"`
	Body      string            `json:"body"`
	Headers   map[string]string `json:"headers,omitempty"`
	RequestID string            `json:"requestId,omitempty"`
}

type vtlResult struct {
	Output string `json:"output"`
	Status *int   `json:"status"`
}

// installTools installs the pinned Node tools (.tools/package-lock.json)
// once when they are missing, so `go test ./...` works in a fresh clone.
var installTools = sync.OnceValue(func() error {
	if _, err := os.Stat("../.tools/node_modules/velocityjs"); err == nil {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = "../.tools"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in .tools: %v\n%s", err, out)
	}
	return nil
})

func renderVTL(t *testing.T, cases []vtlCase) []vtlResult {
	t.Helper()
	if err := installTools(); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(cases)
	cmd := exec.Command("node", "vtl/render.js")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render.js: %v\n%s", err, stderr.String())
	}
	var res []vtlResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("render.js output: %v\n%s", err, out)
	}
	return res
}

const testStreamName = "Tributary-PROD-Pipeline-EventsStream-AbC123"

// postV1 returns the POST /v1 method's properties.
func (a *app) postV1(t *testing.T) map[string]any { return a.post(t, "v1") }

// postBatch returns the POST /v1/batch method's properties.
func (a *app) postBatch(t *testing.T) map[string]any { return a.post(t, "batch") }

func (a *app) post(t *testing.T, pathPart string) map[string]any {
	t.Helper()
	resID := ""
	for id, r := range resourcesOf(a.pipeline(), "AWS::ApiGateway::Resource") {
		if get(r, "Properties", "PathPart") == pathPart {
			resID = id
		}
	}
	for _, m := range resourcesOf(a.pipeline(), "AWS::ApiGateway::Method") {
		if get(m, "Properties", "ResourceId", "Ref") == resID && get(m, "Properties", "HttpMethod") == "POST" {
			return m["Properties"].(map[string]any)
		}
	}
	t.Fatalf("no POST method on %s", pathPart)
	return nil
}

// requestTemplate is a method's deployed request template with the stream's
// Ref replaced by a plausible stream name.
func requestTemplate(t *testing.T, s *app, method map[string]any) string {
	streamID, _ := only(t, s.pipeline(), "AWS::Kinesis::Stream")
	tpl := joined(get(method, "Integration", "RequestTemplates", "application/json"))
	return strings.ReplaceAll(tpl, "${"+streamID+"}", testStreamName)
}

// decodeRecord checks that data is one newline-terminated line of JSON and returns the event.
func decodeRecord(t *testing.T, what, data string) any {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Errorf("%s: Data is not base64: %v", what, err)
		return nil
	}
	line := string(raw)
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 || strings.Contains(line, "\r") {
		t.Errorf("%s: record is not one line ending in \\n: %q", what, line)
	}
	var event any
	if err := json.Unmarshal(raw, &event); err != nil {
		t.Errorf("%s: record is not JSON: %v: %q", what, err, line)
	}
	return event
}

type putRecord struct {
	StreamName   string
	PartitionKey string
	Data         string
}

func TestRequestTemplateRendersOneLinePerEvent(t *testing.T) {
	s := synth(t, nil)
	tpl := requestTemplate(t, s, s.postV1(t))
	tricky := map[string]any{
		"unicode":   "Grüße, 日本語, emoji 🎉, combining é",
		"quotes":    `she said "hi" and 'bye'`,
		"backslash": `C:\temp\new \\ \u0041`,
		"dollar":    "$100 and ${x} and $input.body and $context.requestId",
		"hash":      "#set($x = 1) #if(true) ## not a comment #end",
		"control":   "line1\nline2\ttab\r\u0001",
		"slash":     "</script> a/b",
		"nested":    map[string]any{"list": []any{1.5, true, nil, "x"}, "empty": map[string]any{}},
	}
	trickyJSON, _ := json.Marshal(tricky)
	pretty, _ := json.MarshalIndent(map[string]any{"value": "30", "type": "Tip 3"}, "", "    ")
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		want    any // the event as decoded from the record
		key     string
	}{
		{"compact", `{"value":"30","type":"Tip 3"}`, nil, map[string]any{"value": "30", "type": "Tip 3"}, "req-1"},
		{"pretty-printed", string(pretty), nil, map[string]any{"value": "30", "type": "Tip 3"}, "req-1"},
		{"tricky values", string(trickyJSON), nil, tricky, "req-1"},
		{"client partition key", `{"a":1}`, map[string]string{"X-Partition-Key": "customer-42"}, map[string]any{"a": 1.0}, "customer-42"},
		{"lower-case header", `{"a":1}`, map[string]string{"x-partition-key": "k"}, map[string]any{"a": 1.0}, "k"},
		{"key with quotes", `{"a":1}`, map[string]string{"X-Partition-Key": `a"b\c'd/é`}, map[string]any{"a": 1.0}, `a"b\c'd/é`},
		{"empty header", `{"a":1}`, map[string]string{"X-Partition-Key": ""}, map[string]any{"a": 1.0}, "req-1"},
	}
	var in []vtlCase
	for _, c := range cases {
		in = append(in, vtlCase{Template: tpl, Body: c.body, Headers: c.headers, RequestID: "req-1"})
	}
	for i, r := range renderVTL(t, in) {
		c := cases[i]
		var req putRecord
		dec := json.NewDecoder(strings.NewReader(r.Output))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Errorf("%s: rendered request is not the PutRecord JSON: %v\n%s", c.name, err, r.Output)
			continue
		}
		if req.StreamName != testStreamName {
			t.Errorf("%s: StreamName = %q", c.name, req.StreamName)
		}
		if req.PartitionKey != c.key {
			t.Errorf("%s: PartitionKey = %q, want %q", c.name, req.PartitionKey, c.key)
		}
		if got := decodeRecord(t, c.name, req.Data); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: event changed on the way:\n got %#v\nwant %#v", c.name, got, c.want)
		}
	}
}

// kinesisAnswer is what Kinesis answers API Gateway.
type kinesisAnswer struct{ status, body string }

// clientAnswer is what the client then gets.
type clientAnswer struct {
	status int
	body   map[string]any
	raw    string
}

// respond runs Kinesis answers through a method's integration responses the
// way API Gateway does: the first selection pattern that matches the whole
// status code, else the default response; then its template, which may
// override the status.
func respond(t *testing.T, method map[string]any, answers []kinesisAnswer) []clientAnswer {
	t.Helper()
	responses, _ := get(method, "Integration", "IntegrationResponses").([]any)
	var in []vtlCase
	var codes []int
	for _, a := range answers {
		var chosen map[string]any
		for _, r := range responses {
			r := r.(map[string]any)
			p, ok := r["SelectionPattern"].(string)
			if !ok {
				if chosen == nil {
					chosen = r
				}
				continue
			}
			if regexp.MustCompile(`^(?:` + p + `)$`).MatchString(a.status) {
				chosen = r
				break
			}
		}
		in = append(in, vtlCase{Template: get(chosen, "ResponseTemplates", "application/json").(string), Body: a.body})
		var code int
		_ = json.Unmarshal([]byte(chosen["StatusCode"].(string)), &code)
		codes = append(codes, code)
	}
	var out []clientAnswer
	for i, r := range renderVTL(t, in) {
		c := clientAnswer{status: codes[i], raw: r.Output}
		if r.Status != nil {
			c.status = *r.Status
		}
		if err := json.Unmarshal([]byte(r.Output), &c.body); err != nil {
			t.Errorf("answer %d (%v): client body is not JSON: %v\n%s", i, answers[i], err, r.Output)
		}
		out = append(out, c)
	}
	return out
}

// Every Kinesis error reaches the client of either endpoint with an honest
// status and a message: never 200 for a write that did not happen.
func TestKinesisErrorsGiveHonestStatuses(t *testing.T) {
	s := synth(t, nil)
	outcomes := []struct {
		name    string
		answer  kinesisAnswer
		status  int
		message string
	}{
		{"throttled", kinesisAnswer{"400", `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard shardId-000000000000 in stream x under account 123."}`}, 429, "retry with backoff"},
		{"KMS throttled", kinesisAnswer{"400", `{"__type":"KMSThrottlingException","message":"Rate exceeded"}`}, 429, "retry with backoff"},
		{"too large", kinesisAnswer{"400", `{"__type":"ValidationException","message":"1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"}`}, 400, "Value at 'data' failed to satisfy constraint"},
		{"bad partition key", kinesisAnswer{"400", `{"__type":"InvalidArgumentException","message":"Partition key \"x\" is invalid"}`}, 400, `Partition key "x" is invalid`},
		{"stream missing", kinesisAnswer{"400", `{"__type":"ResourceNotFoundException","message":"Stream x under account 123 not found."}`}, 500, "Nothing was stored"},
		{"access denied", kinesisAnswer{"400", `{"__type":"AccessDeniedException","message":"User is not authorized"}`}, 500, "Nothing was stored"},
		{"no error type", kinesisAnswer{"400", `not json`}, 500, "Nothing was stored"},
		{"internal failure", kinesisAnswer{"500", `{"__type":"InternalFailure"}`}, 500, "Nothing was stored"},
		{"unavailable", kinesisAnswer{"503", `{"__type":"ServiceUnavailable"}`}, 500, "Nothing was stored"},
	}
	var answers []kinesisAnswer
	for _, o := range outcomes {
		answers = append(answers, o.answer)
	}
	for name, method := range map[string]map[string]any{"/v1": s.postV1(t), "/v1/batch": s.postBatch(t)} {
		for i, got := range respond(t, method, answers) {
			o := outcomes[i]
			msg, _ := got.body["message"].(string)
			if got.status != o.status || !strings.Contains(msg, o.message) {
				t.Errorf("%s %s: client gets %d %q, want %d with %q", name, o.name, got.status, msg, o.status, o.message)
			}
		}
	}
}

func TestPutRecordSuccess(t *testing.T) {
	got := respond(t, synth(t, nil).postV1(t), []kinesisAnswer{{"200",
		`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000","EncryptionType":"KMS"}`}})[0]
	want := map[string]any{"sequenceNumber": "49590338271490256608559692538361571095921575989136588898", "shardId": "shardId-000000000000"}
	if got.status != 200 || !reflect.DeepEqual(got.body, want) {
		t.Errorf("client gets %d %v, want 200 %v", got.status, got.body, want)
	}
}

// A batch becomes one PutRecords request: one newline-terminated record per
// element, in order, each with its own partition key unless the client chose one.
func TestBatchRequestTemplate(t *testing.T) {
	s := synth(t, nil)
	tpl := requestTemplate(t, s, s.postBatch(t))
	events := []any{
		map[string]any{"value": "30", "type": "Tip 3"},
		map[string]any{"text": "Grüße \"quoted\" \\ $x #set($y = 1) 🎉", "nested": map[string]any{"n": 1.5}},
		map[string]any{},
	}
	compact, _ := json.Marshal(events)
	pretty, _ := json.MarshalIndent(events, "", "  ")
	var full []any
	for i := 0; i < 500; i++ {
		full = append(full, map[string]any{"i": float64(i)})
	}
	fullJSON, _ := json.Marshal(full)
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		want    []any
		keys    func(i int) string
	}{
		{"compact", string(compact), nil, events, func(i int) string { return fmt.Sprintf("req-1-%d", i) }},
		{"pretty-printed", string(pretty), nil, events, func(i int) string { return fmt.Sprintf("req-1-%d", i) }},
		{"client key", string(compact), map[string]string{"X-Partition-Key": `k"1'`}, events, func(int) string { return `k"1'` }},
		{"500 events", string(fullJSON), nil, full, func(i int) string { return fmt.Sprintf("req-1-%d", i) }},
	}
	var in []vtlCase
	for _, c := range cases {
		in = append(in, vtlCase{Template: tpl, Body: c.body, Headers: c.headers, RequestID: "req-1"})
	}
	for i, r := range renderVTL(t, in) {
		c := cases[i]
		var req struct {
			StreamName string
			Records    []struct{ PartitionKey, Data string }
		}
		dec := json.NewDecoder(strings.NewReader(r.Output))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Errorf("%s: rendered request is not the PutRecords JSON: %v\n%.2000s", c.name, err, r.Output)
			continue
		}
		if req.StreamName != testStreamName || len(req.Records) != len(c.want) {
			t.Errorf("%s: stream %q with %d records, want %q with %d", c.name, req.StreamName, len(req.Records), testStreamName, len(c.want))
			continue
		}
		for j, rec := range req.Records {
			if rec.PartitionKey != c.keys(j) {
				t.Errorf("%s: record %d PartitionKey = %q, want %q", c.name, j, rec.PartitionKey, c.keys(j))
			}
			if got := decodeRecord(t, fmt.Sprintf("%s record %d", c.name, j), rec.Data); !reflect.DeepEqual(got, c.want[j]) {
				t.Errorf("%s: record %d = %#v, want %#v", c.name, j, got, c.want[j])
			}
		}
	}
}

// The batch answer lists every record in request order, so a client resends
// only the failed ones; when none was stored the status is not 200.
func TestBatchResponses(t *testing.T) {
	ok := func(n int) string {
		return fmt.Sprintf(`{"SequenceNumber":"4959%d","ShardId":"shardId-00000000000%d"}`, n, n)
	}
	throttled := `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream x under account 123."}`
	internal := `{"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure with \"quotes\"."}`
	answer := func(failed int, records ...string) kinesisAnswer {
		return kinesisAnswer{"200", fmt.Sprintf(`{"FailedRecordCount":%d,"Records":[%s]}`, failed, strings.Join(records, ","))}
	}
	cases := []struct {
		name    string
		answer  kinesisAnswer
		status  int
		records []string // per record: sequence number or error code
		message bool
	}{
		{"all stored", answer(0, ok(0), ok(1)), 200, []string{"49590", "49591"}, false},
		{"partial", answer(2, ok(0), throttled, ok(2), internal), 200,
			[]string{"49590", "ProvisionedThroughputExceededException", "49592", "InternalFailure"}, false},
		{"all throttled", answer(2, throttled, internal), 429, []string{"ProvisionedThroughputExceededException", "InternalFailure"}, true},
		{"all failed", answer(1, internal), 500, []string{"InternalFailure"}, true},
	}
	var answers []kinesisAnswer
	for _, c := range cases {
		answers = append(answers, c.answer)
	}
	for i, got := range respond(t, synth(t, nil).postBatch(t), answers) {
		c := cases[i]
		if got.status != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got.status, c.status)
		}
		if _, has := got.body["message"]; has != c.message {
			t.Errorf("%s: message present %v, want %v: %s", c.name, has, c.message, got.raw)
		}
		recs, _ := got.body["records"].([]any)
		if len(recs) != len(c.records) {
			t.Errorf("%s: %d records, want %d: %s", c.name, len(recs), len(c.records), got.raw)
			continue
		}
		failed := 0
		for j, r := range recs {
			r := r.(map[string]any)
			if code, isErr := r["errorCode"]; isErr {
				failed++
				if code != c.records[j] || r["errorMessage"] == "" || r["sequenceNumber"] != nil {
					t.Errorf("%s: record %d = %v, want error %s", c.name, j, r, c.records[j])
				}
			} else if r["sequenceNumber"] != c.records[j] || r["shardId"] == nil {
				t.Errorf("%s: record %d = %v, want sequence number %s", c.name, j, r, c.records[j])
			}
		}
		if got.body["failedRecordCount"] != float64(failed) {
			t.Errorf("%s: failedRecordCount = %v, want %d", c.name, got.body["failedRecordCount"], failed)
		}
	}
}

// API Gateway's own errors are JSON with a message. Gateway-response
// templates are plain substitution, emulated here: $context.error.messageString
// is a quoted JSON string (as documented); validationErrorString is assumed to
// arrive JSON-escaped, which no offline check can confirm.
func TestGatewayResponsesAreJSONWithAMessage(t *testing.T) {
	want := map[string]string{
		"BAD_REQUEST_BODY": "400", "UNSUPPORTED_MEDIA_TYPE": "415", "REQUEST_TOO_LARGE": "413",
		"THROTTLED": "429", "DEFAULT_4XX": "", "DEFAULT_5XX": "",
	}
	got := map[string]string{}
	for id, r := range resourcesOf(synth(t, nil).pipeline(), "AWS::ApiGateway::GatewayResponse") {
		p := r["Properties"].(map[string]any)
		typ := p["ResponseType"].(string)
		status, _ := p["StatusCode"].(string)
		got[typ] = status
		body := get(p, "ResponseTemplates", "application/json").(string)
		body = strings.NewReplacer(
			"$context.error.messageString", `"Missing Authentication Token"`,
			"$context.error.validationErrorString", `[instance type (array) does not match any allowed primitive type (allowed: [\"object\"])]`,
		).Replace(body)
		var parsed map[string]any
		if err := json.Unmarshal([]byte(body), &parsed); err != nil {
			t.Errorf("%s (%s): body is not JSON: %v: %s", id, typ, err, body)
			continue
		}
		if msg, _ := parsed["message"].(string); msg == "" {
			t.Errorf("%s (%s): no message: %s", id, typ, body)
		}
		if typ == "BAD_REQUEST_BODY" && !strings.Contains(fmt.Sprint(parsed["validationErrors"]), "does not match") {
			t.Errorf("400 body does not carry the validation error: %s", body)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gateway responses = %v, want %v", got, want)
	}
}
