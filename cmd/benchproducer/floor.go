package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tributary/tributary/internal/ingest"

	"github.com/klauspost/compress/gzip"
)

// floorEnv, when set, makes the harness's own binary the floor client:
// a process of its own, so that its CPU and memory are measured as the
// producer's are.
const floorEnv = "BENCHPRODUCER_FLOOR"

// batchBytes is the producer's bound on a batch's events and newlines
// (internal/producer's batchBytes: one Kinesis record less room for the
// partition key), so that the floor posts the same batches.
const batchBytes = ingest.MaxRecordBytes - 64<<10

// floorMain is the raw client: it reads lines from a file and posts them
// as they are, in batches of -batch-size (or batchBytes), gzip-compressed
// at the producer's level, from -concurrency requests at once: the least
// any client must do to deliver the same lines. With -follow it keeps
// reading the file as it grows, until SIGTERM.
func floorMain(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	file := fs.String("file", "", "the file to send")
	url := fs.String("url", "", "the /v1 URL")
	size := fs.Int("batch-size", ingest.MaxBatch, "events per request")
	gz := fs.Bool("gzip", true, "compress batches")
	conc := fs.Int("concurrency", 4, "requests in flight")
	follow := fs.Bool("follow", false, "read the file as it grows, until SIGTERM")
	linger := fs.Duration("linger", time.Second, "with -follow, how long a batch waits to fill")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := floor(ctx, *file, strings.TrimSuffix(*url, "/")+"/batch", *size, *gz, *conc, *follow, *linger); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	return 0
}

func floor(ctx context.Context, path, url string, size int, gz bool, conc int, follow bool, linger time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	jobs := make(chan []byte, conc)
	free := make(chan []byte, 2*conc) // bodies back from the senders, to reuse
	errs := make(chan error, conc)
	for range conc {
		go func() {
			var zbuf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed) // the producer's compressor and level
			for body := range jobs {
				errs <- post(hc, url, body, gz, zw, &zbuf)
				select {
				case free <- body[:0]:
				default:
				}
			}
		}()
	}
	inFlight := 0
	wait := func(n int) error { // until at most n requests are in flight
		for inFlight > n {
			if err := <-errs; err != nil {
				return err
			}
			inFlight--
		}
		return nil
	}
	var body []byte
	count, first := 0, time.Time{}
	flush := func() error {
		if count == 0 {
			return nil
		}
		if err := wait(conc - 1); err != nil {
			return err
		}
		jobs <- append(body, ']')
		inFlight++
		select {
		case body = <-free:
		default:
			body = nil
		}
		count = 0
		return nil
	}
	lr := &lineReader{f: f, buf: make([]byte, 4<<20)}
	for {
		line, err := lr.next()
		if err != nil {
			return err
		}
		if line == nil { // the end of the file, for now
			if !follow {
				break
			}
			if count > 0 && time.Since(first) >= linger {
				if err := flush(); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		if count > 0 && len(body)+len(line)+1 > batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		if count == 0 {
			body, first = append(body, '['), time.Now()
		} else {
			body = append(body, ',')
		}
		body = append(body, line...)
		if count++; count >= size {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	close(jobs)
	return wait(0)
}

// post sends one batch; anything but a 200 stops the floor (the sink
// answers every well-formed batch 200).
func post(hc *http.Client, url string, body []byte, gz bool, zw *gzip.Writer, zbuf *bytes.Buffer) error {
	send := body
	if gz {
		zbuf.Reset()
		zw.Reset(zbuf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		send = zbuf.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(send))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, answer)
	}
	return nil
}

// lineReader returns a file's complete lines, without their newline; a
// line is valid until the next call.
type lineReader struct {
	f          *os.File
	buf        []byte
	start, end int
}

// next is the next complete line, or nil at the end of the file for now
// (an unterminated last line waits for its newline).
func (r *lineReader) next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(r.buf[r.start:r.end], '\n'); i >= 0 {
			line := r.buf[r.start : r.start+i]
			r.start += i + 1
			return line, nil
		}
		if r.start > 0 {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
		if r.end == len(r.buf) {
			return nil, errors.New("a line longer than the floor's buffer")
		}
		n, err := r.f.Read(r.buf[r.end:])
		r.end += n
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, nil
			}
			return nil, err
		}
	}
}
