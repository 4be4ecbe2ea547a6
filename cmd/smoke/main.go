// Command smoke proves a deployed pipeline end to end: it reads the stack
// outputs (the file `cdk deploy --outputs-file` writes), posts N test events
// with unique ids, waits until Firehose has written them to S3, finds every
// one under the data prefix, and reports found, missing and duplicated events
// and the end-to-end latency. It exits 1 if any event is missing. It reads
// every format Firehose writes (uncompressed, GZIP, ZIP, SNAPPY,
// HADOOP_SNAPPY, Parquet), told apart by their bytes, in either layout.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/layout"
	"github.com/tributary/tributary/internal/producer"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	outputs, stack, auth, apiKey, region, endpointURL string
	event                                             map[string]json.RawMessage
	count                                             int
	timeout, poll                                     time.Duration
}

// stackOutputs are the pipeline stack's outputs the smoke test needs.
type stackOutputs struct {
	IngestURL, BucketName, DataPrefix string
}

func parse(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.outputs, "outputs", "cdk-outputs.json", "stack outputs, as written by ./cdk deploy --outputs-file")
	fs.StringVar(&o.stack, "stack", "", "the pipeline stack in the outputs file; default: the only one with IngestUrl")
	fs.IntVar(&o.count, "count", 20, "test events to send (1-10000)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for the events in S3 (Firehose buffers up to bufferingSeconds)")
	fs.DurationVar(&o.poll, "poll", 15*time.Second, "how often to look in S3")
	fs.StringVar(&o.auth, "auth", ingest.AuthIAM.Flag(), "iam, api-key or none, as the API's apiAuth")
	fs.StringVar(&o.apiKey, "api-key", "", "the API key, with -auth api-key")
	fs.StringVar(&o.region, "region", "", "Region; default: read from the API URL")
	fs.StringVar(&o.endpointURL, "s3-endpoint-url", "", "S3 endpoint (an S3-compatible or local one); default: AWS's")
	event := fs.String("event", `{"value":"30","type":"smoke test"}`, "the test event, a JSON object your eventSchema accepts; each copy gets its own event_id")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(*event), &o.event); err != nil || o.event == nil {
		return nil, fmt.Errorf("-event must be a JSON object, got %q", *event)
	}
	switch {
	case o.count < 1 || o.count > 10000:
		return nil, fmt.Errorf("-count must be 1 to 10000, got %d", o.count)
	case authErr(o.auth) != nil:
		return nil, authErr(o.auth)
	case o.auth == ingest.AuthAPIKey.Flag() && o.apiKey == "":
		return nil, errors.New("-auth api-key needs -api-key")
	case o.timeout <= 0 || o.poll <= 0:
		return nil, errors.New("-timeout and -poll must be above 0")
	}
	return o, nil
}

// readOutputs finds the pipeline stack's outputs in a cdk outputs file.
func readOutputs(path, stack string) (stackOutputs, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return stackOutputs{}, fmt.Errorf("%v (write it with ./cdk deploy --outputs-file %s)", err, path)
	}
	var all map[string]map[string]string
	if err := json.Unmarshal(raw, &all); err != nil {
		return stackOutputs{}, fmt.Errorf("%s: %v", path, err)
	}
	var names []string
	for name, outs := range all {
		if outs["IngestUrl"] != "" && (stack == "" || name == stack) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) != 1 {
		return stackOutputs{}, fmt.Errorf("%s: want one pipeline stack with IngestUrl, found %v; choose one with -stack", path, names)
	}
	outs := all[names[0]]
	o := stackOutputs{IngestURL: outs["IngestUrl"], BucketName: outs["BucketName"], DataPrefix: outs["DataPrefix"]}
	if o.BucketName == "" || o.DataPrefix == "" {
		return o, fmt.Errorf("%s: stack %s lacks BucketName or DataPrefix; deploy the current version", path, names[0])
	}
	return o, nil
}

// report is what the smoke test found.
type report struct {
	Sent, Found, Missing, Duplicated int
	MissingIDs                       []string
	Latencies                        []time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "smoke:", err)
		return 2
	}
	outs, err := readOutputs(o.outputs, o.stack)
	if err != nil {
		fmt.Fprintln(stderr, "smoke:", err)
		return 2
	}
	region := o.region
	if region == "" {
		region = producer.RegionFromURL(outs.IngestURL)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		fmt.Fprintln(stderr, "smoke: AWS configuration:", err)
		return 1
	}
	mode, _ := ingest.ParseAuthFlag(o.auth) // validated
	auth := producer.NewAuth(mode, o.apiKey, awsCfg.Credentials, region)
	s3c := s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		so.DisableLogOutputChecksumValidationSkipped = true
		if o.endpointURL != "" {
			so.BaseEndpoint, so.UsePathStyle = aws.String(o.endpointURL), true
		}
	})

	rep, err := smoke(ctx, o, outs, auth, s3c, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "smoke:", err)
		return 1
	}
	fmt.Fprintf(stdout, "smoke: found %d of %d events; %d missing, %d duplicated\n", rep.Found, rep.Sent, rep.Missing, rep.Duplicated)
	if len(rep.Latencies) > 0 {
		l := rep.Latencies
		fmt.Fprintf(stdout, "smoke: end-to-end latency (sent to written in S3): min %s, p50 %s, max %s\n",
			l[0].Round(time.Second), l[len(l)/2].Round(time.Second), l[len(l)-1].Round(time.Second))
	}
	if rep.Missing > 0 {
		fmt.Fprintf(stdout, "smoke: missing: %s\n", strings.Join(rep.MissingIDs[:min(len(rep.MissingIDs), 10)], " "))
		return 1
	}
	return 0
}

// smoke sends the events and looks for them in S3.
func smoke(ctx context.Context, o *options, outs stackOutputs, auth producer.Auth, s3c *s3.Client, stdout io.Writer) (report, error) {
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	runID := fmt.Sprintf("smoke-%s-%s", time.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(suffix[:]))
	// The run is told by its event ids alone: a schema may refuse other
	// attributes, and Parquet keeps only the typed table's columns.
	var input bytes.Buffer
	ids := map[string]int{}
	for i := range o.count {
		id := fmt.Sprintf("%s-%05d", runID, i)
		ids[id] = 0
		o.event["event_id"], _ = json.Marshal(id)
		line, _ := json.Marshal(o.event)
		input.Write(append(line, '\n'))
	}

	start := time.Now()
	stats := &producer.Stats{}
	tmp, err := os.MkdirTemp("", "tributary-smoke-")
	if err != nil {
		return report{}, err
	}
	defer os.RemoveAll(tmp)
	deadLetters := tmp + "/rejected.ndjson"
	err = producer.Run(ctx, producer.Config{
		URL: outs.IngestURL, Source: producer.SourceStdin, Stdin: &input, BatchSize: min(o.count, 500), Linger: 100 * time.Millisecond,
		Concurrency: 4, Auth: auth, HTTPClient: &http.Client{Timeout: 30 * time.Second}, MaxBackoff: 5 * time.Second,
		ShutdownTimeout: time.Minute, StatsInterval: time.Hour, Poll: time.Second, DeadLetterPath: deadLetters,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: stats,
	})
	if err != nil {
		return report{}, err
	}
	c := stats.Snapshot()
	if c.DeadLettered > 0 || c.Abandoned > 0 || c.Sent < int64(o.count) {
		reason := ""
		if raw, err := os.ReadFile(deadLetters); err == nil {
			var first struct{ Reason string }
			if json.Unmarshal(bytes.SplitN(raw, []byte("\n"), 2)[0], &first) == nil && first.Reason != "" {
				reason = "; first reason: " + first.Reason
			}
		}
		return report{}, fmt.Errorf("the API did not take the test events: %d sent, %d rejected, %d unconfirmed%s (check -auth and the API's logs)",
			c.Sent, c.DeadLettered, c.Abandoned, reason)
	}
	fmt.Fprintf(stdout, "smoke: sent %d events (run %s) to %s; looking for them in s3://%s/%s\n", o.count, runID, outs.IngestURL, outs.BucketName, outs.DataPrefix)

	rep := report{Sent: o.count}
	read := map[string]bool{} // objects already read
	deadline := time.Now().Add(o.timeout)
	for {
		if err := scan(ctx, s3c, outs, start, runID, ids, read, &rep); err != nil {
			return rep, err
		}
		found := 0
		for _, n := range ids {
			if n > 0 {
				found++
			}
		}
		if found == o.count || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.poll):
		}
	}
	for id, n := range ids {
		switch {
		case n == 0:
			rep.Missing++
			rep.MissingIDs = append(rep.MissingIDs, id)
		default:
			rep.Found++
			rep.Duplicated += n - 1
		}
	}
	sort.Strings(rep.MissingIDs)
	slices.Sort(rep.Latencies)
	return rep, nil
}

// scan reads the objects written since the test started, in the UTC hour
// folders from then to now, and counts the test run's events. That holds
// in both layouts: an event's event_time is when the producer read it,
// after the start, and Firehose received it later still.
func scan(ctx context.Context, s3c *s3.Client, outs stackOutputs, start time.Time, runID string, ids map[string]int, read map[string]bool, rep *report) error {
	for hour := start.UTC().Add(-time.Minute).Truncate(time.Hour); !hour.After(time.Now().UTC()); hour = hour.Add(time.Hour) {
		prefix := layout.Layout{DataPrefix: outs.DataPrefix}.Folder(hour)
		pages := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(outs.BucketName), Prefix: aws.String(prefix)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing s3://%s/%s: %w", outs.BucketName, prefix, err)
			}
			for _, obj := range page.Contents {
				key := aws.ToString(obj.Key)
				if read[key] || aws.ToTime(obj.LastModified).Before(start.Add(-time.Minute)) {
					continue
				}
				read[key] = true
				if err := readObject(ctx, s3c, outs.BucketName, key, aws.ToTime(obj.LastModified).Sub(start), runID, ids, rep); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func readObject(ctx context.Context, s3c *s3.Client, bucket, key string, latency time.Duration, runID string, ids map[string]int, rep *report) error {
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	defer got.Body.Close()
	body, err := io.ReadAll(got.Body)
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	found, err := eventIDs(body)
	if err != nil {
		return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	for _, id := range found {
		if _, ours := ids[id]; ours && strings.HasPrefix(id, runID) {
			ids[id]++
			rep.Latencies = append(rep.Latencies, latency)
		}
	}
	return nil
}

// authErr says why an -auth value is not one.
func authErr(flag string) error {
	_, err := ingest.ParseAuthFlag(flag)
	return err
}
