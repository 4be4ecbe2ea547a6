package producer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// line is one line read from a source, before it is parsed.
type line struct {
	data    []byte
	pos     *position // nil for sources that cannot be read again
	id      string    // the id it gets unless it has one; "" for a random one
	tooLong bool      // data holds only the start of the line
	cut     string    // why the line has no newline, when that is not the end of the input
	cost    int64     // bytes it holds of the queue
}

// maxLineBytes bounds the memory one line may take; longer lines go to the
// dead-letter file truncated (they could never be sent: see MaxEventBytes).
const maxLineBytes = 4 << 20

// lineReader reads newline-terminated lines of any length, keeping at most
// maxLineBytes of each.
type lineReader struct {
	r       *bufio.Reader
	partial []byte
	long    bool
	read    int64 // bytes consumed, partial line included
}

// next returns the next complete line without its newline, or io.EOF when
// the data so far ends in a partial line (kept for the next call).
func (lr *lineReader) next() (data []byte, tooLong bool, err error) {
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.read += int64(len(chunk))
		if len(lr.partial)+len(chunk) > maxLineBytes {
			lr.long = true
			chunk = chunk[:max(0, min(len(chunk), maxLineBytes-len(lr.partial)))]
		}
		lr.partial = append(lr.partial, chunk...)
		switch {
		case err == nil:
			data, tooLong = lr.partial, lr.long
			lr.partial, lr.long = nil, false
			data = trimEOL(data)
			return data, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, false, err
		}
	}
}

// lineState is the line being read: its first maxLineBytes bytes and its
// length.
type lineState struct {
	buf []byte
	n   int64
}

func (ls *lineState) start() { ls.buf, ls.n = ls.buf[:0], 0 }

func (ls *lineState) add(p []byte) {
	if room := maxLineBytes - len(ls.buf); room > 0 {
		ls.buf = append(ls.buf, p[:min(room, len(p))]...)
	}
	ls.n += int64(len(p))
}

// long reports whether buf holds only the start of the line.
func (ls *lineState) long() bool { return ls.n > int64(len(ls.buf)) }

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// deadliner is an input whose blocked Read can be ended (a pipe or terminal
// opened non-blocking: see cmd/producer).
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// readStream sends every line of r (stdin) until it ends or ctx does. When
// ctx ends it starts no new read, and every byte already read becomes a line
// that is delivered or dead-lettered: a read in progress is ended at once
// when r is a deadliner, or waited for until giveUp otherwise. emit waits
// for room in the queue (false when ctx ended); emitNow does not wait.
func readStream(ctx context.Context, r io.Reader, giveUp <-chan struct{}, emit func(context.Context, line) bool, emitNow func(line)) error {
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, 64<<10)
	ask := make(chan struct{})
	got := make(chan result, 1)
	defer close(ask)
	go func() { // reads only when asked, so nothing is read after a stop
		for range ask {
			n, err := r.Read(buf)
			got <- result{n, err}
		}
	}()
	var ls lineState
	stopped := false
	send := func(cut string) {
		l := line{data: append([]byte(nil), trimEOL(ls.buf)...), tooLong: ls.long(), cut: cut}
		ls.start()
		if len(l.data) == 0 && !l.tooLong {
			return
		}
		if stopped || !emit(ctx, l) {
			emitNow(l)
		}
	}
	for {
		ask <- struct{}{}
		var res result
		select {
		case res = <-got:
		case <-ctx.Done():
			stopped = true
			if d, ok := r.(deadliner); ok && d.SetReadDeadline(time.Now()) == nil {
				res = <-got
			} else {
				select {
				case res = <-got:
				case <-giveUp: // a read that never returns holds nothing yet
				}
			}
		}
		for p := buf[:res.n]; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			piece := p
			if i >= 0 {
				piece = p[:i+1]
			}
			ls.add(piece)
			p = p[len(piece):]
			if i >= 0 {
				send("")
			}
		}
		stopped = stopped || ctx.Err() != nil
		switch {
		case errors.Is(res.err, io.EOF):
			send("") // a last line without newline
			return nil
		case stopped:
			send("cut off at shutdown before its newline was read")
			return nil
		case res.err != nil && !errors.Is(res.err, os.ErrDeadlineExceeded):
			send("cut off by a read error")
			return res.err
		}
	}
}

// generate sends synthetic events at rate per second until ctx ends.
func generate(ctx context.Context, rate float64, emit func(context.Context, line) bool) error {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			due := int(rate * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				data := fmt.Appendf(nil, `{"value":"%d","type":"Tip %d"}`, 1+rand.IntN(100), 1+rand.IntN(5))
				if !emit(ctx, line{data: data}) {
					return nil
				}
			}
		}
	}
}

// follower reads files as they grow, like a log shipper, resuming from the
// checkpoint, and follows rotation (a new file at the path) and truncation.
type follower struct {
	cp   *checkpoints
	poll time.Duration
	log  *slog.Logger
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// follow reads path until ctx ends.
func (f *follower) follow(ctx context.Context, path string, emit func(context.Context, line) bool) error {
	offset := int64(0)
	if m, ok := f.cp.mark(path); ok {
		offset = m.Offset
		fi, err := os.Stat(path)
		if err != nil || inodeOf(fi) != m.Inode {
			// The file we were reading was rotated away: finish it first.
			if old := findInode(filepath.Dir(path), m.Inode); old != "" {
				f.log.Info("finishing rotated file", "path", old, "offset", m.Offset)
				if err := f.read(ctx, path, old, m.Offset, true, emit); err != nil || ctx.Err() != nil {
					return err
				}
			} else {
				f.log.Warn("checkpointed file is gone; its unconfirmed lines cannot be re-read", "path", path, "inode", m.Inode)
			}
			offset = 0
		}
	}
	for ctx.Err() == nil {
		if err := f.read(ctx, path, path, offset, false, emit); err != nil {
			return err
		}
		offset = 0 // after a rotation or truncation, the new content starts at 0
	}
	return nil
}

// read reads file (known as path in the checkpoint) from offset. With
// drain it stops at the end of the file; otherwise it waits for more and
// returns when the path names another file (rotation) or the file shrank.
func (f *follower) read(ctx context.Context, path, file string, offset int64, drain bool, emit func(context.Context, line) bool) error {
	fh, err := os.Open(file)
	for errors.Is(err, os.ErrNotExist) && !drain { // not created yet
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.poll):
		}
		fh, err = os.Open(file)
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	inode := inodeOf(fi)
	if fi.Size() < offset {
		f.log.Warn("file is shorter than the checkpoint; reading it from the start", "path", file)
		offset = 0
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	progress := f.cp.open(path, inode, offset)
	lr := &lineReader{r: bufio.NewReaderSize(fh, 64<<10), read: offset}
	for {
		if err := f.emitAvailable(ctx, lr, path, inode, progress, emit); err != nil || drain || ctx.Err() != nil {
			return err
		}
		// At the end: wait, then look for rotation or truncation.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.poll):
		}
		now, statErr := os.Stat(path)
		if statErr == nil && inodeOf(now) != inode {
			f.log.Info("file rotated; finishing the old one", "path", path)
			return f.emitAvailable(ctx, lr, path, inode, progress, emit)
		}
		if cur, err := fh.Stat(); err == nil && cur.Size() < lr.read {
			f.log.Warn("file truncated; reading it from the start", "path", path)
			return nil
		}
	}
}

// emitAvailable sends every complete line up to the current end of the file.
func (f *follower) emitAvailable(ctx context.Context, lr *lineReader, path string, inode uint64, progress *fileProgress, emit func(context.Context, line) bool) error {
	for {
		start := lr.read - int64(len(lr.partial))
		data, long, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		pos := f.cp.read(progress, lr.read)
		if len(data) == 0 {
			f.cp.confirm(pos) // blank line: nothing to send
			continue
		}
		if !emit(ctx, line{data: append([]byte(nil), data...), pos: pos, id: positionID(path, inode, start), tooLong: long}) {
			return nil
		}
	}
}

// findInode returns the file in dir with the given inode, or "".
func findInode(dir string, inode uint64) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && inodeOf(fi) == inode {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}
