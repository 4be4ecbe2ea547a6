package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// TestMain lets the harness start this test binary as its floor client,
// as it starts its own binary.
func TestMain(m *testing.M) {
	if os.Getenv(floorEnv) != "" {
		os.Exit(floorMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// The quick mode end to end: the built producer and the floor, in every
// mode, each deliver every event exactly once to the sink, the floor in
// the batches the producer would post. Counts only: nothing here is timed.
func TestQuickRunCountsEveryEventOnce(t *testing.T) {
	for _, packing := range []string{"PACKED", "PER_EVENT"} {
		t.Run(packing, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-lines", "3000", "-large-lines", "300", "-runs", "1",
				"-tail-rate", "2000", "-tail-for", "1s", "-packing", packing, "-run-timeout", "2m"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := bench(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"file": 3000, "stdin": 3000, "large": 300, "tail": 2000}
			var modes []string
			for _, r := range res {
				modes = append(modes, r.mode)
				if r.events != want[r.mode] || len(r.producer) != 1 || len(r.floor) != 1 {
					t.Fatalf("%s: %d events, %d producer and %d floor runs; want %d, 1, 1", r.mode, r.events, len(r.producer), len(r.floor), want[r.mode])
				}
				for who, s := range map[string]sample{"producer": r.producer[0], "floor": r.floor[0]} {
					if s.distinct != r.events || s.dupes != 0 || s.unknown != 0 {
						t.Errorf("%s %s: %d distinct, %d duplicates, %d unknown; want %d, 0, 0", r.mode, who, s.distinct, s.dupes, s.unknown, r.events)
					}
					if s.cpu <= 0 || s.maxRSS <= 0 || s.wire <= 0 || s.elapsed <= 0 {
						t.Errorf("%s %s: cpu %v, rss %d, wire %d, elapsed %v: each must be measured", r.mode, who, s.cpu, s.maxRSS, s.wire, s.elapsed)
					}
					if r.mode == "tail" && (len(s.lat) != r.events || slices.Min(s.lat) <= 0) {
						t.Errorf("tail %s: %d latencies (least %v) for %d events", who, len(s.lat), slices.Min(s.lat), r.events)
					}
				}
				// 200-byte events: 500 a batch; 8 KiB ones: under a Kinesis record each.
				if r.mode == "file" && r.floor[0].requests != 6 || r.mode == "large" && r.floor[0].requests != 3 {
					t.Errorf("%s: the floor posted %d batches", r.mode, r.floor[0].requests)
				}
			}
			if !slices.Equal(modes, allModes) {
				t.Errorf("modes run: %v, want %v", modes, allModes)
			}
			var out bytes.Buffer
			printReport(&out, cfg, res)
			for _, s := range []string{"mode file:", "mode stdin:", "mode large:", "mode tail:", "events/s", "CPU s per million", "peak RSS", "bytes on the wire", "p99"} {
				if !strings.Contains(out.String(), s) {
					t.Errorf("the report has no %q:\n%s", s, out.String())
				}
			}
		})
	}
}

// The sink counts events, not requests, decompresses gzip, tells
// duplicates and events without a known seq apart, and answers each
// request with the keys the fake API (the deployed API's answers) gives.
func TestSinkCountsEventsAndAnswersAsTheAPI(t *testing.T) {
	batch := []byte(`[{"seq":0,"wt":1,"s":"a}\"{"},{"seq":1,"wt":1},{"seq":2,"wt":1}]`)
	for _, packing := range []ingest.Packing{ingest.Packed, ingest.PerEvent} {
		s, err := startSink(packing == ingest.PerEvent)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		api := fakeapi.Start(fakeapi.Faults{Packing: packing})
		defer api.Close()
		s.reset(3, true)
		for _, path := range []string{"/batch", "/batch", ""} {
			body := batch
			if path == "" {
				body = []byte(`{"seq":1,"wt":1}`)
			}
			got, status := postJSON(t, s.URL+path, body, true)
			want, wantStatus := postJSON(t, api.URL+path, body, true)
			if status != wantStatus || !slices.Equal(keys(got), keys(want)) || got["events"] != want["events"] || len(got["records"].([]any)) != len(want["records"].([]any)) {
				t.Errorf("%s %q: the sink answered %d %v, the fake API %d %v", packing, path, status, got, wantStatus, want)
			}
		}
		c := s.counts()
		if c.distinct != 3 || c.dupes != 4 || c.unknown != 0 || c.requests != 3 || len(c.lat) != 3 {
			t.Errorf("%s: %d distinct, %d duplicates, %d unknown, %d requests, %d latencies; want 3, 4, 0, 3, 3", packing, c.distinct, c.dupes, c.unknown, c.requests, len(c.lat))
		}
		select {
		case <-s.done:
		default:
			t.Errorf("%s: every event counted, but the sink is not done", packing)
		}
		postJSON(t, s.URL+"/batch", []byte(`[{"seq":7},{"id":1}]`), false)
		if c := s.counts(); c.unknown != 2 || c.wire <= 0 {
			t.Errorf("%s: %d unknown (want 2), %d bytes on the wire", packing, c.unknown, c.wire)
		}
	}
	s, err := startSink(false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, bad := range []string{`[]`, `[{"seq":0}`, `[{"seq":0}] x`, `{"seq":0}`, `[{"seq":0},1]`} {
		if _, status := postJSON(t, s.URL+"/batch", []byte(bad), false); status != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", bad, status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/batch", strings.NewReader(`[{"seq":0}]`))
	req.Header.Set("Content-Encoding", "gzip")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a body that is not gzip: %v %v, want 415", resp.Status, err)
	}
}

func postJSON(t *testing.T, url string, body []byte, gz bool) (map[string]any, int) {
	t.Helper()
	enc := ""
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body, enc = b.Bytes(), "gzip"
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: answer %q: %v", url, b, err)
	}
	if m["records"] == nil {
		m["records"] = []any{}
	}
	return m, resp.StatusCode
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

// The workload is the same every time: lines of about their size, 9 keys,
// a unique seq each.
func TestWorkloadIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{lineBytes, largeBytes} {
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		for _, p := range []string{a, b} {
			if err := writeWorkload(p, 1000, size); err != nil {
				t.Fatal(err)
			}
		}
		da, _ := os.ReadFile(a)
		db, _ := os.ReadFile(b)
		if !bytes.Equal(da, db) {
			t.Fatalf("size %d: two generations differ", size)
		}
		lines := bytes.Split(bytes.TrimSuffix(da, []byte("\n")), []byte("\n"))
		if len(lines) != 1000 {
			t.Fatalf("size %d: %d lines", size, len(lines))
		}
		for i, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil || len(m) != 9 || m["seq"] != float64(i) {
				t.Fatalf("size %d, line %d: %d keys, seq %v, %v: %s", size, i, len(m), m["seq"], err, l)
			}
			if n := len(l) + 1; n < size || n > size+24 {
				t.Fatalf("size %d, line %d: %d bytes", size, i, n)
			}
		}
	}
}
