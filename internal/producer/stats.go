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
	// DeadByClass splits DeadLettered by ReasonClasses (the same order).
	DeadByClass [len(ReasonClasses)]atomic.Int64

	mu        sync.Mutex
	latencies []time.Duration      // request round trips since the last report
	queued    func() int64         // bytes held in the queue
	spooled   func() (int64, bool) // bytes of unconfirmed events in the spool, and whether reading waits for room
	oldest    func() time.Duration // age of the oldest event read and not yet confirmed or dead-lettered
	files     func() (lag, goneUnread int64)
}

// Figures is what the producer reports to CloudWatch, as of now: the same
// counters as the stats line.
type Figures struct {
	Read, Sent, Retried int64
	DeadLettered        map[string]int64 // by ReasonClasses; every class present
	FilesGoneUnread     int64
	QueueBytes          int64
	OldestUnconfirmed   time.Duration
	FileLagBytes        int64
}

// Figures returns the figures; before Run has started, the gauges are 0.
// It is safe to call from any goroutine.
func (s *Stats) Figures() Figures {
	s.mu.Lock()
	queued, oldest, files := s.queued, s.oldest, s.files
	s.mu.Unlock()
	f := Figures{Read: s.Read.Load(), Sent: s.Sent.Load(), Retried: s.Retried.Load(), DeadLettered: make(map[string]int64, len(ReasonClasses))}
	for i, c := range ReasonClasses {
		f.DeadLettered[c] = s.DeadByClass[i].Load()
	}
	if queued != nil {
		f.QueueBytes = queued()
	}
	if oldest != nil {
		f.OldestUnconfirmed = oldest()
	}
	if files != nil {
		f.FileLagBytes, f.FilesGoneUnread = files()
	}
	return f
}

// deadLettered counts entries written to the dead-letter file.
func (s *Stats) deadLettered(entries []deadLetter) {
	for _, e := range entries {
		s.DeadByClass[slices.Index(ReasonClasses[:], deadLetterClass(e))].Add(1)
	}
	s.DeadLettered.Add(int64(len(entries)))
}

// set installs the gauges' sources, under the lock Figures reads them with.
func (s *Stats) set(f func(s *Stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
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
	f := s.Figures()
	s.mu.Lock()
	spooledFn := s.spooled
	s.mu.Unlock()
	spooled, full := int64(0), false
	if spooledFn != nil {
		spooled, full = spooledFn()
	}
	log.Info("stats", "read", c.Read, "sent", c.Sent, "retried", c.Retried, "dead_lettered", c.DeadLettered,
		"abandoned", c.Abandoned, "kept_in_spool", c.Kept, "sent_per_s", float64(c.Sent-prevSent)/since.Seconds(), "queued_bytes", f.QueueBytes,
		"spool_bytes", spooled, "spool_full", full, "requests", len(l), "latency_p50_ms", pct(0.5), "latency_p99_ms", pct(0.99),
		"oldest_unconfirmed_s", f.OldestUnconfirmed.Seconds(), "file_lag_bytes", f.FileLagBytes, "files_gone_unread", f.FilesGoneUnread)
	return c.Sent
}
