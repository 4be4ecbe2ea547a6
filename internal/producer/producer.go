package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Sources.
const (
	SourceSynthetic = "synthetic"
	SourceStdin     = "stdin"
	SourceFile      = "file"
)

// batchBytes keeps a batch's body well under API Gateway's 10 MB payload and
// the 5 MiB that older PutRecords limits allow.
const batchBytes = 4 << 20

// Config is everything Run needs. Zero durations and sizes are not defaults:
// cmd/producer fills them from flags.
type Config struct {
	URL             string // the API's /v1 URL
	Source          string
	Rate            float64   // synthetic events per second
	Stdin           io.Reader // for SourceStdin
	Files           []string  // for SourceFile
	CheckpointPath  string    // for SourceFile
	DeadLetterPath  string
	BatchSize       int // 1: one event per request to /v1; more: /v1/batch
	Linger          time.Duration
	Concurrency     int
	Auth            Auth
	HTTPClient      *http.Client
	MaxBackoff      time.Duration
	ShutdownTimeout time.Duration
	StatsInterval   time.Duration
	Poll            time.Duration // how often a followed file is checked at its end
	Log             *slog.Logger
	Stats           *Stats // counters; Run creates them when nil
}

// Run sends events until ctx ends (or stdin does), then stops reading,
// delivers what is in flight within ShutdownTimeout, and saves the checkpoint.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	cp, err := loadCheckpoints(cfg.CheckpointPath)
	if err != nil {
		return err
	}
	r := &run{cfg: cfg, cp: cp, dl: &deadLetters{path: cfg.DeadLetterPath}, stats: cfg.Stats,
		client: &client{url: cfg.URL, batch: cfg.BatchSize > 1, auth: cfg.Auth, http: cfg.HTTPClient}}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	go func() { // the shutdown deadline starts when reading stops
		<-readCtx.Done()
		select {
		case <-time.After(cfg.ShutdownTimeout):
			stopSending()
		case <-sendCtx.Done():
		}
	}()

	lines := make(chan line, 4*max(cfg.BatchSize, 64))
	var sourceErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { sourceErr = err; stopReading() })
	}
	var sources sync.WaitGroup
	startSource := func(f func() error) {
		sources.Add(1)
		go func() {
			defer sources.Done()
			if err := f(); err != nil {
				fail(err)
			}
		}()
	}
	switch cfg.Source {
	case SourceSynthetic:
		startSource(func() error { return generate(readCtx, cfg.Rate, lines) })
	case SourceStdin:
		startSource(func() error { return readStream(readCtx, cfg.Stdin, lines) })
	case SourceFile:
		fl := &follower{cp: cp, poll: cfg.Poll, log: cfg.Log}
		for _, path := range cfg.Files {
			startSource(func() error { return fl.follow(readCtx, path, lines) })
		}
	default:
		return fmt.Errorf("unknown source %q", cfg.Source)
	}
	go func() { sources.Wait(); close(lines) }()

	batches := make(chan []*Event, cfg.Concurrency)
	go r.batch(lines, batches)
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for b := range batches {
				r.deliver(sendCtx, b, 0)
			}
		}()
	}

	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	r.housekeep(done)
	stopSending()
	if err := cp.save(); err != nil {
		cfg.Log.Error("saving the checkpoint", "err", err)
	}
	r.stats.report(cfg.Log, time.Since(start), 0)
	if err := r.dl.close(); err != nil {
		cfg.Log.Error("closing the dead-letter file", "err", err)
	}
	return sourceErr
}

type run struct {
	cfg    Config
	cp     *checkpoints
	dl     *deadLetters
	stats  *Stats
	client *client
}

// housekeep saves the checkpoint every second and logs stats until done.
func (r *run) housekeep(done <-chan struct{}) {
	save := time.NewTicker(time.Second)
	defer save.Stop()
	report := time.NewTicker(r.cfg.StatsInterval)
	defer report.Stop()
	last, prevSent := time.Now(), int64(0)
	for {
		select {
		case <-done:
			return
		case <-save.C:
			if err := r.cp.save(); err != nil {
				r.cfg.Log.Error("saving the checkpoint", "err", err)
			}
		case now := <-report.C:
			prevSent = r.stats.report(r.cfg.Log, now.Sub(last), prevSent)
			last = now
		}
	}
}

// batch turns lines into events and groups them: BatchSize events, batchBytes,
// or whatever arrived within Linger of the first.
func (r *run) batch(lines <-chan line, out chan<- []*Event) {
	defer close(out)
	var cur []*Event
	size := 0
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	flush := func() {
		if len(cur) > 0 {
			out <- cur
			cur, size = nil, 0
		}
		linger.Stop()
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				flush()
				return
			}
			r.stats.Read.Add(1)
			ev, ok := r.parse(l)
			if !ok {
				continue
			}
			if size+len(ev.Data)+1 > batchBytes {
				flush()
			}
			cur = append(cur, ev)
			size += len(ev.Data) + 1
			if len(cur) == 1 {
				linger.Reset(r.cfg.Linger)
			}
			if len(cur) >= r.cfg.BatchSize {
				flush()
			}
		case <-linger.C:
			flush()
		}
	}
}

// parse enriches a line; one that cannot be sent goes to the dead-letter file.
func (r *run) parse(l line) (*Event, bool) {
	reason := ""
	var data []byte
	var id string
	if l.tooLong {
		reason = fmt.Sprintf("line longer than %d bytes (kept truncated here); the most a Kinesis record takes is %d", maxLineBytes, MaxEventBytes)
	} else {
		var err error
		if data, id, err = enrich(l.data, l.id, time.Now()); err != nil {
			reason = err.Error()
		}
	}
	if reason == "" {
		return &Event{ID: id, Data: data, pos: l.pos}, true
	}
	entry := deadLetter{Reason: reason, Raw: string(l.data)}
	if json.Valid(l.data) {
		entry = deadLetter{Reason: reason, Event: l.data}
	}
	r.deadLetter([]deadLetter{entry}, []*position{l.pos})
	return nil, false
}

// deliver sends events until each is stored or dead-lettered, or the
// shutdown deadline passes.
func (r *run) deliver(ctx context.Context, events []*Event, attempt int) {
	for len(events) > 0 {
		if ctx.Err() != nil {
			r.abandon(events)
			return
		}
		start := time.Now()
		o := r.client.send(ctx, events)
		r.stats.observe(time.Since(start))
		for _, i := range o.stored {
			r.stats.Sent.Add(1)
			r.cp.confirm(events[i].pos)
		}
		if len(o.dead) > 0 {
			r.cfg.Log.Warn("events rejected; writing them to the dead-letter file", "count", len(o.dead), "reason", o.reason)
			var entries []deadLetter
			var positions []*position
			for _, i := range o.dead {
				entries = append(entries, deadLetter{Reason: o.reason, Status: o.status, Event: events[i].Data})
				positions = append(positions, events[i].pos)
			}
			r.deadLetter(entries, positions)
		}
		if o.split { // find the event the API rejects without holding back the rest
			half := len(events) / 2
			r.deliver(ctx, events[:half], 0)
			r.deliver(ctx, events[half:], 0)
			return
		}
		if len(o.retry) == 0 {
			return
		}
		next := make([]*Event, 0, len(o.retry))
		for _, i := range o.retry {
			next = append(next, events[i])
		}
		events = next
		r.stats.Retried.Add(int64(len(events)))
		r.cfg.Log.Debug("retrying", "count", len(events), "attempt", attempt+1, "reason", o.reason)
		if !r.sleep(ctx, attempt) {
			r.abandon(events)
			return
		}
		attempt++
	}
}

// sleep waits a capped exponential backoff with full jitter; false if ctx ended.
func (r *run) sleep(ctx context.Context, attempt int) bool {
	ceiling := min(r.cfg.MaxBackoff, 100*time.Millisecond<<min(attempt, 20))
	select {
	case <-time.After(rand.N(ceiling) + time.Millisecond):
		return true
	case <-ctx.Done():
		return false
	}
}

// deadLetter writes entries and, once they are on disk, counts them handled.
func (r *run) deadLetter(entries []deadLetter, positions []*position) {
	if err := r.dl.write(entries); err != nil {
		r.cfg.Log.Error("cannot write the dead-letter file; these events are not confirmed", "count", len(entries), "err", err)
		r.stats.Abandoned.Add(int64(len(entries)))
		return
	}
	r.stats.DeadLettered.Add(int64(len(entries)))
	for _, p := range positions {
		r.cp.confirm(p)
	}
}

// abandon handles events still unconfirmed at the shutdown deadline: lines of
// followed files stay unconfirmed and are read again on restart; anything
// else goes to the dead-letter file, so that nothing disappears.
func (r *run) abandon(events []*Event) {
	var entries []deadLetter
	for _, e := range events {
		if e.pos != nil {
			r.stats.Abandoned.Add(1)
			continue
		}
		entries = append(entries, deadLetter{Reason: "not confirmed by the API before the shutdown deadline", Event: e.Data})
	}
	if len(entries) > 0 {
		r.deadLetter(entries, nil)
	}
}
