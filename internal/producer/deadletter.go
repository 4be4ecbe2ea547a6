package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary/tributary/internal/filesource"
)

// deadLetters appends events that cannot be delivered to a file, one JSON
// line each with the reason. It is a record of truth: entries are written
// in one write and synced before their events count as handled; a write that
// fails part-way is cut back, so no half entry stays to corrupt the next one.
type deadLetters struct {
	path    string
	mu      sync.Mutex
	f       *os.File // nil after a failure: the next write opens the path again
	regular bool     // a regular file can be cut back; /dev/full and pipes cannot
}

type deadLetter struct {
	Time   string          `json:"time"`
	Reason string          `json:"reason"`
	Status int             `json:"status,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"` // the event, when it is JSON
	Raw    string          `json:"raw,omitempty"`   // the input, when it is not
	// The input, when it is not valid UTF-8: JSON cannot hold its bytes.
	RawBase64 string `json:"raw_base64,omitempty"`
}

// openDeadLetters opens path for append, creating it and its directory: the
// producer refuses to start when it cannot, rather than find out at the
// first rejected event.
func openDeadLetters(path string) (*deadLetters, error) {
	d := &deadLetters{path: path}
	if err := d.open(); err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	return d, nil
}

func (d *deadLetters) open() error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	d.f, d.regular = f, fi.Mode().IsRegular()
	if d.regular {
		// Before the repair, which would cut off another producer's
		// entry being written.
		if err := filesource.Flock(f); err != nil {
			f.Close()
			d.f = nil
			if errors.Is(err, filesource.ErrLocked) {
				return errors.New("another producer writes to it (it is locked); give each producer its own -dead-letter")
			}
			return fmt.Errorf("locking it: %w", err)
		}
		if err := d.repair(fi.Size()); err != nil {
			f.Close()
			d.f = nil
			return fmt.Errorf("removing an incomplete last entry: %w", err)
		}
	}
	return nil
}

// repair cuts off an incomplete last entry: what a crash in the middle of a
// write, or a failed cut-back, leaves.
func (d *deadLetters) repair(size int64) error {
	if size == 0 {
		return nil
	}
	r, err := os.Open(d.path)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if end == size && chunk[len(chunk)-1] == '\n' {
			return nil // complete
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return d.f.Truncate(start + int64(i) + 1)
		}
		end = start
	}
	return d.f.Truncate(0)
}

// write appends entries in one write and syncs them.
func (d *deadLetters) write(entries []deadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var buf []byte
	for _, e := range entries {
		e.Time = now
		line, _ := json.Marshal(e)
		buf = append(append(buf, line...), '\n')
	}
	size := int64(-1)
	if fi, err := d.f.Stat(); err == nil && d.regular {
		size = fi.Size()
	}
	n, err := d.f.Write(buf)
	if err == nil {
		err = d.f.Sync()
	}
	if err == nil {
		return nil
	}
	if n > 0 && size >= 0 {
		if terr := d.f.Truncate(size); terr != nil {
			err = errors.Join(err, fmt.Errorf("cutting back the partial write: %w", terr))
		}
	}
	d.f.Close()
	d.f = nil
	return err
}

func (d *deadLetters) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Sync()
	if !d.regular {
		err = nil // /dev/full and pipes cannot be synced; nothing to keep there
	}
	return errors.Join(err, d.f.Close())
}
