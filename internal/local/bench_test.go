package local

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// BenchmarkLocalAPI is the local API's capacity: batches of 500 events of
// about 200 bytes posted over loopback through the gateway, the templates'
// behaviour and the on-disk stream, with enough shards (each with a
// partition key of its own) that a shard's 1 MiB/s never throttles, so it
// measures the local implementation, not Kinesis's limits.
func BenchmarkLocalAPI(b *testing.B) {
	stream, err := OpenStream(b.TempDir(), 64)
	if err != nil {
		b.Fatal(err)
	}
	defer stream.Close()
	cfg := &Config{Stage: "PROD", Packing: ingest.Packed, GatewayResponses: map[string]GatewayResponse{}}
	gw, err := newGateway(cfg, fakeapi.New(fakeapi.Faults{Packing: ingest.Packed, Kinesis: stream}))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	var batch bytes.Buffer
	batch.WriteByte('[')
	for i := range 500 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"event_id":"%036d","event_time":"2026-12-03T15:04:05.123Z","type":"page_view","user":"u-%06d","path":"/products/%d","ms":%d,"ok":true}`, i, i, i, i)
	}
	batch.WriteByte(']')
	body := batch.Bytes()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			n++
			req, _ := http.NewRequest("POST", srv.URL+"/PROD/v1/batch", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(ingest.PartitionKeyHeader, fmt.Sprintf("key-%p-%d", pb, n%64))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("%v %v", resp, err)
				return
			}
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
