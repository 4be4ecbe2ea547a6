package filesource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkFollowLines is the follower's own cost per line of about 200
// bytes (reading, the chain hash, the checkpoint's bookkeeping), its lines
// confirmed as they are handed out (ns/line: b.N is rounded up to whole
// files):
//
//	go test -run '^$' -bench FollowLines -benchmem ./internal/filesource
func BenchmarkFollowLines(b *testing.B) {
	const lines = 100_000
	var sb strings.Builder
	for i := range lines {
		fmt.Fprintf(&sb, `{"n":%d,"level":"info","msg":"request served","path":"/v1/items/%d","status":200,"ms":12,"pad":"%s"}`+"\n", i, i, strings.Repeat("x", 90))
	}
	path := filepath.Join(b.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()) / lines)
	b.ReportAllocs()
	b.ResetTimer()
	total := 0 // whole files are read: b.N rounded up to lines
	for ; total < b.N; total += lines {
		got := 0
		take := func(l Line) bool { got++; l.Pos.Confirm(); return true }
		fl := New(Config{Patterns: []string{path}, Checkpoints: &Checkpoints{}, Poll: time.Hour, RotateWait: time.Hour, Log: slog.New(slog.DiscardHandler),
			TryEmit: take, Emit: func(_ context.Context, l Line) bool { return take(l) }})
		now := time.Now()
		fl.scan(now)
		for fl.read(context.Background(), fl.watchers[0], now) {
		}
		if got != lines {
			b.Fatalf("handed out %d lines, want %d", got, lines)
		}
		fl.close(fl.watchers[0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/line")
}
