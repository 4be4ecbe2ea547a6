package filesource

import "time"

// MaxLineBytes bounds the memory one line may take: a longer line is
// handed out truncated, with TooLong set.
const MaxLineBytes = 4 << 20

// Line is a line the follower hands out: its bytes, the chain hash after
// it (its id's source: the same line read again has the same chain), and
// the position delivery confirms it by.
type Line struct {
	Data    []byte    // without its end of line (and leading NULs)
	Chain   [32]byte  // the file's chain hash after the line
	TooLong bool      // Data holds only the first MaxLineBytes of the line
	Cut     string    // why the line has no newline; "" when it has one
	Read    time.Time // when it was read
	Pos     *Position
}

// CheckpointFiles is the files a checkpoint at path keeps beside it, path
// included: a follower must not follow them (Config.Exclude).
func CheckpointFiles(path string) []string {
	return []string{path, path + ".tmp", path + ".lock", journalPath(path)}
}

// StreamLine splits a stream that cannot be read again (stdin) into lines
// as a followed file is split, with the same bound, and no chain.
type StreamLine struct{ ls lineState }

// Add adds p, which holds at most one newline, at its end.
func (s *StreamLine) Add(p []byte) { s.ls.add(p) }

// Len is the bytes of the line so far.
func (s *StreamLine) Len() int64 { return s.ls.n }

// Take returns the line so far, without its end of line, and whether it
// was longer than MaxLineBytes, and starts the next one.
func (s *StreamLine) Take() (data []byte, tooLong bool) {
	data, tooLong = append([]byte(nil), trimEOL(s.ls.buf)...), s.ls.long()
	s.ls.start(chainHash{})
	return data, tooLong
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
