package producer

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
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

var manyFilesHeapProfile = flag.String("manyfiles.heapprofile", "", "BenchmarkManyFilesOneGrowing writes a heap profile of the running producer here")

// BenchmarkManyFilesOneGrowing follows 20,000 files of which one grows
// (ten lines a second), with the production -poll and -rotate-wait, and
// reports what following them costs once the first lines are stored: the
// fraction of a core used (the fake API's share included), the process's
// resident set and the Go heap (in use, and live after a collection), and
// the bytes written a second to the checkpoint and its journal; and
// heap-B/file, the live heap the producer holds per matched file (what the
// fake API stores is not kept: it only counts the events).
// Target: under 5% of a core and 64 MB on a 2-core host. Each iteration is
// one second.
//
//	go test -run '^$' -bench ManyFiles -benchtime 5x ./internal/producer
//	go test -run '^$' -bench ManyFiles -benchtime 5x ./internal/producer -manyfiles.heapprofile=$PWD/heap.out
//	go tool pprof -sample_index=inuse_space -top heap.out
func BenchmarkManyFilesOneGrowing(b *testing.B) {
	const files = 20000
	stored := &countingStream{}
	api := fakeapi.Start(fakeapi.Faults{Kinesis: stored})
	defer api.Close()
	dir := b.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.log", i)), []byte(numbered(i, i+1, nil)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg := testConfig(b, api)
	cfg.Source, cfg.Files, cfg.CheckpointPath = SourceFile, []string{filepath.Join(dir, "*.log")}, filepath.Join(b.TempDir(), "cp.json")
	cfg.Poll, cfg.RotateWait, cfg.Linger, cfg.BatchSize = 250*time.Millisecond, 10*time.Second, time.Second, 500
	var base runtime.MemStats // what the process holds before the producer starts
	runtime.GC()
	runtime.ReadMemStats(&base)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	for stored.events.Load() < files {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the checkpoint saved past them
	grow := filepath.Join(dir, "f00000.log")
	stopGrowing := make(chan struct{})
	grown := make(chan struct{})
	go func() {
		defer close(grown)
		for n := files; ; n++ {
			select {
			case <-stopGrowing:
				return
			case <-time.After(100 * time.Millisecond):
			}
			f, err := os.OpenFile(grow, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				b.Error(err)
				return
			}
			f.WriteString(numbered(n, n+1, nil))
			f.Close()
		}
	}()
	var before, after syscall.Rusage
	cpBytes := checkpointWrites(b, cfg.CheckpointPath)
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		time.Sleep(time.Second)
	}
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	written := cpBytes()
	b.StopTimer()
	var ms, live runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.GC()
	runtime.ReadMemStats(&live)
	if *manyFilesHeapProfile != "" { // what the running producer holds (-memprofile sees it only once stopped)
		f, err := os.Create(*manyFilesHeapProfile)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	close(stopGrowing)
	<-grown
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-fraction")
	b.ReportMetric(float64(rssBytes(b))/1e6, "rss-MB")
	b.ReportMetric(float64(ms.HeapInuse)/1e6, "heap-MB")
	b.ReportMetric(float64(live.HeapAlloc)/1e6, "live-heap-MB")
	b.ReportMetric(float64(int64(live.HeapAlloc)-int64(base.HeapAlloc))/files, "heap-B/file")
	b.ReportMetric(float64(written)/wall.Seconds(), "ckpt-B/s")
}

// countingStream stands in for the fake API's stream: it counts the events
// stored and keeps none, so that the heap measured is the producer's.
type countingStream struct{ events atomic.Int64 }

func (c *countingStream) Put(records []fakeapi.Record) []fakeapi.Result {
	out := make([]fakeapi.Result, len(records))
	for i, r := range records {
		c.events.Add(int64(bytes.Count(r.Data, []byte("\n"))))
		out[i] = fakeapi.Result{SequenceNumber: fmt.Sprint(i + 1), ShardID: "shardId-000000000000"}
	}
	return out
}

// checkpointWrites watches the checkpoint at path (a new inode at each
// fold) and its journal (appended to, emptied at each fold) and returns a
// function that stops and says how many bytes the saves since wrote to
// both. Watched from outside, so that it counts what reaches the files.
func checkpointWrites(b *testing.B, path string) func() int64 {
	stop := make(chan struct{})
	total := make(chan int64)
	go func() {
		var sum, journalSize int64
		var last uint64
		started := false
		for {
			if fi, err := os.Stat(path); err == nil {
				if ino := fi.Sys().(*syscall.Stat_t).Ino; ino != last {
					if last != 0 {
						sum += fi.Size()
					}
					last = ino
				}
			}
			if fi, err := os.Stat(path + ".journal"); err == nil {
				switch size := fi.Size(); {
				case !started:
				case size < journalSize: // emptied by a fold, then written
					sum += size
				default:
					sum += size - journalSize
				}
				journalSize = fi.Size()
			}
			started = true
			select {
			case <-stop:
				total <- sum
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int64 { close(stop); return <-total }
}

// rssBytes is the process's resident set size.
func rssBytes(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
			return kib << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
