package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// sample is one run of a client (the producer or the floor) in one mode.
type sample struct {
	elapsed time.Duration // from its start to the sink counting the last event
	cpu     time.Duration // the process's user + system time
	maxRSS  int64         // bytes
	counts
}

func (s sample) eventsPerSec() float64 { return float64(s.distinct) / s.elapsed.Seconds() }
func (s sample) cpuPerMillion() float64 {
	return s.cpu.Seconds() / float64(s.distinct) * 1e6
}

// client is how to start one client for one run.
type client struct {
	name  string
	args  []string
	env   []string
	stdin string // a file for its standard input
	stops bool   // it exits by itself once everything is confirmed (else SIGTERM)
}

// runOnce resets the sink for expect events, starts c in dir, calls feed
// (when set) once it is started, waits until the sink counted every event,
// stops c and measures it.
func runOnce(ctx context.Context, s *sink, c client, dir string, expect int, track bool, feed func(context.Context) error) (sample, error) {
	s.reset(expect, track)
	done, doneAt := s.finished()
	errLog := filepath.Join(dir, c.name+".stderr")
	logf, err := os.Create(errLog)
	if err != nil {
		return sample{}, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.Env = append(os.Environ(), c.env...)
	cmd.WaitDelay = 10 * time.Second
	if c.stdin != "" {
		in, err := os.Open(c.stdin)
		if err != nil {
			return sample{}, err
		}
		defer in.Close()
		cmd.Stdin = in
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fed := make(chan error, 1)
	if feed != nil {
		go func() { fed <- feed(ctx) }()
	}
	var waitErr error
	stopped := false // exited was received
	fail := func(why string) (sample, error) {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		got := s.counts()
		return sample{}, fmt.Errorf("%s %s: counted %d of %d events (%d duplicates, %d unknown)%s",
			c.name, why, got.distinct, expect, got.dupes, got.unknown, tail(errLog))
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case err := <-fed:
			if err != nil {
				return fail("feeding: " + err.Error())
			}
			fed = nil
		case waitErr = <-exited:
			stopped = true
			select {
			case <-done:
				finished = true
			case <-time.After(time.Second): // its last answer may still be on its way
				return fail(fmt.Sprintf("exited (%v) before every event arrived", waitErr))
			}
		case <-ctx.Done():
			return fail("timed out")
		}
	}
	elapsed := doneAt().Sub(start)
	if !stopped {
		if !c.stops {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case waitErr = <-exited:
		case <-time.After(60 * time.Second):
			return fail("did not exit within 60 s of its last event")
		}
	}
	if waitErr != nil {
		return sample{}, fmt.Errorf("%s: %v after every event arrived%s", c.name, waitErr, tail(errLog))
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	smp := sample{elapsed: elapsed, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), counts: s.counts()}
	if ru != nil {
		smp.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return smp, nil
}

// tail is the end of a client's log, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + path + " ends:\n" + string(bytes.TrimSpace(b))
}

// appendAtRate writes lines to path at rate lines a second for d, each
// carrying its write time, and returns when all are written.
func appendAtRate(ctx context.Context, path string, rate float64, d time.Duration, total int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	g := newGen(lineBytes)
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var buf []byte
	for seq := 0; seq < total; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			// By the schedule, not by ticks: a late tick writes what is due.
			due := min(total, int(now.Sub(start).Seconds()*rate))
			buf = buf[:0]
			wt := time.Now().UnixNano()
			for ; seq < due; seq++ {
				buf = g.appendLine(buf, seq, wt)
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
		}
	}
	return nil
}
