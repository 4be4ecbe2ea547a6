package test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/ingest"
)

// Prices are us-east-1 list prices (USD) of what an event's cost varies
// with; the fixed costs (shard-hours, the host, dashboards) are in
// docs/cost.md. Check https://aws.amazon.com/api-gateway/pricing/,
// .../kinesis/data-streams/pricing/ and .../kinesis/data-firehose/pricing/.
var prices = struct {
	apiPerMillionRequests  float64 // REST API, first 333 million a month
	kinesisPerMillionUnits float64 // provisioned: PUT payload units of 25 KB per record
	kinesisUnitBytes       int
	firehosePerGB          float64 // ingestion, each record rounded up to 5 KB
	firehoseRecordBytes    int
}{3.50, 0.014, 25 * 1024, 0.029, 5 * 1024}

// Shard limits: writes of 1,000 records or 1 MiB per second.
const shardRecordsPerSecond, shardBytesPerSecond = 1000, 1 << 20

// costs are what a number of events becomes through the rendered templates.
type costs struct {
	mode                           string
	events, requests, records      int
	recordBytes                    int // data and partition keys, as Kinesis counts them
	dollarsPerMillion, perShardPer float64
}

// measure posts n events of eventBytes in one batch through an endpoint (or
// one per request to /v1), as the producer does, and prices what they become.
func measure(t testing.TB, e endpoint, mode string, eventBytes, n int) costs {
	t.Helper()
	var events []string
	for i := 0; i < n; i++ {
		prefix := fmt.Sprintf(`{"event_id":"%08d-0000-4000-8000-000000000000","type":"Tip 3","pad":"`, i)
		events = append(events, prefix+strings.Repeat("x", eventBytes-len(prefix)-2)+`"}`)
	}
	reqs := []request{{"[" + strings.Join(events, ",") + "]", nil}}
	if e.name == "v1" { // one request per event
		reqs = nil
		for _, ev := range events {
			reqs = append(reqs, request{ev, nil})
		}
	}
	c := costs{mode: mode, events: len(events), requests: len(reqs)}
	var records []kinesisRecord
	for _, s := range post(t, e, reqs) {
		if s.answer.status != 200 {
			t.Fatalf("%s: %d %s", mode, s.answer.status, s.answer.raw)
		}
		records = append(records, s.records...)
	}
	c.records = len(records)
	units, billed := 0, 0
	for _, r := range records {
		n := len(r.Data) + len(r.PartitionKey)
		c.recordBytes += n
		units += (n + prices.kinesisUnitBytes - 1) / prices.kinesisUnitBytes
		billed += max(1, (n+prices.firehoseRecordBytes-1)/prices.firehoseRecordBytes) * prices.firehoseRecordBytes
	}
	perMillion := 1e6 / float64(c.events)
	c.dollarsPerMillion = perMillion * (float64(c.requests)*prices.apiPerMillionRequests/1e6 +
		float64(units)*prices.kinesisPerMillionUnits/1e6 +
		float64(billed)/(1<<30)*prices.firehosePerGB)
	// A shard takes whichever limit the events reach first.
	byRecords := shardRecordsPerSecond * float64(c.events) / float64(c.records)
	byBytes := shardBytesPerSecond * float64(c.events) / float64(c.recordBytes)
	c.perShardPer = math.Min(byRecords, byBytes)
	return c
}

// measureAll measures 200-byte events in full batches of both packings, as
// many as each request model takes (the default app's PACKED 1,000, PER_EVENT
// 500), and one per request to /v1.
func measureAll(t testing.TB) (packed, perEvent, single costs) {
	v1, p, e := endpoints(t)
	return measure(t, p, string(ingest.Packed), 200, p.maxItems), measure(t, e, string(ingest.PerEvent), 200, e.maxItems),
		measure(t, v1, "ONE_PER_REQUEST", 200, e.maxItems)
}

// PACKED in batches of 1,000 costs at most $0.010 per million 200-byte events
// (in batches of 500 it cost $0.0128, 55% of it API requests) and takes at
// least 4,500 events per second per shard; PER_EVENT is what it was ($0.159,
// 1,000/s). Figures come from the rendered templates.
func TestPackingCostAndThroughput(t *testing.T) {
	packed, perEvent, _ := measureAll(t)
	for _, c := range []struct {
		got                 costs
		records             int
		maxDollars, minRate float64
	}{
		{packed, 1, 0.010, 4500},
		{perEvent, ingest.MaxBatch, 0.17, 1000},
	} {
		t.Logf("%s: %d events -> %d request, %d records, %d bytes; $%.4f per million events; %.0f events/s per shard",
			c.got.mode, c.got.events, c.got.requests, c.got.records, c.got.recordBytes, c.got.dollarsPerMillion, c.got.perShardPer)
		if c.got.records != c.records || c.got.dollarsPerMillion > c.maxDollars || c.got.perShardPer < c.minRate {
			t.Errorf("%s: %d records, $%.4f per million, %.0f/s per shard; want %d, at most $%.2f, at least %.0f/s",
				c.got.mode, c.got.records, c.got.dollarsPerMillion, c.got.perShardPer, c.records, c.maxDollars, c.minRate)
		}
	}
	if perEvent.perShardPer != shardRecordsPerSecond {
		t.Errorf("PER_EVENT takes %.0f events/s per shard, want the record limit, 1000", perEvent.perShardPer)
	}
}

// BenchmarkCost prints what `make bench` reports: for 200-byte events in a
// full batch of each packing (and one per request to /v1), the events per
// request and per record through the rendered templates, the bytes Kinesis
// counts per event, the cost per million events and the events per second one
// shard takes. (Nothing here is timed.)
func BenchmarkCost(b *testing.B) {
	packed, perEvent, single := measureAll(b)
	for _, c := range []costs{packed, perEvent, single} {
		b.Run(c.mode, func(b *testing.B) {
			for range b.N {
			}
			b.ReportMetric(float64(c.events)/float64(c.requests), "events/request")
			b.ReportMetric(float64(c.events)/float64(c.records), "events/record")
			b.ReportMetric(float64(c.recordBytes)/float64(c.events), "bytes/event")
			b.ReportMetric(c.dollarsPerMillion, "$/Mev")
			b.ReportMetric(c.perShardPer, "ev/s/shard")
		})
	}
}
