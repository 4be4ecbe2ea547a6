package filesource

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestFingerprintIsTheFirst16BytesOfSHA256OfTheHead(t *testing.T) {
	head := []byte("2026-12-04 app started\n")
	sum := sha256.Sum256(head)
	fp := fingerprintOf(head)
	if !bytes.Equal(fp.sum[:], sum[:16]) || fp.n != len(head) {
		t.Errorf("fingerprintOf = %x/%d, want %x/%d (the checkpoint's fingerprint field)", fp.sum, fp.n, sum[:16], len(head))
	}
}

func TestFingerprintMatches(t *testing.T) {
	full := bytes.Repeat([]byte("0123456789abcdef"), fpBytes/16)
	short := fingerprintOf([]byte("banner\n"))
	long := fingerprintOf(full)
	other := append([]byte("X"), full[1:]...)
	for _, c := range []struct {
		name      string
		fp        fingerprint
		head      []byte
		sameInode bool
		want      bool
	}{
		{"short, its own bytes, its inode", short, []byte("banner\n"), true, true},
		{"short, grown, its inode", short, []byte("banner\nline 1\n"), true, true},
		{"short, another inode starting with it (a common banner)", short, []byte("banner\nline 1\n"), false, false},
		{"short, its inode, first bytes changed", short, []byte("Banner\nline 1\n"), true, false},
		{"short, its inode, now shorter than it covers", short, []byte("bann"), true, false},
		{"full, another inode with the same first bytes (a copy)", long, full, false, true},
		{"full, its inode", long, full, true, true},
		{"full, another inode, other first bytes", long, other, false, false},
		{"full, a head shorter than it covers", long, full[:fpBytes-1], true, false},
		{"none (a record begun at a truncation)", fingerprint{}, []byte("x"), true, false},
	} {
		if got := c.fp.matches(newFileHead(c.head), c.sameInode); got != c.want {
			t.Errorf("%s: matches = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFileHeadSumIsThePrefixFingerprint(t *testing.T) {
	h := newFileHead([]byte("abcdefgh"))
	for _, n := range []int{3, 8, 3} { // the second 3 comes from the memo
		if got, want := h.sum(n), fingerprintOf([]byte("abcdefgh")[:n]).sum; got != want {
			t.Errorf("sum(%d) = %x, want %x", n, got, want)
		}
	}
}

func TestChainThenIsSHA256OfChainAndLine(t *testing.T) {
	c := chainSeed(0)
	line := []byte(`{"n":1}` + "\n")
	want := sha256.Sum256(append(append([]byte(nil), c[:]...), line...))
	if got := c.then(line); got != want {
		t.Errorf("then = %x, want %x", got, want)
	}
}

// The chains of lines of an earlier checkpoint's files (seed chainSeed(gen))
// must not change: the ids made of them are what a consumer deduplicates by.
// The ids are pinned: their bytes are the chain's first 16, but for the
// UUID's version and variant bits.
func TestChainsOfEarlierSeedsArePinned(t *testing.T) {
	c := chainSeed(0)
	want := []string{"a49b5e78-6f32-8014-8d1f-90d5836030f1", "4de4c069-2044-8dfb-b228-18b31b6c91d7"} // computed apart from this code
	for i, l := range []string{`{"n":1}` + "\n", `{"n":2}` + "\n"} {
		c = c.then([]byte(l))
		id, err := hex.DecodeString(strings.ReplaceAll(want[i], "-", ""))
		if err != nil {
			t.Fatal(err)
		}
		b := [16]byte(c[:16])
		b[6], b[8] = b[6]&0x0f|0x80, b[8]&0x3f|0x80
		if b != [16]byte(id) {
			t.Errorf("line %d: chain %x, want one that gives the id %s", i+1, c, want[i])
		}
	}
	if chainSeed(1) == chainSeed(0) {
		t.Error("generations share a seed")
	}
}

// Reading a line in pieces (lineState) gives the chain then gives for the
// whole line, and the mark it leaves checks out as lineOK checks it.
func TestLineStateChainIsThen(t *testing.T) {
	seed := newSeed()
	line := []byte("\x00\x00{\"n\":1}\r\n") // leading NULs count toward the chain
	ls := lineState{h: newLineHash(), skipNUL: true}
	ls.start(seed)
	ls.add(line[:3])
	ls.add(line[3:])
	m := ls.end(100)
	if m.chain != seed.then(line) || m.prev != seed || m.lineLen != int64(len(line)) || m.offset != 100+int64(len(line)) {
		t.Errorf("mark %+v, want chain %x after %d bytes", m, seed.then(line), len(line))
	}
	if m.prev.then(line) != m.chain {
		t.Error("the mark's line does not check out")
	}
}
