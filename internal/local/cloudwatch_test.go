package local

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakecloudwatch"
	"github.com/tributary/tributary/internal/ingest"
)

// The producer's environment sends CloudWatch to the local fake, under a
// local host name, with a Region and throwaway credentials to sign with,
// whatever the host's file says.
func TestProducerEnvPointsCloudwatchAtTheLocalFake(t *testing.T) {
	for _, auth := range []ingest.Auth{ingest.AuthNone, ingest.AuthAPIKey, ingest.AuthIAM} {
		p := &Pipeline{Config: &Config{Auth: auth, Producer: map[string]string{
			"TRIBUTARY_CLOUDWATCH_NAMESPACE": "Tributary/dev", "TRIBUTARY_CLOUDWATCH_LOG_GROUP": "/tributary/dev/producer",
			"TRIBUTARY_PIPELINE": "clicks", "TRIBUTARY_HOST": "ip-10-0-0-1", "TRIBUTARY_CLOUDWATCH_ENDPOINT": "https://monitoring.eu-west-1.amazonaws.com"}},
			APIURL: "http://127.0.0.1:1/PROD/v1", cw: &fakecloudwatch.Server{URL: "http://127.0.0.1:2"}}
		env := p.producerEnv(t.TempDir(), t.TempDir())
		got := map[string]string{}
		for _, kv := range env { // the last one wins, as exec does
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		want := map[string]string{"TRIBUTARY_CLOUDWATCH_ENDPOINT": "http://127.0.0.1:2", "TRIBUTARY_HOST": LocalHost,
			"TRIBUTARY_CLOUDWATCH_NAMESPACE": "Tributary/dev", "TRIBUTARY_PIPELINE": "clicks", "TRIBUTARY_REGION": "us-east-1",
			"AWS_ACCESS_KEY_ID": "AKIALOCALLOCALLOCAL", "AWS_PROFILE": ""}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%v: %s=%q, want %q", auth, k, got[k], v)
			}
		}
		if i := slices.Index(env, "TRIBUTARY_CLOUDWATCH_ENDPOINT=http://127.0.0.1:2"); i < slices.Index(env, "TRIBUTARY_CLOUDWATCH_ENDPOINT=https://monitoring.eu-west-1.amazonaws.com") {
			t.Errorf("%v: the host's endpoint comes after the local one, and would win", auth)
		}
	}
}

// The stats line's producer part: counters summed over the requests,
// gauges as last sent, the dead letters' total without the per-class
// metrics counted again, and the heartbeat's age.
func TestProducerFiguresAsTheLocalCloudwatchGotThem(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got := producerFigures(nil, now); !strings.Contains(got, "no metrics received yet") {
		t.Errorf("with no request: %q", got)
	}
	req := func(at time.Time, read, sent, dead, oldest, lag float64) fakecloudwatch.MetricRequest {
		d := func(name string, v float64) fakecloudwatch.Datum {
			return fakecloudwatch.Datum{Name: name, Value: v, Timestamp: at, Dimensions: map[string]string{"Pipeline": "p", "Host": LocalHost}}
		}
		reason := d("EventsDeadLettered", dead)
		reason.Dimensions = map[string]string{"Pipeline": "p", "Host": LocalHost, "Reason": "4xx"}
		return fakecloudwatch.MetricRequest{Data: []fakecloudwatch.Datum{d("EventsRead", read), d("EventsSent", sent), d("EventsDeadLettered", dead),
			d("OldestUnconfirmedSeconds", oldest), d("FileLagBytes", lag), d("Heartbeat", 1), reason}}
	}
	got := producerFigures([]fakecloudwatch.MetricRequest{req(now.Add(-2*time.Minute), 100, 90, 3, 40, 5000), req(now.Add(-time.Minute), 50, 60, 2, 7, 0)}, now)
	want := "producer: 150 read, 150 sent, 5 dead-lettered, oldest unconfirmed 7 s, file lag 0 bytes, heartbeat 1m0s ago"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
