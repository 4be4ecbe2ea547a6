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

	"github.com/tributary/tributary/internal/filesource"
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
const maxLineBytes = filesource.MaxLineBytes

// position is where a line of a followed file ended: what confirming it
// moves the checkpoint past.
type position = filesource.Position

// fileLine is l as delivery takes it: its id is made of its chain.
func fileLine(l filesource.Line) line {
	return line{data: l.Data, pos: l.Pos, id: chainID(l.Chain), tooLong: l.TooLong, cut: l.Cut, read: l.Read}
}

// deadliner is an input whose blocked Read can be ended (a pipe or terminal
// opened non-blocking: see cmd/producer).
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// readStream sends every line of r (stdin) until it ends or ctx does. When
// ctx ends it starts no new line: a read in progress is ended at once when r
// is a deadliner (or waited for until giveUp otherwise), and a line read in
// part is read to its newline, a byte at a time so that nothing after it is
// taken, until giveUp; only then is what was read of it dead-lettered as cut
// off. Every byte read becomes a line that is delivered or dead-lettered.
// emit waits for room in the queue (false when ctx ended); emitNow does not
// wait.
func readStream(ctx context.Context, r io.Reader, giveUp <-chan struct{}, emit func(context.Context, line) bool, emitNow func(line)) error {
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, 64<<10)
	ask := make(chan int)
	got := make(chan result, 1)
	defer close(ask)
	go func() { // reads only when asked, so nothing is read after a stop
		for size := range ask {
			n, err := r.Read(buf[:size])
			got <- result{n, err}
		}
	}()
	// interrupt ends the read in progress; ok false when it could not be
	// ended and giveUp came first (a read that never returns holds nothing).
	interrupt := func() (result, bool) {
		if d, ok := r.(deadliner); ok && d.SetReadDeadline(time.Now()) == nil {
			res := <-got
			_ = d.SetReadDeadline(time.Time{}) // the caller's file reads again
			return res, true
		}
		select {
		case res := <-got:
			return res, true
		case <-giveUp:
			return result{}, false
		}
	}
	var ls filesource.StreamLine
	stopped, gaveUp := false, false
	send := func(cut string) {
		l := line{cut: cut}
		l.data, l.tooLong = ls.Take()
		if len(l.data) == 0 && !l.tooLong {
			return
		}
		if stopped || !emit(ctx, l) {
			emitNow(l)
		}
	}
	size := len(buf)
	for {
		ask <- size
		var res result
		ok := true
		stop := ctx.Done()
		if stopped {
			stop = giveUp
		}
		select {
		case res = <-got:
		case <-stop:
			// At the stop, the read in progress (a whole buffer) is ended;
			// a line it leaves in part is read on, a byte at a time. At
			// giveUp, that read is ended too.
			gaveUp = stopped
			stopped = true
			res, ok = interrupt()
			gaveUp = gaveUp || !ok
		}
		for p := buf[:res.n]; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			piece := p
			if i >= 0 {
				piece = p[:i+1]
			}
			ls.Add(piece)
			p = p[len(piece):]
			if i >= 0 {
				send("")
			}
		}
		stopped = stopped || ctx.Err() != nil
		if stopped && !gaveUp {
			select {
			case <-giveUp:
				gaveUp = true
			default:
			}
		}
		switch {
		case errors.Is(res.err, io.EOF):
			send("") // a last line without newline
			return nil
		case stopped && (ls.Len() == 0 || gaveUp || !ok):
			send("cut off at shutdown before its newline was read (the shutdown timeout passed)")
			return nil
		case res.err != nil && !errors.Is(res.err, os.ErrDeadlineExceeded):
			send("cut off by a read error")
			return res.err
		}
		if stopped {
			size = 1 // the rest of the line, and nothing after it
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
