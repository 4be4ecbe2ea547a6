package producer

import (
	"context"
	"sync"
)

// eventOverhead is what an event costs the queue beyond its line: the Event
// and position structs, the id and time enrich adds, slice headers.
const eventOverhead = 512

// positionOverhead is the part of eventOverhead a line of a followed file
// holds until the checkpoint moves past it, which can be long after it is
// confirmed: its position waits in record.done for the lines before it.
const positionOverhead = 256

// budget bounds the bytes of everything read but not yet confirmed or
// dead-lettered (queued, in flight, waiting for a retry or for the
// dead-letter file). Readers wait for room: backpressure instead of growth.
type budget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters int
	freed   chan struct{} // closed when bytes are released to a waiter
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting until they fit; one item larger than the
// whole limit passes when nothing else is held. False if ctx ended first.
func (b *budget) acquire(ctx context.Context, n int64) bool {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		b.waiters++
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
	}
}

// tryAcquire takes n bytes if they fit now (as acquire would without
// waiting).
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used == 0 || b.used+n <= b.limit {
		b.used += n
		return true
	}
	return false
}

// take takes n bytes without waiting: for lines already read when the
// producer stops, which must be delivered or dead-lettered, not dropped.
func (b *budget) take(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
