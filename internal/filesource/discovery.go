package filesource

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Discovery: the patterns expanded every poll, the producer's own files
// skipped, files new to the follower opened (or left waiting for a
// descriptor), idle ones parked to make room (see follow.go, "Finding
// files").

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
		w.scanned = f.fi // its inode's, as fstat would say, unless the inode was reused: see read
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
		line: lineState{h: newLineHash(), skipNUL: true}}
	if !fl.identify(w, fi.Size()) {
		f.Close()
		return
	}
	fl.watchers = append(fl.watchers, w)
}
