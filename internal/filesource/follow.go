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
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

const (
	fpBytes      = 256      // the first bytes that identify a file
	readPerCycle = 1 << 20  // bytes read from one file before the others get a turn
	maxCheckLine = 64 << 10 // a longer last line is not read back to be checked (the first bytes still are)
)

type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

// ctimeOf is the file's change time, which every write and truncation
// sets and nothing can set back (unlike the modification time).
func ctimeOf(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}

func nlinkOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

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

func readHead(f *os.File, size int64) ([]byte, error) {
	head := make([]byte, min(size, fpBytes))
	n, err := f.ReadAt(head, 0)
	if n == len(head) {
		err = nil
	}
	return head[:n], err
}

// compressed reports whether head starts like a compressed file; undecided
// when it is too short to tell.
func compressed(head []byte) (yes, undecided bool) {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd}} {
		n := min(len(head), len(magic))
		if bytes.Equal(head[:n], magic[:n]) {
			if n < len(magic) {
				undecided = true
				continue
			}
			return true, false
		}
	}
	return false, undecided
}

// lineState is the line being read: its first MaxLineBytes bytes (and two
// for its end of line), its length, and, for files, the chain before it and
// the hash so far.
type lineState struct {
	buf     []byte
	n       int64
	h       hash.Hash // nil for stdin, and between lines once released
	prev    chainHash
	nuls    int64 // leading NULs skipped
	skipNUL bool  // files: leading NULs are not kept in buf
	// released: h went back to lineHashes between lines; add takes one
	// again for the next line.
	released bool
}

// lineHashes holds the hashes of files idle between lines: with thousands
// of files followed, one each was a large part of the memory per file.
var lineHashes = sync.Pool{New: func() any { return sha256.New() }}

func (ls *lineState) start(chain chainHash) {
	if cap(ls.buf) > 64<<10 {
		ls.buf = nil // a long line's memory goes back once it is sent
	}
	ls.buf, ls.n, ls.nuls, ls.prev = ls.buf[:0], 0, 0, chain
	if ls.h != nil {
		ls.h.Reset()
		ls.h.Write(chain[:])
	}
}

// release gives the hash and the line's buffer back while no line is in
// progress (the chain before the next line is in prev): an idle file holds
// neither.
func (ls *lineState) release() {
	if ls.n != 0 {
		return
	}
	ls.buf = nil
	if ls.h != nil {
		lineHashes.Put(ls.h)
		ls.h, ls.released = nil, true
	}
}

func (ls *lineState) add(p []byte) {
	ls.n += int64(len(p))
	if ls.h == nil && ls.released {
		ls.h = lineHashes.Get().(hash.Hash)
		ls.h.Reset()
		ls.h.Write(ls.prev[:])
	}
	if ls.h != nil {
		ls.h.Write(p) // the id covers every byte, NULs included
	}
	if ls.skipNUL && len(ls.buf) == 0 {
		// The hole a writer without O_APPEND leaves after a copytruncate
		// can be larger than MaxLineBytes: kept, it would push the line
		// after it out of buf.
		i := 0
		for i < len(p) && p[i] == 0 {
			i++
		}
		ls.nuls += int64(i)
		p = p[i:]
	}
	// Room for the end of line too, so that a line of exactly MaxLineBytes
	// is whole: long then means longer than MaxLineBytes, as parse says.
	if room := MaxLineBytes + len("\r\n") - len(ls.buf); room > 0 {
		ls.buf = append(ls.buf, p[:min(room, len(p))]...)
	}
}

// long reports whether buf holds only the start of the line.
func (ls *lineState) long() bool { return ls.n-ls.nuls > int64(len(ls.buf)) }

// end is the mark after the line, which started at offset start.
func (ls *lineState) end(start int64) mark {
	m := mark{offset: start + ls.n, prev: ls.prev, lineLen: ls.n}
	ls.h.Sum(m.chain[:0])
	return m
}

// skim computes the mark at offset by reading f from the start, as reading
// the lines would: for a checkpoint of the earlier format, which has no chain.
func skim(f *os.File, offset int64) (mark, error) {
	ls := lineState{h: sha256.New()}
	m := mark{chain: chainSeed(0)}
	ls.start(m.chain)
	buf := make([]byte, 64<<10)
	for pos := int64(0); pos < offset; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), offset-pos)], pos)
		if n == 0 {
			return mark{}, cmp.Or(err, io.ErrUnexpectedEOF)
		}
		pos += int64(n)
		for p := buf[:n]; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			piece := p
			if i >= 0 {
				piece = p[:i+1]
			}
			ls.add(piece)
			p = p[len(piece):]
			if i >= 0 {
				m = ls.end(m.offset)
				ls.start(m.chain)
			}
		}
	}
	if ls.n > 0 { // the offset is inside a line: count its start as one
		m = ls.end(m.offset)
	}
	return m, nil
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
}

// watcher is an open followed file.
type watcher struct {
	f       *os.File
	id      fileID
	path    string // where the last scan found it
	state   watcherState
	rec     *record   // the record read: set in following and draining (and kept once closed)
	missing time.Time // since when no scan found it; zero when found
	nlink   uint64
	size    int64
	changed time.Time // when its size last changed
	next    int64     // the next byte to read
	line    lineState
	scanned os.FileInfo // what the last scan found at its path (its inode), until read uses it
	copyOf  *record     // in possibleCopy: the followed file's record it may be a copy of
	checked time.Time   // the change time (ctime) of the file when verify last passed
	// when that was: a change less than a second before it may carry the
	// same change time as a later one
	checkedAt time.Time
}

// watcherState is where a watcher is in its life (FILESOURCE.md has the
// diagram). Whether its file is still matched (missing) or still linked
// (nlink) is apart: a file in any state can go away.
type watcherState uint8

const (
	// unidentified: open, with too few bytes to tell whether it is
	// compressed, or none; nothing read. A file found empty waits here, so
	// that lines written to it and the file deleted before a poll are read.
	unidentified watcherState = iota
	// possibleCopy: open, unread; its first bytes are those of a followed
	// file (copyOf) it may be the copy of (see settle).
	possibleCopy
	// following: reading rec's lines as the file grows.
	following
	// draining: following a file renamed since it was found (rec.rotated):
	// its unterminated last line goes out once idle for rotateWait.
	draining
	// closed: no longer held; a parked file's record stays.
	closed
)

// reading reports whether the watcher reads a record's lines.
func (s watcherState) reading() bool { return s == following || s == draining }

// The transitions. Each changes only the watcher; what they do to the
// record is the caller's, under the checkpoint's lock.

// holdAsCopy: unidentified or possibleCopy -> possibleCopy of r.
func (w *watcher) holdAsCopy(r *record) { w.state, w.copyOf = possibleCopy, r }

// startReading: unidentified or possibleCopy -> following r (draining when
// r's file was renamed: rotated, as r says), from where r was read to.
func (w *watcher) startReading(r *record, rotated bool) {
	w.state, w.rec, w.copyOf, w.next = following, r, nil, r.read.offset
	if rotated {
		w.state = draining
	}
	w.line.start(r.read.chain)
}

// rotate: following -> draining, the file renamed.
func (w *watcher) rotate() { w.state = draining }

// restart: following or draining -> following r, a new generation read
// from 0 (the file was truncated).
func (w *watcher) restart(r *record) {
	w.state, w.rec, w.next = following, r, 0
	w.line.start(r.read.chain)
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

// ownPath reports whether path names one of our own files, also through
// symlinked directories; for a file that is gone, whose inode is unknown.
func (fl *Follower) ownPath(path string) bool {
	canon := func(p string) string {
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			return ""
		}
		abs, _ := filepath.Abs(filepath.Join(dir, filepath.Base(p)))
		return abs
	}
	c := canon(path)
	return c != "" && slices.ContainsFunc(fl.exclude, func(p string) bool { return canon(p) == c })
}

// say logs a warning about path unless it is what was said last about it.
func (fl *Follower) say(path, msg string, args ...any) {
	if fl.said[path] == msg {
		return
	}
	fl.said[path] = msg
	fl.log.Warn(msg, append([]any{"path", path}, args...)...)
}

// scan expands the patterns, notes which followed files were renamed or are
// gone, starts following new ones (oldest first) and forgets records no file
// has matched for rotateWait.
func (fl *Follower) scan(now time.Time) {
	type found struct {
		path string
		fi   os.FileInfo
	}
	seen := map[fileID]found{}
	var fresh []fileID
	for _, pattern := range fl.patterns {
		matches, _ := filepath.Glob(pattern) // patterns were checked at start
		for _, p := range matches {
			if abs, err := filepath.Abs(p); err == nil && fl.excludeAbs[abs] {
				continue
			}
			fi, err := os.Stat(p)
			if errors.Is(err, fs.ErrNotExist) && !fl.ownPath(p) {
				fl.say(p, "a matched file went away before it could be opened: if it was deleted, not renamed, its lines are lost")
			}
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			id := idOf(fi)
			if _, dup := seen[id]; !dup {
				seen[id] = found{p, fi}
				fresh = append(fresh, id)
			}
		}
	}
	// Our own files are known by device and inode: a symlinked directory or
	// a link gives them another path. They are stat'ed after the matches, so
	// that a checkpoint renamed into place since is known by its new name.
	for _, p := range fl.exclude {
		if fi, err := os.Stat(p); err == nil {
			delete(seen, idOf(fi))
		}
	}
	fresh = slices.DeleteFunc(fresh, func(id fileID) bool { _, ok := seen[id]; return !ok })
	fl.matched = len(seen)
	for _, w := range fl.watchers {
		f, ok := seen[w.id]
		w.scanned = f.fi // its inode's, as fstat would say: read needs no stat of its own
		if !ok {
			if w.missing.IsZero() {
				w.missing = now
			}
			fl.keepFlight(w.rec) // a restart would not find it: also the lines read since the last scan
			continue
		}
		w.missing = time.Time{}
		if !w.state.reading() {
			w.path = f.path
			continue
		}
		if f.path != w.path {
			fl.log.Info("followed file renamed", "from", w.path, "to", f.path)
			w.path = f.path
			fl.cp.renamed(w.rec, f.path)
			w.rotate()
		}
		fl.cp.found(w.rec, now)
	}
	isOpen := make(map[fileID]bool, len(fl.watchers))
	for _, w := range fl.watchers {
		isOpen[w.id] = true
	}
	fresh = slices.DeleteFunc(fresh, func(id fileID) bool {
		size, passed := fl.passed[id]
		return (passed && size == seen[id].fi.Size()) || isOpen[id]
	})
	// A file whose inode a record names goes first, so that a copy of it
	// (copytruncate, a backup) cannot take its record; then oldest first.
	hinted := fl.cp.hinted()
	slices.SortFunc(fresh, func(a, b fileID) int {
		if hinted[a] != hinted[b] {
			if hinted[a] {
				return -1
			}
			return 1
		}
		return seen[a].fi.ModTime().Compare(seen[b].fi.ModTime())
	})
	for id := range fl.passed {
		if _, ok := seen[id]; !ok {
			delete(fl.passed, id)
		}
	}
	for id, r := range fl.parked {
		if _, ok := seen[id]; ok { // still there: not to be forgotten
			fl.cp.found(r, now)
		} else {
			delete(fl.parked, id)
		}
	}
	fl.park(len(fresh)-(fl.maxOpen-len(fl.watchers)), func(id fileID) (int64, bool) {
		f, ok := seen[id]
		if !ok {
			return 0, false
		}
		return f.fi.Size(), true
	}, now)
	waiting := 0
	for _, id := range fresh {
		if len(fl.watchers) >= fl.maxOpen {
			waiting++
			continue
		}
		delete(fl.parked, id)
		fl.discover(seen[id].path, id, now)
	}
	if waiting > 0 {
		fl.problem(slog.LevelWarn, "descriptors", "matched files wait for a file descriptor: each is read once an open one is idle at its end",
			"waiting", waiting, "open", len(fl.watchers), "rlimit_nofile", fl.nofile, "what_to_do", "raise the limit (ulimit -n, LimitNOFILE= in systemd) or match fewer files with -files")
	}
	fl.forget(now)
}

// park closes up to n watchers that are idle at the end of a file still
// matched (nothing new since they read it: sizeOf, from the scan), but for
// the one read now, longest idle first, so that files waiting for a descriptor can be opened. A
// parked file's record stays, not held; the file is passed over until it
// grows, then found again by its inode and fingerprint and read on from
// where it was.
func (fl *Follower) park(n int, sizeOf func(fileID) (int64, bool), now time.Time) {
	if n <= 0 {
		return
	}
	var idle []*watcher
	for _, w := range fl.watchers {
		size, ok := sizeOf(w.id)
		if ok && w != fl.reading && w.missing.IsZero() && w.nlink > 0 && (w.state == unidentified && size == w.size ||
			w.state == following && w.line.n == 0 && size == w.next) {
			idle = append(idle, w)
		}
	}
	slices.SortFunc(idle, func(a, b *watcher) int { return a.changed.Compare(b.changed) })
	for _, w := range idle[:min(n, len(idle))] {
		short := w.state == unidentified
		fl.close(w)
		if short { // too short to identify: found again once it grows
			fl.passed[w.id] = w.size
			continue
		}
		fl.cp.release(w.rec, now, false)
		fl.parked[w.id], fl.passed[w.id] = w.rec, w.next
	}
}

// discover starts following the file at path, unless it is compressed. A
// file with nothing in it yet, or too little to tell whether it is
// compressed, is held open, unidentified, until it has (see identify): lines
// written to it and the file deleted before the next poll are still read.
// A possible copy of a followed file is held open, unread, until settle
// decides.
func (fl *Follower) discover(path string, id fileID, now time.Time) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		fl.say(path, "a matched file went away before it could be opened: if it was deleted, not renamed, its lines are lost")
		return
	}
	if err != nil {
		fl.say(path, "cannot open a matched file; it is skipped until it can be opened", "err", err)
		return
	}
	fi, err := f.Stat()
	if err != nil || idOf(fi) != id {
		f.Close()
		return // replaced since the scan
	}
	w := &watcher{f: f, id: id, path: path, nlink: nlinkOf(fi), size: fi.Size(), changed: now,
		line: lineState{h: sha256.New(), skipNUL: true}}
	if !fl.identify(w, fi.Size()) {
		f.Close()
		return
	}
	fl.watchers = append(fl.watchers, w)
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

// gone reports whether a restart could not read w's file again: deleted,
// or matched by no pattern.
func (w *watcher) gone() bool { return w.nlink == 0 || !w.missing.IsZero() }

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
	if fi == nil {
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
// ended.
func (fl *Follower) feed(ctx context.Context, w *watcher, p []byte) bool {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		piece := p
		if i >= 0 {
			piece = p[:i+1]
		}
		w.line.add(piece)
		p = p[len(piece):]
		if i < 0 {
			break
		}
		if !fl.emitLine(ctx, w, "") {
			return false
		}
	}
	return true
}

func (fl *Follower) emitLine(ctx context.Context, w *watcher, cut string) bool {
	end := w.line.end(w.rec.read.offset)
	data := trimEOL(w.line.buf) // without its leading NULs (lineState.skipNUL)
	long := w.line.long()
	w.line.start(end.chain)
	if len(data) == 0 && !long {
		fl.cp.skip(w.rec, end) // a blank line: nothing to send
		return true
	}
	// Its time is its event_time, so that what keepFlight keeps of it is
	// the same event.
	l := Line{Chain: end.chain, TooLong: long, Cut: cut, Data: append([]byte(nil), data...), Read: time.Now()}
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
	if w.line.n > 0 && !fl.emitLine(ctx, w, "the last line of a rotated file, without a newline") {
		return
	}
	if !gone {
		return
	}
	fl.close(w)
	fl.cp.release(w.rec, now, w.nlink == 0) // deleted: its inode may be reused by another file
	fl.log.Info("stopped following a rotated file: idle and no longer matched", "path", w.path, "read_to", w.rec.read.offset)
}
