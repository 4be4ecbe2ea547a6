package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// position is where a line of a followed file ended, and its place in the
// order the file was read.
type position struct {
	file   *fileProgress
	seq    uint64
	offset int64
}

// FileMark is how far a file has been confirmed: lines up to Offset are stored
// (or dead-lettered), in the file with this inode.
type FileMark struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

// checkpoints tracks, per followed file, the offset up to which every line is
// confirmed, although the API confirms batches in any order, and saves it.
type checkpoints struct {
	path string // "" keeps nothing on disk
	mu   sync.Mutex
	// files holds the current file of each followed path; rotated ones stay
	// until their last line is confirmed.
	files []*fileProgress
	saved map[string]FileMark
}

type fileProgress struct {
	path      string
	inode     uint64
	readSeq   uint64           // lines read
	doneSeq   uint64           // lines confirmed in order
	done      map[uint64]int64 // confirmed out of order: seq -> end offset
	committed int64
	rotated   bool // a newer file took the path; this one is finished when drained
}

func loadCheckpoints(path string) (*checkpoints, error) {
	c := &checkpoints{path: path, saved: map[string]FileMark{}}
	if path == "" {
		return c, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		Files map[string]FileMark `json:"files"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if f.Files != nil {
		c.saved = f.Files
	}
	return c, nil
}

// mark is where reading path should resume.
func (c *checkpoints) mark(path string) (FileMark, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.saved[path]
	return m, ok
}

// open starts tracking a file read from offset.
func (c *checkpoints) open(path string, inode uint64, offset int64) *fileProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.files {
		if f.path == path && f.inode != inode {
			f.rotated = true
		}
	}
	f := &fileProgress{path: path, inode: inode, committed: offset, done: map[uint64]int64{}}
	c.files = append(c.files, f)
	return f
}

// read records that a line ending at offset was read.
func (c *checkpoints) read(f *fileProgress, offset int64) *position {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.readSeq++
	return &position{file: f, seq: f.readSeq, offset: offset}
}

// confirm records that the line at p is stored or dead-lettered.
func (c *checkpoints) confirm(p *position) {
	if p == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := p.file
	f.done[p.seq] = p.offset
	for {
		off, ok := f.done[f.doneSeq+1]
		if !ok {
			break
		}
		delete(f.done, f.doneSeq+1)
		f.doneSeq++
		f.committed = off
	}
}

// marks is what save writes: per path, the oldest file with unconfirmed
// lines, so that a restart finishes a rotated file before the new one.
func (c *checkpoints) marks() map[string]FileMark {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]FileMark{}
	for _, f := range c.files {
		if _, taken := out[f.path]; taken {
			continue
		}
		if f.rotated && f.doneSeq == f.readSeq {
			continue // drained and confirmed: the newer file is what matters
		}
		out[f.path] = FileMark{Inode: f.inode, Offset: f.committed}
	}
	for p, m := range c.saved { // paths not opened (yet) keep their mark
		if _, ok := out[p]; !ok {
			out[p] = m
		}
	}
	return out
}

// save writes the checkpoint atomically: a crash leaves the old one or the new one.
func (c *checkpoints) save() error {
	if c.path == "" {
		return nil
	}
	raw, _ := json.MarshalIndent(struct {
		Files map[string]FileMark `json:"files"`
	}{c.marks()}, "", "  ")
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".checkpoint-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path)
}
