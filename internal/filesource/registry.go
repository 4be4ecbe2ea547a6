package filesource

import (
	"cmp"
	"slices"
	"time"
)

// The registry of records: the transitions the follower makes to the
// checkpoint's records, each under its lock and none reading a file, so
// that delivery, which confirms lines under the same lock, never waits on
// a disk. (Handing a line out and confirming it are read, skip and confirm
// in checkpoint.go.) Only the follower's goroutine changes a record's
// identity, hints, read mark and held: what it reads of them between two
// transitions stays true.

// candidate is a record whose fingerprint a file's first bytes match, with
// what claim decides by, as it was when the registry was asked.
type candidate struct {
	r    *record
	read mark
	held bool
	rank int // 0: the file's own inode, 1: another record not followed, 2: followed (held)
}

// candidates lists the records whose fingerprint head matches (see
// fingerprint.matches) for a file with inode id, in the order claim tries
// them: the file's own inode first, then the records not followed, then the
// followed ones; each group the one read furthest first.
func (c *Checkpoints) candidates(head []byte, id fileID) []candidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cands []candidate
	fh := newFileHead(head)
	for _, r := range c.records {
		own := r.dev == id.dev && r.ino == id.ino
		if !r.fp.matches(fh, own) {
			continue
		}
		rank := 1
		switch {
		case r.held:
			rank = 2
		case own:
			rank = 0
		}
		cands = append(cands, candidate{r: r, read: r.read, held: r.held, rank: rank})
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(b.read.offset, a.read.offset))
	})
	return cands
}

// resume: a file new to this run is r's file (claim), now at path with
// inode id and size bytes; followed.
func (c *Checkpoints) resume(r *record, path string, id fileID, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.held, r.seen, r.size, r.dev, r.ino = true, time.Now(), size, id.dev, id.ino
	if r.path != path {
		r.path, r.rotated = path, true
	}
}

// dropHint: r's inode no longer holds r's lines (truncated or replaced while
// the producer was stopped): a restart must not resume r there.
func (c *Checkpoints) dropHint(r *record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.dev, r.ino = 0, 0
}

// renamed: r's followed file was found at path.
func (c *Checkpoints) renamed(r *record, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.path, r.rotated = path, true
}

// found: a scan found r's file at now (it is not to be forgotten).
func (c *Checkpoints) found(r *record, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.seen = now
}

// release: r's file is no longer read (parked, closed, or truncated);
// inodeGone when its inode no longer holds r's lines (deleted, truncated):
// the device and inode hints go.
func (c *Checkpoints) release(r *record, now time.Time, inodeGone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.held, r.seen = false, now
	if inodeGone {
		r.dev, r.ino = 0, 0
	}
}

// grew: r's file has more first bytes than r's fingerprint covered.
func (c *Checkpoints) grew(r *record, fp fingerprint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.fp = fp
}

// sawSize: r's file was size bytes long.
func (c *Checkpoints) sawSize(r *record, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.size = max(r.size, size)
}

// hinted is the inodes records name that no watcher reads: such a file goes
// first in a scan, so that a copy of it cannot take its record.
func (c *Checkpoints) hinted() map[fileID]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := map[fileID]bool{}
	for _, r := range c.records {
		h[fileID{r.dev, r.ino}] = h[fileID{r.dev, r.ino}] || !r.held
	}
	return h
}

// isHeld reports whether a watcher reads r.
func (c *Checkpoints) isHeld(r *record) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.held
}

// isRotated reports whether r's file was renamed since it was first found.
func (c *Checkpoints) isRotated(r *record) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.rotated
}

// unread is a forgotten record's file that had bytes left unread.
type unread struct {
	path         string
	readTo, size int64
}

// forget drops the records no file has matched for wait and whose lines are
// all confirmed; it returns those with bytes left unread, to be said.
func (c *Checkpoints) forget(now time.Time, wait time.Duration) []unread {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lost []unread
	c.records = slices.DeleteFunc(c.records, func(r *record) bool {
		if r.held || now.Sub(r.seen) < wait || r.readSeq != r.doneSeq {
			return false
		}
		if r.committed.offset < r.size {
			lost = append(lost, unread{r.path, r.committed.offset, r.size})
		}
		return true
	})
	return lost
}
