package producer

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// sized makes n input lines of about size bytes each, numbered, with their
// own event_id and event_time so two runs send the same bytes.
func sized(n, size int) string {
	var b strings.Builder
	for i := range n {
		prefix := fmt.Sprintf(`{"n":%d,"event_id":"id-%d","event_time":"2026-11-25T15:00:00.000Z","pad":"`, i, i)
		b.WriteString(prefix + strings.Repeat("x", max(0, size-len(prefix)-2)) + "\"}\n")
	}
	return b.String()
}

// A batch is at most 500 events and small enough to be one Kinesis record
// with room to spare: 2,000 events of 3 KiB become packed records that each
// fit, none refused, none lost.
func TestBatchesFitOneRecord(t *testing.T) {
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	cfg := testConfig(t, api)
	cfg.BatchSize, cfg.Source, cfg.Stdin = 500, SourceStdin, strings.NewReader(sized(2000, 3<<10))
	cfg.Linger = time.Hour // batches close by count or bytes only
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	byN, _ := storedByN(t, api)
	records := api.Records()
	for i, r := range records {
		if lines := bytes.Count(r, []byte("\n")); len(r) > batchBytes || lines > ingest.MaxBatch {
			t.Errorf("record %d: %d bytes, %d events; want at most %d and %d", i, len(r), lines, batchBytes, ingest.MaxBatch)
		}
	}
	if len(byN) != 2000 || len(records) < 2000*3<<10/batchBytes || api.Requests() != len(records) || cfg.Stats.DeadLettered.Load() != 0 {
		t.Errorf("%d events in %d records over %d requests, %d dead-lettered; want 2000 events, at least %d records, one request each, none",
			len(byN), len(records), api.Requests(), cfg.Stats.DeadLettered.Load(), 2000*3<<10/batchBytes)
	}
}

// A batch the API refuses as too large (413) is split in halves until each
// part fits; an event too large on its own is dead-lettered with the API's
// reason. Nothing is lost.
func TestBatchTheAPIFindsTooLargeIsSplit(t *testing.T) {
	const limit = 20 << 10
	api := fakeapi.Start(fakeapi.Faults{RecordLimit: limit})
	defer api.Close()
	cfg := testConfig(t, api)
	input := sized(200, 1<<10) + `{"n":200,"pad":"` + strings.Repeat("y", 30<<10) + "\"}\n"
	cfg.BatchSize, cfg.Source, cfg.Stdin = 500, SourceStdin, strings.NewReader(input)
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	byN, _ := storedByN(t, api)
	for i, r := range api.Records() {
		if len(r) > limit {
			t.Errorf("record %d has %d bytes, over the API's %d", i, len(r), limit)
		}
	}
	dead := readDeadLetters(t, cfg.DeadLetterPath)
	if len(byN) != 200 || byN[200] != 0 || len(dead) != 1 || dead[0].Status != 413 || !strings.Contains(dead[0].Reason, "record limit") {
		t.Errorf("%d of 200 events stored (the large one: %d), dead letters %+v; want 200, 0, the large one with 413", len(byN), byN[200], dead)
	}
}

// Batches go gzip-compressed unless turned off, and the API stores the same
// bytes either way.
func TestGzipStoresTheSameEvents(t *testing.T) {
	var stored [2][][]byte
	for i, gzip := range []bool{true, false} {
		api := fakeapi.Start(fakeapi.Faults{})
		cfg := testConfig(t, api)
		var mu sync.Mutex
		var codings []string
		transport := http.DefaultTransport
		cfg.HTTPClient = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			codings = append(codings, r.Header.Get("Content-Encoding"))
			mu.Unlock()
			return transport.RoundTrip(r)
		})}
		cfg.Gzip, cfg.BatchSize, cfg.Source = gzip, 100, SourceStdin
		cfg.Stdin = strings.NewReader(sized(1000, 200) + `{"n":1000,"event_id":"u","event_time":"2026-11-25T15:00:00Z","text":"Grüße \u00e9 \"q\" \\ 🎉"}` + "\n")
		if err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		stored[i] = api.Events()
		slices.SortFunc(stored[i], bytes.Compare)
		api.Close()
		want := ""
		if gzip {
			want = "gzip"
		}
		for _, c := range codings {
			if c != want {
				t.Errorf("gzip=%v: a request with Content-Encoding %q", gzip, c)
			}
		}
		if len(codings) == 0 {
			t.Errorf("gzip=%v: no request", gzip)
		}
	}
	if len(stored[0]) != 1001 || !slices.EqualFunc(stored[0], stored[1], bytes.Equal) {
		t.Errorf("stored %d events compressed, %d plain, or not the same bytes", len(stored[0]), len(stored[1]))
	}
}
