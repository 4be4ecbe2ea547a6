package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/local"
	"github.com/tributary/tributary/internal/nodetools"
)

// These tests render the synthesized mapping templates with a Velocity engine
// (velocityjs, pinned in .tools) against emulated API Gateway objects
// (test/vtl/render.js), and run what they render through a fake Kinesis that
// applies Kinesis's documented record limit. They prove what the templates do
// given API Gateway's and Kinesis's documented behaviour; they cannot prove
// that either behaves as documented.

type vtlCase struct {
	Template        string            `json:"template"`
	Body            string            `json:"body"`
	Headers         map[string]string `json:"headers,omitempty"`
	RequestID       string            `json:"requestId,omitempty"`
	RequestOverride *requestOverride  `json:"requestOverride,omitempty"`
}

// requestOverride is $context.requestOverride, as a request template leaves it.
type requestOverride struct {
	Header      map[string]string `json:"header"`
	Path        map[string]string `json:"path"`
	Querystring map[string]string `json:"querystring"`
}

type vtlResult struct {
	Output          string           `json:"output"`
	Status          *int             `json:"status"`
	RequestOverride *requestOverride `json:"requestOverride"`
}

// installTools installs the pinned Node tools (.tools/package-lock.json)
// when one is missing, so `go test ./...` works in a fresh clone.
var installTools = sync.OnceValue(nodetools.Install)

func renderVTL(t testing.TB, cases []vtlCase) []vtlResult {
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

// endpoint is one deployed method: its Kinesis action and its templates.
type endpoint struct {
	name, action, request string
	responses             []any // IntegrationResponses
	maxItems              int   // the request model's, for a batch
}

// endpoint reads the POST method on the resource with path part pathPart.
func (a *app) endpoint(t testing.TB, pathPart string) endpoint {
	t.Helper()
	resID := ""
	for id, r := range resourcesOf(a.pipeline(), "AWS::ApiGateway::Resource") {
		if get(r, "Properties", "PathPart") == pathPart {
			resID = id
		}
	}
	streamID, _ := only(t, a.pipeline(), "AWS::Kinesis::Stream")
	for _, m := range resourcesOf(a.pipeline(), "AWS::ApiGateway::Method") {
		if get(m, "Properties", "ResourceId", "Ref") != resID || get(m, "Properties", "HttpMethod") != "POST" {
			continue
		}
		integ := get(m, "Properties", "Integration")
		uri := joined(get(integ, "Uri"))
		request := joined(get(integ, "RequestTemplates", "application/json"))
		model := a.pipeline()["Resources"].(map[string]any)[fmt.Sprint(get(m, "Properties", "RequestModels", "application/json", "Ref"))]
		maxItems, _ := get(model, "Properties", "Schema", "maxItems").(float64)
		return endpoint{
			name:      pathPart,
			action:    uri[strings.LastIndex(uri, "/")+1:],
			request:   strings.ReplaceAll(request, "${"+streamID+"}", testStreamName),
			responses: get(integ, "IntegrationResponses").([]any),
			maxItems:  int(maxItems),
		}
	}
	t.Fatalf("no POST method on %s", pathPart)
	return endpoint{}
}

// The three ways a request is stored: /v1, and /v1/batch in each packing.
func endpoints(t testing.TB) (v1, packed, perEvent endpoint) {
	t.Helper()
	def, per := synth(t, nil), synth(t, apiKeySettings)
	if per.settings.Pipeline.API.RecordPacking != ingest.PerEvent {
		t.Fatal("apiKeySettings must use recordPacking PER_EVENT")
	}
	return def.endpoint(t, "v1"), def.endpoint(t, "batch"), per.endpoint(t, "batch")
}

// kinesisRecord is one record of a rendered PutRecord or PutRecords request.
type kinesisRecord struct {
	PartitionKey string
	Data         []byte
}

// kinesisRequest decodes a rendered request strictly: the JSON Kinesis takes
// for the action, and nothing else.
func kinesisRequest(t testing.TB, action, rendered string) ([]kinesisRecord, error) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(rendered))
	dec.DisallowUnknownFields()
	var req struct {
		StreamName   string
		PartitionKey string
		Data         string
		Records      []struct{ PartitionKey, Data string }
	}
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("not Kinesis JSON: %v", err)
	}
	if req.StreamName != testStreamName {
		return nil, fmt.Errorf("StreamName %q", req.StreamName)
	}
	if action == "PutRecord" {
		if req.Records != nil {
			return nil, fmt.Errorf("PutRecord with Records")
		}
		req.Records = append(req.Records, struct{ PartitionKey, Data string }{req.PartitionKey, req.Data})
	} else if req.Data != "" || req.PartitionKey != "" {
		return nil, fmt.Errorf("PutRecords with a top-level record")
	}
	var out []kinesisRecord
	for i, r := range req.Records {
		data, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			return nil, fmt.Errorf("record %d: Data is not base64: %v", i, err)
		}
		out = append(out, kinesisRecord{r.PartitionKey, data})
	}
	return out, nil
}

// kinesisAnswer is what Kinesis answers API Gateway.
type kinesisAnswer struct{ status, body string }

// tooLargeAnswer is Kinesis's standard refusal of data over the record limit.
var tooLargeAnswer = kinesisAnswer{"400", `{"__type":"ValidationException","message":"1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"}`}

// fakeKinesis answers a request as Kinesis does when it can: a record over
// the limit (data and partition key) refuses the call, else every record is
// stored with a sequence number.
func fakeKinesis(action string, records []kinesisRecord) kinesisAnswer {
	for _, r := range records {
		if len(r.Data)+len(r.PartitionKey) > ingest.MaxRecordBytes {
			return tooLargeAnswer
		}
	}
	if action == "PutRecord" {
		return kinesisAnswer{"200", `{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000","EncryptionType":"KMS"}`}
	}
	var rs []string
	for i := range records {
		rs = append(rs, fmt.Sprintf(`{"SequenceNumber":"4959%d","ShardId":"shardId-000000000001"}`, i))
	}
	return kinesisAnswer{"200", `{"FailedRecordCount":0,"Records":[` + strings.Join(rs, ",") + `]}`}
}

// clientAnswer is what the client gets.
type clientAnswer struct {
	status int
	body   map[string]any
	raw    string
}

// respond runs Kinesis answers through an endpoint's integration responses
// the way API Gateway does: the first selection pattern that matches the
// whole status code, else the default response; then its template, which may
// override the status. overrides are what the request templates left in
// $context.requestOverride (nil: the response template does not see them).
func respond(t testing.TB, e endpoint, answers []kinesisAnswer, overrides []*requestOverride) []clientAnswer {
	t.Helper()
	var in []vtlCase
	var codes []int
	for i, a := range answers {
		var chosen map[string]any
		for _, r := range e.responses {
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
		c := vtlCase{Template: get(chosen, "ResponseTemplates", "application/json").(string), Body: a.body}
		if i < len(overrides) {
			c.RequestOverride = overrides[i]
		}
		in = append(in, c)
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
			t.Errorf("%s answer %d (%v): client body is not JSON: %v\n%s", e.name, i, answers[i], err, r.Output)
		}
		out = append(out, c)
	}
	return out
}

// request is one client request to an endpoint.
type request struct {
	body    string
	headers map[string]string
}

// stored is what a request became: the Kinesis records, what the fake Kinesis
// answered, the client's answer, and what the request template overrode.
type stored struct {
	records  []kinesisRecord
	answer   clientAnswer
	override *requestOverride
}

// post runs requests through an endpoint end to end: request template, fake
// Kinesis, response template (seeing the request overrides).
func post(t testing.TB, e endpoint, reqs []request) []stored {
	t.Helper()
	var in []vtlCase
	for _, r := range reqs {
		in = append(in, vtlCase{Template: e.request, Body: r.body, Headers: r.headers, RequestID: "req-1"})
	}
	var out []stored
	var answers []kinesisAnswer
	var overrides []*requestOverride
	for i, r := range renderVTL(t, in) {
		records, err := kinesisRequest(t, e.action, r.Output)
		if err != nil {
			t.Fatalf("%s request %d: %v\n%.2000s", e.name, i, err, r.Output)
		}
		out = append(out, stored{records: records, override: r.RequestOverride})
		answers = append(answers, fakeKinesis(e.action, records))
		overrides = append(overrides, r.RequestOverride)
	}
	for i, a := range respond(t, e, answers, overrides) {
		out[i].answer = a
	}
	return out
}

// lines splits a record into its lines, each of which must be one JSON
// value, and checks the record ends with a newline.
func lines(t *testing.T, what string, data []byte) []any {
	t.Helper()
	s := string(data)
	if !strings.HasSuffix(s, "\n") || strings.Contains(s, "\r") {
		t.Errorf("%s: record is not newline-terminated lines: %q", what, s)
	}
	var out []any
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("%s: line %d is not JSON: %q", what, i, l)
		}
		var v any
		_ = json.Unmarshal([]byte(l), &v) // nil for numbers beyond float64: compared as bytes instead
		out = append(out, v)
	}
	return out
}

// tricky is an event whose values a template could mangle.
var tricky = map[string]any{
	"unicode":   "Grüße, 日本語, emoji 🎉, combining é",
	"quotes":    `she said "hi" and 'bye'`,
	"backslash": `C:\temp\new \\ \u0041`,
	"dollar":    "$100 and ${x} and $input.body and $context.requestId",
	"hash":      "#set($x = 1) #if(true) ## not a comment #end",
	"control":   "line1\nline2\ttab\r\u0001",
	"slash":     "</script> a/b",
	"nested":    map[string]any{"list": []any{1.5, true, nil, "x"}, "empty": map[string]any{}},
}

// /v1 stores the event's bytes as the client sent them, minus CR and LF, so
// big integers, decimals, key order and escapes reach S3 unchanged, on one
// line ending in a newline; the partition key is the request id unless the
// client sends X-Partition-Key.
func TestEventIsStoredAsSent(t *testing.T) {
	v1, _, _ := endpoints(t)
	trickyJSON, _ := json.Marshal(tricky)
	cases := []struct {
		name, body string
		headers    map[string]string
		want, key  string
	}{
		{"compact", `{"value":"30","type":"Tip 3"}`, nil, `{"value":"30","type":"Tip 3"}`, "req-1"},
		{"pretty-printed, CRLF", "{\r\n    \"value\": \"30\",\r\n    \"type\": \"Tip 3\"\n}", nil, `{    "value": "30",    "type": "Tip 3"}`, "req-1"},
		{"big numbers, order, escapes", `{"z":12345678901234567890123,"a":0.1000000000000000055511151231257827,"e":1e400,"s":"\u00e9\n\/"}`, nil,
			`{"z":12345678901234567890123,"a":0.1000000000000000055511151231257827,"e":1e400,"s":"\u00e9\n\/"}`, "req-1"},
		{"tricky values", string(trickyJSON), nil, string(trickyJSON), "req-1"},
		{"client partition key", `{"a":1}`, map[string]string{"X-Partition-Key": "customer-42"}, `{"a":1}`, "customer-42"},
		{"lower-case header", `{"a":1}`, map[string]string{"x-partition-key": "k"}, `{"a":1}`, "k"},
		{"key with quotes", `{"a":1}`, map[string]string{"X-Partition-Key": `a"b\c'd/é`}, `{"a":1}`, `a"b\c'd/é`},
		{"empty header", `{"a":1}`, map[string]string{"X-Partition-Key": ""}, `{"a":1}`, "req-1"},
	}
	var reqs []request
	for _, c := range cases {
		reqs = append(reqs, request{c.body, c.headers})
	}
	for i, s := range post(t, v1, reqs) {
		c := cases[i]
		if len(s.records) != 1 || string(s.records[0].Data) != c.want+"\n" || s.records[0].PartitionKey != c.key {
			t.Errorf("%s: stored %q with key %q, want %q with key %q", c.name, s.records, s.records[0].PartitionKey, c.want+"\n", c.key)
		}
		lines(t, c.name, s.records[0].Data)
		if s.answer.status != 200 || s.answer.body["sequenceNumber"] != "49590338271490256608559692538361571095921575989136588898" || s.answer.body["shardId"] != "shardId-000000000000" {
			t.Errorf("%s: client gets %d %s", c.name, s.answer.status, s.answer.raw)
		}
	}
}

// With recordPacking PACKED, a batch is ONE record: one line per event,
// re-serialised on one line, in order, each ending in a newline; the answer
// is all or nothing, with the sequence number, the shard and the number of
// events.
func TestPackedBatchIsOneRecord(t *testing.T) {
	_, packed, _ := endpoints(t)
	events := []any{
		map[string]any{"value": "30", "type": "Tip 3"},
		tricky,
		map[string]any{"text": "Grüße \"quoted\" \\ $x #set($y = 1) 🎉", "nested": map[string]any{"n": 1.5}},
		map[string]any{},
	}
	compact, _ := json.Marshal(events)
	pretty, _ := json.MarshalIndent(events, "", "  ")
	var full []any
	for i := 0; i < ingest.MaxPackedBatch; i++ {
		full = append(full, map[string]any{"i": float64(i), "pad": strings.Repeat("x", 180)})
	}
	fullJSON, _ := json.Marshal(full)
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		want    []any
		key     string
	}{
		{"compact", string(compact), nil, events, "req-1"},
		{"pretty-printed", string(pretty), nil, events, "req-1"},
		{"client key", string(compact), map[string]string{"X-Partition-Key": `k"1'`}, events, `k"1'`},
		{"1,000 events", string(fullJSON), nil, full, "req-1"},
	}
	var reqs []request
	for _, c := range cases {
		reqs = append(reqs, request{c.body, c.headers})
	}
	for i, s := range post(t, packed, reqs) {
		c := cases[i]
		if len(s.records) != 1 {
			t.Errorf("%s: %d records, want 1", c.name, len(s.records))
			continue
		}
		if s.records[0].PartitionKey != c.key {
			t.Errorf("%s: PartitionKey %q, want %q", c.name, s.records[0].PartitionKey, c.key)
		}
		if got := lines(t, c.name, s.records[0].Data); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: events changed on the way:\n got %#v\nwant %#v", c.name, got, c.want)
		}
		want := map[string]any{"sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
			"shardId": "shardId-000000000000", "events": float64(len(c.want))}
		if s.answer.status != 200 || !reflect.DeepEqual(s.answer.body, want) {
			t.Errorf("%s: client gets %d %s, want 200 %v", c.name, s.answer.status, s.answer.raw, want)
		}
	}
}

// The packed template's loop stops after 1,000 events, as API Gateway's does
// (the renderer emulates its limit): a longer batch would lose the events past
// the 1,000th while the answer counts them all, which is why the request model
// refuses more (TestBatchLimitFollowsWhatCountsRecords).
func TestPackedTemplateStopsAtTheLoopLimit(t *testing.T) {
	_, packed, _ := endpoints(t)
	var events []string
	for i := range ingest.MaxPackedBatch + 1 {
		events = append(events, fmt.Sprintf(`{"i":%d}`, i))
	}
	s := post(t, packed, []request{{"[" + strings.Join(events, ",") + "]", nil}})[0]
	if got := len(lines(t, "1,001 events", s.records[0].Data)); got != ingest.MaxPackedBatch {
		t.Errorf("the record holds %d of 1,001 events, want the loop's limit, %d", got, ingest.MaxPackedBatch)
	}
	if got := s.answer.body["events"]; got != float64(ingest.MaxPackedBatch+1) {
		t.Errorf("the answer counts %v events, want all 1,001 (what makes the loss silent)", got)
	}
}

// With recordPacking PER_EVENT, a batch becomes one PutRecords request: one
// newline-terminated record per element, in order, each with its own
// partition key unless the client chose one.
func TestPerEventBatchIsARecordPerEvent(t *testing.T) {
	_, _, perEvent := endpoints(t)
	events := []any{map[string]any{"value": "30", "type": "Tip 3"}, tricky, map[string]any{}}
	compact, _ := json.Marshal(events)
	pretty, _ := json.MarshalIndent(events, "", "  ")
	var full []any
	for i := 0; i < ingest.MaxBatch; i++ {
		full = append(full, map[string]any{"i": float64(i)})
	}
	fullJSON, _ := json.Marshal(full)
	perIndex := func(i int) string { return fmt.Sprintf("req-1-%d", i) }
	cases := []struct {
		name    string
		body    string
		headers map[string]string
		want    []any
		keys    func(i int) string
	}{
		{"compact", string(compact), nil, events, perIndex},
		{"pretty-printed", string(pretty), nil, events, perIndex},
		{"client key", string(compact), map[string]string{"X-Partition-Key": `k"1'`}, events, func(int) string { return `k"1'` }},
		{"500 events", string(fullJSON), nil, full, perIndex},
	}
	var reqs []request
	for _, c := range cases {
		reqs = append(reqs, request{c.body, c.headers})
	}
	for i, s := range post(t, perEvent, reqs) {
		c := cases[i]
		if len(s.records) != len(c.want) {
			t.Errorf("%s: %d records, want %d", c.name, len(s.records), len(c.want))
			continue
		}
		for j, rec := range s.records {
			if rec.PartitionKey != c.keys(j) {
				t.Errorf("%s: record %d PartitionKey %q, want %q", c.name, j, rec.PartitionKey, c.keys(j))
			}
			if got := lines(t, fmt.Sprintf("%s record %d", c.name, j), rec.Data); len(got) != 1 || !reflect.DeepEqual(got[0], c.want[j]) {
				t.Errorf("%s: record %d = %#v, want %#v", c.name, j, got, c.want[j])
			}
		}
		if s.answer.status != 200 || s.answer.body["failedRecordCount"] != 0.0 || len(s.answer.body["records"].([]any)) != len(c.want) {
			t.Errorf("%s: client gets %d %.300s", c.name, s.answer.status, s.answer.raw)
		}
	}
}

// The record limit holds to the byte: a packed batch (or an event) whose
// record is exactly Kinesis's 1 MiB, data and partition key, is stored; one
// byte more answers 413 with what to do, never 200 and never 5xx.
func TestRecordLimit(t *testing.T) {
	v1, packed, perEvent := endpoints(t)
	const key = "req-1"
	// An event {"p":"xxx..."} of n bytes.
	event := func(n int) string { return `{"p":"` + strings.Repeat("x", n-8) + `"}` }
	batchOf := func(recordBytes int) string { // two events whose packed record (lines + newlines) has recordBytes
		first := event(100)
		second := event(recordBytes - len(key) - (len(first) + 1) - 1)
		return "[" + first + "," + second + "]"
	}
	for _, c := range []struct {
		e      endpoint
		body   string
		status int
		advice string
	}{
		{v1, event(ingest.MaxRecordBytes - len(key) - 1), 200, ""},
		{v1, event(ingest.MaxRecordBytes - len(key)), 413, "do not resend it"},
		{packed, batchOf(ingest.MaxRecordBytes), 200, ""},
		{packed, batchOf(ingest.MaxRecordBytes + 1), 413, "split it and send the halves"},
		{perEvent, "[" + event(ingest.MaxRecordBytes-len("req-1-1")-1) + "]", 200, ""},
		{perEvent, "[" + event(100) + "," + event(ingest.MaxRecordBytes-len("req-1-1")) + "]", 413, "split the batch"},
	} {
		s := post(t, c.e, []request{{c.body, nil}})[0]
		size := 0
		for _, r := range s.records {
			size = max(size, len(r.Data)+len(r.PartitionKey))
		}
		msg, _ := s.answer.body["message"].(string)
		if s.answer.status != c.status || !strings.Contains(msg, c.advice) {
			t.Errorf("%s, largest record %d bytes: client gets %d %q, want %d with %q", c.e.name, size, s.answer.status, msg, c.status, c.advice)
		}
	}
}

// Every Kinesis error reaches the client of every endpoint with an honest
// status and a message: never 200 for a write that did not happen.
func TestKinesisErrorsGiveHonestStatuses(t *testing.T) {
	outcomes := []struct {
		name    string
		answer  kinesisAnswer
		status  int
		message string
	}{
		{"throttled", kinesisAnswer{"400", `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard shardId-000000000000 in stream x under account 123."}`}, 429, "retry with backoff"},
		{"KMS throttled", kinesisAnswer{"400", `{"__type":"KMSThrottlingException","message":"Rate exceeded"}`}, 429, "retry with backoff"},
		{"too large", tooLargeAnswer, 413, "Value at 'data' failed to satisfy constraint"},
		{"bad partition key", kinesisAnswer{"400", `{"__type":"ValidationException","message":"1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"}`}, 400, "Value at 'partitionKey'"},
		{"invalid argument", kinesisAnswer{"400", `{"__type":"InvalidArgumentException","message":"Partition key \"x\" is invalid"}`}, 400, `Partition key "x" is invalid`},
		{"stream missing", kinesisAnswer{"400", `{"__type":"ResourceNotFoundException","message":"Stream x under account 123 not found."}`}, 500, "Nothing was stored"},
		{"access denied", kinesisAnswer{"400", `{"__type":"AccessDeniedException","message":"User is not authorized"}`}, 500, "Nothing was stored"},
		{"no error type", kinesisAnswer{"400", `not json`}, 500, "Nothing was stored"},
		{"internal failure", kinesisAnswer{"500", `{"__type":"InternalFailure"}`}, 500, "Nothing was stored"},
		{"unavailable", kinesisAnswer{"503", `{"__type":"ServiceUnavailable"}`}, 500, "Nothing was stored"},
		{"2xx, empty body", kinesisAnswer{"200", ``}, 500, "unknown"},
		{"2xx, not JSON", kinesisAnswer{"200", `<html>`}, 500, "unknown"},
		{"2xx, no sequence number", kinesisAnswer{"200", `{"ShardId":"shardId-000000000000"}`}, 500, "unknown"},
	}
	var answers []kinesisAnswer
	for _, o := range outcomes {
		answers = append(answers, o.answer)
	}
	v1, packed, perEvent := endpoints(t)
	for _, e := range []endpoint{v1, packed, perEvent} {
		for i, got := range respond(t, e, answers, nil) {
			o := outcomes[i]
			msg, _ := got.body["message"].(string)
			if e.action == "PutRecords" && o.answer.status == "200" {
				continue // PutRecords' answers: TestPerEventResponses
			}
			if got.status != o.status || !strings.Contains(msg, o.message) {
				t.Errorf("%s %s: client gets %d %q, want %d with %q", e.name, o.name, got.status, msg, o.status, o.message)
			}
		}
	}
}

// A packed answer reports the number of events when the response template
// can see the request override, and null (still valid JSON) when it cannot;
// values copied from Kinesis are escaped.
func TestPackedAnswerWithoutTheCount(t *testing.T) {
	_, packed, _ := endpoints(t)
	answers := []kinesisAnswer{{"200", `{"SequenceNumber":"4959\"1","ShardId":"shard\\Id"}`}}
	got := respond(t, packed, answers, nil)[0]
	want := map[string]any{"sequenceNumber": `4959"1`, "shardId": `shard\Id`, "events": nil}
	if got.status != 200 || !reflect.DeepEqual(got.body, want) {
		t.Errorf("client gets %d %s, want 200 %v", got.status, got.raw, want)
	}
}

// The per-event answer lists every record in request order, so a client
// resends only the failed ones; when none was stored the status is not 200,
// and answers Kinesis should not give (no FailedRecordCount, no
// ErrorMessage, no sequence number, no records) still give JSON and never
// claim a write that did not happen.
func TestPerEventResponses(t *testing.T) {
	ok := func(n int) string {
		return fmt.Sprintf(`{"SequenceNumber":"4959%d","ShardId":"shardId-00000000000%d"}`, n, n)
	}
	throttled := `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream x under account 123."}`
	internal := `{"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure with \"quotes\"."}`
	answer := func(failed string, records ...string) kinesisAnswer {
		return kinesisAnswer{"200", fmt.Sprintf(`{%s"Records":[%s]}`, failed, strings.Join(records, ","))}
	}
	cases := []struct {
		name    string
		answer  kinesisAnswer
		status  int
		records []string // per record: sequence number or error code
		message bool
	}{
		{"all stored", answer(`"FailedRecordCount":0,`, ok(0), ok(1)), 200, []string{"49590", "49591"}, false},
		{"partial", answer(`"FailedRecordCount":2,`, ok(0), throttled, ok(2), internal), 200,
			[]string{"49590", "ProvisionedThroughputExceededException", "49592", "InternalFailure"}, false},
		{"all throttled", answer(`"FailedRecordCount":2,`, throttled, internal), 429, []string{"ProvisionedThroughputExceededException", "InternalFailure"}, true},
		{"all failed", answer(`"FailedRecordCount":1,`, internal), 500, []string{"InternalFailure"}, true},
		{"no FailedRecordCount", answer(``, ok(0), internal), 200, []string{"49590", "InternalFailure"}, false},
		{"no ErrorMessage", answer(``, ok(0), `{"ErrorCode":"InternalFailure"}`), 200, []string{"49590", "InternalFailure"}, false},
		{"no sequence number", answer(``, ok(0), `{"ShardId":"shardId-000000000001"}`), 200, []string{"49590", "NoSequenceNumber"}, false},
		{"no records", kinesisAnswer{"200", `{"FailedRecordCount":0}`}, 500, nil, true},
		{"empty body", kinesisAnswer{"200", ``}, 500, nil, true},
	}
	var answers []kinesisAnswer
	for _, c := range cases {
		answers = append(answers, c.answer)
	}
	_, _, perEvent := endpoints(t)
	for i, got := range respond(t, perEvent, answers, nil) {
		c := cases[i]
		if got.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, got.status, c.status, got.raw)
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
				if _, hasMsg := r["errorMessage"].(string); code != c.records[j] || !hasMsg || r["sequenceNumber"] != nil {
					t.Errorf("%s: record %d = %v, want error %s with a message", c.name, j, r, c.records[j])
				}
			} else if r["sequenceNumber"] != c.records[j] || r["shardId"] == nil {
				t.Errorf("%s: record %d = %v, want sequence number %s", c.name, j, r, c.records[j])
			}
		}
		if len(c.records) > 0 && got.body["failedRecordCount"] != float64(failed) {
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

// The local fake API (internal/fakeapi), which the producer's and the smoke
// test's tests run against, and the local pipeline (`make local`), run from
// the synthesized assembly, store what the rendered templates store, byte
// for byte, for /v1 and /v1/batch in both packings.
func TestFakeAPIStoresWhatTheTemplatesStore(t *testing.T) {
	v1, packed, perEvent := endpoints(t)
	trickyJSON, _ := json.Marshal(tricky)
	pretty, _ := json.MarshalIndent([]any{tricky, map[string]any{"a": []any{1.0, "x"}}}, "", "  ")
	singles := []string{`{"value":"30","type":"Tip 3"}`, "{\r\n  \"n\": 12345678901234567890123,\n  \"d\": 0.10\n}", string(trickyJSON)}
	batches := []string{`[{"value":"30"},{"value":"31"}]`, string(pretty), "[" + string(trickyJSON) + "]"}
	for _, c := range []struct {
		e       endpoint
		packing ingest.Packing
		bodies  []string
	}{{v1, ingest.Packed, singles}, {packed, ingest.Packed, batches}, {perEvent, ingest.PerEvent, batches}} {
		api := fakeapi.Start(fakeapi.Faults{Packing: c.packing})
		// The local pipeline's API, run from the synthesized assembly of
		// the same configuration, in front of its on-disk stream.
		// No event schema: the tricky events would be refused by its model.
		settings := map[string]any(nil)
		if c.packing == ingest.PerEvent {
			settings = map[string]any{"recordPacking": "PER_EVENT"}
		}
		lp, err := local.Start(local.Options{Assembly: synth(t, settings).outdir, Dir: t.TempDir(), APIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Out: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		var reqs []request
		for _, b := range c.bodies {
			reqs = append(reqs, request{b, nil})
			path := ""
			if c.e.name == "batch" {
				path = "/batch"
			}
			resp, err := http.Post(api.URL+path, "application/json", strings.NewReader(b))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("fake API: %v %v", resp, err)
			}
			resp.Body.Close()
			req, _ := http.NewRequest("POST", lp.APIURL+path, strings.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local") // IAM: required, not checked locally
			req.Header.Set(ingest.APIKeyHeader, lp.APIKey)
			resp, err = http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				raw, _ := io.ReadAll(resp.Body)
				t.Fatalf("local API: %v %v: %s (body %.300s)", resp.StatusCode, err, raw, b)
			}
			resp.Body.Close()
		}
		var rendered [][]byte
		for _, s := range post(t, c.e, reqs) {
			for _, r := range s.records {
				rendered = append(rendered, r.Data)
			}
		}
		if got := api.Records(); !reflect.DeepEqual(got, rendered) {
			t.Errorf("%s %s: the fake stores\n%q\nthe templates\n%q", c.e.name, c.packing, got, rendered)
		}
		if got, err := lp.Records(); err != nil || !reflect.DeepEqual(got, rendered) {
			t.Errorf("%s %s: the local pipeline stores\n%q (%v)\nthe templates\n%q", c.e.name, c.packing, got, err, rendered)
		}
		api.Close()
		lp.Close()
	}
}
