package producer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// deadLetters appends events that cannot be delivered to a file, one JSON
// line each with the reason, and syncs it before the events count as handled.
type deadLetters struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

type deadLetter struct {
	Time   string          `json:"time"`
	Reason string          `json:"reason"`
	Status int             `json:"status,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"` // the event, when it is JSON
	Raw    string          `json:"raw,omitempty"`   // the input, when it is not
}

func (d *deadLetters) write(entries []deadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		d.f = f
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, e := range entries {
		e.Time = now
		line, _ := json.Marshal(e)
		if _, err := d.f.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return d.f.Sync()
}

func (d *deadLetters) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}
