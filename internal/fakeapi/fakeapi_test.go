package fakeapi

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/ingest"
)

// post sends body to the fake's /v1 (path "") or /v1/batch (path "/batch").
func post(t *testing.T, a *API, path, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &answer); err != nil && resp.StatusCode != http.StatusNoContent {
		t.Errorf("answer is not JSON: %q", raw)
	}
	return resp.StatusCode, answer
}

// /v1 stores the body as sent without CR and LF; a packed batch is one record
// of re-serialised lines; PER_EVENT stores a record per event. Each answer
// has the deployed API's shape.
func TestStoresWhatTheTemplatesStore(t *testing.T) {
	packed := Start(Faults{})
	defer packed.Close()
	status, answer := post(t, packed, "", "{\r\n  \"n\": 12345678901234567890123, \"s\": \"\\u00e9\"\n}", nil)
	if want := "{  \"n\": 12345678901234567890123, \"s\": \"\\u00e9\"}\n"; status != 200 || answer["sequenceNumber"] != "1" || string(packed.Records()[0]) != want {
		t.Errorf("/v1: %d %v, stored %q, want %q", status, answer, packed.Records()[0], want)
	}
	status, answer = post(t, packed, "/batch", "[{\"a\": 1},\n {\"b\": \"\\u00e9\\n\"}]", nil)
	if want := "{\"a\":1}\n{\"b\":\"é\\n\"}\n"; status != 200 || answer["events"] != 2.0 || answer["sequenceNumber"] != "2" ||
		len(packed.Records()) != 2 || string(packed.Records()[1]) != want {
		t.Errorf("packed: %d %v, records %q, want the second %q", status, answer, packed.Records(), want)
	}
	if got := packed.Events(); len(got) != 3 || string(got[1]) != "{\"a\":1}\n" || string(got[2]) != "{\"b\":\"é\\n\"}\n" {
		t.Errorf("events %q", got)
	}

	perEvent := Start(Faults{Packing: ingest.PerEvent})
	defer perEvent.Close()
	status, answer = post(t, perEvent, "/batch", `[{"a":1},{"b":2}]`, nil)
	records, _ := answer["records"].([]any)
	if status != 200 || answer["failedRecordCount"] != 0.0 || len(records) != 2 || len(perEvent.Records()) != 2 {
		t.Errorf("per event: %d %v, %d records stored", status, answer, len(perEvent.Records()))
	}
}

// A record over the limit (data and partition key) answers 413 and stores
// nothing; one exactly at it is stored.
func TestRecordLimit(t *testing.T) {
	api := Start(Faults{})
	defer api.Close()
	key := map[string]string{ingest.PartitionKeyHeader: "k"}
	event := func(n int) string { return `{"p":"` + strings.Repeat("x", n-8) + `"}` }
	if status, _ := post(t, api, "", event(ingest.MaxRecordBytes-2), key); status != 200 {
		t.Errorf("a record of exactly the limit: %d, want 200", status)
	}
	if status, answer := post(t, api, "", event(ingest.MaxRecordBytes-1), key); status != 413 || !strings.Contains(answer["message"].(string), "split") {
		t.Errorf("one byte over: %d %v, want 413 saying to split", status, answer)
	}
	half := event(ingest.MaxRecordBytes / 2)
	if status, _ := post(t, api, "/batch", "["+half+","+half+"]", key); status != 413 {
		t.Errorf("a packed batch over the limit: %d, want 413", status)
	}
	if n := len(api.Records()); n != 1 {
		t.Errorf("%d records stored, want 1", n)
	}
}

// Bodies sent with Content-Encoding gzip or deflate are decompressed and
// stored exactly as the same body sent plain; another coding, or a body that
// is not what the header says, answers 415.
func TestDecompressesAsAPIGatewayDoes(t *testing.T) {
	api := Start(Faults{})
	defer api.Close()
	const body = `[{"a":"é"},{"b":[1,2]}]`
	var gz, fl bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(body))
	zw.Close()
	fw, _ := flate.NewWriter(&fl, flate.BestSpeed)
	fw.Write([]byte(body))
	fw.Close()
	for _, c := range []struct {
		coding, body string
		status       int
	}{
		{"", body, 200}, {"gzip", gz.String(), 200}, {"deflate", fl.String(), 200}, {"GZIP", gz.String(), 200},
		{"br", body, 415}, {"gzip", body, 415}, {"gzip", gz.String()[:10], 415},
	} {
		status, answer := post(t, api, "/batch", c.body, map[string]string{"Content-Encoding": c.coding})
		if status != c.status {
			t.Errorf("Content-Encoding %q: %d %v, want %d", c.coding, status, answer, c.status)
		}
	}
	records := api.Records()
	for _, r := range records {
		if !bytes.Equal(r, records[0]) {
			t.Errorf("stored %q and %q for the same events", records[0], r)
		}
	}
	if len(records) != 4 {
		t.Errorf("%d records stored, want 4", len(records))
	}
}

// A batch may carry as many events as the request model says (MaxBatch),
// 500 by default, and one more is refused with 400, nothing stored.
func TestBatchLimitIsTheModels(t *testing.T) {
	batch := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(`{"a":1},`, n), ",") + "]" }
	for _, c := range []struct {
		faults Faults
		max    int
	}{
		{Faults{}, ingest.MaxBatch},
		{Faults{MaxBatch: ingest.MaxPackedBatch}, ingest.MaxPackedBatch},
	} {
		a := Start(c.faults)
		if status, _ := post(t, a, "/batch", batch(c.max), nil); status != 200 {
			t.Errorf("MaxBatch %d: %d events answered %d, want 200", c.faults.MaxBatch, c.max, status)
		}
		if status, _ := post(t, a, "/batch", batch(c.max+1), nil); status != 400 {
			t.Errorf("MaxBatch %d: %d events answered %d, want 400", c.faults.MaxBatch, c.max+1, status)
		}
		if got := len(a.Events()); got != c.max {
			t.Errorf("MaxBatch %d: %d events stored, want %d", c.faults.MaxBatch, got, c.max)
		}
		a.Close()
	}
}
