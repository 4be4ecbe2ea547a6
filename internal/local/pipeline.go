package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/ingest"
)

// Options say where the local pipeline runs.
type Options struct {
	Assembly string // cdk.out
	Dir      string // everything it keeps: stream, objects, producer state
	APIAddr  string // 127.0.0.1:port
	S3Addr   string
	Producer string        // the producer binary; "" runs none
	Stats    time.Duration // how often the stats line is printed
	Out      io.Writer
}

// Pipeline is a running local pipeline.
type Pipeline struct {
	Config   *Config
	APIURL   string // the /v1 URL
	S3URL    string
	APIKey   string // with apiAuth=API_KEY
	S3       *S3
	Outputs  string // the outputs file, as cdk deploy --outputs-file writes it
	api      *fakeapi.API
	stream   *Stream
	delivery *Firehose
	servers  []*http.Server
	producer *exec.Cmd
	prodDone chan error
	out      io.Writer
	outMu    sync.Mutex
	started  time.Time
}

// Start reads the assembly and starts every stage on loopback; on an
// error it stops what it started.
func Start(o Options) (p *Pipeline, err error) {
	started := time.Now()
	a, err := cfn.ReadAssembly(o.Assembly)
	if err != nil {
		return nil, err
	}
	cfg, err := FromAssembly(a)
	if err != nil {
		return nil, err
	}
	p = &Pipeline{Config: cfg, out: o.Out, started: started}
	for _, addr := range []string{o.APIAddr, o.S3Addr} {
		if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
			return nil, fmt.Errorf("address %q: the local pipeline listens on loopback only (127.0.0.1:port)", addr)
		}
	}
	apiLn, err := listen(o.APIAddr, "LOCAL_API_PORT")
	if err != nil {
		return nil, err
	}
	s3Ln, err := listen(o.S3Addr, "LOCAL_S3_PORT")
	if err != nil {
		apiLn.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			apiLn.Close()
			s3Ln.Close()
			if p.stream != nil {
				p.stream.Close()
			}
		}
	}()

	s3, backend, err := OpenS3(filepath.Join(o.Dir, "s3"), cfg.Bucket, p.logf)
	if err != nil {
		return nil, err
	}
	p.S3 = s3
	if p.stream, err = OpenStream(filepath.Join(o.Dir, "stream", cfg.StreamName), cfg.Shards); err != nil {
		return nil, err
	}
	if p.delivery, err = NewFirehose(cfg.Delivery, p.stream, s3, filepath.Join(o.Dir, "stream", cfg.Delivery.Name+".positions.json"), p.logf); err != nil {
		return nil, err
	}
	faults := fakeapi.Faults{Packing: cfg.Packing, MaxBatch: cfg.MaxBatch, Kinesis: p.stream, RequireSigV4: cfg.Auth == ingest.AuthIAM}
	if cfg.Auth == ingest.AuthAPIKey {
		if p.APIKey, err = apiKey(filepath.Join(o.Dir, "api-key")); err != nil {
			return nil, err
		}
		faults.APIKey = p.APIKey
	}
	p.api = fakeapi.New(faults)
	p.APIURL = "http://" + apiLn.Addr().String() + "/" + cfg.Stage + ingest.EventPath
	p.S3URL = "http://" + s3Ln.Addr().String()
	gw, err := newGateway(cfg, p.api)
	if err != nil {
		return nil, err
	}
	p.serve(apiLn, gw)
	p.serve(s3Ln, gofakes3.New(backend).Server())
	if p.Outputs, err = p.writeOutputs(o.Dir); err != nil {
		return nil, err
	}
	if o.Producer != "" && len(cfg.Producer) > 0 {
		if err := p.startProducer(o.Producer, o.Dir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func listen(addr, env string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s is in use (another `make local`?): stop it, or choose another port with %s=<port>", addr, env)
	}
	return ln, err
}

func (p *Pipeline) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	p.servers = append(p.servers, srv)
	go srv.Serve(ln)
}

// apiKey is the local API key, made once and kept.
func apiKey(path string) (string, error) {
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	key := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

// writeOutputs writes the stack outputs cmd/smoke reads, for the local run.
func (p *Pipeline) writeOutputs(dir string) (string, error) {
	outputs := map[string]map[string]string{p.Config.PipelineStack: {
		"IngestUrl":      p.APIURL,
		"IngestBatchUrl": strings.TrimSuffix(p.APIURL, ingest.EventPath) + ingest.BatchPath,
		"BucketName":     p.Config.Bucket,
		"DataPrefix":     p.Config.Outputs["DataPrefix"],
	}}
	raw, _ := json.MarshalIndent(outputs, "", "  ")
	path := filepath.Join(dir, "cdk-outputs.json")
	return path, os.WriteFile(path, raw, 0o644)
}

// startProducer runs the producer binary with the host's settings, pointed
// at the local API, its state under dir/producer, and any followed files'
// patterns rooted under dir/host (so /var/log/app.log is
// dir/host/var/log/app.log).
func (p *Pipeline) startProducer(bin, dir string) error {
	state, err := filepath.Abs(filepath.Join(dir, "producer"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	env := os.Environ()
	for k, v := range p.Config.Producer {
		switch k {
		case "TRIBUTARY_URL":
			v = p.APIURL
		case "TRIBUTARY_CHECKPOINT", "TRIBUTARY_DEAD_LETTER":
			v = filepath.Join(state, filepath.Base(v))
		case "TRIBUTARY_FILES":
			var rooted []string
			for _, f := range strings.Split(v, ",") {
				rooted = append(rooted, filepath.Join(dir, "host", f))
				_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, "host", f)), 0o755)
			}
			v = strings.Join(rooted, ",")
		}
		env = append(env, k+"="+v)
	}
	env = append(env, p.AuthEnv()...)
	bin, err = filepath.Abs(bin) // it runs in its state folder
	if err != nil {
		return err
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Dir = state
	logf, err := os.OpenFile(filepath.Join(state, "producer.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("the producer %s: %w", bin, err)
	}
	p.producer = cmd
	p.prodDone = make(chan error, 1)
	go func() { p.prodDone <- cmd.Wait(); logf.Close() }()
	return nil
}

// AuthEnv is the environment a producer needs to call the local API as
// the synthesized apiAuth asks.
func (p *Pipeline) AuthEnv() []string {
	switch p.Config.Auth {
	case ingest.AuthAPIKey:
		return []string{"TRIBUTARY_AUTH=api-key", "TRIBUTARY_API_KEY=" + p.APIKey}
	case ingest.AuthIAM: // signed with throwaway credentials: the local API does not check signatures
		return []string{"TRIBUTARY_AUTH=iam", "TRIBUTARY_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIALOCALLOCALLOCAL", "AWS_SECRET_ACCESS_KEY=local",
			"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	}
	return []string{"TRIBUTARY_AUTH=none"}
}

// Stats is one stats line's figures: events the API stored (answered 200
// for), records in the stream, objects written, events in them, and
// records delivery sent to errors/.
type Stats struct {
	Accepted, InStream, Objects, Landed, Errors int
}

// Stats returns the figures so far.
func (p *Pipeline) Stats() Stats {
	d := p.delivery.Stats()
	records, events := p.stream.Stored()
	return Stats{Accepted: events, InStream: records, Objects: d.Objects, Landed: d.Events, Errors: d.Errors}
}

func (p *Pipeline) logf(s string) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	fmt.Fprintf(p.out, "%s %s\n", time.Now().UTC().Format("15:04:05"), s)
}

// Run delivers and prints the stats line until ctx ends, then stops the
// producer (which delivers what it holds), the API, and writes every
// buffered record to S3 before it returns.
func (p *Pipeline) Run(ctx context.Context, every time.Duration) error {
	dctx, stopDelivery := context.WithCancel(context.Background())
	delivered := make(chan error, 1)
	go func() { delivered <- p.delivery.Run(dctx) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var err error
	firstSaid := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-delivered:
			break loop
		case e := <-p.prodDone:
			p.logf(fmt.Sprintf("producer: exited (%v); its log: %s", e, filepath.Join(filepath.Dir(p.Outputs), "producer", "producer.log")))
			p.prodDone = nil
		case <-tick.C:
			s := p.Stats()
			p.logf(fmt.Sprintf("stats: %d events accepted, %d records in the stream, %d objects written, %d events landed, %d to errors/", s.Accepted, s.InStream, s.Objects, s.Landed, s.Errors))
			if s.Objects > 0 && !firstSaid { // the moment a user waits for: their events can be queried
				firstSaid = true
				p.logf(fmt.Sprintf("first object written %s after start: `make local-query Q='Events per hour'` answers now", time.Since(p.started).Round(time.Second)))
			}
		}
	}
	if p.producer != nil && p.prodDone != nil {
		_ = p.producer.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.prodDone:
		case <-time.After(30 * time.Second):
			_ = p.producer.Process.Kill()
		}
	}
	for _, srv := range p.servers[:1] { // the API: nothing more is accepted
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	stopDelivery()
	if err == nil {
		err = <-delivered // drains: every buffer is written
	}
	for _, srv := range p.servers[1:] {
		_ = srv.Close()
	}
	p.stream.Close()
	s := p.Stats()
	p.logf(fmt.Sprintf("stopped: %d events landed in %d objects this run; everything accepted is in %s", s.Landed, s.Objects, p.S3.Folder()))
	return err
}

// Records returns the data of every record in the stream, shard by shard
// in order, for tests that compare it with what the templates store.
func (p *Pipeline) Records() ([][]byte, error) {
	var out [][]byte
	for shard := range p.stream.Shards() {
		var off int64
		for {
			entries, err := p.stream.Read(shard, off, 1000)
			if err != nil {
				return nil, err
			}
			if len(entries) == 0 {
				break
			}
			for _, e := range entries {
				out = append(out, e.Data)
				off = e.Next
			}
		}
	}
	return out, nil
}

// Close stops a pipeline that is not running (Run stops it otherwise).
func (p *Pipeline) Close() {
	for _, srv := range p.servers {
		_ = srv.Close()
	}
	p.stream.Close()
}
