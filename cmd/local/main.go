// Command local runs the synthesized Tributary app on this machine, with no
// AWS account: `local up` starts the pipeline read from cdk.out on
// 127.0.0.1 (and the producer as the host runs it), `local query` runs a
// saved query or any SQL over what landed, `local check` proves the whole
// path once and exits. `make local`, `make local-query` and `make
// local-check` run it; see docs/local.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/local"
	"github.com/tributary/tributary/internal/localsql"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "up":
		err = up(args, stdout)
	case "query":
		err = query(args, stdout)
	case "check":
		err = check(args, stdout)
	default:
		err = fmt.Errorf("unknown command %q: up, query or check", cmd)
	}
	if err != nil {
		fmt.Fprintln(stderr, "local:", err)
		return 1
	}
	return 0
}

type common struct {
	assembly, dir, tools string
}

func flags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.assembly, "assembly", "cdk.out", "the cloud assembly `cdk synth` wrote")
	fs.StringVar(&c.dir, "dir", ".local", "where the local pipeline keeps its stream, objects and producer state")
	fs.StringVar(&c.tools, "tools", ".tools", "the folder of the pinned Node tools (DuckDB)")
	return fs
}

func envOr(name, otherwise string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return otherwise
}

func up(args []string, out io.Writer) error {
	var c common
	fs := flags("up", &c)
	producer := fs.String("producer", "bin/producer", "the producer binary to run as the host does; empty: none")
	stats := fs.Duration("stats", 5*time.Second, "how often the stats line is printed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	p, err := local.Start(local.Options{
		Assembly: c.assembly, Dir: c.dir, Producer: *producer, Out: out,
		APIAddr: "127.0.0.1:" + envOr("LOCAL_API_PORT", "4510"), S3Addr: "127.0.0.1:" + envOr("LOCAL_S3_PORT", "4511"),
	})
	if err != nil {
		return err
	}
	banner(out, p, c.assembly)
	return p.Run(ctx, *stats)
}

func banner(out io.Writer, p *local.Pipeline, assembly string) {
	cfg := p.Config
	auth := "no authentication"
	curlAuth := ""
	switch cfg.Auth {
	case ingest.AuthAPIKey:
		auth = "API key " + p.APIKey
		curlAuth = " -H 'x-api-key: " + p.APIKey + "'"
	case ingest.AuthIAM:
		auth = "IAM: a SigV4 signature is required but not checked locally"
		curlAuth = " -H 'Authorization: AWS4-HMAC-SHA256 local'"
	}
	d := cfg.Delivery
	fmt.Fprintf(out, `Tributary runs locally, from %s (stack %s):
  ingest API   POST %s  and  %s/batch  (%s; recordPacking %s)
  stream       %s, %d shard(s), 1 MiB and 1,000 records a second each
  delivery     %s: an object every %s or %d MiB, prefix %s%s
  S3           endpoint %s, bucket %s
  objects in   %s
  try          curl -sS%s -H 'Content-Type: application/json' -d '{"type":"hello"}' %s
  query        make local-query Q='Events per hour'   (or any SQL: Q='SELECT count(*) FROM events_raw')
  list         aws s3 ls --recursive --endpoint-url %s s3://%s/   (any credentials)
`, assembly, cfg.PipelineStack, p.APIURL, p.APIURL, auth, cfg.Packing,
		cfg.StreamName, cfg.Shards, d.Name, d.Interval, d.SizeBytes>>20, d.Prefix, gz(d.GZIP),
		p.S3URL, cfg.Bucket, p.S3.Folder(), curlAuth, p.APIURL, p.S3URL, cfg.Bucket)
	if src := cfg.Producer["TRIBUTARY_SOURCE"]; src != "" {
		fmt.Fprintf(out, "  producer     the host's producer: source %s, rate %s/s; its log in .local/producer/producer.log\n", src, cfg.Producer["TRIBUTARY_RATE"])
	}
	fmt.Fprintln(out, "Ctrl-C stops everything; what was accepted is written to S3 first.")
}

func gz(on bool) string {
	if on {
		return ", gzip"
	}
	return ""
}

// query runs a saved query by name, or SQL, over the landed objects.
func query(args []string, out io.Writer) error {
	var c common
	fs := flags("query", &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := cfn.ReadAssembly(c.assembly)
	if err != nil {
		return err
	}
	cfg, err := local.FromAssembly(a)
	if err != nil {
		return err
	}
	queries := localsql.NamedQueries(a.Stacks[cfg.PipelineStack])
	sql := strings.Join(fs.Args(), " ")
	if sql == "" {
		var names []string
		for n := range queries {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("give a saved query's name (%s) or SQL", strings.Join(names, ", "))
	}
	if q, ok := queries[sql]; ok {
		sql = q
	}
	rows, err := runSQL(c, a, cfg, sql)
	if err != nil {
		return err
	}
	printRows(out, rows[0])
	return nil
}

func runSQL(c common, a *cfn.Assembly, cfg *local.Config, sqls ...string) ([][]map[string]any, error) {
	views, err := localsql.TableViews(a.Stacks[cfg.PipelineStack])
	if err != nil {
		return nil, err
	}
	folder := c.dir + "/s3/buckets/" + cfg.Bucket
	if _, err := os.Stat(folder); err != nil {
		return nil, fmt.Errorf("nothing has landed in %s yet: start the pipeline with `make local`", folder)
	}
	tools, err := absPath(c.tools)
	if err != nil {
		return nil, err
	}
	statements := append(append(append([]string{}, localsql.Macros...), views...), sqls...)
	results, err := localsql.Run(tools, folder, statements)
	if err != nil {
		return nil, err
	}
	return results[len(results)-len(sqls):], nil
}

func absPath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return p, nil
	}
	wd, err := os.Getwd()
	return wd + "/" + p, err
}

func printRows(out io.Writer, rows []map[string]any) {
	if len(rows) == 0 {
		fmt.Fprintln(out, "(no rows)")
		return
	}
	var cols []string
	for k := range rows[0] {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rows {
		var vals []string
		for _, c := range cols {
			vals = append(vals, fmt.Sprint(r[c]))
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(out, "(%d rows)\n", len(rows))
}

var errCheck = errors.New("local-check failed")
