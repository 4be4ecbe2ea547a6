package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"
)

// line is one line read from a source, before it is parsed.
type line struct {
	data    []byte
	pos     *position // nil for sources that cannot be read again
	id      string    // the id it gets unless it has one; "" for a random one
	tooLong bool      // data holds only the start of the line
	cut     string    // why the line has no newline, when that is not the end of the input
	cost    int64     // bytes it holds of the queue
	spool   uint64    // its record in the spool; 0 when not spooled
	read    time.Time // when it was read, for a spooled line (its event_time); zero: when parsed
}

// maxLineBytes bounds the memory one line may take; longer lines go to the
// dead-letter file truncated (they could never be sent: see MaxEventBytes).
const maxLineBytes = 4 << 20

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// deadliner is an input whose blocked Read can be ended (a pipe or terminal
// opened non-blocking: see cmd/producer).
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// readStream sends every line of r (stdin) until it ends or ctx does. When
// ctx ends it starts no new read, and every byte already read becomes a line
// that is delivered or dead-lettered: a read in progress is ended at once
// when r is a deadliner, or waited for until giveUp otherwise. emit waits
// for room in the queue (false when ctx ended); emitNow does not wait.
func readStream(ctx context.Context, r io.Reader, giveUp <-chan struct{}, emit func(context.Context, line) bool, emitNow func(line)) error {
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, 64<<10)
	ask := make(chan struct{})
	got := make(chan result, 1)
	defer close(ask)
	go func() { // reads only when asked, so nothing is read after a stop
		for range ask {
			n, err := r.Read(buf)
			got <- result{n, err}
		}
	}()
	var ls lineState
	stopped := false
	send := func(cut string) {
		l := line{data: append([]byte(nil), trimEOL(ls.buf)...), tooLong: ls.long(), cut: cut}
		ls.start([32]byte{})
		if len(l.data) == 0 && !l.tooLong {
			return
		}
		if stopped || !emit(ctx, l) {
			emitNow(l)
		}
	}
	for {
		ask <- struct{}{}
		var res result
		select {
		case res = <-got:
		case <-ctx.Done():
			stopped = true
			if d, ok := r.(deadliner); ok && d.SetReadDeadline(time.Now()) == nil {
				res = <-got
				_ = d.SetReadDeadline(time.Time{}) // the caller's file reads again
			} else {
				select {
				case res = <-got:
				case <-giveUp: // a read that never returns holds nothing yet
				}
			}
		}
		for p := buf[:res.n]; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			piece := p
			if i >= 0 {
				piece = p[:i+1]
			}
			ls.add(piece)
			p = p[len(piece):]
			if i >= 0 {
				send("")
			}
		}
		stopped = stopped || ctx.Err() != nil
		switch {
		case errors.Is(res.err, io.EOF):
			send("") // a last line without newline
			return nil
		case stopped:
			send("cut off at shutdown before its newline was read")
			return nil
		case res.err != nil && !errors.Is(res.err, os.ErrDeadlineExceeded):
			send("cut off by a read error")
			return res.err
		}
	}
}

// generate sends synthetic events at rate per second until ctx ends.
func generate(ctx context.Context, rate float64, emit func(context.Context, line) bool) error {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			due := int(rate * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				data := fmt.Appendf(nil, `{"value":"%d","type":"Tip %d"}`, 1+rand.IntN(100), 1+rand.IntN(5))
				if !emit(ctx, line{data: data}) {
					return nil
				}
			}
		}
	}
}
