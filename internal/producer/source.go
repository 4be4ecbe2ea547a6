package producer

import (
	"bufio"
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
	pos     *position     // nil for sources that cannot be read again
	id      func() string // the id it gets unless it has one
	tooLong bool          // data holds only the start of the line
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

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// readStream sends every line of r (stdin) until it ends or ctx does. The
// blocking reads happen in their own goroutine, so that a shutdown does not
// wait for input that may never come; a line already read is still sent.
func readStream(ctx context.Context, r io.Reader, out chan<- line) error {
	type item struct {
		l   line
		err error // io.EOF at the end
	}
	items := make(chan item, 1)
	go func() {
		lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
		for {
			data, long, err := lr.next()
			if errors.Is(err, io.EOF) && len(lr.partial) > 0 { // a last line without newline
				data, long, err = trimEOL(lr.partial), lr.long, nil
				lr.partial = nil
			}
			if err != nil {
				items <- item{err: err}
				return
			}
			if len(data) > 0 {
				items <- item{l: line{data: append([]byte(nil), data...), id: randomID, tooLong: long}}
			}
		}
	}()
	forward := func(it item) error {
		if it.err != nil {
			if errors.Is(it.err, io.EOF) {
				return nil
			}
			return it.err
		}
		out <- it.l // the batcher reads until every source has returned
		return nil
	}
	for {
		select {
		case it := <-items:
			if err := forward(it); err != nil || it.err != nil {
				return err
			}
		case <-ctx.Done():
			select {
			case it := <-items:
				return forward(it)
			default:
				return nil
			}
		}
	}
}

// generate sends synthetic events at rate per second until ctx ends.
func generate(ctx context.Context, rate float64, out chan<- line) error {
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
				select {
				case out <- line{data: data, id: randomID}:
				case <-ctx.Done():
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
func (f *follower) follow(ctx context.Context, path string, out chan<- line) error {
	offset := int64(0)
	if m, ok := f.cp.mark(path); ok {
		offset = m.Offset
		fi, err := os.Stat(path)
		if err != nil || inodeOf(fi) != m.Inode {
			// The file we were reading was rotated away: finish it first.
			if old := findInode(filepath.Dir(path), m.Inode); old != "" {
				f.log.Info("finishing rotated file", "path", old, "offset", m.Offset)
				if err := f.read(ctx, path, old, m.Offset, true, out); err != nil || ctx.Err() != nil {
					return err
				}
			} else {
				f.log.Warn("checkpointed file is gone; its unconfirmed lines cannot be re-read", "path", path, "inode", m.Inode)
			}
			offset = 0
		}
	}
	for ctx.Err() == nil {
		if err := f.read(ctx, path, path, offset, false, out); err != nil {
			return err
		}
		offset = 0 // after a rotation or truncation, the new content starts at 0
	}
	return nil
}

// read reads file (known as path in the checkpoint) from offset. With
// drain it stops at the end of the file; otherwise it waits for more and
// returns when the path names another file (rotation) or the file shrank.
func (f *follower) read(ctx context.Context, path, file string, offset int64, drain bool, out chan<- line) error {
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
		if err := f.emitAvailable(ctx, lr, path, inode, progress, out); err != nil || drain || ctx.Err() != nil {
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
			return f.emitAvailable(ctx, lr, path, inode, progress, out)
		}
		if cur, err := fh.Stat(); err == nil && cur.Size() < lr.read {
			f.log.Warn("file truncated; reading it from the start", "path", path)
			return nil
		}
	}
}

// emitAvailable sends every complete line up to the current end of the file.
func (f *follower) emitAvailable(ctx context.Context, lr *lineReader, path string, inode uint64, progress *fileProgress, out chan<- line) error {
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
		id := positionID(path, inode, start)
		select {
		case out <- line{data: append([]byte(nil), data...), pos: pos, id: func() string { return id }, tooLong: long}:
		case <-ctx.Done():
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
