//go:build faults

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/fakecloudwatch"
)

// The CloudWatch scenarios run a race binary linked with a one-second
// metrics interval (cloudwatchInterval): the production minute would make
// each scenario a minute or more, and the interval is not a flag a user
// could set by mistake.
var (
	cwBinOnce sync.Once
	cwBin     string
	cwBinErr  error
)

func cloudwatchBin(t *testing.T) string {
	t.Helper()
	cwBinOnce.Do(func() {
		cwBin = filepath.Join(filepath.Dir(raceBin), "producer-cloudwatch")
		out, err := exec.Command("go", "build", "-race", "-ldflags", "-X main.cloudwatchInterval=1s", "-o", cwBin, ".").CombinedOutput()
		if err != nil {
			cwBinErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if cwBinErr != nil {
		t.Fatal(cwBinErr)
	}
	return cwBin
}

const (
	cwNamespace = "Tributary/faults"
	cwGroup     = "/tributary/faults/producer"
	cwHost      = "faults-host"
)

// cloudwatchScenario is a scenario whose producer publishes to a fake
// CloudWatch, with static credentials and no instance metadata.
func cloudwatchScenario(t *testing.T, f fakeapi.Faults) (*scenario, *fakecloudwatch.Server) {
	s := newScenario(t, f)
	s.bin = cloudwatchBin(t)
	cw := fakecloudwatch.New()
	t.Cleanup(cw.Close)
	cw.AllowNamespace = cwNamespace
	cw.CreateLogGroup(cwGroup)
	s.env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIAFAULTSFAULTS", "AWS_SECRET_ACCESS_KEY=faults", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	s.flags = []string{"-cloudwatch-namespace", cwNamespace, "-cloudwatch-log-group", cwGroup, "-pipeline", "clicks", "-host", cwHost,
		"-cloudwatch-endpoint", cw.URL, "-region", "us-east-1", "-files", s.path("app.log")}
	return s, cw
}

// sums adds up each metric over the requests taken, by name and, for the
// dead letters by class, name/Reason; last is each one's latest value.
func sums(t *testing.T, cw *fakecloudwatch.Server) (sum, last map[string]float64) {
	sum, last = map[string]float64{}, map[string]float64{}
	for _, r := range cw.MetricRequests() {
		if r.Namespace != cwNamespace {
			t.Errorf("metrics in namespace %q, want %q", r.Namespace, cwNamespace)
		}
		for _, d := range r.Data {
			key := d.Name
			if d.Dimensions["Reason"] != "" {
				key += "/" + d.Dimensions["Reason"]
			}
			sum[key] += d.Value
			last[key] = d.Value
		}
	}
	return sum, last
}

// The metrics say what was read, sent and dead-lettered (by class), with
// the documented names, units and dimensions; the log reaches the stream
// named -host, its last line included; the publishers' own lines do not.
func TestFaultCloudwatchPublishesTheFiguresAndTheLog(t *testing.T) {
	s, cw := cloudwatchScenario(t, fakeapi.Faults{RejectContaining: `"bad"`})
	text := s.lines(0, 200, 10)
	s.mu.Lock()
	for n := 200; n < 210; n++ {
		s.written[n] = true
		text += fmt.Sprintf(`{"n":%d,"note":"bad"}`+"\n", n)
	}
	s.mu.Unlock()
	s.appendFile("app.log", text+"not json\n")
	p := s.start(nil)
	s.waitAll(p)
	waitFor(t, "the metrics to count every event", func() bool {
		sum, last := sums(t, cw)
		return sum["EventsRead"] == 211 && sum["EventsSent"] == 200 && sum["EventsDeadLettered"] == 11 &&
			last["OldestUnconfirmedSeconds"] == 0 && last["QueueBytes"] == 0 && last["FileLagBytes"] == 0
	})
	s.stopWanted(p)
	s.check(true)

	sum, _ := sums(t, cw)
	want := map[string]float64{"EventsRead": 211, "EventsSent": 200, "EventsRetried": 0, "EventsDeadLettered": 11,
		"EventsDeadLettered/4xx": 10, "EventsDeadLettered/invalid": 1, "FilesGoneUnread": 0}
	for k, v := range want {
		if sum[k] != v {
			t.Errorf("%s adds up to %v, want %v", k, sum[k], v)
		}
	}
	units := map[string]string{"EventsRead": "Count", "EventsSent": "Count", "EventsRetried": "Count", "EventsDeadLettered": "Count",
		"QueueBytes": "Bytes", "OldestUnconfirmedSeconds": "Seconds", "FileLagBytes": "Bytes", "FilesGoneUnread": "Count", "Heartbeat": "Count"}
	reqs := cw.MetricRequests()
	if len(reqs) == 0 {
		t.Fatal("no metric request")
	}
	for _, r := range reqs {
		heartbeat := 0
		for _, d := range r.Data {
			if units[d.Name] == "" {
				t.Errorf("metric %q is not one of the documented ones", d.Name)
			} else if d.Unit != units[d.Name] {
				t.Errorf("%s in %s, want %s", d.Name, d.Unit, units[d.Name])
			}
			if d.Dimensions["Pipeline"] != "clicks" || d.Dimensions["Host"] != cwHost {
				t.Errorf("%s dimensioned %v, want Pipeline clicks and Host %s", d.Name, d.Dimensions, cwHost)
			}
			if r := d.Dimensions["Reason"]; r != "" && (d.Name != "EventsDeadLettered" || (r != "4xx" && r != "invalid")) {
				t.Errorf("%s with Reason %q: only dead letters have one, and only the classes that grew", d.Name, r)
			}
			if d.Name == "Heartbeat" {
				heartbeat++
				if d.Value != 1 {
					t.Errorf("heartbeat %v, want 1", d.Value)
				}
			}
		}
		if heartbeat != 1 {
			t.Errorf("a request with %d heartbeats, want 1", heartbeat)
		}
	}

	events := cw.Events(cwGroup, cwHost)
	var stream strings.Builder
	for _, e := range events {
		stream.WriteString(e.Message + "\n")
	}
	for _, msg := range []string{`"msg":"starting"`, `"msg":"following file"`, `"msg":"stats"`, `"msg":"stopped with events dead-lettered`} {
		if !strings.Contains(stream.String(), msg) {
			t.Errorf("the log stream %s lacks %s; it holds %d lines:\n%s", cwHost, msg, len(events), tail(stream.String()))
		}
	}
	if strings.Contains(stream.String(), "cloudwatch") {
		t.Errorf("the publishers' own lines reached the log stream:\n%s", tail(stream.String()))
	}
	// The stats line says the new figures too, as the metrics had them.
	if !regexp.MustCompile(`"msg":"stats".*"oldest_unconfirmed_s":0,"file_lag_bytes":0,"files_gone_unread":0`).MatchString(s.logs()) {
		t.Errorf("the last stats line lacks the oldest unconfirmed age, file lag and files gone unread:\n%s", tail(s.logs()))
	}
}

// A CloudWatch that refuses, or hangs, costs delivery nothing: every line
// is stored within the bound it is without CloudWatch, the producer says
// once per API that it cannot publish and once that it publishes again,
// and the lines held meanwhile are shipped.
func TestFaultCloudwatchRefusedOrHangingNeverSlowsDelivery(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault fakecloudwatch.Fault
	}{{"refused", fakecloudwatch.Fault{Refuse: true}}, {"hanging", fakecloudwatch.Fault{Hang: true}}} {
		t.Run(c.name, func(t *testing.T) {
			s, cw := cloudwatchScenario(t, fakeapi.Faults{})
			cw.SetFault(fakecloudwatch.Metrics, c.fault)
			cw.SetFault(fakecloudwatch.Logs, c.fault)
			s.appendFile("app.log", s.lines(0, 2000, 50))
			start := time.Now()
			p := s.start(nil)
			s.waitAll(p)
			// The same lines without CloudWatch take well under a second;
			// the bound leaves room for the race detector on a busy machine.
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("delivery took %v with CloudWatch %s, want under 10 s", took, c.name)
			}
			cannot := func(api string) int {
				return strings.Count(p.stderr.String(), `"msg":"cloudwatch `+api+`: cannot publish`)
			}
			// A hung PutLogEvents fails at its 10 s timeout.
			waitFor(t, "both APIs' failures to be said", func() bool { return cannot("metrics") > 0 && cannot("logs") > 0 })
			time.Sleep(2500 * time.Millisecond) // more failed intervals: still said once
			cw.SetFault(fakecloudwatch.Metrics, fakecloudwatch.Fault{})
			cw.SetFault(fakecloudwatch.Logs, fakecloudwatch.Fault{})
			again := func(api string) int {
				return strings.Count(p.stderr.String(), `"msg":"cloudwatch `+api+`: publishing again"`)
			}
			waitFor(t, "both APIs' recovery to be said", func() bool { return again("metrics") > 0 && again("logs") > 0 })
			waitFor(t, "the lines held during the outage to be shipped", func() bool {
				for _, e := range cw.Events(cwGroup, cwHost) {
					if strings.Contains(e.Message, `"msg":"starting"`) {
						return true
					}
				}
				return false
			})
			s.stopWanted(p)
			s.check(true)
			for _, api := range []string{"metrics", "logs"} {
				if cannot(api) != 1 || again(api) != 1 {
					t.Errorf("cloudwatch %s: %d cannot-publish lines and %d recovery lines, want 1 and 1:\n%s", api, cannot(api), again(api), tail(p.stderr.String()))
				}
			}
		})
	}
}

// Without credentials the producer says so once, publishes nothing, and
// delivers every line.
func TestFaultCloudwatchWithoutCredentialsPublishesNothing(t *testing.T) {
	s, cw := cloudwatchScenario(t, fakeapi.Faults{})
	env := s.env[:0:0]
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") && !strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") && !strings.HasPrefix(kv, "AWS_SESSION_TOKEN=") {
			env = append(env, kv)
		}
	}
	s.env = env
	s.appendFile("app.log", s.lines(0, 500, 20))
	p := s.start(nil)
	s.waitAll(p)
	waitFor(t, "the missing credentials to be said", func() bool { return strings.Contains(p.stderr.String(), "cloudwatch: no AWS credentials") })
	time.Sleep(2500 * time.Millisecond) // intervals that would have published
	s.stopWanted(p)
	s.check(true)
	if n := strings.Count(p.stderr.String(), "cloudwatch: no AWS credentials"); n != 1 {
		t.Errorf("the missing credentials said %d times, want once", n)
	}
	if m, l, c := cw.Requests(fakecloudwatch.Metrics)+len(cw.MetricRequests()), cw.Requests(fakecloudwatch.Logs)+len(cw.LogBatches()), cw.CreateLogStreamCalls(); m != 0 || l != 0 || c != 0 {
		t.Errorf("without credentials: %d metric, %d log and %d CreateLogStream requests, want none", m, l, c)
	}
	if strings.Contains(p.stderr.String(), "cannot publish") {
		t.Errorf("without credentials, an outage was reported:\n%s", tail(p.stderr.String()))
	}
}
