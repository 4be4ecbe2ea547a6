package filesource

// The checkpoint's journal, <checkpoint>.journal, keeps the saves between
// two rewrites of the checkpoint (folds): with 20,000 files followed and
// one growing, a save appends one line (about 450 bytes) instead of
// rewriting 8 MB. It starts with a header naming its epoch, the one the
// checkpoint it follows names ("journal"); then one line a changed record,
// {"slot":N,"file":{...}} with the record as the checkpoint has it, or
// {"slot":N,"forgotten":true}. Slot N is the record's index in the
// checkpoint's "files", or, counting on from there, a record new since.
// A save appends its lines in one write and syncs them. A start reads the
// checkpoint, then the journal's lines in order when its epoch is the
// checkpoint's; a torn last line (a crash while appending) is ignored.
// A journal of another epoch is one a crash left while a fold replaced it
// (the checkpoint holds its lines), or one an earlier producer's rewrite
// of the checkpoint (which drops the epoch) made stale: it is ignored.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// journalMinBytes is how much the journal may hold whatever the size of
// the checkpoint: a checkpoint of a few files is not rewritten every few
// seconds.
const journalMinBytes = 64 << 10

// journalLimit is how many bytes of lines the journal may hold before a
// save folds it: half the checkpoint, so that folds add at most twice what
// the journal's lines write, and a start reads at most 1.5 times the
// checkpoint.
func journalLimit(checkpointBytes int) int {
	return max(checkpointBytes/2, journalMinBytes)
}

func journalPath(checkpoint string) string { return checkpoint + ".journal" }

type journalHeader struct {
	Version int    `json:"version"`
	Journal string `json:"journal"`
}

type journalLine struct {
	Slot      *int       `json:"slot"`
	File      *savedFile `json:"file"`
	Forgotten bool       `json:"forgotten"`
}

func appendFileLine(b []byte, slot int, enc []byte) []byte {
	b = fmt.Appendf(b, `{"slot":%d,"file":`, slot)
	return append(append(b, enc...), "}\n"...)
}

func appendForgottenLine(b []byte, slot int) []byte {
	return fmt.Appendf(b, "{\"slot\":%d,\"forgotten\":true}\n", slot)
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// replayJournal applies the journal at path, when its epoch is epoch, to
// the records of the checkpoint, and returns the records then. A line that
// does not parse, but for a torn last one, ends the replay with a warning:
// the records it and the lines after it would have moved are resumed from
// where they were before (lines sent again, with the same ids).
func replayJournal(path, epoch string, records []*record, log *slog.Logger) []*record {
	raw, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("the checkpoint's journal cannot be read; files are resumed from the checkpoint alone (lines sent again, with the same ids)", "path", path, "err", err)
		}
		return records
	}
	header, rest, ok := bytes.Cut(raw, []byte("\n"))
	var h journalHeader
	if epoch == "" || !ok || json.Unmarshal(header, &h) != nil || h.Journal != epoch {
		return records // another epoch's, or its header torn: the checkpoint holds all it had
	}
	bySlot := slices.Clone(records)
	for n := 2; len(rest) > 0; n++ {
		line, after, whole := bytes.Cut(rest, []byte("\n"))
		if !whole {
			break // torn by a crash while it was appended: that save did not complete
		}
		rest = after
		if err := applyJournalLine(&bySlot, line); err != nil {
			log.Warn("the checkpoint's journal is damaged; the files of its later lines are resumed from earlier offsets (lines sent again, with the same ids)",
				"path", path, "line", n, "err", err)
			break
		}
	}
	return slices.DeleteFunc(bySlot, func(r *record) bool { return r == nil })
}

// applyJournalLine applies one line to the records by slot.
func applyJournalLine(bySlot *[]*record, line []byte) error {
	var l journalLine
	if err := json.Unmarshal(line, &l); err != nil {
		return err
	}
	switch {
	case l.Slot == nil || *l.Slot < 0 || *l.Slot > len(*bySlot):
		return fmt.Errorf("no slot, or slot out of range")
	case (l.File != nil) == l.Forgotten:
		return errors.New("neither a record nor a forgotten one")
	case l.Forgotten:
		if *l.Slot < len(*bySlot) {
			(*bySlot)[*l.Slot] = nil
		}
		return nil
	}
	r, err := l.File.record()
	if err != nil {
		return err
	}
	if *l.Slot == len(*bySlot) {
		*bySlot = append(*bySlot, r)
	} else {
		(*bySlot)[*l.Slot] = r
	}
	return nil
}

// beginJournal empties the journal and writes the header of epoch, synced,
// then syncs the directory (the journal may be new). Called with saving
// held, once the checkpoint of epoch is in place: emptied before, a crash
// would lose its lines with the old checkpoint still there.
func (c *Checkpoints) beginJournal(epoch string) error {
	f, err := os.OpenFile(journalPath(c.path), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	header, _ := json.Marshal(journalHeader{Version: checkpointVersion, Journal: epoch})
	if err = f.Truncate(0); err == nil {
		err = appendSynced(f, append(header, '\n'))
	}
	if err == nil {
		err = c.syncDirOf(journalPath(c.path))
	}
	if err != nil {
		f.Close()
		return err
	}
	c.journal, c.journalBytes = f, 0
	return nil
}

// Close closes the journal, after the last save.
func (c *Checkpoints) Close() {
	c.saving.Lock()
	defer c.saving.Unlock()
	c.closeJournal()
}

// closeJournal closes the journal: the next save folds.
func (c *Checkpoints) closeJournal() {
	if c.journal != nil {
		c.journal.Close()
		c.journal, c.journalBytes = nil, 0
	}
}

func appendSynced(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// syncDirOf syncs the directory of path.
func (c *Checkpoints) syncDirOf(path string) error {
	syncDir := c.syncDir
	if syncDir == nil {
		syncDir = syncDirectory
	}
	return syncDir(filepath.Dir(path))
}
