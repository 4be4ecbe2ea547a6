package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/tributary/tributary/internal/cloudwatch"
	"github.com/tributary/tributary/internal/producer"
)

// cloudwatchInterval, when set at link time, replaces the metrics' minute:
// for the fault suite only (go build -ldflags "-X
// main.cloudwatchInterval=2s"), so that a test sees several intervals in
// seconds. It is neither a flag nor an environment variable: production
// publishes once a minute, the cost docs/cost.md counts.
var cloudwatchInterval string

// cloudwatchStopWait bounds how long the exit waits for the last log lines
// to be shipped: a CloudWatch that hangs delays a stop by this, no more.
const cloudwatchStopWait = 3 * time.Second

// cwPublish is the producer's CloudWatch side: what o turns on of the
// metrics and the log shipping. Neither can fail or slow delivery.
type cwPublish struct {
	o       *options
	log     *slog.Logger // stderr only
	ship    *gate        // the shipper behind a switch; nil: no log shipping
	shipper *cloudwatch.Shipper
	creds   lateCredentials
}

// lateCredentials is the credentials provider the shipper is made with
// before the default chain is resolved (off the start's path: IMDS can take
// seconds); the shipper runs only once it is set.
type lateCredentials struct {
	p atomic.Pointer[aws.CredentialsProvider]
}

func (l *lateCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p := l.p.Load()
	if p == nil {
		return aws.Credentials{}, errors.New("credentials not resolved yet")
	}
	return (*p).Retrieve(ctx)
}

// gate passes writes to w while open; closed, it drops them (no
// credentials: nothing will ever ship them, so they are not held).
type gate struct {
	closed atomic.Bool
	w      io.Writer
}

func (g *gate) Write(p []byte) (int, error) {
	if g.closed.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// newCloudwatch prepares the shipper, so that the log's first lines are
// shipped too; start begins publishing.
func newCloudwatch(o *options, log *slog.Logger) *cwPublish {
	cw := &cwPublish{o: o, log: log}
	if o.replay || o.cwLogGroup == "" {
		return cw
	}
	sh, err := cloudwatch.NewShipper(cloudwatch.LogsConfig{Group: o.cwLogGroup, Stream: o.host, Endpoint: o.cwEndpoint,
		Region: o.signingRegion(), Credentials: &cw.creds, Log: log})
	if err != nil { // the flags were validated: not expected
		log.Warn("cloudwatch logs: not shipping the log", "err", err.Error())
		return cw
	}
	cw.shipper, cw.ship = sh, &gate{w: sh}
	return cw
}

// start publishes the figures and ships the log until the returned stop is
// called, which waits at most cloudwatchStopWait for the last lines.
// Without credentials it says so once and publishes nothing.
func (cw *cwPublish) start(ctx context.Context, figures func() producer.Figures) (stop func()) {
	o := cw.o
	if o.replay || (o.cwNamespace == "" && o.cwLogGroup == "") {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // the last lines ship after a signal
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		creds, ok := cw.credentials(ctx)
		if !ok {
			if cw.ship != nil {
				cw.ship.closed.Store(true)
			}
			return
		}
		var run sync.WaitGroup
		if o.cwNamespace != "" {
			interval, _ := time.ParseDuration(cloudwatchInterval) // unset or wrong: the default minute
			m, err := cloudwatch.NewMetrics(cloudwatch.MetricsConfig{Namespace: o.cwNamespace, Pipeline: o.pipeline, Host: o.host,
				Endpoint: o.cwEndpoint, Region: o.signingRegion(), Credentials: creds, Interval: max(interval, 0), Log: cw.log,
				Snapshot: func() cloudwatch.Figures { return figuresFor(figures()) }})
			if err != nil {
				cw.log.Warn("cloudwatch metrics: not publishing", "err", err.Error())
			} else {
				run.Add(1)
				go func() { defer run.Done(); m.Run(ctx) }()
			}
		}
		if cw.shipper != nil {
			cw.creds.p.Store(&creds)
			run.Add(1)
			go func() { defer run.Done(); cw.shipper.Run(ctx) }()
		}
		run.Wait()
	}()
	return func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(cloudwatchStopWait):
		}
	}
}

// credentials resolves the default credential chain (the instance role on
// EC2) once; without credentials it says so, once.
func (cw *cwPublish) credentials(ctx context.Context) (aws.CredentialsProvider, bool) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cw.o.signingRegion()))
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = cfg.Credentials.Retrieve(rctx)
		cancel()
	}
	if err != nil {
		if ctx.Err() == nil {
			cw.log.Warn("cloudwatch: no AWS credentials, so no metrics and no log shipping for this run; delivery goes on (on EC2 attach the instance role; elsewhere set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or unset the -cloudwatch-* flags)",
				"err", err.Error())
		}
		return nil, false
	}
	return cfg.Credentials, true
}

// figuresFor is the producer's figures as the publisher takes them.
func figuresFor(f producer.Figures) cloudwatch.Figures {
	return cloudwatch.Figures{Read: f.Read, Sent: f.Sent, Retried: f.Retried, DeadLettered: f.DeadLettered,
		FilesGoneUnread: f.FilesGoneUnread, QueueBytes: f.QueueBytes, OldestUnconfirmed: f.OldestUnconfirmed, FileLagBytes: f.FileLagBytes}
}
