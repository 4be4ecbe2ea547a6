package filesource

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
)

// Identity of a followed file and of its lines, as values: no file is read
// here (see follow.go, "Knowing a file again" and "Ids").

// fingerprint is a file's identity: a hash of its first n bytes, n up to
// fpBytes (all of them while the file is shorter). The zero value covers
// nothing and matches no file.
type fingerprint struct {
	sum [16]byte
	n   int // bytes covered: grows with the file up to fpBytes
}

// fingerprintOf is the fingerprint of all of head (at most fpBytes long).
func fingerprintOf(head []byte) fingerprint {
	sum := sha256.Sum256(head)
	return fingerprint{sum: [16]byte(sum[:16]), n: len(head)}
}

// matches reports whether a file whose first bytes are head holds the bytes
// fp covers. A fingerprint of fewer than fpBytes bytes (a short file)
// identifies only its own inode (sameInode): a file that merely starts with
// all of a short one (a common banner line) is another file.
func (fp fingerprint) matches(head *fileHead, sameInode bool) bool {
	return fp.n > 0 && fp.n <= len(head.b) && (fp.n == fpBytes || sameInode) && head.sum(fp.n) == fp.sum
}

// fileHead is the first bytes of a file (at most fpBytes), with the hash of
// each prefix asked for so far: one hash per length, not one per record
// compared.
type fileHead struct {
	b    []byte
	sums map[int][16]byte
}

func newFileHead(b []byte) *fileHead { return &fileHead{b: b} }

func (h *fileHead) sum(n int) [16]byte {
	if s, ok := h.sums[n]; ok {
		return s
	}
	if h.sums == nil {
		h.sums = map[int][16]byte{}
	}
	s := fingerprintOf(h.b[:n]).sum
	h.sums[n] = s
	return s
}

// chainHash is a file's chain after a line: SHA-256(the chain before that
// line || the line's bytes), starting from the seed of the file's
// generation. A line's id is made of it (chainID), so it depends on the seed
// and on every byte of the file up to and including that line.
type chainHash [32]byte

// then is the chain after line, read after c.
func (c chainHash) then(line []byte) chainHash {
	h := sha256.New()
	h.Write(c[:])
	h.Write(line)
	return chainHash(h.Sum(nil))
}

// newSeed starts the chain of a file read from its start: random, so that
// two files, or a file before and after a truncation, never share ids.
func newSeed() (seed chainHash) {
	_, _ = rand.Read(seed[:])
	return seed
}

// chainSeed is what the chain of a file's generation started from before
// seeds were random: for records of earlier checkpoints, which do not keep
// their seed.
func chainSeed(gen uint64) chainHash {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte("tributary file chain\x00"), gen))
}
