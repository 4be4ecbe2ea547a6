package producer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tributary/tributary/internal/filesource"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/noredirect"
)

// Sources.
const (
	SourceSynthetic = "synthetic"
	SourceStdin     = "stdin"
	SourceFile      = "file"
)

// batchBytes bounds a batch's events and newlines so that a packed batch
// fits one Kinesis record (ingest.MaxRecordBytes with its partition key),
// leaving room for what re-serialising the events may add (numbers beyond a
// double's precision can come back longer); a batch the API still finds too
// large (413) is split.
const batchBytes = ingest.MaxRecordBytes - 64<<10

// DefaultQueueBytes bounds the queue when Config.QueueBytes is 0: it fits a
// t4g.nano (0.5 GiB) with room to spare (see docs/producer.md).
const DefaultQueueBytes = 32 << 20

// Config is everything Run needs. Zero durations and sizes are not defaults:
// cmd/producer fills them from flags.
type Config struct {
	URL             string // the API's /v1 URL
	Source          string
	Rate            float64   // synthetic events per second
	Stdin           io.Reader // for SourceStdin
	Files           []string  // glob patterns, for SourceFile
	CheckpointPath  string    // for SourceFile
	DeadLetterPath  string
	BatchSize       int  // 1: one event per request to /v1; more: /v1/batch
	Gzip            bool // compress batches (Content-Encoding: gzip)
	Linger          time.Duration
	Concurrency     int
	QueueBytes      int64 // bound on events read but not yet confirmed or dead-lettered; 0: DefaultQueueBytes
	Auth            Auth
	HTTPClient      *http.Client
	MaxBackoff      time.Duration
	ShutdownTimeout time.Duration
	StatsInterval   time.Duration
	Poll            time.Duration // how often followed files are checked for new lines
	RotateWait      time.Duration // how long a rotated file must stay idle before it is finished
	Log             *slog.Logger
	Stats           *Stats // counters; Run creates them when nil

	// SpoolPath keeps, synced, events whose source cannot be read again
	// until they are confirmed or dead-lettered (see spool.go); "": none
	// (what is unconfirmed at shutdown is then dead-lettered).
	SpoolPath  string
	SpoolBytes int64 // bound on the spool file; 0: DefaultSpoolBytes

	ReplayFrom   string // for SourceReplay: the dead-letter file to send again (only read)
	ReplayReason string // which of its entries: one of ReplayReasons
}

// Run sends events until ctx ends (or stdin does), then stops reading,
// delivers what is in flight within ShutdownTimeout, and saves the checkpoint.
// It refuses to start when the dead-letter file cannot be opened, and returns
// an error when events could not be dead-lettered, or ErrCheckpointNotSaved
// when only the checkpoint's last save failed.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	if cfg.Source != SourceSynthetic && cfg.Source != SourceStdin && cfg.Source != SourceFile && cfg.Source != SourceReplay {
		return fmt.Errorf("unknown source %q", cfg.Source)
	}
	for _, p := range cfg.Files {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("file pattern %q: %w", p, err)
		}
	}
	if cfg.Source == SourceFile && cfg.CheckpointPath != "" {
		lock, err := filesource.LockCheckpoint(cfg.CheckpointPath)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	dl, err := openDeadLetters(cfg.DeadLetterPath)
	if err != nil {
		return err
	}
	var sp *spool
	if cfg.SpoolPath != "" {
		if cfg.SpoolBytes <= 0 {
			cfg.SpoolBytes = DefaultSpoolBytes
		}
		if sp, err = openSpool(cfg.SpoolPath, cfg.SpoolBytes, cfg.Log); err != nil {
			return err
		}
	}
	if cfg.QueueBytes <= 0 { // a library caller that predates the setting (cmd/smoke)
		cfg.QueueBytes = DefaultQueueBytes
	}
	r := &run{cfg: cfg, dl: dl, stats: cfg.Stats, budget: newBudget(cfg.QueueBytes), problems: newRateLog(cfg.Log, problemEvery),
		client: &client{url: cfg.URL, batch: cfg.BatchSize > 1, gzip: cfg.Gzip, auth: cfg.Auth, http: noredirect.Client(cfg.HTTPClient), log: cfg.Log},
		dlIn:   make(chan []dlItem, 64), dlDone: make(chan struct{}), spool: sp}
	r.unconfirmed = newUnconfirmed(time.Now)
	r.stats.set(func(s *Stats) {
		s.queued, s.oldest = r.budget.inUse, r.unconfirmed.oldest
		if sp != nil {
			s.spooled = sp.state
		}
	})
	if cfg.Source == SourceFile { // other sources neither read nor write it
		r.cp = filesource.LoadCheckpoints(cfg.CheckpointPath, cfg.Log)
	}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	sourceDone := make(chan struct{})
	go r.shutdownDeadline(readCtx, sourceDone, sendCtx.Done(), stopSending)

	lines := make(chan line, 1024)
	read := lines // where the source's lines go: through the spool when it cannot be read again
	if sp != nil && cfg.Source != SourceFile {
		read = make(chan line, spoolGroup)
		go sp.run(read, lines, readCtx.Done())
	}
	emit := func(ctx context.Context, l line) bool {
		l.cost = int64(len(l.data)) + eventOverhead
		if !r.budget.acquire(ctx, l.cost) {
			return false
		}
		l.born = r.unconfirmed.add()
		select {
		case read <- l:
			return true
		case <-ctx.Done():
			r.budget.release(l.cost)
			r.unconfirmed.done(l.born)
			return false
		}
	}
	tryEmit := func(l line) bool { // for the file source, which finds files while it waits
		l.cost = int64(len(l.data)) + eventOverhead
		if !r.budget.tryAcquire(l.cost) {
			return false
		}
		l.born = r.unconfirmed.add()
		select {
		case lines <- l:
			return true
		default:
			r.budget.release(l.cost)
			r.unconfirmed.done(l.born)
			return false
		}
	}
	emitNow := func(l line) { // already read at shutdown: delivered or dead-lettered, never dropped
		l.cost = int64(len(l.data)) + eventOverhead
		r.budget.take(l.cost)
		l.born = r.unconfirmed.add()
		read <- l // the batcher reads until every source has returned
	}
	recovered := func(ctx context.Context, l line) bool { // already in the spool
		l.cost = int64(len(l.data)) + eventOverhead
		if !r.budget.acquire(ctx, l.cost) {
			return false
		}
		l.born = r.unconfirmed.add()
		lines <- l // not closed before the source returns
		return true
	}
	var sourceErr error
	go func() {
		defer close(sourceDone)
		if sp != nil {
			sp.recoverSpool(readCtx, recovered)
		}
		var err error
		switch cfg.Source {
		case SourceSynthetic:
			err = generate(readCtx, cfg.Rate, emit)
		case SourceStdin:
			err = readStream(readCtx, cfg.Stdin, sendCtx.Done(), emit, emitNow)
		case SourceReplay:
			err = replay(readCtx, cfg.ReplayFrom, cfg.ReplayReason, emit, cfg)
		case SourceFile:
			fc := filesource.Config{Patterns: cfg.Files, Exclude: append([]string{cfg.DeadLetterPath}, filesource.CheckpointFiles(cfg.CheckpointPath)...),
				Checkpoints: r.cp, Poll: cfg.Poll, RotateWait: cfg.RotateWait, Log: cfg.Log, Concurrency: cfg.Concurrency,
				TryEmit: func(l filesource.Line) bool { return tryEmit(fileLine(l)) },
				Emit:    func(ctx context.Context, l filesource.Line) bool { return emit(ctx, fileLine(l)) },
				Problem: newRateLog(cfg.Log, problemEvery).at}
			if sp != nil {
				fc.Exclude = append(fc.Exclude, cfg.SpoolPath, cfg.SpoolPath+".tmp", cfg.SpoolPath+".lock")
				fc.Keep = r.keepFlight
			}
			fl := filesource.New(fc)
			r.stats.set(func(s *Stats) { s.files = func() (int64, int64) { return fl.LagBytes(), fl.GoneUnread() } })
			err = fl.Run(readCtx)
		}
		if err != nil {
			sourceErr = err
			stopReading()
		}
		close(read)
	}()

	batches := make(chan []*Event, cfg.Concurrency)
	workers := runtime.GOMAXPROCS(0)
	work, chunks := make(chan *parseChunk, workers), make(chan *parseChunk, 4*workers)
	go chunkLines(lines, work, chunks)
	for range workers {
		go parseChunks(work)
	}
	go r.batch(chunks, batches)
	var senders sync.WaitGroup
	for range cfg.Concurrency {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for b := range batches {
				r.deliver(sendCtx, b, 0)
			}
		}()
	}
	go r.deadLetterLoop(sendCtx.Done())

	done := make(chan struct{})
	go func() {
		senders.Wait()
		close(r.dlIn)
		<-r.dlDone
		close(done)
	}()
	r.housekeep(done)
	stopSending()
	<-sourceDone
	var cpErr error
	if r.cp != nil {
		if err := r.cp.Fold(); err != nil {
			cpErr = fmt.Errorf("saving the checkpoint %s: %w", cfg.CheckpointPath, err)
		}
		r.cp.Close()
	}
	if sp != nil {
		if kept := sp.close(); kept > 0 {
			cfg.Log.Warn("events not confirmed are kept in the spool: the next start sends them first, with their event_id", "kept", kept, "path", cfg.SpoolPath)
		}
	}
	r.stats.report(cfg.Log, time.Since(start), 0)
	if err := r.dl.close(); err != nil {
		cfg.Log.Error("closing the dead-letter file", "err", err)
		r.notDeadLettered = max(r.notDeadLettered, 1)
	}
	var fatal error
	if r.notDeadLettered > 0 {
		fatal = fmt.Errorf("%d events could not be written to the dead-letter file %s (see the errors above)", r.notDeadLettered, cfg.DeadLetterPath)
	}
	r.unkeptMu.Lock()
	if r.notKept > 0 {
		fatal = errors.Join(fatal, fmt.Errorf("%d lines of files that can no longer be read again could not be kept in the spool %s (logged above in full)", r.notKept, cfg.SpoolPath))
	}
	r.unkeptMu.Unlock()
	if fatal = errors.Join(sourceErr, fatal); fatal != nil {
		return errors.Join(fatal, cpErr)
	}
	if cpErr != nil {
		return fmt.Errorf("%w: %w", ErrCheckpointNotSaved, cpErr)
	}
	return nil
}

// ErrCheckpointNotSaved is Run's error when all it failed at is the last
// save of the checkpoint: every event was handled, but a restart sends again
// what the checkpoint missed.
var ErrCheckpointNotSaved = errors.New("the checkpoint could not be saved (a restart sends again the lines since the last save)")

// shutdownDeadline stops sending ShutdownTimeout after reading stopped, or
// after the source ended (stdin at its end): then, so that a long input is
// sent whole, the time restarts each time the API confirms events, and
// only an API that confirms nothing for that long (down) ends the run.
func (r *run) shutdownDeadline(readCtx context.Context, sourceDone, stopped <-chan struct{}, stopSending func()) {
	select {
	case <-readCtx.Done():
	case <-sourceDone:
	case <-stopped:
		return
	}
	deadline := time.NewTimer(r.cfg.ShutdownTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(max(min(r.cfg.ShutdownTimeout/4, time.Second), time.Millisecond))
	defer tick.Stop()
	sent := r.stats.Sent.Load()
	for {
		select {
		case <-deadline.C:
			stopSending()
			return
		case <-stopped:
			return
		case <-tick.C:
			if now := r.stats.Sent.Load(); now != sent && readCtx.Err() == nil {
				sent = now
				deadline.Reset(r.cfg.ShutdownTimeout)
			}
		}
	}
}

type run struct {
	cfg    Config
	cp     *filesource.Checkpoints // nil unless the source is file
	dl     *deadLetters
	stats  *Stats
	client *client
	budget *budget
	// problems says at the default level, at a bounded rate, why events
	// are not delivered.
	problems *rateLog
	spool    *spool // nil without one
	// unconfirmed dates the events read and not yet confirmed or
	// dead-lettered, for the age of the oldest.
	unconfirmed *unconfirmed

	dlIn            chan []dlItem
	dlDone          chan struct{}
	notDeadLettered int // set by deadLetterLoop before dlDone closes

	// unkept holds the lines whose file can no longer be read again and
	// which the spool could not take (a full disk): only in memory, so at
	// shutdown they are logged in full (keepLines), never left to a file
	// that is gone. notKept counts those logged.
	unkeptMu sync.Mutex
	unkept   map[*position]bool
	notKept  int
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
			if r.cp == nil {
				continue
			}
			if err := r.cp.SaveDue(); err != nil {
				r.problems.at(slog.LevelError, "checkpoint", "CANNOT SAVE THE CHECKPOINT: a restart sends again (with the same ids) the lines since the last save, new files wait, and the exit status is 3 unless a later save works; free space on its disk",
					"path", r.cfg.CheckpointPath, "err", err)
			}
		case now := <-report.C:
			prevSent = r.stats.report(r.cfg.Log, now.Sub(last), prevSent)
			last = now
		}
	}
}

// Lines are parsed on every core, in chunks: chunkLines hands each chunk to
// the parse workers and, in the order read, to the batcher, which waits for
// each chunk to be parsed. So a file's lines reach the batches, the
// checkpoint and the dead-letter file in their order, as with one
// goroutine, and a line holds its share of the queue's budget throughout.

// parseChunk is lines read one after the other and what parsing made of
// them, ready once done is closed.
type parseChunk struct {
	lines  []line
	parsed []parsedLine
	done   chan struct{}
}

// parsedLine is a line enriched (data and id), or why it cannot be sent.
type parsedLine struct {
	data   []byte
	id     string
	reason string
}

// maxChunkLines bounds a chunk: enough to make handing it over cheap per
// line, few enough that a chunk is parsed in well under a millisecond.
const maxChunkLines = 128

// chunkLines groups what lines has ready, without waiting for more: a line
// that arrives alone is parsed alone, at once.
func chunkLines(lines <-chan line, work, ordered chan<- *parseChunk) {
	defer close(work)
	defer close(ordered)
	for l := range lines {
		c := &parseChunk{lines: make([]line, 1, 16), done: make(chan struct{})}
		c.lines[0] = l
		open := true
	more:
		for len(c.lines) < maxChunkLines {
			select {
			case l, ok := <-lines:
				if !ok {
					open = false
					break more
				}
				c.lines = append(c.lines, l)
			default:
				break more
			}
		}
		ordered <- c // before it can be done: the batcher waits for chunks in this order
		work <- c
		if !open {
			return
		}
	}
}

// parseChunks parses the chunks of work, each line as parse would.
func parseChunks(work <-chan *parseChunk) {
	var e enricher
	for c := range work {
		c.parsed = make([]parsedLine, len(c.lines))
		for i, l := range c.lines {
			c.parsed[i] = parseLine(&e, l)
		}
		close(c.done)
	}
}

// parseLine enriches l, or says why it cannot be sent.
func parseLine(e *enricher, l line) parsedLine {
	if l.tooLong {
		return parsedLine{reason: fmt.Sprintf("line longer than %d bytes (kept truncated here); the most a Kinesis record takes is %d", maxLineBytes, MaxEventBytes)}
	}
	at := l.read
	if at.IsZero() {
		at = time.Now()
	}
	data, id, err := e.enrich(l.data, l.id, at)
	if err != nil {
		return parsedLine{reason: err.Error()}
	}
	return parsedLine{data: data, id: id}
}

// batch turns parsed lines into events and groups them: BatchSize events,
// batchBytes, or whatever arrived within Linger of the first.
func (r *run) batch(chunks <-chan *parseChunk, out chan<- []*Event) {
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
		case c, ok := <-chunks:
			if !ok {
				flush()
				return
			}
			<-c.done
			evs := make([]Event, len(c.lines)) // one allocation for the chunk's events
			for i, l := range c.lines {
				r.stats.Read.Add(1)
				ev := &evs[i]
				if !r.event(l, c.parsed[i], ev) {
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
			}
		case <-linger.C:
			flush()
		}
	}
}

// event sets ev to l's event once parsed as p; a line that cannot be sent
// goes to the dead-letter file instead (false).
func (r *run) event(l line, p parsedLine, ev *Event) bool {
	if p.reason == "" {
		if l.pos != nil {
			l.pos.Parsed(p.data)
		}
		*ev = Event{ID: p.id, Data: p.data, pos: l.pos, cost: l.cost, spool: l.spool, born: l.born}
		return true
	}
	reason := p.reason
	if l.cut != "" {
		reason = "line " + l.cut + ": " + reason
	}
	// A followed file's lines share their read's buffer: the position holds
	// a copy instead, so that buffer goes while the dead-letter file is slow,
	// as it does with an accepted line's parsed event.
	if l.pos != nil {
		l.data = bytes.Clone(l.data)
		l.pos.Parsed(l.data)
	}
	entry := deadLetter{Reason: reason}
	switch {
	case !utf8.Valid(l.data): // a JSON string would hold U+FFFD, not these bytes
		entry.RawBase64 = base64.StdEncoding.EncodeToString(l.data)
	case json.Valid(l.data):
		entry.Event = l.data
	default:
		entry.Raw = string(l.data)
	}
	r.dlIn <- []dlItem{{entry: entry, pos: l.pos, cost: l.cost, spool: l.spool, born: l.born}}
	return false
}

// deliver sends events until each is stored or dead-lettered, or the
// shutdown deadline passes.
func (r *run) deliver(ctx context.Context, events []*Event, attempt int) {
	last := ""                 // why the last attempt failed, for the dead-letter file
	unknown, serverErr := 0, 0 // answers in a row that did not confirm these events
	for len(events) > 0 {
		if ctx.Err() != nil {
			r.abandon(events, last)
			return
		}
		start := time.Now()
		o := r.client.send(ctx, events)
		r.stats.observe(time.Since(start))
		if ctx.Err() == nil { // not the deadline's own cancellation
			last = o.reason
		}
		for _, i := range o.stored {
			r.stats.Sent.Add(1)
			r.handled(events[i].pos, events[i].spool, events[i].cost, events[i].born)
		}
		unknown, serverErr = countUnconfirmed(o, unknown, serverErr)
		if len(o.retry) > 0 && (unknown > maxUnknownAnswers || serverErr > maxServerErrors) {
			o.reason = fmt.Sprintf("no answer confirmed these events after %d tries (each may have stored a copy); last: %s", attempt+1, o.reason)
			o.dead, o.retry = append(o.dead, o.retry...), nil
		}
		if len(o.dead) > 0 {
			key, what := advice(o)
			r.problems.at(slog.LevelWarn, "dead:"+key, "events not stored; writing them to the dead-letter file", "count", len(o.dead), "reason", o.reason, "what_to_do", what)
			items := make([]dlItem, 0, len(o.dead))
			for _, i := range o.dead {
				items = append(items, dlItem{entry: deadLetter{Reason: o.reason, Status: o.status, Event: events[i].Data}, pos: events[i].pos, cost: events[i].cost, spool: events[i].spool, born: events[i].born})
			}
			r.dlIn <- items
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
		key, what := advice(o)
		level := slog.LevelWarn
		if key == "throttled" { // the API's backpressure, not a fault
			level = slog.LevelInfo
		}
		r.problems.at(level, key, "events not confirmed; sending them again", "count", len(events), "reason", o.reason, "what_to_do", what)
		if !r.sleep(ctx, attempt) {
			r.abandon(events, last)
			return
		}
		attempt++
	}
}

// Events whose answers never confirm them are sent a bounded number of
// times, then dead-lettered with the last answer: each try may store a copy
// (an API that stores, then answers unreadably or with a 5xx), and resending
// forever would store them without end.
const (
	// maxUnknownAnswers is for 2xx answers the API does not document
	// (unreadable, too large, the wrong record count, 202, 204): a working
	// API gives one rarely, a proxy or a broken deployment every time; ten
	// in a row do not happen by chance even when a third of answers are so.
	maxUnknownAnswers = 10
	// maxServerErrors is for 5xx answers, which the API documents as
	// nothing stored: about 2 minutes of them at the default -max-backoff,
	// time for API Gateway or Kinesis to recover from a blip.
	maxServerErrors = 20
)

// countUnconfirmed adds o to the counts of answers in a row that did not
// confirm events: an answer of another kind ends the run of its kind.
func countUnconfirmed(o outcome, unknown, serverErr int) (int, int) {
	if o.unknown {
		unknown++
	} else {
		unknown = 0
	}
	if o.status >= 500 {
		serverErr++
	} else {
		serverErr = 0
	}
	return unknown, serverErr
}

// backoff is a capped exponential backoff with full jitter.
func (r *run) backoff(attempt int) time.Duration {
	ceiling := min(r.cfg.MaxBackoff, 100*time.Millisecond<<min(attempt, 20))
	return rand.N(ceiling) + time.Millisecond
}

// sleep waits a backoff; false if ctx ended.
func (r *run) sleep(ctx context.Context, attempt int) bool {
	select {
	case <-time.After(r.backoff(attempt)):
		return true
	case <-ctx.Done():
		return false
	}
}

// handled releases what an event held once it is stored or dead-lettered,
// and lets the checkpoint move past it. A line of a followed file keeps
// positionOverhead of its cost until the checkpoint has moved past it.
// born is the event's mark in r.unconfirmed.
func (r *run) handled(pos *position, spool uint64, cost int64, born uint32) {
	r.unconfirmed.done(born)
	if r.cp != nil && pos != nil {
		moved, kept := pos.Confirm()
		cost += int64(moved-1) * positionOverhead
		spool = max(spool, kept) // a line of a file kept in the spool (keepFlight)
	}
	if spool != 0 {
		r.spool.ack(spool)
	}
	r.budget.release(cost)
}

// abandon handles events still unconfirmed at the shutdown deadline: those
// in the spool stay there, lines of followed files stay unconfirmed and are
// read again on restart; anything else goes to the dead-letter file, so that
// nothing disappears, with why the last attempt failed.
func (r *run) abandon(events []*Event, last string) {
	reason := shutdownReason
	if last != "" {
		reason += "; last attempt: " + last
	}
	var items []dlItem
	var lines []*Event
	for _, e := range events {
		if e.spool != 0 { // on disk: the next start sends it first
			r.stats.Kept.Add(1)
			r.budget.release(e.cost)
			continue
		}
		if e.pos != nil {
			if e.pos.KeptIn() != 0 { // kept while in flight (keepFlight): on disk already
				r.stats.Kept.Add(1)
				r.budget.release(e.cost)
				continue
			}
			lines = append(lines, e)
			continue
		}
		items = append(items, dlItem{entry: deadLetter{Reason: reason, Event: e.Data}, cost: e.cost})
	}
	r.keepLines(lines)
	if len(items) > 0 {
		r.dlIn <- items
	}
}

// dlItem is an event on its way to the dead-letter file.
type dlItem struct {
	entry deadLetter
	pos   *position // nil: the source cannot be read again
	cost  int64
	spool uint64
	born  uint32 // its mark in run.unconfirmed
}

// deadLetterLoop writes what arrives on dlIn to the dead-letter file. When
// the file cannot be written it says so, keeps the events (unconfirmed, in
// the queue's bytes, so reading waits when the queue is full) and tries
// again with backoff. After stop, once dlIn is closed, it tries once more;
// what still cannot be written is logged in full to stderr when its source
// cannot be read again, and left unconfirmed (read again on restart) when it
// can; Run then fails.
func (r *run) deadLetterLoop(stop <-chan struct{}) {
	defer close(r.dlDone)
	in := r.dlIn
	var pending []dlItem
	var retry <-chan time.Time
	failures, stopped := 0, false
	for in != nil || len(pending) > 0 {
		if len(pending) > 0 && retry == nil {
			entries := make([]deadLetter, len(pending))
			for i, it := range pending {
				entries[i] = it.entry
			}
			err := r.dl.write(entries)
			if err == nil {
				if failures > 0 {
					r.cfg.Log.Info("the dead-letter file can be written again", "path", r.cfg.DeadLetterPath, "written", len(pending))
				}
				r.stats.deadLettered(entries)
				for _, it := range pending {
					r.handled(it.pos, it.spool, it.cost, it.born)
				}
				pending, failures = nil, 0
				continue
			}
			failures++
			r.cfg.Log.Error("CANNOT WRITE THE DEAD-LETTER FILE: these events stay unconfirmed and the write is retried; reading stops when the queue is full",
				"path", r.cfg.DeadLetterPath, "events", len(pending), "attempt", failures, "err", err)
			if stopped && in == nil {
				r.cannotDeadLetter(pending)
				return
			}
			retry = time.After(r.backoff(failures - 1))
		}
		select {
		case items, ok := <-in:
			if !ok {
				in = nil
				if stopped {
					retry = nil
				}
				continue
			}
			pending = append(pending, items...)
		case <-retry:
			retry = nil
		case <-stop:
			stop, stopped, retry = nil, true, nil
		}
	}
}

// cannotDeadLetter is the last resort at shutdown for events the dead-letter
// file did not take.
func (r *run) cannotDeadLetter(items []dlItem) {
	for _, it := range items {
		r.stats.Abandoned.Add(1)
		r.budget.release(it.cost)
		if it.pos != nil {
			continue
		}
		r.cfg.Log.Error("event neither delivered nor dead-lettered: it is written here so it is not lost", "reason", it.entry.Reason,
			"event", it.entry.Event, "raw", it.entry.Raw, "raw_base64", it.entry.RawBase64)
	}
	r.notDeadLettered = len(items)
}
