package main

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// seed makes every run generate the same lines.
const seed = 18

// base is the first event's "ts"; each next event is a millisecond later.
var base = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Values the events draw from: a log line of a web service, with text that
// compresses as real logs do (words repeat, tokens do not).
var (
	levels   = []string{"debug", "info", "info", "info", "warn", "error"}
	services = []string{"checkout", "cart", "search", "accounts", "payments", "catalog", "shipping", "auth"}
	methods  = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses = []int{200, 200, 200, 200, 201, 204, 304, 400, 404, 500}
	words    = []string{"request", "served", "from", "cache", "user", "order", "item", "payment", "accepted",
		"refused", "timeout", "retry", "upstream", "session", "token", "renewed", "queue", "depth", "slow",
		"query", "rows", "returned", "lock", "wait", "connection", "pool", "exhausted", "opened", "closed",
		"handler", "finished", "started", "shard", "region", "latency", "budget", "exceeded", "within"}
)

// gen writes events of about size bytes each (newline included): 9 keys,
// "seq" unique (the sink's id for the event), "wt" the time the line was
// written in Unix nanoseconds (what the sink's latency is measured from).
type gen struct {
	r    *rand.Rand
	size int
}

func newGen(size int) *gen { return &gen{r: rand.New(rand.NewPCG(seed, uint64(size))), size: size} }

// appendLine appends event seq, written at wt, and its newline.
func (g *gen) appendLine(b []byte, seq int, wt int64) []byte {
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"wt":`...)
	b = strconv.AppendInt(b, wt, 10)
	b = append(b, `,"ts":"`...)
	b = base.Add(time.Duration(seq)*time.Millisecond).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","level":"`...)
	b = append(b, levels[g.r.IntN(len(levels))]...)
	b = append(b, `","service":"`...)
	b = append(b, services[g.r.IntN(len(services))]...)
	b = append(b, `","host":"web-`...)
	b = strconv.AppendInt(b, int64(g.r.IntN(64)), 10)
	b = append(b, `","path":"`...)
	b = append(b, methods[g.r.IntN(len(methods))]...)
	b = append(b, " /api/v1/orders/"...)
	b = strconv.AppendUint(b, g.r.Uint64()%1e9, 16)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(statuses[g.r.IntN(len(statuses))]), 10)
	b = append(b, `,"msg":"`...)
	// Words up to the size, less the closing `"}` and newline.
	for n := 0; len(b)-start < g.size-3; n++ {
		if n > 0 {
			b = append(b, ' ')
		}
		if n%8 == 7 {
			b = strconv.AppendUint(b, g.r.Uint64(), 36)
		} else {
			b = append(b, words[g.r.IntN(len(words))]...)
		}
	}
	return append(b, "\"}\n"...)
}

// writeWorkload writes n events of about size bytes to path.
func writeWorkload(path string, n, size int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := newGen(size)
	wt := base.UnixNano()
	var line []byte
	for seq := range n {
		line = g.appendLine(line[:0], seq, wt)
		if _, err := w.Write(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
