package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
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

func renderVTL(t *testing.T, cases []vtlCase) []vtlResult {
	t.Helper()
	if _, err := os.Stat("../.tools/node_modules/velocityjs"); err != nil {
		t.Fatal("velocityjs is not installed: run `make deps` (or `make test`, which does it)")
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

// requestTemplate is the deployed request template with the stream's Ref
// replaced by a plausible stream name.
func requestTemplate(t *testing.T, s *synthesized) string {
	streamID, _ := s.only(t, "AWS::Kinesis::Stream")
	tpl := joined(get(s.postV1(t), "Integration", "RequestTemplates", "application/json"))
	return strings.ReplaceAll(tpl, "${"+streamID+"}", testStreamName)
}

type putRecord struct {
	StreamName   string
	PartitionKey string
	Data         string
}

func TestRequestTemplateRendersOneLinePerEvent(t *testing.T) {
	s := synth(t, nil)
	tpl := requestTemplate(t, s)
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
		data, err := base64.StdEncoding.DecodeString(req.Data)
		if err != nil {
			t.Errorf("%s: Data is not base64: %v", c.name, err)
			continue
		}
		line := string(data)
		if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 || strings.Contains(line, "\r") {
			t.Errorf("%s: record is not one line ending in \\n: %q", c.name, line)
		}
		var got any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Errorf("%s: record is not JSON: %v: %q", c.name, err, line)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: event changed on the way:\n got %#v\nwant %#v", c.name, got, c.want)
		}
		if c.name == "tricky values" && !strings.Contains(line, "🎉") && !strings.Contains(line, `\ud83c\udf89`) {
			t.Errorf("emoji lost: %q", line)
		}
	}
}

// kinesisOutcome is what Kinesis answers, and what the client must then see.
type kinesisOutcome struct {
	name       string
	status     string // Kinesis HTTP status
	body       string
	wantStatus int
	wantMsg    string // substring of the client's message, or of the whole body
}

// Every Kinesis outcome reaches the client with an honest status: the
// integration response is chosen the way API Gateway does (selection pattern
// matched against the whole status code, else the default), then rendered.
func TestResponseTemplatesGiveHonestStatuses(t *testing.T) {
	s := synth(t, nil)
	responses, _ := get(s.postV1(t), "Integration", "IntegrationResponses").([]any)
	choose := func(status string) map[string]any {
		var def map[string]any
		for _, r := range responses {
			r := r.(map[string]any)
			p, ok := r["SelectionPattern"].(string)
			if !ok {
				def = r
				continue
			}
			if regexp.MustCompile(`^(?:` + p + `)$`).MatchString(status) {
				return r
			}
		}
		return def
	}
	outcomes := []kinesisOutcome{
		{"stored", "200", `{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"}`, 200, `"sequenceNumber":"49590338271490256608559692538361571095921575989136588898"`},
		{"throttled", "400", `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard shardId-000000000000 in stream x under account 123."}`, 429, "retry with backoff"},
		{"KMS throttled", "400", `{"__type":"KMSThrottlingException","message":"Rate exceeded"}`, 429, "retry with backoff"},
		{"too large", "400", `{"__type":"ValidationException","message":"1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"}`, 400, "Value at 'data' failed to satisfy constraint"},
		{"bad partition key", "400", `{"__type":"InvalidArgumentException","message":"Partition key \"x\" is invalid"}`, 400, `Partition key \"x\" is invalid`},
		{"stream missing", "400", `{"__type":"ResourceNotFoundException","message":"Stream x under account 123 not found."}`, 500, "was not stored"},
		{"access denied", "400", `{"__type":"AccessDeniedException","message":"User is not authorized"}`, 500, "was not stored"},
		{"no error type", "400", `not json`, 500, "was not stored"},
		{"internal failure", "500", `{"__type":"InternalFailure"}`, 500, "was not stored"},
		{"unavailable", "503", `{"__type":"ServiceUnavailable"}`, 500, "was not stored"},
	}
	var in []vtlCase
	var declared []int
	for _, o := range outcomes {
		r := choose(o.status)
		in = append(in, vtlCase{Template: get(r, "ResponseTemplates", "application/json").(string), Body: o.body})
		var code int
		_ = json.Unmarshal([]byte(r["StatusCode"].(string)), &code)
		declared = append(declared, code)
	}
	for i, r := range renderVTL(t, in) {
		o := outcomes[i]
		status := declared[i]
		if r.Status != nil {
			status = *r.Status
		}
		if status != o.wantStatus {
			t.Errorf("%s: client gets %d, want %d", o.name, status, o.wantStatus)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(r.Output), &body); err != nil {
			t.Errorf("%s: client body is not JSON: %v\n%s", o.name, err, r.Output)
			continue
		}
		compact, _ := json.Marshal(body)
		msg, _ := body["message"].(string)
		if !strings.Contains(string(compact), o.wantMsg) && !strings.Contains(msg, o.wantMsg) {
			t.Errorf("%s: body %s lacks %q", o.name, compact, o.wantMsg)
		}
		if o.wantStatus != 200 && body["message"] == nil {
			t.Errorf("%s: error body has no message: %s", o.name, compact)
		}
	}
}
