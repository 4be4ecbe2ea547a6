//go:build faults

package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
)

var (
	measureFiles = flag.Int("measure.files", 0, "TestMeasureManyFiles follows this many files (0: the test is skipped)")
	measureFor   = flag.Duration("measure.for", time.Minute, "how long TestMeasureManyFiles measures once every file's line is stored")
)

// TestMeasureManyFiles is a measurement run by hand, not a check: the
// built producer (no race detector) follows -measure.files files of which
// one grows (ten lines a second) with default flags, against the fake API;
// once every file's line is stored it measures for -measure.for and logs the
// peak and current resident set (VmHWM, VmRSS) and the fraction of a core
// the producer used meanwhile (utime+stime from /proc/PID/stat).
//
//	go test -tags faults -count=1 -v ./cmd/producer/ -run TestMeasureManyFiles -measure.files 20000
//
// Extra flags for the producer go after -args, e.g. -args -log-level warn;
// GOMEMLIMIT and other environment variables are passed through.
func TestMeasureManyFiles(t *testing.T) {
	if *measureFiles == 0 {
		t.Skip("a measurement: run with -measure.files N")
	}
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	dir := t.TempDir()
	for i := range *measureFiles {
		line := fmt.Sprintf(`{"n":%d,"text":"event %d"}`+"\n", i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.log", i)), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"-url", api.URL, "-source", "file", "-auth", "none", "-files", filepath.Join(dir, "*.log"),
		"-checkpoint", filepath.Join(dir, "state", "checkpoint.json"), "-dead-letter", filepath.Join(dir, "state", "dead-letter.ndjson")},
		flag.Args()...)
	cmd := exec.Command(plainBin, args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for len(api.Events()) < *measureFiles {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events stored in 5 minutes; stderr:\n%s", len(api.Events()), *measureFiles, tail(stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the checkpoint saved past them
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one file grows, ten lines a second
		for n := *measureFiles; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			f, err := os.OpenFile(filepath.Join(dir, "f00000.log"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(f, `{"n":%d,"text":"event %d"}`+"\n", n, n)
			f.Close()
		}
	}()
	pid := cmd.Process.Pid
	cpu0, start := cpuTicks(t, pid), time.Now()
	time.Sleep(*measureFor)
	cpu1, wall := cpuTicks(t, pid), time.Since(start)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	kib := func(field string) int64 {
		m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(status)
		if m == nil {
			t.Fatalf("no %s in /proc/%d/status", field, pid)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	const ticksPerSecond = 100 // USER_HZ
	t.Logf("files %d: VmHWM %.1f MB, VmRSS %.1f MB, cpu %.2f%% of a core over %s; stored %d events",
		*measureFiles, float64(kib("VmHWM"))*1024/1e6, float64(kib("VmRSS"))*1024/1e6,
		100*float64(cpu1-cpu0)/ticksPerSecond/wall.Seconds(), wall.Round(time.Second), len(api.Events()))
}

// cpuTicks is utime+stime of process pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 14th and 15th of the whole line.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}
