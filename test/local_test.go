package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/cfn"
	"github.com/tributary/tributary/internal/ingest"
	"github.com/tributary/tributary/internal/local"
)

// The local pipeline (`make local`) runs what was synthesized: each
// configuration's settings reach its API, stream, delivery and producer as
// they reach the deployed resources, and what it cannot run (Parquet
// conversion) is refused with one line naming the setting.
func TestLocalRunsWhatWasSynthesized(t *testing.T) {
	type want struct {
		stack, stage     string
		packing          ingest.Packing
		auth             ingest.Auth
		shards           int
		interval         time.Duration
		mib              int
		gzip, eventTime  bool
		prefix, errorPfx string
		producer         map[string]string
	}
	arrival := "raw-data/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
	errors := "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
	cases := []struct {
		name     string
		settings map[string]any
		want     want
	}{
		{"default", nil, want{"Tributary-PROD-Pipeline", "PROD", ingest.Packed, ingest.AuthIAM, 1, 60 * time.Second, 5, false, false, arrival, errors,
			map[string]string{"TRIBUTARY_SOURCE": "synthetic", "TRIBUTARY_RATE": "1", "TRIBUTARY_BATCH_SIZE": "500", "TRIBUTARY_AUTH": "iam"}}},
		{"custom", customSettings, want{"Acme-dev-Pipeline", "dev", ingest.Packed, ingest.AuthIAM, 4, 300 * time.Second, 64, true, false,
			strings.Replace(arrival, "raw-data/", "events/json/", 1), strings.Replace(errors, "errors/", "failed/", 1),
			map[string]string{"TRIBUTARY_SOURCE": "file", "TRIBUTARY_FILES": "/var/log/app/events.log,/var/log/app/more.log", "TRIBUTARY_BATCH_SIZE": "100"}}},
		{"api key", apiKeySettings, want{"Tributary-PROD-Pipeline", "PROD", ingest.PerEvent, ingest.AuthAPIKey, 1, 60 * time.Second, 64, false, true,
			"raw-data/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/", errors,
			map[string]string{"TRIBUTARY_AUTH": "api-key"}}},
	}
	for _, c := range cases {
		a, err := cfn.ReadAssembly(synth(t, c.settings).outdir)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := local.FromAssembly(a)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		d := cfg.Delivery
		got := want{cfg.PipelineStack, cfg.Stage, cfg.Packing, cfg.Auth, cfg.Shards, d.Interval, d.SizeBytes >> 20, d.GZIP, d.Query != "", d.Prefix, d.ErrorPrefix, nil}
		w := c.want
		w.producer = nil
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: the local pipeline runs\n %+v\nwant\n %+v", c.name, got, w)
		}
		for k, v := range c.want.producer {
			if cfg.Producer[k] != v {
				t.Errorf("%s: the local producer's %s = %q, want %q (the host's)", c.name, k, cfg.Producer[k], v)
			}
		}
		// Event time: the synthesized query, de-aggregated first, each event given its newline.
		if c.want.eventTime && (!d.Deaggregate || !d.AppendLine || !strings.Contains(d.Query, `fromdateiso8601`)) {
			t.Errorf("%s: event-time delivery %+v", c.name, d)
		}
		if !c.want.eventTime && (d.Deaggregate || d.AppendLine || d.Query != "") {
			t.Errorf("%s: arrival-time delivery processes records: %+v", c.name, d)
		}
		if cfg.Schemas[ingest.EventPath] == nil || cfg.Schemas[ingest.BatchPath] == nil {
			t.Errorf("%s: request models %v", c.name, cfg.Schemas)
		}
	}
	a, err := cfn.ReadAssembly(synth(t, openSettings).outdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.FromAssembly(a); err == nil || !strings.HasPrefix(err.Error(), "outputFormat=PARQUET is not run locally") {
		t.Errorf("Parquet: %v, want a refusal naming outputFormat=PARQUET", err)
	}
}
