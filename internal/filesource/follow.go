// Package filesource follows files as they grow and hands out their lines,
// each with an id's source (its chain hash) and a position that delivery
// confirms; it keeps the checkpoint of what was confirmed. It knows nothing
// of delivery: the producer imports it (FILESOURCE.md has the states).
package filesource

// DESIGN of the file source, after Vector's file source (lib/file-source:
// fingerprinter, file_server, checkpointer) and Fluent Bit's tail input
// (in_tail: tail_file.c, tail_db.c).
//
// Finding files. Every -poll the glob patterns are expanded; each regular
// file found is known by device and inode while it is open. An open
// descriptor is kept for every file followed, so a renamed file is still the
// same file, a lagging writer's lines after a rename are still read, and its
// inode cannot be reused while it is held. A file that is no longer matched
// (or was deleted) is read until it has stayed idle for -rotate-wait, then
// closed. Descriptors are budgeted (fileBudget: RLIMIT_NOFILE less what
// delivery and the producer's own files need): beyond it, matched files
// wait, with a warning naming how many, and files idle at their end are
// parked (closed, their record kept, passed over until they grow) to make
// room; a parked file loses the guarantees above of an open descriptor until
// it is opened again. Compressed files (gzip, bzip2, xz, zstd magic) are skipped with a
// warning: `*.log*` matches app.log.2.gz, whose bytes are not events. While
// reading waits for room in the queue, the patterns are still expanded every
// poll (send): only a file opened before it is deleted or renamed over can
// still be read, and opening one costs no queue memory.
//
// Knowing a file again. Device and inode are only a hint (Vector's
// device_and_inode is unsafe once an inode is reused; Fluent Bit keys its
// database by inode). A file's identity is a fingerprint of its first bytes,
// like Vector's checksum: a hash of the first fpBytes bytes, or of all of
// them while the file is shorter (the record keeps how many it covers and
// grows it with the file, so a short new file is followed at once, unlike
// Vector, which waits for 256 bytes). A record also knows the last line
// before the offset read (through the chain hash below), and checks that a
// file still holds it. A file new to this run takes the record whose
// fingerprint and last line it matches: that finds a file renamed while the
// producer was stopped (two rotations find both files), and the copy
// logrotate's copytruncate makes, which is then read from where the original
// had been read to. Two different files with the same first bytes (a common
// header) are told apart by that line. A fingerprint shorter than fpBytes
// (a short file) identifies only its own inode: a file that starts with the
// whole of a short one (a common banner line) is another file. A file that
// may be the copy of a file still followed (its fingerprint and its line
// before the read offset match, or it is shorter than that offset: a copy
// still being written) is held open, unread, until that file is truncated
// or gone (it then takes that file's record), or until it has stayed idle
// for rotateWait (it is then read from its start): never longer, since it may
// be another file with the same start. Files whose inode a record names are
// matched first, so a copy cannot take its original's record.
//
// Truncation. Fluent Bit only compares the offset with the size, which misses
// a truncation followed by a longer rewrite within one poll. Here every
// chunk read is checked before its lines go out, and so is a file whose
// change time moved with no new bytes (a rewrite of the same length; checked
// again at the next poll while that time is less than a second older than
// the check, as a later change in the same clock tick keeps it): the file is
// not shorter than
// the offset, its first bytes still match the fingerprint, and the last line
// before the offset is still there. When not, the chunk is dropped and the
// file is read again from 0 as a new record whose generation is one more. (A
// read error is not taken for a truncation: the file is tried again.)
//
// Positions. The checkpoint (version 2) lists records: fingerprint and how
// many bytes it covers, generation, the seed of its ids, path/device/inode
// hints (device and inode dropped once the inode no longer holds the
// record's lines: truncated or deleted), the confirmed offset with the chain
// hash there and before its last line, and the last size seen. Blank lines
// get no position: the line before them ends after them (Checkpoints.skip).
// A line confirmed before an earlier one keeps its position, and
// positionOverhead of the queue's bytes, until the checkpoint moves past it.
// A record is forgotten once no file has matched it for -rotate-wait and
// none of its lines are in flight; if bytes were left unread, that is logged
// as a warning. A producer holds <checkpoint>.lock while it runs.
//
// Ids. The chain hash starts from the record's seed and folds in every line:
// chain = SHA-256(previous chain || line bytes). An event's id is made of the
// chain after its line, so it depends on the seed and on the whole content
// of the file up to and including that line, never on the path or inode.
// The seed of a file read from its start (new, or truncated: a new
// generation) is random: two files never share ids, not even for the same
// first lines (the banner every new log of an application starts with),
// which deduplication by event_id would otherwise merge into one event. A
// file read from its start as the copy of a known one (claim) takes that
// one's seed instead, so the duplicates a copy causes keep their ids. The
// seed is in the checkpoint before the file's first line goes out (read), so
// the same line read again (after a crash, from a rotated name, from a
// copytruncate copy) gets the same id while the checkpoint knows its file;
// lines read from the start again because the checkpoint was lost get new
// ones. The checkpoint keeps the chain at its offset, so a restart goes on
// without reading the file from the start. Keeping the chain before the last
// line too makes that line checkable: SHA-256(previous chain || the bytes
// there) must give the chain.
//
// End of a rotated file. Its unterminated last line is sent once the file
// is rotated away (renamed, deleted or no longer matched) and has stayed idle
// for -rotate-wait; a line of the live file without a newline waits for it.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
)

const (
	fpBytes      = 256      // the first bytes that identify a file
	readPerCycle = 1 << 20  // bytes read from one file before the others get a turn
	maxCheckLine = 64 << 10 // a longer last line is not read back to be checked (the first bytes still are)
)

// lineOK reports whether f still holds, before m.offset, the line read
// there; an error when f could not be read.
func lineOK(f *os.File, m mark) (bool, error) {
	if m.lineLen == 0 || m.lineLen > maxCheckLine {
		return true, nil
	}
	buf := make([]byte, m.lineLen)
	if n, err := f.ReadAt(buf, m.offset-m.lineLen); n < len(buf) {
		if errors.Is(err, io.EOF) {
			return false, nil // shorter now
		}
		return false, err
	}
	return m.prev.then(buf) == m.chain, nil
}

// Config is what a Follower follows and where it hands its lines.
type Config struct {
	Patterns []string // glob patterns (checked by the caller with filepath.Match)
	// Exclude is the producer's own files, never followed, also when a
	// pattern reaches them by another path: CheckpointFiles, the spool, the
	// dead-letter file.
	Exclude     []string
	Checkpoints *Checkpoints
	Poll        time.Duration // how often the patterns are expanded and files read
	RotateWait  time.Duration // how long a rotated-away file stays idle before its end goes out and it is closed
	Log         *slog.Logger
	// Concurrency is delivery's requests in flight: two descriptors each
	// are kept of RLIMIT_NOFILE (fileBudget).
	Concurrency int
	TryEmit     func(Line) bool                  // hands a line to the queue if it has room now
	Emit        func(context.Context, Line) bool // waits for room; false when ctx ended
	// Keep puts lines in flight in the spool once their file can no longer
	// be read again, then says so (Checkpoints.Kept); nil without a spool.
	Keep func([]*Position, []Line)
	// Problem says a condition that lasts at a bounded rate, by key; nil:
	// at every occurrence, to Log.
	Problem func(level slog.Level, key, msg string, args ...any)
}

// Follower reads the files its patterns match as they grow.
type Follower struct {
	patterns   []string
	exclude    []string        // our own files: checkpoint (its temporary file, lock and journal), spool, dead-letter file
	excludeAbs map[string]bool // the same, absolute
	cp         *Checkpoints
	poll       time.Duration
	rotateWait time.Duration
	log        *slog.Logger
	tryEmit    func(Line) bool
	emit       func(context.Context, Line) bool
	keep       func([]*Position, []Line) // nil without a spool

	watchers []*watcher
	// maxOpen bounds the watchers (fileBudget of nofile, RLIMIT_NOFILE):
	// matched files beyond it wait, and idle ones are parked to make room.
	maxOpen int
	nofile  uint64
	matched int                // files the last scan found
	parked  map[fileID]*record // followed files closed at their end to make room
	// reading is the watcher read now: a scan in send must not park it,
	// whose chunk read is not all handed out yet.
	reading *watcher
	problem func(level slog.Level, key, msg string, args ...any)
	passed  map[fileID]int64  // files passed over (compressed or parked), with their size then
	said    map[string]string // per path, the last warning, to say it once
	chunk   []byte
	head    []byte

	// For the producer's figures, read from other goroutines: bytes of
	// followed files not read yet (as of the last pass's stats, no I/O of
	// their own) and files forgotten with bytes never read.
	lag        atomic.Int64
	goneUnread atomic.Int64
}

// LagBytes is the bytes of followed files not read yet: over the files
// being read, the size last seen less the offset read to. It is as of the
// last pass over the files (every -poll, or each scan with many files).
func (fl *Follower) LagBytes() int64 { return fl.lag.Load() }

// GoneUnread counts the files that went away (deleted, or rotated out of
// the patterns) or were truncated with bytes never read.
func (fl *Follower) GoneUnread() int64 { return fl.goneUnread.Load() }

// measureLag sets LagBytes from the sizes the pass saw.
func (fl *Follower) measureLag() {
	var lag int64
	for _, w := range fl.watchers {
		if w.state.reading() && w.size > w.next {
			lag += w.size - w.next
		}
	}
	fl.lag.Store(lag)
}

// New makes a follower of what cfg says; Run starts it. Its descriptors
// are budgeted from RLIMIT_NOFILE as the process has it now.
func New(cfg Config) *Follower {
	fl := &Follower{patterns: cfg.Patterns, exclude: cfg.Exclude, excludeAbs: map[string]bool{}, cp: cfg.Checkpoints, poll: cfg.Poll, rotateWait: cfg.RotateWait,
		log: cfg.Log, tryEmit: cfg.TryEmit, emit: cfg.Emit, keep: cfg.Keep, problem: cfg.Problem,
		passed: map[fileID]int64{}, said: map[string]string{}, chunk: make([]byte, 64<<10), head: make([]byte, fpBytes),
		parked: map[fileID]*record{}}
	fl.nofile = nofileLimit()
	fl.maxOpen = fileBudget(fl.nofile, cfg.Concurrency)
	if fl.problem == nil {
		fl.problem = func(level slog.Level, _, msg string, args ...any) {
			fl.log.Log(context.Background(), level, msg, args...)
		}
	}
	for _, p := range cfg.Exclude {
		if abs, err := filepath.Abs(p); err == nil {
			fl.excludeAbs[abs] = true
		}
	}
	return fl
}

// Run follows the files until ctx ends.
func (fl *Follower) Run(ctx context.Context) error {
	defer func() {
		for _, w := range fl.watchers {
			if fi, err := w.f.Stat(); err == nil {
				w.nlink = nlinkOf(fi) // deleted since the last poll: no restart can read it
			}
			if w.gone() { // a line handed out since the last keep, or cut off by the stop
				fl.keepFlight(w.rec)
			}
			w.f.Close()
		}
	}()
	var scanned time.Time
	for ctx.Err() == nil {
		now := time.Now()
		if now.Sub(scanned) >= fl.scanEvery() {
			fl.scan(now)
			scanned = now
		}
		more := false
		for _, w := range slices.Clone(fl.watchers) {
			// A watcher closed (parked) by a scan in send during this
			// pass is not read: its descriptor is closed.
			if w.state == closed || fl.resting(w, now) {
				continue
			}
			more = fl.read(ctx, w, now) || more
			if ctx.Err() != nil {
				return nil
			}
		}
		fl.measureLag()
		if !more {
			select {
			case <-ctx.Done():
			case <-time.After(fl.poll):
			}
		}
	}
	return nil
}

// With many matched files, checking each one every poll is most of the
// producer's work (a stat or two each, four times a second): beyond
// scanFilesPerPoll files, the patterns are expanded and every file checked
// less often, at most every maxScanEvery, and a file idle for restAfter is
// read only after such a scan; files that change are read every poll.
const (
	scanFilesPerPoll = 1000
	maxScanEvery     = 5 * time.Second
	restAfter        = 2 * time.Second
)

// scanEvery is how often the patterns are expanded: each poll, or, with
// many files, once per poll for every scanFilesPerPoll of them.
func (fl *Follower) scanEvery() time.Duration {
	return max(fl.poll, min(fl.poll*time.Duration(fl.matched/scanFilesPerPoll), maxScanEvery))
}

// resting reports whether w need not be read now: the last scan did not
// check it (see scanEvery), and it is a matched file, idle since restAfter
// at the end of a line or still too short to identify.
func (fl *Follower) resting(w *watcher, now time.Time) bool {
	if w.scanned != nil || !w.missing.IsZero() || w.line.n > 0 || now.Sub(w.changed) < restAfter {
		return false
	}
	return w.state == unidentified || w.state == following
}

// say logs a warning about path unless it is what was said last about it.
func (fl *Follower) say(path, msg string, args ...any) {
	if fl.said[path] == msg {
		return
	}
	fl.said[path] = msg
	fl.log.Warn(msg, append([]any{"path", path}, args...)...)
}

// identify reads the first bytes of w's file, of size bytes, and starts
// following it, or holds it as a possible copy, or, with too few bytes to
// tell, leaves it unidentified; false when it is
// not to be followed: compressed, or unreadable.
func (fl *Follower) identify(w *watcher, size int64) bool {
	if size == 0 {
		return true
	}
	head, err := readHead(w.f, size)
	if err != nil {
		fl.say(w.path, "cannot read a matched file; it is skipped until it can be read", "err", err)
		return false
	}
	if yes, undecided := compressed(head); yes {
		fl.say(w.path, "skipping a compressed file: its bytes are not events (leave rotated logs uncompressed, with logrotate's delaycompress, or exclude them from the patterns)")
		fl.passed[w.id] = size
		return false
	} else if undecided {
		return true
	}
	r, how, copyOf := fl.claim(w.f, head, w.path, w.id, size, false)
	if r == nil {
		w.holdAsCopy(copyOf)
		fl.say(w.path, "a possible copy of a followed file (the same first bytes): held open; read from where that file was read to once it is truncated or gone, or from its start once idle for -rotate-wait",
			"copy_of", copyOf.path)
		return true
	}
	fl.follow(w, r, how)
	return true
}

// close stops holding w, which is not followed.
func (fl *Follower) close(w *watcher) {
	w.state = closed
	w.f.Close()
	fl.watchers = slices.DeleteFunc(fl.watchers, func(x *watcher) bool { return x == w })
}

// keepFlight hands r's lines in flight to keep: their file can no longer
// be read again.
func (fl *Follower) keepFlight(r *record) {
	if fl.keep == nil || r == nil {
		return
	}
	if ps, ls := fl.cp.inFlight(r); len(ps) > 0 {
		fl.keep(ps, ls)
	}
}

// follow starts reading w's file as r says.
func (fl *Follower) follow(w *watcher, r *record, how string) {
	delete(fl.said, w.path)
	w.startReading(r, fl.cp.isRotated(r))
	fl.log.Info("following file", "path", w.path, "from_offset", r.read.offset, "how", how)
}

// settle decides about a possible copy once the file it may be a copy of
// is no longer followed (truncated or gone: it then takes that file's
// record, as it would at a restart) or it has stayed idle for rotateWait
// (it is then read from its start); true when it is followed now.
func (fl *Follower) settle(w *watcher, now time.Time) bool {
	fi, err := w.f.Stat()
	if err != nil {
		fl.say(w.path, "cannot stat a matched file", "err", err)
		return false
	}
	w.nlink = nlinkOf(fi)
	if fi.Size() != w.size {
		w.size, w.changed = fi.Size(), now
	}
	if w.state == unidentified {
		w.scanned = nil
		if !fl.identify(w, fi.Size()) {
			fl.close(w)
			return false
		}
		if w.state == unidentified && w.gone() && (w.nlink == 0 || now.Sub(w.missing) >= fl.rotateWait) {
			fl.close(w) // it went away with nothing to read
		}
		return w.state.reading()
	}
	held := fl.cp.isHeld(w.copyOf)
	idle := now.Sub(w.changed) >= fl.rotateWait
	if held && !idle {
		return false
	}
	head, err := readHead(w.f, fi.Size())
	if err != nil {
		fl.say(w.path, "cannot read a matched file", "err", err)
		return false
	}
	r, how, copyOf := fl.claim(w.f, head, w.path, w.id, fi.Size(), idle)
	if r == nil {
		w.holdAsCopy(copyOf) // another followed file it may be a copy of
		return false
	}
	fl.follow(w, r, how)
	return true
}

// claim finds the record of a file new to this run among those whose
// fingerprint it matches. A fingerprint of fewer than fpBytes bytes (a
// short file) identifies only its own inode: a file that merely starts
// with all of a short file is another file. In order:
//   - a record not followed whose line before its offset the file holds:
//     the same file (renamed, or a copy), resumed (inode hint first, then
//     the one read furthest);
//   - the record of this inode, which the file no longer matches: truncated
//     or replaced while the producer was stopped; read from the start as a
//     new generation;
//   - a followed file's record that the file matches, or is shorter than:
//     the file may be its copy (copytruncate, possibly still being
//     written): none (nil), and that record, so that the file waits; unless
//     idle, then it is read from its start as such a copy;
//   - a record not followed the file is shorter than: a copy made before
//     lines that were read from the original; read from its start with the
//     ids the original gave those lines, so that duplicates can be removed;
//   - otherwise a new file.
func (fl *Follower) claim(f *os.File, head []byte, path string, id fileID, size int64, idle bool) (*record, string, *record) {
	var match, truncated, copyOf, kin *record
	// The file is read outside the registry's lock, which confirmations
	// need: what a candidate says of its record stays true meanwhile (only
	// this goroutine changes it).
	for _, c := range fl.cp.candidates(head, id) {
		ok, _ := lineOK(f, c.read) // unreadable: not a match
		fits := ok && size >= c.read.offset
		if fits && !c.held {
			match = c.r
			break
		}
		switch {
		case c.rank == 0 && truncated == nil:
			truncated = c.r
		case c.held && (fits || size < c.read.offset) && copyOf == nil:
			copyOf = c.r
		case !c.held && size < c.read.offset && kin == nil:
			kin = c.r
		}
	}
	switch {
	case match != nil:
		fl.cp.resume(match, path, id, size)
		return match, "resumed from the checkpoint", nil
	case truncated != nil:
		fl.log.Warn("file truncated or replaced since it was last read; reading it from the start", "path", path, "was_read_to", truncated.read.offset)
		fl.cp.dropHint(truncated) // as in Follower.truncated
		return fl.cp.newRecord(head, truncated.gen+1, newSeed(), path, id, size), "truncated: from the start", nil
	case copyOf != nil && !idle:
		return nil, "", copyOf
	case copyOf != nil:
		kin = copyOf
	}
	if kin != nil {
		return fl.cp.newRecord(head, kin.gen, kin.seed, path, id, size), "a copy of " + kin.path + ": from the start", nil
	}
	return fl.cp.newRecord(head, 0, newSeed(), path, id, size), "new file", nil
}

// forget drops records that no file has matched for rotateWait and whose
// lines are all confirmed.
func (fl *Follower) forget(now time.Time) {
	for _, u := range fl.cp.forget(now, fl.rotateWait) {
		fl.goneUnread.Add(1)
		fl.log.Warn("a file followed before is gone or was truncated before all of it was read; the rest cannot be read now",
			"path", u.path, "read_to", u.readTo, "size", u.size)
	}
}

// read reads what was added to w's file since the last time, up to
// readPerCycle bytes; true when there is more to read at once.
func (fl *Follower) read(ctx context.Context, w *watcher, now time.Time) bool {
	if !w.state.reading() && !fl.settle(w, now) {
		return false
	}
	fl.reading = w
	defer func() {
		fl.reading = nil
		if w.gone() { // what was read from it now cannot be read again after a restart
			fl.keepFlight(w.rec)
		}
		w.line.release()
	}()
	fi := w.scanned
	w.scanned = nil
	// The scan knows a file by device and inode, which a file created since
	// this one was deleted may have taken (ext4 reuses them at once): a
	// change it saw is confirmed on the open file. Idle files need no stat.
	if fi == nil || fi.Size() != w.size || !ctimeOf(fi).Equal(w.checked) {
		var err error
		if fi, err = w.f.Stat(); err != nil {
			fl.say(w.path, "cannot stat a followed file", "err", err)
			return false
		}
	}
	w.nlink = nlinkOf(fi)
	if fi.Size() != w.size {
		w.size, w.changed = fi.Size(), now
	}
	if fi.Size() < w.next {
		fl.truncated(w, "the file shrank")
	}
	ctime := ctimeOf(fi)
	// Nothing new and no change since the last check: no read (with
	// thousands of idle files, the syscalls are most of the cost).
	idle := fi.Size() == w.next && ctime.Equal(w.checked) && ctime.Before(w.checkedAt.Add(-time.Second))
	for got := 0; !idle && got < readPerCycle; {
		n, err := w.f.ReadAt(fl.chunk, w.next)
		if n == 0 && err != nil && !errors.Is(err, io.EOF) {
			fl.say(w.path, "cannot read a followed file", "err", err)
			break
		}
		// New bytes, or a change that added none (a rewrite of the same
		// length): the file must still hold what was read from it.
		if n > 0 || !ctime.Equal(w.checked) || !ctime.Before(w.checkedAt.Add(-time.Second)) {
			ok, why, err := fl.verify(w)
			if err != nil { // not a truncation: try again at the next poll
				fl.say(w.path, "cannot read a followed file", "err", err)
				return false
			}
			if !ok {
				fl.truncated(w, why)
				return true
			}
			w.checked, w.checkedAt = ctime, now
		}
		if n == 0 {
			break
		}
		if !fl.cp.onDisk(w.rec) {
			// The seed of a file read from its start goes to disk before
			// an id made from it leaves: after a crash, the lines read
			// again get the ids they had.
			// Until then its lines wait: sent now, they would be sent again
			// after a restart with other ids, which deduplication cannot
			// remove.
			if err := fl.cp.SaveDue(); err != nil {
				fl.say(w.path, "cannot save the checkpoint: this new file's lines wait until it can be saved (free space on its disk)", "err", err)
				return false
			}
			if !fl.cp.onDisk(w.rec) {
				return false // not due yet: read at a later poll
			}
		}
		w.next += int64(n)
		if !fl.feed(ctx, w, fl.chunk[:n]) {
			return false
		}
		got += n
		if got >= readPerCycle {
			return true
		}
	}
	fl.cp.sawSize(w.rec, w.size)
	fl.atEnd(ctx, w, now)
	return false
}

// verify reports whether w's file still holds what was read from it: the
// fingerprint's bytes at its start and the line before the read offset. It
// grows the fingerprint while the file is shorter than fpBytes. A read error
// is returned as such: it is no proof of a truncation.
func (fl *Follower) verify(w *watcher) (bool, string, error) {
	r := w.rec
	n, err := w.f.ReadAt(fl.head, 0)
	if n < len(fl.head) && err != nil && !errors.Is(err, io.EOF) {
		return false, "", err
	}
	head := fl.head[:n]
	// A record begun at a truncation covers no bytes until some are read.
	if r.fp.n > 0 && !r.fp.matches(newFileHead(head), true) {
		return false, "its first bytes changed", nil
	}
	if n > r.fp.n {
		fp := fingerprintOf(head)
		fl.cp.grew(r, fp)
	}
	if ok, err := lineOK(w.f, r.read); err != nil || !ok {
		return false, "the line before the read offset changed", err
	}
	return true, "", nil
}

// truncated starts w's file again from 0, as a new generation. The old
// record stays for its lines in flight and for a copy of the file to claim.
func (fl *Follower) truncated(w *watcher, why string) {
	old := w.rec
	fl.keepFlight(old) // its lines in flight are no longer in the file (a copy may hold them, or not)
	fl.log.Warn("file truncated or rewritten; reading it again from the start", "path", w.path, "why", why, "was_read_to", old.read.offset)
	// The old record no longer describes this inode: without its hint, a
	// restart cannot resume it here, past the new generation's lines, when
	// the file was rewritten with the same content.
	fl.cp.release(old, time.Now(), true)
	w.restart(fl.cp.newRecord(nil, old.gen+1, newSeed(), w.path, w.id, 0))
}

// feed splits p into lines and hands out the complete ones; false when ctx
// ended. The lines that begin and end in p share one copy of them, made
// once: one allocation a read rather than one a line (most of the
// follower's cost). The copy is the size of those lines, and parsing makes
// each event anew, so it lives only until the last of them is parsed and
// the queue's budget still counts what is held.
func (fl *Follower) feed(ctx context.Context, w *watcher, p []byte) bool {
	var whole []byte // p's lines that start and end in it, copied
	at := 0          // where whole starts in p
	if last := bytes.LastIndexByte(p, '\n'); last >= 0 {
		if w.line.n > 0 { // p's first line began in an earlier read
			at = bytes.IndexByte(p, '\n') + 1
		}
		if at <= last {
			whole = append([]byte(nil), p[at:last+1]...)
		}
	}
	for off := 0; off < len(p); {
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			w.line.add(p[off:])
			break
		}
		piece := p[off : off+i+1]
		var data []byte // nil: the line is in w.line.buf
		if whole != nil && off >= at {
			data = trimEOL(w.line.count(whole[off-at : off-at+i+1]))
		} else {
			w.line.add(piece)
		}
		off += i + 1
		if !fl.emitLine(ctx, w, "", data) {
			return false
		}
	}
	return true
}

// emitLine hands out the line w.line ended, whose content is data or, when
// data is nil, the bytes w.line kept (copied then, as w.line's buffer is
// reused).
func (fl *Follower) emitLine(ctx context.Context, w *watcher, cut string, data []byte) bool {
	end := w.line.end(w.rec.read.offset)
	long := false // a line within one read is shorter than MaxLineBytes
	if data == nil {
		// Without its leading NULs (lineState.skipNUL).
		data, long = append([]byte{}, trimEOL(w.line.buf)...), w.line.long()
	}
	w.line.start(end.chain)
	if len(data) == 0 && !long {
		fl.cp.skip(w.rec, end) // a blank line: nothing to send
		return true
	}
	// Its time is its event_time, so that what keepFlight keeps of it is
	// the same event.
	l := Line{Chain: end.chain, TooLong: long, Cut: cut, Data: data, Read: time.Now()}
	l.Pos = fl.cp.read(w.rec, end, l)
	return fl.send(ctx, l)
}

// send hands l to the queue, waiting for room. While it waits (the API down
// or slow), the patterns are still expanded every poll: a file is kept only
// if it is open before it is deleted or rotated away, and opening one takes
// no room in the queue.
func (fl *Follower) send(ctx context.Context, l Line) bool {
	if fl.tryEmit(l) {
		return true
	}
	for {
		wait, cancel := context.WithTimeout(ctx, fl.poll)
		ok := fl.emit(wait, l)
		cancel()
		if ok {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		fl.scan(time.Now())
	}
}

// atEnd handles w at the end of its file: once it is rotated away and idle
// for rotateWait, its unterminated last line goes out; once it is also gone
// from the patterns (or deleted), it is closed.
func (fl *Follower) atEnd(ctx context.Context, w *watcher, now time.Time) {
	gone := (!w.missing.IsZero() && now.Sub(w.missing) >= fl.rotateWait) || w.nlink == 0
	if now.Sub(w.changed) < fl.rotateWait || !(gone || w.state == draining) {
		return
	}
	if w.line.n > 0 && !fl.emitLine(ctx, w, "the last line of a rotated file, without a newline", nil) {
		return
	}
	if !gone {
		return
	}
	fl.close(w)
	fl.cp.release(w.rec, now, w.nlink == 0) // deleted: its inode may be reused by another file
	fl.log.Info("stopped following a rotated file: idle and no longer matched", "path", w.path, "read_to", w.rec.read.offset)
}
