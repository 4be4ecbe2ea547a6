package filesource

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// mark is a place in a followed file just after a line: its offset, the
// chain hash of everything up to it (the ids' source), and the chain before
// that line and its length, to check that the file still holds the line
// (chain = SHA-256(prev || line)).
type mark struct {
	offset  int64
	chain   chainHash
	prev    chainHash
	lineLen int64
}

// record is one followed file as the checkpoint knows it: its identity (the
// first bytes' fingerprint, a generation bumped at each truncation, and
// device, inode and path as hints) and how far its lines are read and
// confirmed. All fields are guarded by Checkpoints.mu.
type record struct {
	fp       fingerprint
	gen      uint64
	seed     chainHash // the chain before the file's first line (see follow.go, Ids)
	path     string
	dev, ino uint64
	size     int64 // last size seen
	rotated  bool  // renamed, deleted or no longer matched since it was first found

	read      mark // the end of the last line handed out (or blank line skipped)
	readSeq   uint64
	last      *Position            // the last line handed out; nil once every line is confirmed
	doneSeq   uint64               // lines confirmed in order
	done      map[uint64]*Position // confirmed out of order; nil when none
	committed mark                 // every line before it is confirmed
	flight    []*Position          // lines handed out, in order, until the checkpoint moves past them

	held   bool      // a watcher reads it
	seen   time.Time // when a scan last found its file
	onDisk bool      // a save wrote it, with its seed

	// What its entry on disk says, as last written (zero: none yet). Not
	// kept encoded: with thousands of files that was a third of the heap,
	// and only a fold, which is rare, writes every entry.
	encoded savedState
	slot    int // its index in Checkpoints.bySlot plus one: its slot in the journal; 0 before a save wrote it
}

// Position is where a line of a followed file ended, and its place in the
// order its file was read: the handle delivery confirms the line by
// (Confirm) or says it was kept in the spool by (Checkpoints.Kept).
type Position struct {
	c   *Checkpoints
	rec *record
	seq uint64
	end mark
	// ln is the line as handed out (the event it became, once parsed),
	// until it is confirmed or kept: what Config.Keep writes to the spool.
	ln    Line
	spool uint64 // its record in the spool once kept there (the checkpoint then moved past it)
}

// Checkpoints keeps the records of followed files, confirms lines although
// the API confirms batches in any order, and saves the records atomically.
type Checkpoints struct {
	path    string // "" keeps nothing on disk
	mu      sync.Mutex
	records []*record
	saving  sync.Mutex // one save at a time: the follower saves too (onDisk)
	// Guarded by mu: the records the checkpoint and its journal hold, by
	// slot (nil once forgotten); whether a failed write left the disk
	// behind what the records' encoded say (the next save folds); whether the
	// disk holds any record; and when saveDue may fold again.
	bySlot   []*record
	behind   bool
	holds    bool
	nextFold time.Time
	// Guarded by saving: the journal (see journal.go), open once a fold
	// began it (nil: the next save folds), the bytes of lines in it, and
	// the size of the checkpoint the last fold wrote.
	journal      *os.File
	journalBytes int
	foldedBytes  int
	// syncDir makes a rename in dir durable: syncDirectory when nil (a
	// test's stand-in sees that it is called).
	syncDir func(dir string) error
}

// syncDirectory fsyncs dir: a rename is in the directory, and without this
// a power loss can bring back the old checkpoint, or none, although the new
// one's bytes were synced.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// savedFile is a record in the checkpoint file (format version 2).
type savedFile struct {
	Path             string `json:"path"`
	Device           uint64 `json:"device"`
	Inode            uint64 `json:"inode"`
	Fingerprint      string `json:"fingerprint"`
	FingerprintBytes int    `json:"fingerprint_bytes"`
	Generation       uint64 `json:"generation"`
	Seed             string `json:"seed,omitempty"` // absent in checkpoints written before seeds were random
	Offset           int64  `json:"offset"`
	Chain            string `json:"chain"`
	PreviousChain    string `json:"previous_chain"`
	LineBytes        int64  `json:"line_bytes"`
	Size             int64  `json:"size"`
	Rotated          bool   `json:"rotated,omitempty"`
}

const checkpointVersion = 2

// LoadCheckpoints reads the checkpoint at path. It never refuses to run: a
// damaged checkpoint is renamed aside with a warning and every file is read
// from the start (duplicates, not a restart loop); a checkpoint of the
// earlier format ({"files": {path: {"inode", "offset"}}}) is adopted for each
// path whose file still has that inode.
func LoadCheckpoints(path string, log *slog.Logger) *Checkpoints {
	c := &Checkpoints{path: path}
	if path == "" {
		return c
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c
	}
	if err == nil {
		var records []*record
		var epoch string
		if records, epoch, err = parseCheckpoint(raw, log); err == nil {
			c.records = replayJournal(journalPath(path), epoch, records, log)
			c.bySlot, c.holds = slices.Clone(c.records), len(c.records) > 0
			now := time.Now()
			for i, r := range c.records {
				r.seen, r.onDisk, r.slot = now, true, i+1
			}
			return c
		}
	}
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		log.Warn("the checkpoint is damaged and cannot be set aside; every file is read from the start (duplicates, not loss)",
			"path", path, "err", err, "rename_err", rerr)
	} else {
		log.Warn("the checkpoint is damaged; set aside, every file is read from the start (duplicates, not loss)",
			"path", path, "set_aside_as", aside, "err", err)
	}
	return c
}

// parseCheckpoint returns the records of a checkpoint and the epoch of the
// journal that goes with it ("" for none: the earlier format, or one
// written before journals).
func parseCheckpoint(raw []byte, log *slog.Logger) ([]*record, string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, "", fmt.Errorf("not a JSON object: %w", err)
	}
	if top == nil {
		return nil, "", errors.New("not a JSON object: null")
	}
	if _, ok := top["version"]; !ok {
		var legacy map[string]struct {
			Inode  uint64 `json:"inode"`
			Offset int64  `json:"offset"`
		}
		if err := json.Unmarshal(top["files"], &legacy); err != nil || legacy == nil {
			return nil, "", fmt.Errorf("neither a version %d checkpoint nor the earlier format: %v", checkpointVersion, err)
		}
		records, err := adoptLegacy(legacy, log)
		return records, "", err
	}
	var st struct {
		Version int         `json:"version"`
		Journal string      `json:"journal"` // absent before journals: an earlier producer ignores it
		Files   []savedFile `json:"files"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, "", err
	}
	if st.Version != checkpointVersion {
		return nil, "", fmt.Errorf("version %d, want %d", st.Version, checkpointVersion)
	}
	var out []*record
	for i, f := range st.Files {
		r, err := f.record()
		if err != nil {
			return nil, "", fmt.Errorf("files[%d] (%s): %w", i, f.Path, err)
		}
		out = append(out, r)
	}
	return out, st.Journal, nil
}

func (f savedFile) record() (*record, error) {
	r := &record{gen: f.Generation, path: f.Path, dev: f.Device, ino: f.Inode, size: f.Size, rotated: f.Rotated, fp: fingerprint{n: f.FingerprintBytes}}
	switch {
	case f.Offset < 0 || f.Size < 0:
		return nil, fmt.Errorf("negative offset %d or size %d", f.Offset, f.Size)
	case f.FingerprintBytes < 1 || f.FingerprintBytes > fpBytes:
		return nil, fmt.Errorf("fingerprint_bytes %d, want 1 to %d", f.FingerprintBytes, fpBytes)
	case f.LineBytes < 0 || f.LineBytes > f.Offset || (f.Offset > 0) != (f.LineBytes > 0):
		return nil, fmt.Errorf("line_bytes %d does not fit offset %d", f.LineBytes, f.Offset)
	}
	r.committed = mark{offset: f.Offset, lineLen: f.LineBytes}
	r.seed = chainSeed(f.Generation) // what the chain started from before seeds were random
	hexes := []struct {
		name, hex string
		dst       []byte
	}{{"fingerprint", f.Fingerprint, r.fp.sum[:]}, {"chain", f.Chain, r.committed.chain[:]}, {"previous_chain", f.PreviousChain, r.committed.prev[:]}}
	if f.Seed != "" {
		hexes = append(hexes, struct {
			name, hex string
			dst       []byte
		}{"seed", f.Seed, r.seed[:]})
	}
	for _, h := range hexes {
		if b, err := hex.DecodeString(h.hex); err != nil || len(b) != len(h.dst) {
			return nil, fmt.Errorf("%s is not %d hex bytes", h.name, len(h.dst))
		} else {
			copy(h.dst, b)
		}
	}
	r.read = r.committed
	return r, nil
}

// adoptLegacy turns entries of the earlier format into records when the file
// at the path still has the inode and is at least as long as the offset; the
// chain hash up to the offset is computed by reading the file. Other entries
// are dropped with a warning: those files are read from the start.
func adoptLegacy(entries map[string]struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}, log *slog.Logger) ([]*record, error) {
	var out []*record
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		e := entries[p]
		if e.Offset < 0 {
			return nil, fmt.Errorf("negative offset %d for %s", e.Offset, p)
		}
		r, err := adoptFile(p, e.Inode, e.Offset)
		if err != nil {
			log.Warn("earlier checkpoint entry not adopted; the file is read from the start", "path", p, "inode", e.Inode, "offset", e.Offset, "why", err)
			continue
		}
		log.Info("earlier checkpoint entry adopted", "path", p, "offset", e.Offset)
		out = append(out, r)
	}
	return out, nil
}

func adoptFile(path string, inode uint64, offset int64) (*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	id := idOf(fi)
	switch {
	case id.ino != inode:
		return nil, fmt.Errorf("the file there now has inode %d", id.ino)
	case fi.Size() < offset:
		return nil, fmt.Errorf("the file is now %d bytes, shorter than the offset", fi.Size())
	case fi.Size() == 0:
		return nil, errors.New("the file is empty")
	}
	head, err := readHead(f, fi.Size())
	if err != nil {
		return nil, err
	}
	m, err := skim(f, offset)
	if err != nil {
		return nil, err
	}
	return &record{fp: fingerprintOf(head), seed: chainSeed(0), path: path, dev: id.dev, ino: id.ino, size: fi.Size(),
		read: m, committed: m, seen: time.Now()}, nil
}

// newRecord starts a record for a file read from its start, its chain from
// seed.
func (c *Checkpoints) newRecord(head []byte, gen uint64, seed chainHash, path string, id fileID, size int64) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := mark{chain: seed}
	r := &record{gen: gen, seed: seed, path: path, dev: id.dev, ino: id.ino, size: size, read: start, committed: start,
		held: true, seen: time.Now()}
	if len(head) > 0 {
		r.fp = fingerprintOf(head)
	}
	c.records = append(c.records, r)
	return r
}

// read records that the line ln, ending at end, was handed out.
func (c *Checkpoints) read(r *record, end mark, ln Line) *Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.readSeq++
	r.read = end
	r.last = &Position{c: c, rec: r, seq: r.readSeq, end: end, ln: ln}
	r.flight = append(r.flight, r.last)
	return r.last
}

// Parsed makes the event the line at p became what Config.Keep would keep
// of it, so that the line itself need not stay in memory.
func (p *Position) Parsed(data []byte) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.ln.Data != nil { // neither confirmed nor kept yet
		p.ln.Data = data
	}
}

// inFlight is r's lines handed out and neither confirmed nor kept, in
// order, with their positions.
func (c *Checkpoints) inFlight(r *record) ([]*Position, []Line) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*Position
	var ls []Line
	for _, p := range r.flight {
		if p.seq > r.doneSeq && r.done[p.seq] == nil && p.spool == 0 {
			ps, ls = append(ps, p), append(ls, p.ln)
		}
	}
	return ps, ls
}

// KeptIn is p's spool record when it was kept there; 0 when not.
func (p *Position) KeptIn() uint64 {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return p.spool
}

// Kept records that the lines at ps are in the spool as records seqs, and
// moves the checkpoint past them. It returns the spool records of lines
// confirmed meanwhile (to acknowledge at once), and how many positions of
// lines confirmed before (out of order) the checkpoint moved past: the
// memory they held is free now.
func (c *Checkpoints) Kept(ps []*Position, seqs []uint64) (ack []uint64, freed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range ps {
		r := p.rec
		if p.seq <= r.doneSeq || r.done[p.seq] != nil {
			ack = append(ack, seqs[i])
			continue
		}
		// p itself is still in flight: its positionOverhead goes back
		// with its event (confirm).
		freed += c.confirmLocked(p) - 1
		p.spool = seqs[i]
	}
	return ack, freed
}

// skip records a blank line ending at end. It gets no position, which would
// wait in done (memory no queue bound counts) while a line before it is
// unconfirmed: the last line handed out ends after it instead, or, when
// every line is confirmed, the checkpoint moves past it at once.
func (c *Checkpoints) skip(r *record, end mark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.read = end
	if r.last != nil && r.last.seq > r.doneSeq {
		r.last.end = end
	} else {
		r.committed = end
	}
}

// Confirm records that the line at p is stored or dead-lettered; it returns
// how many lines the checkpoint moved past (0 when one before p is still
// unconfirmed), and p's spool record when p was kept there (the checkpoint
// moved past it then: it counts as 1).
func (p *Position) Confirm() (int, uint64) {
	if p == nil {
		return 0, 0
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.spool != 0 {
		return 1, p.spool
	}
	return p.c.confirmLocked(p), 0
}

func (c *Checkpoints) confirmLocked(p *Position) int {
	r := p.rec
	p.ln = Line{}             // confirmed: nothing to keep
	if p.seq != r.doneSeq+1 { // one before it is still unconfirmed
		if r.done == nil {
			r.done = map[uint64]*Position{}
		}
		r.done[p.seq] = p
		return 0
	}
	r.doneSeq++
	r.committed = p.end
	moved := 1
	for {
		next, ok := r.done[r.doneSeq+1]
		if !ok {
			break
		}
		delete(r.done, r.doneSeq+1)
		r.doneSeq++
		r.committed = next.end
		moved++
	}
	if len(r.done) == 0 {
		r.done = nil // a map keeps its memory: thousands of files would each hold one
	}
	i := 0
	for i < len(r.flight) && r.flight[i].seq <= r.doneSeq {
		i++
	}
	r.flight = r.flight[i:]
	if len(r.flight) == 0 {
		// Every line handed out is confirmed: skip no longer needs the
		// last one, whose position would stay in memory for each idle file.
		r.flight, r.last = nil, nil
	}
	return moved
}

// onDisk reports whether r, with its seed, is in the checkpoint file (or
// there is none): then a crash cannot make its lines' ids change.
func (c *Checkpoints) onDisk(r *record) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.path == "" || r.onDisk
}

// update runs f on records under the lock.
func (c *Checkpoints) update(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// checkpointBytesPerSecond bounds what folds due write; appends to the
// journal are never delayed. It is still needed when many files change at
// once: their lines then outgrow the journal at every save, and each save
// would rewrite the whole checkpoint (about 450 bytes a file, 9 MB for
// 20,000). A fold of n bytes makes the next fold due n/1 MiB seconds later
// when that is over a second; saves due meanwhile that would fold wait
// (a crash then sends again, with the same ids, the lines since).
const checkpointBytesPerSecond = 1 << 20

// savedState is what the checkpoint file keeps of a record, to tell
// whether it changed since it was encoded.
type savedState struct {
	path     string
	dev, ino uint64
	fp       fingerprint
	gen      uint64
	seed     chainHash
	at       mark
	size     int64
	rotated  bool
}

func (r *record) state() savedState {
	return savedState{r.path, r.dev, r.ino, r.fp, r.gen, r.seed, r.committed, r.size, r.rotated}
}

func (st savedState) encode() []byte {
	m := st.at
	raw, _ := json.Marshal(savedFile{Path: st.path, Device: st.dev, Inode: st.ino,
		Fingerprint: hex.EncodeToString(st.fp.sum[:]), FingerprintBytes: st.fp.n, Generation: st.gen, Seed: hex.EncodeToString(st.seed[:]),
		Offset: m.offset, Chain: hex.EncodeToString(m.chain[:]), PreviousChain: hex.EncodeToString(m.prev[:]), LineBytes: m.lineLen,
		Size: st.size, Rotated: st.rotated})
	return raw
}

// SaveDue writes what changed since the last save (see save), but a save
// that would fold waits while the last fold wrote more than
// checkpointBytesPerSecond allows since.
func (c *Checkpoints) SaveDue() error { return c.persist(true) }

// save writes what changed since the last save: the records of files
// that changed, and those forgotten, as lines appended to the journal and
// synced, so that the bytes written grow with the files that change, not
// with all files followed. When the journal would outgrow journalLimit, or
// the append fails (it may leave a torn line), it folds instead. Only
// records that changed are encoded again.
func (c *Checkpoints) save() error { return c.persist(false) }

func (c *Checkpoints) persist(due bool) error {
	if c.path == "" {
		return nil
	}
	c.saving.Lock()
	defer c.saving.Unlock()
	c.mu.Lock()
	lines, changed := c.changes()
	behind := c.behind
	c.mu.Unlock()
	if lines == nil && !behind {
		return nil
	}
	if !behind && c.journal != nil && c.journalBytes+len(lines) <= journalLimit(c.foldedBytes) {
		err := appendSynced(c.journal, lines)
		if err == nil {
			c.journalBytes += len(lines)
			c.saved(changed)
			return nil
		}
		c.closeJournal() // it may end in a torn line: the fold begins a new one
	}
	wait := false
	c.update(func() {
		// The lines of changes() are in no file now: only a fold can
		// write them, be it this one or a later one.
		c.behind = true
		wait = due && time.Now().Before(c.nextFold)
	})
	if wait {
		return nil
	}
	return c.foldNow()
}

// Fold saves, then rewrites the checkpoint whole and empties the journal
// when it holds lines: at shutdown, so that the next start reads one file.
// The save comes first so that a fold that fails (a full disk may have
// room for a line, not for the whole checkpoint) leaves every record in
// the checkpoint and its journal; the failure is still an error (exit 3):
// the next start must rewrite the checkpoint too.
func (c *Checkpoints) Fold() error {
	if err := c.save(); err != nil {
		return err
	}
	c.saving.Lock()
	defer c.saving.Unlock()
	if c.journal == nil || c.journalBytes == 0 {
		return nil // the save folded, or the journal holds no line
	}
	return c.foldNow()
}

// changes encodes the records that changed since the last save and
// returns their journal lines, and those of records forgotten since (nil
// when none), and the records written. Records new to the disk get a slot.
// Called with mu held.
func (c *Checkpoints) changes() ([]byte, []*record) {
	var lines []byte
	var changed []*record
	// Which slots hold a record still followed: a bit a slot for this
	// save, rather than a field in each of thousands of records.
	found := make([]bool, len(c.bySlot))
	for _, r := range c.records {
		if r.fp.n == 0 {
			continue // nothing read yet
		}
		if r.slot > 0 {
			found[r.slot-1] = true
		}
		if st := r.state(); st != r.encoded || r.slot == 0 {
			r.encoded = st
			if r.slot == 0 {
				c.bySlot = append(c.bySlot, r)
				r.slot = len(c.bySlot)
			}
			lines = appendFileLine(lines, r.slot-1, st.encode())
			changed = append(changed, r)
		}
	}
	for i, r := range c.bySlot[:len(found)] {
		if r != nil && !found[i] {
			c.bySlot[i], r.slot = nil, 0
			lines = appendForgottenLine(lines, i)
		}
	}
	return lines, changed
}

// foldNow writes every record to the checkpoint, atomically (a crash
// leaves the old one or the new one), with a new journal epoch, then
// begins the journal of that epoch. Called with saving held.
func (c *Checkpoints) foldNow() error {
	epoch := newEpoch()
	c.mu.Lock()
	var written []*record
	var states []savedState
	for _, r := range c.records {
		if r.fp.n == 0 {
			continue
		}
		r.encoded = r.state()
		written = append(written, r)
		states = append(states, r.encoded)
		r.slot = len(written)
	}
	c.bySlot = slices.Clone(written)
	if len(written) == 0 && !c.holds {
		c.behind = false
		c.mu.Unlock()
		return nil // nothing was ever on disk, nor is now
	}
	c.mu.Unlock()    // encoding thousands of entries need not hold up confirmations
	c.closeJournal() // its lines are in the fold; a crash before the new one begins leaves it of the old epoch, ignored
	// Written as it is encoded: with 20,000 files the whole checkpoint (9
	// MB) in memory was the producer's peak.
	size, err := c.write(func(w *bufio.Writer) {
		fmt.Fprintf(w, "{\"version\":%d,\"journal\":%q,\"files\":[", checkpointVersion, epoch)
		for i, st := range states {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
			w.Write(st.encode())
		}
		w.WriteString("\n]}\n")
	})
	if err != nil {
		return err
	}
	c.foldedBytes = size
	// The checkpoint is saved whatever becomes of the journal: without
	// one, each save folds, as before journals.
	_ = c.beginJournal(epoch)
	c.update(func() {
		c.behind, c.holds = false, len(written) > 0
		c.nextFold = time.Time{}
		if size > checkpointBytesPerSecond { // a smaller fold is made whenever due
			c.nextFold = time.Now().Add(time.Duration(size) * time.Second / checkpointBytesPerSecond)
		}
	})
	c.saved(written)
	return nil
}

// saved marks records as on disk once a save that wrote them is synced.
func (c *Checkpoints) saved(written []*record) {
	c.update(func() {
		for _, r := range written {
			r.onDisk = true
		}
	})
}

// write replaces the checkpoint file with raw, synced, then syncs its
// directory.
func (c *Checkpoints) write(encode func(*bufio.Writer)) (int, error) {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return 0, err
	}
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: f}
	w := bufio.NewWriterSize(cw, 64<<10)
	encode(w) // a write error sticks in w: Flush returns it
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return 0, err
	}
	if err := c.syncDirOf(c.path); err != nil {
		return 0, fmt.Errorf("syncing the checkpoint's directory: %w", err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += n
	return n, err
}

// skim computes the mark at offset by reading f from the start, as reading
// the lines would: for a checkpoint of the earlier format, which has no chain.
func skim(f *os.File, offset int64) (mark, error) {
	ls := lineState{h: newLineHash()}
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
