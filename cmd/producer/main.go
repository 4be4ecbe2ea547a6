// Command producer sends JSON events to the Tributary ingest API and never
// loses one: each is confirmed by the API or written to a dead-letter file
// with the reason. Every flag can also be set with an environment variable
// TRIBUTARY_<FLAG> (upper case, - as _); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/producer"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stderr))
}

// Exit statuses.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitIncomplete = 3
)

const exitStatuses = `
Exit status:
  0  every event read was confirmed by the API
  1  it could not start, or events could be neither delivered nor dead-lettered (they are logged in full), or stdin failed
  2  a flag is wrong
  3  events were dead-lettered (see the -dead-letter file), or kept unconfirmed in the -spool (the next start sends them first), or the checkpoint could not be saved at exit
`

// options are the flags, before they become a producer.Config.
type options struct {
	replay                                                                            bool
	from, reason                                                                      string // replay
	url, source, files, checkpoint, deadLetter, spool, auth, apiKey, region, logLevel string
	rate                                                                              float64
	batchSize, concurrency, queueMiB, spoolMiB                                        int
	gzip                                                                              bool
	linger, maxBackoff, shutdownTimeout, statsInterval, poll, rotateWait              time.Duration
}

func envName(flagName string) string {
	return "TRIBUTARY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads flags, then environment variables for flags not given.
func parse(args []string, env func(string) (string, bool), out io.Writer) (*options, error) {
	return parseCmd(false, args, env, out)
}

// parseCmd parses the flags of the producer, or of producer replay, which
// has no source of its own, no checkpoint and no spool.
func parseCmd(replay bool, args []string, env func(string) (string, bool), out io.Writer) (*options, error) {
	o := &options{replay: replay}
	name := "producer"
	if replay {
		name = "producer replay"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.url, "url", "", "the ingest API's /v1 URL (stack output IngestUrl); required")
	if replay {
		o.source = producer.SourceReplay
		fs.StringVar(&o.from, "from", "", "the dead-letter file whose events are sent again (only read, never changed); required")
		fs.StringVar(&o.reason, "reason", "", "which entries: "+strings.Join(producer.ReplayReasons, ", ")+" (shutdown: not confirmed before a shutdown; 5xx, 403: refused so, also as the last attempt before a shutdown); required")
		fs.StringVar(&o.deadLetter, "dead-letter", "", "a new file for the events that fail again (default: beside -from, named with the time; said in the log)")
	} else {
		fs.StringVar(&o.source, "source", producer.SourceSynthetic, "where events come from: synthetic, stdin, or file")
		fs.Float64Var(&o.rate, "rate", 10, "synthetic events per second")
		fs.StringVar(&o.files, "files", "", "comma-separated files or glob patterns to follow as they grow, e.g. '/var/log/app/*.log*' (source file)")
		fs.StringVar(&o.checkpoint, "checkpoint", "tributary-checkpoint.json", "where followed files' confirmed offsets are kept")
		fs.StringVar(&o.deadLetter, "dead-letter", "tributary-dead-letter.ndjson", "where events the API cannot take are written, with the reason")
		fs.StringVar(&o.spool, "spool", "", "where events that cannot be read again (stdin, synthetic, and lines of files unconfirmed at shutdown) are kept, synced, until confirmed or dead-lettered; a restart sends them first (default: "+spoolName+" beside -checkpoint)")
		fs.IntVar(&o.spoolMiB, "spool-mib", producer.DefaultSpoolBytes>>20, "MiB the spool file may take (1-1048576); reading waits when unconfirmed events fill it")
	}
	fs.IntVar(&o.batchSize, "batch-size", 500, "events per request: 1 posts each event to /v1, 2-1000 post to /v1/batch (at most the API's batch limit: 1000 when it packs batches as JSON by arrival time, else 500; its IngestBatchUrl output says)")
	fs.BoolVar(&o.gzip, "gzip", true, "send batches gzip-compressed (Content-Encoding: gzip; the API decompresses them)")
	fs.DurationVar(&o.linger, "linger", time.Second, "how long a batch waits to fill before it is sent")
	fs.IntVar(&o.concurrency, "concurrency", 4, "requests in flight at once (1-64)")
	fs.IntVar(&o.queueMiB, "queue-mib", producer.DefaultQueueBytes>>20, "MiB of events read but not yet confirmed or dead-lettered (1-4096); reading waits when it is full")
	fs.StringVar(&o.auth, "auth", ingest.AuthIAM.Flag(), "iam (SigV4, default credential chain), api-key, or none: as the API's apiAuth")
	fs.StringVar(&o.apiKey, "api-key", "", "the API key, with -auth api-key")
	fs.StringVar(&o.region, "region", "", "Region for SigV4; default: read from the URL")
	fs.DurationVar(&o.maxBackoff, "max-backoff", 20*time.Second, "longest pause between retries")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, SIGINT, SIGHUP or SIGQUIT, how long to deliver what is in flight; at the end of stdin, how long the API may confirm nothing before what is left is dead-lettered")
	fs.DurationVar(&o.statsInterval, "stats-interval", 30*time.Second, "how often a stats line is logged")
	if !replay {
		fs.DurationVar(&o.poll, "poll", 250*time.Millisecond, "how often the -files patterns are expanded and followed files checked for new lines")
		fs.DurationVar(&o.rotateWait, "rotate-wait", 10*time.Second, "how long a rotated-away file must stay idle before its unterminated last line is sent and it is closed")
	}
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (" + envName(f.Name) + ")" })
	fs.Usage = func() {
		if replay {
			fmt.Fprintf(out, "Usage: producer replay -from <dead-letter file> -reason %s -url https://<api>/PROD/v1 [flags]\n\n"+
				"Sends again the chosen events of a dead-letter file, each with its event_id; what fails again goes to a new dead-letter file.\n\n", strings.Join(producer.ReplayReasons, "|"))
			fs.PrintDefaults()
			fmt.Fprint(out, exitStatuses)
			return
		}
		fmt.Fprintf(out, "Usage: producer -url https://<api>/PROD/v1 [flags]\n       producer replay -help: send dead-lettered events again\n\nEach flag can be set with the environment variable TRIBUTARY_<FLAG>, e.g. TRIBUTARY_BATCH_SIZE.\n\n")
		fs.PrintDefaults()
		fmt.Fprint(out, exitStatuses)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := env(envName(f.Name)); ok && !given[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	return o, o.validate()
}

// spoolName is the spool's file name beside the checkpoint.
const spoolName = "tributary-spool.ndjson"

func (o *options) spoolPath() string {
	if o.replay {
		return "" // what it replays stays in its file
	}
	if o.spool != "" {
		return o.spool
	}
	return filepath.Join(filepath.Dir(o.checkpoint), spoolName)
}

func (o *options) validate() error {
	if o.replay {
		return o.validateReplay()
	}
	switch {
	case !strings.HasPrefix(o.url, "https://") && !strings.HasPrefix(o.url, "http://"):
		return fmt.Errorf("-url must be the API's /v1 URL (http or https), got %q", o.url)
	case o.source != producer.SourceSynthetic && o.source != producer.SourceStdin && o.source != producer.SourceFile:
		return fmt.Errorf("-source must be synthetic, stdin or file, got %q", o.source)
	case o.source == producer.SourceSynthetic && o.rate <= 0:
		return fmt.Errorf("-rate must be above 0, got %v", o.rate)
	case o.source == producer.SourceFile && strings.TrimSpace(o.files) == "":
		return errors.New("-source file needs -files")
	case o.sendingErr() != nil:
		return o.sendingErr()
	case o.spoolMiB < 1 || o.spoolMiB > 1<<20:
		return fmt.Errorf("-spool-mib must be 1 to 1048576, got %d", o.spoolMiB)
	case authErr(o.auth) != nil:
		return authErr(o.auth)
	case o.auth == ingest.AuthAPIKey.Flag() && o.apiKey == "":
		return errors.New("-auth api-key needs -api-key")
	case o.linger <= 0 || o.maxBackoff <= 0 || o.shutdownTimeout <= 0 || o.statsInterval <= 0 || o.poll <= 0 || o.rotateWait <= 0:
		return errors.New("-linger, -max-backoff, -shutdown-timeout, -stats-interval, -poll and -rotate-wait must be above 0")
	}
	return nil
}

// memoryHeadroom is what the default memory limit allows beyond the queue:
// the followed files' records (about 1.1 KB each), request bodies, buffers.
const memoryHeadroom = 24 << 20

// memoryLimit is the soft memory limit the producer sets for itself unless
// GOMEMLIMIT is set (GOMEMLIMIT=off: none): the queue's bound plus
// memoryHeadroom, 56 MiB by default. Without one the Go runtime lets the
// heap grow to twice what is live: with 20,000 files followed, about 100 MB
// of RSS for 32 MB live. Under the limit it collects more often instead
// (CPU, not memory); the heap still grows past it when more is live (a full
// queue of long lines and many files), collected then up to half the CPU.
func memoryLimit(queueBytes int64, env func(string) (string, bool)) (int64, bool) {
	if _, set := env("GOMEMLIMIT"); set {
		return 0, false
	}
	return queueBytes + memoryHeadroom, true
}

func run(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) int {
	replay := len(args) > 0 && args[0] == "replay"
	if replay {
		args = args[1:]
	}
	o, err := parseCmd(replay, args, os.LookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "producer:", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(stderr, "producer: -log-level:", err)
		return exitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	// SIGHUP (the terminal or ssh session gone) and SIGQUIT would kill the
	// process with events read but not handled: each stops it as SIGTERM does.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()
	// A log reader gone (stderr a closed pipe) would kill the process at its
	// next log line; the lines are lost instead, and delivery goes on.
	signal.Ignore(syscall.SIGPIPE)
	if limit, ok := memoryLimit(int64(o.queueMiB)<<20, os.LookupEnv); ok {
		debug.SetMemoryLimit(limit)
	}
	auth, err := authFor(ctx, o)
	if err != nil {
		log.Error("credentials", "err", err)
		return exitFailed
	}
	var files []string
	for _, f := range strings.Split(o.files, ",") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	if f, ok := stdin.(*os.File); ok && f == os.Stdin && o.source == producer.SourceStdin {
		var restore func()
		stdin, restore = interruptible(f)
		defer restore()
	}
	log.Info("starting", "url", o.url, "source", o.source, "batch_size", o.batchSize, "auth", o.auth)
	if o.replay {
		log.Info("replay: events that fail again go to a new dead-letter file", "from", o.from, "reason", o.reason, "dead_letter_file", o.deadLetter)
	}
	stats := &producer.Stats{}
	err = producer.Run(ctx, producer.Config{
		URL: o.url, Source: o.source, Rate: o.rate, Stdin: stdin, Files: files,
		CheckpointPath: o.checkpoint, DeadLetterPath: o.deadLetter, SpoolPath: o.spoolPath(), SpoolBytes: int64(o.spoolMiB) << 20,
		ReplayFrom: o.from, ReplayReason: o.reason,
		BatchSize: o.batchSize, Gzip: o.gzip, Linger: o.linger, Concurrency: o.concurrency, QueueBytes: int64(o.queueMiB) << 20, Auth: auth,
		HTTPClient: &http.Client{Timeout: 30 * time.Second}, MaxBackoff: o.maxBackoff,
		ShutdownTimeout: o.shutdownTimeout, StatsInterval: o.statsInterval, Poll: o.poll, RotateWait: o.rotateWait, Log: log, Stats: stats,
	})
	dead, kept := stats.DeadLettered.Load(), stats.Kept.Load()
	switch {
	case err != nil && !errors.Is(err, producer.ErrCheckpointNotSaved):
		log.Error("stopped", "err", err, "dead_lettered", dead, "kept_in_spool", kept)
		return exitFailed
	case err != nil || dead > 0 || kept > 0:
		log.Error("stopped with events dead-lettered, kept in the spool for the next start, or the checkpoint not saved", "err", err,
			"dead_lettered", dead, "dead_letter_file", o.deadLetter, "kept_in_spool", kept, "spool", o.spoolPath())
		return exitIncomplete
	}
	if o.replay {
		_ = os.Remove(o.deadLetter) // nothing failed again: the new file is empty
		log.Info("replay: every event chosen was stored", "from", o.from)
		return exitOK
	}
	log.Info("stopped")
	return exitOK
}

// interruptible returns stdin so that a read blocked on a pipe or terminal
// can be ended at shutdown, with nothing read and then dropped: the
// descriptor is made non-blocking, which Go's poller handles with read
// deadlines. restore makes it blocking again for whoever shares it.
func interruptible(stdin *os.File) (r io.Reader, restore func()) {
	fi, err := stdin.Stat()
	if err != nil || fi.Mode().IsRegular() { // a regular file never blocks
		return stdin, func() {}
	}
	if err := syscall.SetNonblock(syscall.Stdin, true); err != nil {
		return stdin, func() {}
	}
	return os.NewFile(uintptr(syscall.Stdin), "/dev/stdin"), func() { _ = syscall.SetNonblock(syscall.Stdin, false) }
}

// authErr says why an -auth value is not one.
func authErr(flag string) error {
	_, err := ingest.ParseAuthFlag(flag)
	return err
}

func authFor(ctx context.Context, o *options) (producer.Auth, error) {
	mode, _ := ingest.ParseAuthFlag(o.auth) // validated
	if mode != ingest.AuthIAM {
		return producer.NewAuth(mode, o.apiKey, nil, ""), nil
	}
	region := o.region
	if region == "" {
		region = producer.RegionFromURL(o.url)
	}
	if region == "" {
		return nil, fmt.Errorf("cannot read the Region from %q; set -region", o.url)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return producer.NewAuth(mode, "", cfg.Credentials, region), nil
}

// sendingErr checks the flags that shape requests, shared by sending and
// replay.
func (o *options) sendingErr() error {
	switch {
	case o.batchSize < 1 || o.batchSize > ingest.MaxPackedBatch:
		return fmt.Errorf("-batch-size must be 1 to %d, got %d", ingest.MaxPackedBatch, o.batchSize)
	case o.concurrency < 1 || o.concurrency > 64:
		return fmt.Errorf("-concurrency must be 1 to 64, got %d", o.concurrency)
	case o.queueMiB < 1 || o.queueMiB > 4096:
		return fmt.Errorf("-queue-mib must be 1 to 4096, got %d", o.queueMiB)
	}
	return nil
}

// validateReplay checks producer replay's flags, and names the new
// dead-letter file when none is given.
func (o *options) validateReplay() error {
	switch {
	case !strings.HasPrefix(o.url, "https://") && !strings.HasPrefix(o.url, "http://"):
		return fmt.Errorf("-url must be the API's /v1 URL (http or https), got %q", o.url)
	case o.from == "":
		return errors.New("replay needs -from, the dead-letter file to send again")
	case !slices.Contains(producer.ReplayReasons, o.reason):
		return fmt.Errorf("-reason must be one of %s, got %q", strings.Join(producer.ReplayReasons, ", "), o.reason)
	case o.sendingErr() != nil:
		return o.sendingErr()
	case authErr(o.auth) != nil:
		return authErr(o.auth)
	case o.auth == ingest.AuthAPIKey.Flag() && o.apiKey == "":
		return errors.New("-auth api-key needs -api-key")
	case o.linger <= 0 || o.maxBackoff <= 0 || o.shutdownTimeout <= 0 || o.statsInterval <= 0:
		return errors.New("-linger, -max-backoff, -shutdown-timeout and -stats-interval must be above 0")
	}
	if o.deadLetter == "" {
		o.deadLetter = strings.TrimSuffix(o.from, ".ndjson") + ".replay-" + time.Now().UTC().Format("20060102T150405.000Z") + ".ndjson"
	}
	if _, err := os.Stat(o.deadLetter); err == nil || o.deadLetter == o.from {
		return fmt.Errorf("-dead-letter %s exists: replay writes what fails again to a new file, never to one it could lose", o.deadLetter)
	}
	return nil
}
