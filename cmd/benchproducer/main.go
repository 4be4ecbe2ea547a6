// Command benchproducer measures the producer against the least any client
// must do (issue 18): it generates a workload, builds and runs the real
// producer binary, and a raw floor client, alternately against a loopback
// sink that counts events, and prints per mode the medians of events/s, CPU
// seconds per million events, peak RSS and bytes on the wire, each beside
// the floor's, and in the tail mode the latency from a line's write to its
// arrival. Loopback only, no credentials; everything it writes is under one
// temporary directory, removed at the end.
//
//	make bench-producer                                   # the full run
//	go run ./cmd/benchproducer -lines 100000 -runs 1     # quick
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event sizes: the workload's lines, and the large mode's.
const (
	lineBytes  = 200
	largeBytes = 8 << 10
)

// config is the command line.
type config struct {
	modes       []string
	lines       int
	largeLines  int
	runs        int
	tailRate    float64
	tailFor     time.Duration
	batchSize   int
	concurrency int
	gzip        bool
	perEvent    bool
	producer    string // a built producer; "": build ./cmd/producer
	runTimeout  time.Duration
	progress    io.Writer
}

var allModes = []string{"file", "stdin", "large", "tail"}

func main() {
	if os.Getenv(floorEnv) != "" {
		os.Exit(floorMain(os.Args[1:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	cfg.progress = os.Stderr
	ctx := context.Background()
	res, err := bench(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchproducer:", err)
		os.Exit(1)
	}
	printReport(os.Stdout, cfg, res)
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("benchproducer", flag.ContinueOnError)
	var cfg config
	modes := fs.String("modes", strings.Join(allModes, ","), "comma-separated: file (the producer follows the workload file), stdin (it reads it on stdin), large (file, with events of 8 KiB), tail (a file appended to at -tail-rate)")
	fs.IntVar(&cfg.lines, "lines", 1_000_000, "events of about 200 bytes in the file and stdin modes")
	fs.IntVar(&cfg.largeLines, "large-lines", 0, "events of about 8 KiB in the large mode (default: -lines/10)")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of the producer, and as many of the floor, alternating, per mode")
	fs.Float64Var(&cfg.tailRate, "tail-rate", 50_000, "lines a second appended in the tail mode")
	fs.DurationVar(&cfg.tailFor, "tail-for", 10*time.Second, "how long lines are appended in the tail mode")
	fs.IntVar(&cfg.batchSize, "batch-size", 500, "-batch-size of the producer and the floor")
	fs.IntVar(&cfg.concurrency, "concurrency", 4, "-concurrency of the producer and the floor")
	fs.BoolVar(&cfg.gzip, "gzip", true, "-gzip of the producer and the floor")
	packing := fs.String("packing", "PACKED", "how the sink answers batches, as the API's recordPacking: PACKED or PER_EVENT")
	fs.StringVar(&cfg.producer, "producer", "", "a producer binary to measure (default: go build ./cmd/producer)")
	fs.DurationVar(&cfg.runTimeout, "run-timeout", 10*time.Minute, "the longest one run may take")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	fail := func(format string, a ...any) (config, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintln(fs.Output(), err)
		return cfg, err
	}
	for _, m := range strings.Split(*modes, ",") {
		if !slices.Contains(allModes, m) {
			return fail("-modes: unknown mode %q (known: %s)", m, strings.Join(allModes, ", "))
		}
		cfg.modes = append(cfg.modes, m)
	}
	if cfg.largeLines == 0 {
		cfg.largeLines = cfg.lines / 10
	}
	switch *packing {
	case "PACKED":
	case "PER_EVENT":
		cfg.perEvent = true
	default:
		return fail("-packing must be PACKED or PER_EVENT, got %q", *packing)
	}
	switch {
	case cfg.lines < 1 || cfg.largeLines < 1:
		return fail("-lines and -large-lines must be at least 1")
	case cfg.runs < 1:
		return fail("-runs must be at least 1")
	case cfg.tailRate <= 0 || cfg.tailFor <= 0 || int(cfg.tailRate*cfg.tailFor.Seconds()) < 1:
		return fail("-tail-rate and -tail-for must append at least one line")
	case cfg.batchSize < 2 || cfg.batchSize > 500:
		return fail("-batch-size must be 2-500 (the floor posts batches)")
	case cfg.concurrency < 1 || cfg.concurrency > 64:
		return fail("-concurrency must be 1-64")
	}
	return cfg, nil
}

// result is every sample of one mode.
type result struct {
	mode            string
	events          int
	producer, floor []sample
}

// bench runs every mode and returns its samples.
func bench(ctx context.Context, cfg config) ([]result, error) {
	dir, err := os.MkdirTemp("", "benchproducer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin := cfg.producer
	if bin == "" {
		bin = filepath.Join(dir, "producer")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tributary/tributary/cmd/producer")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make bin/producer builds it
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/producer: %v\n%s", err, out)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	s, err := startSink(cfg.perEvent)
	if err != nil {
		return nil, err
	}
	defer s.close()

	var out []result
	workloads := map[string]string{} // size -> file, generated once
	for _, mode := range cfg.modes {
		n, size := cfg.lines, lineBytes
		switch mode {
		case "large":
			n, size = cfg.largeLines, largeBytes
		case "tail":
			n = int(cfg.tailRate * cfg.tailFor.Seconds())
		}
		file := ""
		if mode != "tail" {
			key := strconv.Itoa(n) + "x" + strconv.Itoa(size)
			if file = workloads[key]; file == "" {
				file = filepath.Join(dir, "workload-"+key+".ndjson")
				progress(cfg, "generating %d events of about %d bytes", n, size)
				if err := writeWorkload(file, n, size); err != nil {
					return nil, err
				}
				workloads[key] = file
			}
		}
		r := result{mode: mode, events: n}
		for i := range cfg.runs {
			for _, who := range []string{"producer", "floor"} {
				smp, err := runMode(ctx, cfg, s, dir, bin, self, mode, who, file, n)
				if err != nil {
					return nil, fmt.Errorf("mode %s, run %d: %w", mode, i+1, err)
				}
				progress(cfg, "%-5s %-8s run %d: %s", mode, who, i+1, smp.line(mode == "tail"))
				if who == "producer" {
					r.producer = append(r.producer, smp)
				} else {
					r.floor = append(r.floor, smp)
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// runMode runs one client once, in a directory of its own (checkpoint,
// spool, dead letters, log), removed after.
func runMode(ctx context.Context, cfg config, s *sink, dir, bin, self, mode, who, file string, n int) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.runTimeout)
	defer cancel()
	run, err := os.MkdirTemp(dir, mode+"-"+who+"-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(run)
	var feed func(context.Context) error
	if mode == "tail" {
		file = filepath.Join(run, "app.log")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			return sample{}, err
		}
		feed = func(ctx context.Context) error {
			// Let the client find the file first: the latency is of lines
			// appended to a followed file, not of a client starting.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			return appendAtRate(ctx, file, cfg.tailRate, cfg.tailFor, n)
		}
	}
	var c client
	if who == "producer" {
		c = client{name: who, args: []string{bin, "-url", s.URL, "-auth", "none",
			"-batch-size", strconv.Itoa(cfg.batchSize), "-concurrency", strconv.Itoa(cfg.concurrency), "-gzip=" + strconv.FormatBool(cfg.gzip),
			"-checkpoint", filepath.Join(run, "checkpoint.json"), "-dead-letter", filepath.Join(run, "dead-letter.ndjson")}}
		if mode == "stdin" {
			c.args = append(c.args, "-source", "stdin")
			c.stdin, c.stops = file, true
		} else {
			c.args = append(c.args, "-source", "file", "-files", file)
		}
	} else {
		c = client{name: who, env: []string{floorEnv + "=1"}, stops: mode != "tail", args: []string{self, "-url", s.URL, "-file", file,
			"-batch-size", strconv.Itoa(cfg.batchSize), "-concurrency", strconv.Itoa(cfg.concurrency), "-gzip=" + strconv.FormatBool(cfg.gzip),
			"-follow=" + strconv.FormatBool(mode == "tail")}}
	}
	return runOnce(ctx, s, c, run, n, mode == "tail", feed)
}

func progress(cfg config, format string, a ...any) {
	if cfg.progress != nil {
		fmt.Fprintf(cfg.progress, format+"\n", a...)
	}
}
