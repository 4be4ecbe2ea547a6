package producer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// BenchmarkThroughput measures events per second to a local fake API over
// loopback: from stdin, one event per request and in batches of 500, and
// from a followed file (fingerprints, chain hashes, checkpoint) in batches.
func BenchmarkThroughput(b *testing.B) {
	for _, c := range []struct {
		source string
		batch  int
	}{{SourceStdin, 1}, {SourceStdin, 500}, {SourceFile, 500}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.source == SourceFile {
			name = "file,batch=500"
		}
		b.Run(name, func(b *testing.B) {
			api := fakeapi.Start(fakeapi.Faults{})
			defer api.Close()
			input := numbered(0, b.N, nil)
			cfg := testConfig(b, api)
			cfg.BatchSize, cfg.Source, cfg.Concurrency = c.batch, c.source, 8
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.source == SourceStdin {
				cfg.Stdin = strings.NewReader(input)
			} else {
				dir := b.TempDir()
				cfg.Files, cfg.CheckpointPath = []string{filepath.Join(dir, "events.log")}, filepath.Join(dir, "cp.json")
				if err := os.WriteFile(cfg.Files[0], []byte(input), 0o644); err != nil {
					b.Fatal(err)
				}
				go func() { // a followed file has no end: stop once everything is stored
					for len(api.Events()) < b.N {
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			b.ResetTimer()
			if err := Run(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got := len(api.Events()); got != b.N {
				b.Fatalf("stored %d of %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
