package filesource

import (
	"crypto/sha256"
	"hash"
	"os"
	"sync"
	"time"
)

// One watcher per open followed file, with its state as a type and the
// watcher's side of each transition (FILESOURCE.md), and the line it is
// reading.

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

// gone reports whether a restart could not read w's file again: deleted,
// or matched by no pattern.
func (w *watcher) gone() bool { return w.nlink == 0 || !w.missing.IsZero() }

// lineState is the line being read: its first MaxLineBytes bytes (and two
// for its end of line), its length, and, for files, the chain before it and
// the hash so far.
type lineState struct {
	buf     []byte
	n       int64
	h       *lineHash // nil for stdin, and between lines once released
	prev    chainHash
	nuls    int64 // leading NULs skipped
	skipNUL bool  // files: leading NULs are not kept in buf
	// released: h went back to lineHashes between lines; add takes one
	// again for the next line.
	released bool
}

// lineHashes holds the hashes of files idle between lines: with thousands
// of files followed, one each was a large part of the memory per file.
var lineHashes = sync.Pool{New: func() any { return newLineHash() }}

// lineHash is a line's hash and where end sums it: summed into a mark, the
// mark would be allocated each line (it goes through hash.Hash). Kept with
// the hash, it takes no memory while the file is idle.
type lineHash struct {
	hash.Hash
	sum [sha256.Size]byte
}

func newLineHash() *lineHash { return &lineHash{Hash: sha256.New()} }

func (ls *lineState) start(chain chainHash) {
	if cap(ls.buf) > 64<<10 {
		ls.buf = nil // a long line's memory goes back once it is sent
	}
	ls.buf, ls.n, ls.nuls, ls.prev = ls.buf[:0], 0, 0, chain
	if ls.h != nil {
		ls.h.Reset()
		ls.h.Write(ls.prev[:]) // not chain: passed to an interface, it would be allocated each line
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
	p = ls.count(p)
	// Room for the end of line too, so that a line of exactly MaxLineBytes
	// is whole: long then means longer than MaxLineBytes, as parse says.
	if room := MaxLineBytes + len("\r\n") - len(ls.buf); room > 0 {
		ls.buf = append(ls.buf, p[:min(room, len(p))]...)
	}
}

// count folds p, the next bytes of the line, into its length and hash, and
// returns what of p is the line's content: p without the leading NULs
// skipped.
func (ls *lineState) count(p []byte) []byte {
	ls.n += int64(len(p))
	if ls.h == nil && ls.released {
		ls.h = lineHashes.Get().(*lineHash)
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
	return p
}

// long reports whether buf holds only the start of the line.
func (ls *lineState) long() bool { return ls.n-ls.nuls > int64(len(ls.buf)) }

// end is the mark after the line, which started at offset start.
func (ls *lineState) end(start int64) mark {
	m := mark{offset: start + ls.n, prev: ls.prev, lineLen: ls.n}
	copy(m.chain[:], ls.h.Sum(ls.h.sum[:0]))
	return m
}
