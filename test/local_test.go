package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/local"
)

// The local pipeline (`make local`) runs what was synthesized: each
// configuration's settings reach its API, stream, delivery and producer as
// they reach the deployed resources, and what it cannot run (Parquet
// conversion) is refused with one line naming the setting.
func TestLocalRunsWhatWasSynthesized(t *testing.T) {
	type want struct {
		stack, stage     string
		packing          ingest.Packing
		auth             ingest.Auth
		shards           int
		interval         time.Duration
		mib              int
		gzip, eventTime  bool
		prefix, errorPfx string
		producer         map[string]string
	}
	arrival := "raw-data/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
	errors := "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
	cases := []struct {
		name     string
		settings map[string]any
		want     want
	}{
		{"default", nil, want{"Tributary-PROD-Pipeline", "PROD", ingest.Packed, ingest.AuthIAM, 1, 60 * time.Second, 5, false, false, arrival, errors,
			map[string]string{"TRIBUTARY_SOURCE": "synthetic", "TRIBUTARY_RATE": "1", "TRIBUTARY_BATCH_SIZE": "1000", "TRIBUTARY_AUTH": "iam"}}},
		{"custom", customSettings, want{"Acme-dev-Pipeline", "dev", ingest.Packed, ingest.AuthIAM, 4, 300 * time.Second, 64, true, false,
			strings.Replace(arrival, "raw-data/", "events/json/", 1), strings.Replace(errors, "errors/", "failed/", 1),
			map[string]string{"TRIBUTARY_SOURCE": "file", "TRIBUTARY_FILES": "/var/log/app/events.log,/var/log/app/more.log", "TRIBUTARY_BATCH_SIZE": "100"}}},
		{"api key", apiKeySettings, want{"Tributary-PROD-Pipeline", "PROD", ingest.PerEvent, ingest.AuthAPIKey, 1, 60 * time.Second, 64, false, true,
			"raw-data/by-event-time/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/", errors,
			map[string]string{"TRIBUTARY_AUTH": "api-key", "TRIBUTARY_BATCH_SIZE": "500"}}},
	}
	for _, c := range cases {
		a, err := cfn.ReadAssembly(synth(t, c.settings).outdir)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := local.FromAssembly(a)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		d := cfg.Delivery
		got := want{cfg.PipelineStack, cfg.Stage, cfg.Packing, cfg.Auth, cfg.Shards, d.Interval, d.SizeBytes >> 20, d.GZIP, d.Query != "", d.Prefix, d.ErrorPrefix, nil}
		w := c.want
		w.producer = nil
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: the local pipeline runs\n %+v\nwant\n %+v", c.name, got, w)
		}
		for k, v := range c.want.producer {
			if cfg.Producer[k] != v {
				t.Errorf("%s: the local producer's %s = %q, want %q (the host's)", c.name, k, cfg.Producer[k], v)
			}
		}
		// Event time: the synthesized query, de-aggregated first, each event given its newline.
		if c.want.eventTime && (!d.Deaggregate || !d.AppendLine || !strings.Contains(d.Query, `fromdateiso8601`)) {
			t.Errorf("%s: event-time delivery %+v", c.name, d)
		}
		if !c.want.eventTime && (d.Deaggregate || d.AppendLine || d.Query != "") {
			t.Errorf("%s: arrival-time delivery processes records: %+v", c.name, d)
		}
		if max := map[ingest.Packing]int{ingest.Packed: ingest.MaxPackedBatch, ingest.PerEvent: ingest.MaxBatch}[c.want.packing]; cfg.MaxBatch != max {
			t.Errorf("%s: the local API takes batches of %d events, want the request model's %d", c.name, cfg.MaxBatch, max)
		}
		if cfg.Schemas[ingest.EventPath] == nil || cfg.Schemas[ingest.BatchPath] == nil {
			t.Errorf("%s: request models %v", c.name, cfg.Schemas)
		}
	}
	a, err := cfn.ReadAssembly(synth(t, openSettings).outdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.FromAssembly(a); err == nil || !strings.HasPrefix(err.Error(), "outputFormat=PARQUET is not run locally") {
		t.Errorf("Parquet: %v, want a refusal naming outputFormat=PARQUET", err)
	}
}

// The local API answers as the deployed one would, with the synthesized
// gateway responses and request model (here the event schema), the API
// key, and a shard's limits: two 600 KB events in one request to a fresh
// shard store the first and throttle the second, as PutRecords does.
func TestLocalAPIAnswersAsTheDeployedOne(t *testing.T) {
	lp, err := local.Start(local.Options{Assembly: synth(t, apiKeySettings).outdir, Dir: t.TempDir(), APIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	type answer struct {
		Status int
		Body   map[string]any
	}
	post := func(path, body string, headers ...string) answer {
		t.Helper()
		req, _ := http.NewRequest("POST", lp.APIURL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(ingest.APIKeyHeader, lp.APIKey)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		a.Status = resp.StatusCode
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("%s %.80s: answer is not JSON: %q", path, body, raw)
		}
		return a
	}
	big := strings.Repeat("x", 600<<10)
	if a := post("/batch", fmt.Sprintf(`[{"value":"1","pad":%q},{"value":"2","pad":%q}]`, big, big)); a.Status != 200 || a.Body["failedRecordCount"] != 1.0 {
		t.Errorf("1.2 MiB to one shard in a second: %d %v, want 200 with one record throttled", a.Status, a.Body["failedRecordCount"])
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"value":"3"}]`))
	zw.Close()
	badBody := "Invalid request body: /v1 takes one JSON object, /v1/batch an array of 1 to 500 JSON objects" // PER_EVENT
	for _, c := range []struct {
		name, path, body string
		headers          []string
		status           int
		message          string
	}{
		{"an event of the schema", "", `{"value":"1"}`, nil, 200, ""},
		{"a gzip batch", "/batch", gz.String(), []string{"Content-Encoding", "gzip"}, 200, ""},
		{"an event without the schema's required value", "", `{"type":"x"}`, nil, 400, badBody},
		{"an array to /v1", "", `[{"value":"1"}]`, nil, 400, badBody},
		{"an empty batch", "/batch", `[]`, nil, 400, badBody},
		{"not JSON", "/batch", `nope`, nil, 400, badBody},
		{"a wrong API key", "", `{"value":"1"}`, []string{ingest.APIKeyHeader, "wrong"}, 403, "Forbidden"},
		{"another path", "/other", `{"value":"1"}`, nil, 403, "Missing Authentication Token"},
		{"text/plain", "", `{"value":"1"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type must be application/json"},
		{"an event over Kinesis's record limit", "", fmt.Sprintf(`{"value":"1","pad":%q}`, strings.Repeat("x", 1<<20)), nil, 413, ""},
		{"a body over API Gateway's 10 MB", "/batch", `[{"value":"1","pad":"` + strings.Repeat("x", 10<<20) + `"}]`, nil, 413,
			"Request too large: API Gateway takes at most 10 MB, Kinesis at most 1 MiB per event"},
	} {
		a := post(c.path, c.body, c.headers...)
		msg, _ := a.Body["message"].(string)
		if a.Status != c.status || (c.message != "" && msg != c.message) {
			t.Errorf("%s: %d %q, want %d %q", c.name, a.Status, msg, c.status, c.message)
		}
		if c.status == 200 && msg != "" {
			t.Errorf("%s: a 200 with a message %q", c.name, msg)
		}
	}
}

// The local delivery runs the synthesized event-time query with gojq;
// Firehose runs it with jq 1.6. On every kind of event_time a producer or
// a user may send, both give the same partition keys or both refuse it
// (the record goes to errors/).
func TestLocalPartitionKeysAreJQ16s(t *testing.T) {
	a, err := cfn.ReadAssembly(synth(t, apiKeySettings).outdir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := local.FromAssembly(a)
	if err != nil {
		t.Fatal(err)
	}
	query := cfg.Delivery.Query
	for _, record := range []string{
		`{"event_time":"2026-12-03T15:04:05Z"}`, `{"event_time":"2026-12-03T15:04:05.123Z"}`, `{"event_time":"2026-12-03T15:04:05.123456789Z"}`,
		`{"event_time":"2026-12-31T23:59:59.999Z"}`, `{"event_time":"2028-02-29T00:00:00Z"}`, `{"event_time":"1970-01-01T00:00:00Z"}`,
		`{"event_time":"2026-12-03T15:04:05+09:00"}`, `{"event_time":"2026-12-03T15:04:05"}`, `{"event_time":"2026-12-03"}`,
		`{"event_time":1764774245}`, `{"event_time":null}`, `{}`, `{"event_time":""}`, `{"event_time":"not a time at all!"}`,
		`{"event_time":"2026-12-03 15:04:05Z"}`, `{"event_time":"2026-12-03t15:04:05z"}`, `{"event_time":["2026-12-03T15:04:05Z"]}`,
		`{"event_time":"2026-12-03T15:04:05Z","nested":{"event_time":"x"}}`,
		`{"event_time":"2026-02-30T00:00:00Z"}`, `{"event_time":"2026-12-03T15:04:60Z"}`, `{"event_time":"2026-12-03T24:00:00Z"}`,
		`{"event_time":"2026-12-03T15:04:05.0 and more textZ"}`, `{"event_time":"2026-13-03T15:04:05Z"}`,
		`{"event_time":"0999-12-03T15:04:05Z"}`, `{"event_time":"999-12-03T15:04:05Z"}`, `{"event_time":"10000-01-01T00:00:00Z"}`,
	} {
		out, jqErr := jq16(query, record)
		var want map[string]string
		if jqErr == nil {
			if err := json.Unmarshal([]byte(out), &want); err != nil {
				t.Fatalf("jq 1.6 on %s: %q", record, out)
			}
		}
		got, err := local.PartitionKeys(query, []byte(record))
		switch {
		case (jqErr == nil) != (err == nil):
			t.Errorf("%s: jq 1.6 %v (%s), the local delivery %v (%v)", record, want, out, got, err)
		case jqErr == nil && fmt.Sprint(got) != fmt.Sprint(want):
			t.Errorf("%s: jq 1.6 gives %v, the local delivery %v", record, want, got)
		}
	}
}

// `make local` runs the producer with its CloudWatch pointed at a local
// fake, and the stats line shows the producer's figures as the fake got
// them. The producer is linked with a one-second metrics interval (as the
// fault suite's), and the metrics namespace comes from the environment as
// the host's file will give it.
func TestLocalStatsLineShowsTheProducersFigures(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "producer")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.cloudwatchInterval=1s", "-o", bin, "../cmd/producer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("TRIBUTARY_CLOUDWATCH_NAMESPACE", "Tributary/local")
	t.Setenv("TRIBUTARY_CLOUDWATCH_LOG_GROUP", "/tributary/local/producer")
	t.Setenv("TRIBUTARY_PIPELINE", "local-test")
	t.Setenv("TRIBUTARY_RATE", "50")
	out := &syncBuffer{}
	dir := t.TempDir()
	lp, err := local.Start(local.Options{Assembly: synth(t, nil).outdir, Dir: dir, APIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Producer: bin, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lp.Run(ctx, 300*time.Millisecond) }()
	figures := regexp.MustCompile(`stats: \d+ events accepted, [^\n]*; producer: ([1-9]\d*) read, ([1-9]\d*) sent, 0 dead-lettered, oldest unconfirmed \d+ s, file lag 0 bytes, heartbeat \d+s ago`)
	deadline := time.Now().Add(30 * time.Second)
	for !figures.MatchString(out.String()) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			log, _ := os.ReadFile(filepath.Join(dir, "producer", "producer.log"))
			t.Fatalf("no stats line with the producer's figures in 30 s:\n%s\nthe producer's log:\n%.3000s", out.String(), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "producer", "producer.log"))
	if strings.Contains(string(log), "cannot publish") || strings.Contains(string(log), "no AWS credentials") {
		t.Errorf("the producer could not publish to the local CloudWatch:\n%.3000s", log)
	}
}
