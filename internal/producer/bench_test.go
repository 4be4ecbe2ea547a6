package producer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/fakeapi"
)

// BenchmarkThroughput measures events per second from stdin to a local fake
// API over loopback, one event per request and in batches of 500.
func BenchmarkThroughput(b *testing.B) {
	for _, batch := range []int{1, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			api := fakeapi.Start(fakeapi.Faults{})
			defer api.Close()
			input := numbered(0, b.N, nil)
			cfg := testConfig(b, api)
			cfg.BatchSize, cfg.Source, cfg.Stdin = batch, SourceStdin, strings.NewReader(input)
			cfg.Concurrency = 8
			b.ResetTimer()
			if err := Run(context.Background(), cfg); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got := len(api.Records()); got != b.N {
				b.Fatalf("stored %d of %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
