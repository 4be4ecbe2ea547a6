package producer

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts events; Snapshot reads them.
type Stats struct {
	Read, Sent, Retried, DeadLettered, Abandoned atomic.Int64
	Kept                                         atomic.Int64 // unconfirmed at the end, kept in the spool for the next start

	mu        sync.Mutex
	latencies []time.Duration      // request round trips since the last report
	queued    func() int64         // bytes held in the queue
	spooled   func() (int64, bool) // bytes of unconfirmed events in the spool, and whether reading waits for room
}

// Counts is a copy of the counters.
type Counts struct {
	Read, Sent, Retried, DeadLettered, Abandoned, Kept int64
}

// Snapshot returns the counters.
func (s *Stats) Snapshot() Counts {
	return Counts{s.Read.Load(), s.Sent.Load(), s.Retried.Load(), s.DeadLettered.Load(), s.Abandoned.Load(), s.Kept.Load()}
}

func (s *Stats) observe(d time.Duration) {
	s.mu.Lock()
	if len(s.latencies) < 100_000 {
		s.latencies = append(s.latencies, d)
	}
	s.mu.Unlock()
}

// report logs one stats line and starts a new latency window: the rate is
// of the events sent since prevSent, over since (the last report or, for the
// final line, the start).
func (s *Stats) report(log *slog.Logger, since time.Duration, prevSent int64) int64 {
	s.mu.Lock()
	l := s.latencies
	s.latencies = nil
	s.mu.Unlock()
	slices.Sort(l)
	pct := func(p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[int(p*float64(len(l)-1))].Microseconds()) / 1000
	}
	c := s.Snapshot()
	queued := int64(0)
	if s.queued != nil {
		queued = s.queued()
	}
	spooled, full := int64(0), false
	if s.spooled != nil {
		spooled, full = s.spooled()
	}
	log.Info("stats", "read", c.Read, "sent", c.Sent, "retried", c.Retried, "dead_lettered", c.DeadLettered,
		"abandoned", c.Abandoned, "kept_in_spool", c.Kept, "sent_per_s", float64(c.Sent-prevSent)/since.Seconds(), "queued_bytes", queued,
		"spool_bytes", spooled, "spool_full", full, "requests", len(l), "latency_p50_ms", pct(0.5), "latency_p99_ms", pct(0.99))
	return c.Sent
}
