package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/local"
	"github.com/tributary/tributary/internal/localsql"
)

// check runs the local pipeline in a fresh folder, sends a known set of
// events with the real producer (batches, single events to /v1, one
// malformed line, one event over Kinesis's 1 MiB record limit), stops the
// pipeline (which writes every buffer), runs every saved query, and agrees
// only when every event sent is in S3 once and counted by "Events per
// hour", and exactly the two bad ones were dead-lettered.
func check(args []string, out io.Writer) error {
	var c common
	fs := flags("check", &c)
	producer := fs.String("producer", "bin/producer", "the producer binary")
	batched := fs.Int("batched", 2000, "events sent in batches")
	single := fs.Int("single", 50, "events sent one by one to /v1")
	fs.Lookup("dir").DefValue = ""
	c.dir = ""
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.dir == "" {
		tmp, err := os.MkdirTemp("", "tributary-local-check-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		c.dir = tmp
	}
	p, err := local.Start(local.Options{Assembly: c.assembly, Dir: c.dir, Out: out, APIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx, time.Hour) }()

	var lines bytes.Buffer
	for i := range *batched {
		fmt.Fprintf(&lines, `{"type":"local-check","n":%d,"via":"batch"}`+"\n", i)
		if i == *batched/2 {
			lines.WriteString("{not json\n")
			fmt.Fprintf(&lines, `{"type":"local-check","big":"%s"}`+"\n", strings.Repeat("x", 1<<20))
		}
	}
	var ones bytes.Buffer
	for i := range *single {
		fmt.Fprintf(&ones, `{"type":"local-check","n":%d,"via":"v1"}`+"\n", i)
	}
	deadLetters := filepath.Join(c.dir, "check-dead-letter.ndjson")
	began := time.Now()
	producerRSS, sendErr := sendWith(*producer, p, c.dir, lines.Bytes(), "500", deadLetters)
	sendTime := time.Since(began)
	if sendErr == nil {
		_, sendErr = sendWith(*producer, p, c.dir, ones.Bytes(), "1", deadLetters)
	}
	// Let delivery write the objects as the buffering hints say (interval or
	// size), then stop: the stop writes anything still buffered.
	sent := *batched + *single
	deadline := time.Now().Add(p.Config.Delivery.Interval + 15*time.Second)
	for sendErr == nil && p.Stats().Landed < sent && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	byBuffering := p.Stats().Landed
	stop()
	if err := <-ran; err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}

	inS3, err := countObjects(p.S3.Folder(), p.Config.Delivery.Prefix)
	if err != nil {
		return err
	}
	a, err := cfn.ReadAssembly(c.assembly)
	if err != nil {
		return err
	}
	queries := localsql.NamedQueries(a.Stacks[p.Config.PipelineStack])
	var names, sqls []string
	for n, q := range queries {
		names, sqls = append(names, n), append(sqls, q)
	}
	results, err := runSQL(c, a, p.Config, sqls...)
	if err != nil {
		return err
	}
	counted := -1
	for i, n := range names {
		if n == "Events per hour" {
			counted = 0
			for _, row := range results[i] {
				v, _ := strconv.Atoi(fmt.Sprint(row["events"]))
				counted += v
			}
		}
	}
	dead, err := countLines(deadLetters)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "local-check: %d sent, %d in S3, %d counted by \"events per hour\", %d dead-lettered (%d landed within the buffering interval, %d saved queries ran)\n",
		sent, inS3, counted, dead, byBuffering, len(names))
	fmt.Fprintf(out, "local-check: %.0f events/s from the producer through the local API (batches); peak RSS: local %d MiB, producer %d MiB\n",
		float64(*batched)/sendTime.Seconds(), peakRSS()>>20, producerRSS>>20)
	if inS3 != sent || counted != sent || dead != 2 {
		return fmt.Errorf("%w: want %d in S3 and counted, and 2 dead-lettered (the malformed line and the event over 1 MiB)", errCheck, sent)
	}
	return nil
}

// sendWith runs the producer on events from stdin until it has handled
// them all, and returns its peak RSS in bytes.
func sendWith(bin string, p *local.Pipeline, dir string, events []byte, batchSize, deadLetters string) (int64, error) {
	cmd := exec.Command(bin, "-source", "stdin", "-url", p.APIURL, "-batch-size", batchSize, "-linger", "100ms",
		"-checkpoint", filepath.Join(dir, "check-checkpoint.json"), "-dead-letter", deadLetters, "-stats-interval", "1h")
	cmd.Env = append(os.Environ(), p.AuthEnv()...)
	cmd.Stdin = bytes.NewReader(events)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("the producer %s: %w (build it with `make bin/producer`)", bin, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && !isDeadLetterExit(err) {
			return 0, fmt.Errorf("the producer: %v\n%s", err, logs.String())
		}
		var rss int64
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss << 10 // KiB on Linux
		}
		return rss, nil
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("the producer did not finish in 2 minutes:\n%s", logs.String())
	}
}

// isDeadLetterExit: a producer that dead-lettered events may say so in its
// exit status; the check counts the dead letters itself.
func isDeadLetterExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && ee.ExitCode() == 3
}

// countObjects counts the event lines of every object under the fixed part
// of the delivery's prefix (the data prefix and the layout's folder, before
// the first !{...}), reading gzip where an object's name says so.
func countObjects(folder, prefix string) (int, error) {
	fixed, _, _ := strings.Cut(prefix, "!{")
	n := 0
	err := filepath.WalkDir(filepath.Join(folder, fixed), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<20), 2<<20)
		for sc.Scan() {
			n++
		}
		return sc.Err()
	})
	return n, err
}

// peakRSS is this process's high-water resident set, in bytes.
func peakRSS() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib << 10
		}
	}
	return 0
}

func countLines(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	return bytes.Count(raw, []byte{'\n'}), err
}
