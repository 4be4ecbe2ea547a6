package local

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

// A shard's write limits, as Kinesis documents them.
const (
	shardRecordsPerSecond = 1000
	shardBytesPerSecond   = 1 << 20
)

// Stream is a Kinesis data stream on disk: each shard is an append-only
// log under dir, so what the API answered 200 for survives a stop and is
// delivered after a restart. Records go to shards by the MD5 of their
// partition key, as Kinesis routes them, and each shard takes at most 1,000
// records and 1 MiB a second; the rest are throttled.
type Stream struct {
	mu     sync.Mutex
	shards []*shard
	now    func() time.Time
	put    int // records stored, for the stats line
	events int // the events (lines) in them
}

type shard struct {
	id     string
	f      *os.File
	size   int64 // bytes in the log: the next record's offset
	second int64 // the second of the window below
	recs   int
	bytes  int
}

// Entry is a record read back, with where it is in its shard's log.
type Entry struct {
	Shard   int
	Offset  int64 // its sequence number
	Next    int64 // the offset after it
	Arrival time.Time
	Key     string
	Data    []byte
}

// OpenStream opens (or creates) a stream of n shards under dir.
func OpenStream(dir string, n int) (*Stream, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Stream{now: time.Now}
	for i := range n {
		id := fmt.Sprintf("shardId-%012d", i)
		f, err := os.OpenFile(filepath.Join(dir, id+".log"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, &shard{id: id, f: f, size: st.Size()})
	}
	return s, nil
}

// Close closes the logs.
func (s *Stream) Close() {
	for _, sh := range s.shards {
		sh.f.Close()
	}
}

// Stored is how many records the stream has taken since it opened, and
// the events (one line each) in them.
func (s *Stream) Stored() (records, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put, s.events
}

// shardOf is the shard whose hash key range holds the key's MD5, the shards
// splitting the 128-bit range evenly.
func (s *Stream) shardOf(key string) int {
	sum := md5.Sum([]byte(key))
	h := new(big.Int).SetBytes(sum[:])
	h.Mul(h, big.NewInt(int64(len(s.shards))))
	return int(h.Rsh(h, 128).Int64())
}

// Put stores what each shard's limits allow, in order.
func (s *Stream) Put(records []fakeapi.Record) []fakeapi.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	results := make([]fakeapi.Result, len(records))
	for i, r := range records {
		sh := s.shards[s.shardOf(r.PartitionKey)]
		if sec := now.Unix(); sec != sh.second {
			sh.second, sh.recs, sh.bytes = sec, 0, 0
		}
		n := len(r.Data) + len(r.PartitionKey)
		if sh.recs+1 > shardRecordsPerSecond || sh.bytes+n > shardBytesPerSecond {
			results[i] = fakeapi.Result{ErrorCode: fakeapi.Throttled, ErrorMessage: "Rate exceeded for shard " + sh.id + " in stream (local)."}
			continue
		}
		offset, err := sh.append(now, r)
		if err != nil {
			results[i] = fakeapi.Result{ErrorCode: "InternalFailure", ErrorMessage: "the local stream could not write its log: " + err.Error()}
			continue
		}
		sh.recs++
		sh.bytes += n
		s.put++
		s.events += bytes.Count(r.Data, []byte{'\n'})
		results[i] = fakeapi.Result{SequenceNumber: fmt.Sprintf("%021d", offset), ShardID: sh.id}
	}
	return results
}

// append writes one entry: arrival (unix ns), key length, data length, key, data.
func (sh *shard) append(at time.Time, r fakeapi.Record) (int64, error) {
	buf := make([]byte, 16, 16+len(r.PartitionKey)+len(r.Data))
	binary.BigEndian.PutUint64(buf, uint64(at.UnixNano()))
	binary.BigEndian.PutUint32(buf[8:], uint32(len(r.PartitionKey)))
	binary.BigEndian.PutUint32(buf[12:], uint32(len(r.Data)))
	buf = append(append(buf, r.PartitionKey...), r.Data...)
	if _, err := sh.f.Write(buf); err != nil {
		// A short write would leave a torn entry: cut the log back to where it was.
		_ = sh.f.Truncate(sh.size)
		return 0, err
	}
	offset := sh.size
	sh.size += int64(len(buf))
	return offset, nil
}

// Read returns up to max entries of a shard from offset on.
func (s *Stream) Read(shardIndex int, offset int64, max int) ([]Entry, error) {
	s.mu.Lock()
	sh := s.shards[shardIndex]
	size := sh.size
	s.mu.Unlock()
	if offset >= size {
		return nil, nil
	}
	r := bufio.NewReader(io.NewSectionReader(sh.f, offset, size-offset))
	var out []Entry
	for len(out) < max && offset < size {
		var head [16]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return out, fmt.Errorf("%s at %d: %w", sh.id, offset, err)
		}
		kl, dl := binary.BigEndian.Uint32(head[8:]), binary.BigEndian.Uint32(head[12:])
		body := make([]byte, int(kl)+int(dl))
		if _, err := io.ReadFull(r, body); err != nil {
			return out, fmt.Errorf("%s at %d: %w", sh.id, offset, err)
		}
		next := offset + 16 + int64(len(body))
		out = append(out, Entry{Shard: shardIndex, Offset: offset, Next: next,
			Arrival: time.Unix(0, int64(binary.BigEndian.Uint64(head[:]))).UTC(), Key: string(body[:kl]), Data: body[kl:]})
		offset = next
	}
	return out, nil
}

// Shards is the number of shards.
func (s *Stream) Shards() int { return len(s.shards) }
