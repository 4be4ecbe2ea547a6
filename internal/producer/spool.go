package producer

// The spool keeps on the producer's own disk the events whose source cannot
// be read again (stdin, the synthetic source, and lines of followed files
// still unconfirmed at shutdown or when their file is truncated, deleted or
// no longer matched: keepFlight), from the moment they are read until the
// API confirms them or they are dead-lettered. It is one append-only file
// of JSON lines: a record per event (its sequence number, event_id, the
// line and when it was read, so a resent event is the same event) and ack
// lines naming the records since confirmed or dead-lettered. Records are
// written in groups, one fsync per group (group commit), before their events
// go on to the queue. When every record is acknowledged the file is cut to
// nothing; when it would pass its bound it is compacted (the live records
// copied to a new file, renamed over it); when the live records alone fill
// it, reading waits. At start the records not acknowledged are sent first.
// A last line without its newline, or a line that is not a whole record
// (what a power loss leaves after the last sync), is cut off or skipped.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tributary/tributary/internal/filesource"
)

// DefaultSpoolBytes bounds the spool when Config.SpoolBytes is 0.
const DefaultSpoolBytes = 256 << 20

// spoolGroup bounds the lines written with one fsync.
const spoolGroup = 1024

type spoolRecord struct {
	Seq  uint64   `json:"seq,omitempty"`
	ID   string   `json:"id,omitempty"`
	At   string   `json:"at,omitempty"`   // when it was read: its event_time unless it has one
	Line string   `json:"line,omitempty"` // the line, when it is valid UTF-8
	B64  []byte   `json:"b64,omitempty"`  // the line, when it is not
	Long bool     `json:"long,omitempty"` // the line holds only the start of a longer one
	Cut  string   `json:"cut,omitempty"`
	Ack  []uint64 `json:"ack,omitempty"`
}

type spool struct {
	path  string
	limit int64
	log   *slog.Logger
	lock  *os.File

	fmu     sync.Mutex // the file, size, recover's range
	f       *os.File
	size    int64
	recover int64 // bytes at the start holding the records found at open; not compacted until sent

	mu        sync.Mutex
	next      uint64
	live      map[uint64]int64 // record bytes by seq, of records not acknowledged
	liveBytes int64
	acks      []uint64      // acknowledged since the last write
	freed     chan struct{} // closed when records are acknowledged
	full      bool          // reading waits for room
	fullSince time.Time
}

// openSpool opens (creates) the spool at path, locked for this process,
// and compacts what an earlier run left: recoverSpool then sends it.
func openSpool(path string, limit int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool lock %s: %w", path, err)
	}
	if err := filesource.Flock(lock); err != nil {
		lock.Close()
		if errors.Is(err, filesource.ErrLocked) {
			return nil, fmt.Errorf("another producer uses the spool %s (%s.lock is locked); give each producer its own -spool", path, path)
		}
		return nil, fmt.Errorf("spool lock %s: %w", path, err)
	}
	s := &spool{path: path, limit: limit, log: log, lock: lock, live: map[uint64]int64{}, freed: make(chan struct{})}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	return s, nil
}

// load reads what an earlier run left: the records not acknowledged stay,
// compacted to the start of the file (where the disk has room for that).
func (s *spool) load() error {
	raw, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s.reopen()
	}
	if err != nil {
		return err
	}
	defer raw.Close()
	bad, torn := 0, false
	whole := int64(0) // bytes up to the end of the last whole line
	br := bufio.NewReaderSize(raw, 1<<20)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
			torn = true // written but never synced, then cut by a crash
			break
		}
		if len(b) > 0 {
			whole += int64(len(b))
			var r spoolRecord
			switch {
			case json.Unmarshal(b, &r) != nil:
				bad++
			case r.Seq > 0:
				s.live[r.Seq] = int64(len(b))
				s.next = max(s.next, r.Seq)
			default:
				for _, a := range r.Ack {
					delete(s.live, a)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if torn || bad > 0 {
		s.log.Warn("the spool ends with an incomplete record, or holds lines that are not records (a crash before a sync): they are skipped", "path", s.path, "incomplete_last", torn, "not_records", bad)
	}
	if err := s.reopen(); err != nil {
		return err
	}
	if err := s.compact(); err != nil {
		// A full disk: refusing to start would leave every file unread
		// until there is room. The records are sent from where they are
		// (recoverSpool skips those acknowledged); only a torn end is cut
		// off, which takes no room.
		if rerr := s.reopen(); rerr != nil {
			return errors.Join(err, rerr)
		}
		if s.size > whole {
			if terr := s.f.Truncate(whole); terr != nil {
				return errors.Join(err, terr)
			}
			s.size = whole
		}
		s.log.Error("cannot compact the spool (a full disk?): its events are sent from where they are", "path", s.path, "err", err)
	}
	for _, n := range s.live {
		s.liveBytes += n
	}
	s.recover = s.size
	if len(s.live) > 0 {
		s.log.Info("the spool holds events not confirmed by an earlier run: they are sent first", "path", s.path, "events", len(s.live))
	}
	return nil
}

func (s *spool) reopen() error {
	if s.f != nil {
		s.f.Close()
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// compact rewrites the file with only the records not acknowledged (none:
// the file is cut to nothing). The caller holds fmu, or is load.
func (s *spool) compact() error {
	s.mu.Lock()
	live := make(map[uint64]bool, len(s.live))
	for seq := range s.live {
		live[seq] = true
	}
	s.acks = s.acks[:0] // the new file holds no record they name
	s.mu.Unlock()
	if len(live) == 0 {
		if err := s.f.Truncate(0); err != nil {
			return err
		}
		s.size = 0
		return s.f.Sync()
	}
	tmp := s.path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once renamed
	in, err := os.Open(s.path)
	if err != nil {
		out.Close()
		return err
	}
	defer in.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	br := bufio.NewReaderSize(in, 1<<20)
	for {
		b, rerr := br.ReadBytes('\n')
		var r spoolRecord
		if bytes.HasSuffix(b, []byte("\n")) && json.Unmarshal(b, &r) == nil && live[r.Seq] {
			delete(live, r.Seq) // a record written twice is kept once
			if _, err := bw.Write(b); err != nil {
				out.Close()
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	if err := errors.Join(bw.Flush(), out.Sync(), out.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil { // the rename itself survives a power loss
		_ = d.Sync()
		d.Close()
	}
	return s.reopen()
}

// recoverSpool hands out the records an earlier run left, oldest first,
// through emit (false: stop, they stay in the spool).
func (s *spool) recoverSpool(ctx context.Context, emit func(context.Context, line) bool) {
	defer func() {
		s.fmu.Lock()
		s.recover = 0
		s.fmu.Unlock()
	}()
	s.fmu.Lock()
	end := s.recover
	s.fmu.Unlock()
	if end == 0 {
		return
	}
	f, err := os.Open(s.path) // compaction waits until this is done: the bytes stay where they are
	if err != nil {
		s.log.Error("cannot read the spool; its events stay there for the next start", "path", s.path, "err", err)
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, end), 1<<20)
	sent := map[uint64]bool{} // a file load could not compact may hold a record twice
	for ctx.Err() == nil {
		b, err := br.ReadBytes('\n')
		var r spoolRecord
		if len(b) > 0 && json.Unmarshal(b, &r) == nil && r.Seq > 0 && s.isLive(r.Seq) && !sent[r.Seq] {
			sent[r.Seq] = true
			l := line{data: []byte(r.Line), id: r.ID, spool: r.Seq, tooLong: r.Long, cut: r.Cut}
			if r.B64 != nil {
				l.data = r.B64
			}
			l.read, _ = time.Parse(time.RFC3339Nano, r.At)
			if !emit(ctx, l) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// record is the spool line for l.
func spoolLine(l line) []byte {
	r := spoolRecord{Seq: l.spool, ID: l.id, At: l.read.UTC().Format(time.RFC3339Nano), Long: l.tooLong, Cut: l.cut}
	if utf8.Valid(l.data) {
		r.Line = string(l.data)
	} else {
		r.B64 = l.data
	}
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

// write appends ls (giving each a seq, and an id and read time when it has
// none) with the acknowledgements due, in one write and one fsync. It waits
// for room while the live records fill the spool, unless force (at
// shutdown: what was read must be kept) or ctx ended (then it writes too).
func (s *spool) write(ctx context.Context, ls []line, force bool) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := time.Now()
	recs := make([][]byte, len(ls))
	n := int64(0)
	s.mu.Lock()
	for i := range ls {
		if ls[i].id == "" {
			ls[i].id = randomID()
		}
		if ls[i].read.IsZero() {
			ls[i].read = now
		}
		s.next++
		ls[i].spool = s.next
		recs[i] = spoolLine(ls[i])
		n += int64(len(recs[i]))
	}
	s.mu.Unlock()
	for !force && ctx.Err() == nil {
		s.mu.Lock()
		liveBytes, freed := s.liveBytes, s.freed
		s.mu.Unlock()
		if s.size+n <= s.limit || (liveBytes == 0 && s.recover == 0) {
			break
		}
		// Compacting copies the live records: only when that leaves room
		// for a while, not at every group.
		if s.recover == 0 && liveBytes+n <= s.limit-s.limit/4 {
			if err := s.compact(); err != nil {
				return fmt.Errorf("compacting: %w", err)
			}
			continue
		}
		s.setFull(true, liveBytes)
		s.fmu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		s.fmu.Lock()
	}
	s.setFull(false, 0)
	if s.size > 0 && s.recover == 0 && s.liveBytes0() == 0 {
		if err := s.compact(); err != nil { // cut to nothing
			return fmt.Errorf("emptying: %w", err)
		}
	}
	buf := s.ackLine()
	for _, r := range recs {
		buf = append(buf, r...)
	}
	if _, err := s.f.Write(buf); err != nil {
		_ = s.f.Truncate(s.size) // no half record before the next one
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.size += int64(len(buf))
	s.mu.Lock()
	for i := range ls {
		s.live[ls[i].spool] = int64(len(recs[i]))
		s.liveBytes += int64(len(recs[i]))
	}
	s.mu.Unlock()
	return nil
}

// isLive tells whether the record seq is still to be confirmed.
func (s *spool) isLive(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[seq]
	return ok
}

func (s *spool) liveBytes0() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveBytes
}

// ackLine takes the acknowledgements due, as a spool line ("" when none).
func (s *spool) ackLine() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acks) == 0 {
		return nil
	}
	b, _ := json.Marshal(spoolRecord{Ack: s.acks})
	s.acks = nil
	return append(b, '\n')
}

func (s *spool) setFull(full bool, liveBytes int64) {
	s.mu.Lock()
	was := s.full
	s.full = full
	if full && !was {
		s.fullSince = time.Now()
	}
	since := s.fullSince
	s.mu.Unlock()
	switch {
	case full && !was:
		s.log.Warn("the spool is full of events the API has not confirmed: reading waits (nothing is dropped)", "path", s.path, "spool_bytes", liveBytes, "limit_bytes", s.limit)
	case !full && was:
		s.log.Info("the spool has room again: reading goes on", "path", s.path, "waited_s", time.Since(since).Seconds())
	}
}

// ack marks a record confirmed or dead-lettered. Its line is written with
// the next group, unsynced: a crash that loses it makes the event sent again
// with its own id.
func (s *spool) ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.live[seq]
	if !ok {
		return
	}
	delete(s.live, seq)
	s.liveBytes -= n
	s.acks = append(s.acks, seq)
	close(s.freed)
	s.freed = make(chan struct{})
}

// flushAcks writes the acknowledgements due, and empties the file when
// nothing in it is live.
func (s *spool) flushAcks() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.recover == 0 && s.size > 0 && s.liveBytes0() == 0 {
		if err := s.compact(); err != nil {
			s.log.Warn("cannot empty the spool", "path", s.path, "err", err)
		}
		return
	}
	if b := s.ackLine(); len(b) > 0 {
		if _, err := s.f.Write(b); err != nil {
			_ = s.f.Truncate(s.size)
			return
		}
		s.size += int64(len(b))
	}
}

// state is the bytes of live records and whether reading waits for room.
func (s *spool) state() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveBytes, s.full
}

// run writes what arrives on in to the spool in groups and hands each line
// on to out once it is synced. A group that cannot be written is retried;
// after stop, a group that still cannot be written goes on unspooled (it is
// then dead-lettered if it is not confirmed). It closes out when in is closed.
func (s *spool) run(in <-chan line, out chan<- line, stop <-chan struct{}) {
	defer close(out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var group []line
		select {
		case l, ok := <-in:
			if !ok {
				return
			}
			group = append(group, l)
		case <-tick.C:
			s.flushAcks()
			continue
		}
	more:
		for len(group) < spoolGroup {
			select {
			case l, ok := <-in:
				if !ok {
					break more
				}
				group = append(group, l)
			default:
				break more
			}
		}
		for attempt := 0; ; attempt++ {
			err := s.write(ctx, group, false)
			if err == nil {
				break
			}
			s.log.Error("CANNOT WRITE THE SPOOL: reading waits and the write is retried", "path", s.path, "events", len(group), "attempt", attempt+1, "err", err)
			if ctx.Err() != nil {
				for i := range group {
					group[i].spool = 0
				}
				break
			}
			select {
			case <-time.After(min(time.Second<<min(attempt, 4), 10*time.Second)):
			case <-ctx.Done():
			}
		}
		for _, l := range group {
			out <- l
		}
	}
}

// close writes the acknowledgements due and removes the file when nothing
// in it is live; it returns how many events it keeps for the next start.
func (s *spool) close() int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	defer s.lock.Close()
	s.mu.Lock()
	kept := len(s.live)
	s.mu.Unlock()
	if kept == 0 {
		s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot remove the empty spool", "path", s.path, "err", err)
		}
		return 0
	}
	if b := s.ackLine(); len(b) > 0 {
		if _, err := s.f.Write(b); err != nil {
			_ = s.f.Truncate(s.size)
		}
	}
	if err := s.f.Sync(); err != nil {
		s.log.Warn("cannot sync the spool's acknowledgements: some confirmed events may be sent again", "path", s.path, "err", err)
	}
	s.f.Close()
	return kept
}

// keepFlight puts a file's lines in flight (handed out, neither confirmed
// nor kept yet: ps, as fls) in the spool, synced, and moves the checkpoint
// past them. The
// follower calls it once their file can no longer be read again (truncated,
// deleted, matched by no pattern), so that a crash loses none of them. They
// stay in flight: a confirmation acknowledges their spool records, and at
// shutdown they count as kept. They are written even when the spool is
// full: already read, they are bounded by the queue.
func (r *run) keepFlight(ps []*position, fls []filesource.Line) {
	ls := make([]line, len(fls))
	for i, l := range fls {
		ls[i] = fileLine(l)
	}
	if err := r.spool.write(context.Background(), ls, true); err != nil {
		r.problems.at(slog.LevelError, "keep", "CANNOT WRITE THE SPOOL: lines of a file that can no longer be read again are only in memory until the API confirms them",
			"events", len(ls), "path", r.cfg.SpoolPath, "err", err)
		r.unkeptMu.Lock()
		if r.unkept == nil {
			r.unkept = map[*position]bool{}
		}
		for _, p := range ps {
			r.unkept[p] = true
		}
		r.unkeptMu.Unlock()
		return
	}
	seqs := make([]uint64, len(ls))
	for i := range ls {
		seqs[i] = ls[i].spool
	}
	ack, freed := r.cp.Kept(ps, seqs)
	for _, seq := range ack { // confirmed while they were written
		r.spool.ack(seq)
	}
	r.budget.release(int64(freed) * positionOverhead)
	r.problems.at(slog.LevelInfo, "kept", "lines of a file that can no longer be read again (truncated, deleted, or rotated past the patterns) are kept in the spool until the API confirms them",
		"events", len(ls), "path", r.cfg.SpoolPath)
}

// keepLines puts lines of followed files still unconfirmed at shutdown in
// the spool, and lets the checkpoint move past them: their file may not be
// there to read them again (truncated after a copy the patterns do not
// match, deleted, rotated away). Without a spool, or when it cannot be
// written, they stay unconfirmed, to be read again from their file; those
// whose file keepFlight knew could not be read again are logged in full.
func (r *run) keepLines(events []*Event) {
	if len(events) == 0 {
		return
	}
	if r.spool != nil {
		ls := make([]line, len(events))
		for i, e := range events {
			ls[i] = line{data: e.Data, id: e.ID} // with its event_id and event_time
		}
		err := r.spool.write(context.Background(), ls, true)
		if err == nil {
			for _, e := range events {
				r.stats.Kept.Add(1)
				r.handled(e.pos, 0, e.cost, e.born)
			}
			return
		}
		r.cfg.Log.Error("cannot write lines of followed files to the spool at shutdown: they are read again from their files at the next start, if they are still there",
			"events", len(events), "path", r.cfg.SpoolPath, "err", err)
	}
	r.unkeptMu.Lock()
	defer r.unkeptMu.Unlock()
	for _, e := range events {
		r.stats.Abandoned.Add(1)
		r.budget.release(e.cost)
		if r.unkept[e.pos] {
			r.cfg.Log.Error("event neither delivered nor dead-lettered: it is written here so it is not lost",
				"reason", "its file can no longer be read again and the spool cannot be written", "event", json.RawMessage(e.Data))
			r.notKept++
		}
	}
}
