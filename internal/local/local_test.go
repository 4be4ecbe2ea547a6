package local

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/layout"
)

func rec(key, data string) fakeapi.Record {
	return fakeapi.Record{PartitionKey: key, Data: []byte(data)}
}

// A shard takes 1,000 records and 1 MiB a second; the rest of that second
// is throttled with Kinesis's error code, and the next second takes more.
func TestStreamAppliesAShardsLimits(t *testing.T) {
	s, err := OpenStream(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	var records []fakeapi.Record
	for i := range 1001 {
		records = append(records, rec(fmt.Sprint(i), "{}\n"))
	}
	res := s.Put(records)
	for i, r := range res[:1000] {
		if r.ErrorCode != "" || r.SequenceNumber == "" || r.ShardID != "shardId-000000000000" {
			t.Fatalf("record %d: %+v, want stored", i, r)
		}
	}
	if res[1000].ErrorCode != fakeapi.Throttled || res[1000].SequenceNumber != "" {
		t.Errorf("record 1001 in one second: %+v, want throttled", res[1000])
	}
	now = now.Add(time.Second)
	big := strings.Repeat("x", 600<<10)
	res = s.Put([]fakeapi.Record{rec("a", big), rec("b", big)})
	if res[0].ErrorCode != "" || res[1].ErrorCode != fakeapi.Throttled {
		t.Errorf("1.2 MiB in one second: %+v, want the second record throttled", res)
	}
	if records, events := s.Stored(); records != 1001 || events != 1000 {
		t.Errorf("stored %d records, %d events; want 1001 and 1000", records, events)
	}
}

// Records go to the shard whose hash key range holds the MD5 of their
// partition key, as Kinesis routes them, so one key keeps its order on one
// shard. The MD5 of "a" is 0cc175b9... (below a quarter of the range).
func TestStreamRoutesByTheMD5OfThePartitionKey(t *testing.T) {
	s, err := OpenStream(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// md5("a") = 0cc175b9..., md5("b") = 92eb5ffe..., md5("c") = 4a8a08f0..., md5("d") = 8277e091...
	for key, want := range map[string]string{"a": "shardId-000000000000", "b": "shardId-000000000002", "c": "shardId-000000000001", "d": "shardId-000000000002"} {
		if got := s.Put([]fakeapi.Record{rec(key, "{}\n")})[0].ShardID; got != want {
			t.Errorf("key %q went to %s, want %s", key, got, want)
		}
	}
}

// What the stream took is on disk: a stream opened again reads it back.
func TestStreamKeepsItsRecordsAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStream(dir, 1)
	s.Put([]fakeapi.Record{rec("k1", "one\n"), rec("k2", "two\n")})
	s.Close()
	s, _ = OpenStream(dir, 1)
	defer s.Close()
	entries, err := s.Read(0, 0, 10)
	if err != nil || len(entries) != 2 || string(entries[0].Data) != "one\n" || entries[1].Key != "k2" || entries[1].Offset != entries[0].Next {
		t.Fatalf("read back %+v, %v", entries, err)
	}
}

type memSink struct {
	objects map[string][]byte
	fail    error
}

func (m *memSink) Put(key string, body []byte) error {
	if m.fail != nil {
		return m.fail
	}
	m.objects[key] = append([]byte(nil), body...)
	return nil
}

func (m *memSink) keys() []string {
	var out []string
	for k := range m.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func arrivalDelivery() Delivery {
	return Delivery{Name: "local-delivery", Prefix: layout.Layout{DataPrefix: "raw-data/", By: layout.ArrivalTime}.FirehosePrefix(),
		ErrorPrefix: "errors/" + layout.ErrorFolders(), Interval: time.Minute, SizeBytes: 1 << 20}
}

func eventTimeDelivery() Delivery {
	d := arrivalDelivery()
	l := layout.Layout{DataPrefix: "raw-data/", By: layout.EventTime}
	d.Prefix = l.FirehosePrefix()
	var parts []string
	for k, v := range l.JQ() {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	sort.Strings(parts)
	d.Query, d.Deaggregate, d.AppendLine, d.GZIP = "{"+strings.Join(parts, ",")+"}", true, true, true
	return d
}

type rig struct {
	stream *Stream
	sink   *memSink
	f      *Firehose
	now    time.Time
	logs   []string
}

func newRig(t *testing.T, d Delivery, dir string) *rig {
	t.Helper()
	r := &rig{sink: &memSink{objects: map[string][]byte{}}, now: time.Date(2026, 12, 3, 15, 59, 30, 0, time.UTC)}
	var err error
	if r.stream, err = OpenStream(filepath.Join(dir, "stream"), 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stream.Close)
	r.stream.now = func() time.Time { return r.now }
	if r.f, err = NewFirehose(d, r.stream, r.sink, filepath.Join(dir, "positions.json"), func(s string) { r.logs = append(r.logs, s) }); err != nil {
		t.Fatal(err)
	}
	r.f.now = func() time.Time { return r.now }
	return r
}

func (r *rig) step(t *testing.T) {
	t.Helper()
	if err := r.f.step(false); err != nil {
		t.Fatal(err)
	}
}

// Arrival-time folders are the UTC hour of the oldest record in the
// object, as Firehose's !{timestamp:} is; an object is written once the
// buffering interval has passed since its first record, not before, and
// is named <delivery stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>.
func TestDeliveryBuffersForTheIntervalIntoTheOldestRecordsHour(t *testing.T) {
	r := newRig(t, arrivalDelivery(), t.TempDir())
	r.stream.Put([]fakeapi.Record{rec("k", "{\"a\":1}\n{\"a\":2}\n")})
	r.step(t)
	r.now = r.now.Add(40 * time.Second) // 16:00:10: the next hour
	r.stream.Put([]fakeapi.Record{rec("k", "{\"a\":3}\n")})
	r.step(t)
	if len(r.sink.objects) != 0 {
		t.Fatalf("written after 40 s of a 60 s interval: %v", r.sink.keys())
	}
	r.now = r.now.Add(20 * time.Second)
	r.step(t)
	keys := r.sink.keys()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "raw-data/2026/12/03/15/local-delivery-1-2026-12-03-15-59-30-") || len(strings.TrimPrefix(keys[0], "raw-data/2026/12/03/15/local-delivery-1-2026-12-03-15-59-30-")) != 36 {
		t.Fatalf("objects %v, want one under the 15 h folder named as Firehose names them", keys)
	}
	if got := string(r.sink.objects[keys[0]]); got != "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" {
		t.Errorf("object holds %q", got)
	}
	if s := r.f.Stats(); s.Objects != 1 || s.Events != 3 {
		t.Errorf("stats %+v", s)
	}
}

// An object is also written as soon as the buffer reaches the size hint.
func TestDeliveryWritesWhenTheBufferIsFull(t *testing.T) {
	d := arrivalDelivery()
	d.SizeBytes = 1000
	r := newRig(t, d, t.TempDir())
	r.stream.Put([]fakeapi.Record{rec("k", strings.Repeat("x", 999)+"\n")})
	r.step(t)
	if len(r.sink.objects) != 1 {
		t.Errorf("a full buffer was not written: %v", r.sink.keys())
	}
}

// With event time, packed records are split into events, each goes to the
// hour of its event_time (the synthesized jq run by gojq), gets its
// newline, and is gzipped; an event the query refuses goes to
// errors/partitioning-failed/ with its bytes, in Firehose's error record.
func TestDeliveryPartitionsByEventTimeAndSendsRefusalsToErrors(t *testing.T) {
	r := newRig(t, eventTimeDelivery(), t.TempDir())
	r.stream.Put([]fakeapi.Record{rec("k", `{"event_time":"2026-11-30T23:59:59.5Z","n":1}`+"\n"+`{"event_time":"2026-12-01T00:00:00Z","n":2}`+"\n"+`{"n":3}`+"\n")})
	if err := r.f.Drain(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, body := range r.sink.objects {
		if !strings.HasSuffix(k, ".gz") {
			t.Errorf("%s: not named .gz", k)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		plain, _ := io.ReadAll(zr)
		got[k[:strings.LastIndex(k, "/")+1]] = string(plain)
	}
	if got["raw-data/2026/11/30/23/"] != `{"event_time":"2026-11-30T23:59:59.5Z","n":1}`+"\n" || got["raw-data/2026/12/01/00/"] != `{"event_time":"2026-12-01T00:00:00Z","n":2}`+"\n" {
		t.Errorf("event-time folders: %q", got)
	}
	var e struct {
		ErrorCode string `json:"errorCode"`
		RawData   string `json:"rawData"`
	}
	if err := json.Unmarshal([]byte(got["errors/partitioning-failed/2026/12/03/15/"]), &e); err != nil {
		t.Fatalf("no error record under errors/partitioning-failed/2026/12/03/15/: %q %v", got, err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(e.RawData); e.ErrorCode != "DynamicPartitioning.MetadataExtractionFailed" || string(raw) != `{"n":3}` {
		t.Errorf("error record %+v (raw %q)", e, raw)
	}
	if s := r.f.Stats(); s.Events != 2 || s.Errors != 1 || s.Objects != 3 {
		t.Errorf("stats %+v, want 2 events landed, 1 error, 3 objects", s)
	}
}

// A stop before the interval loses nothing: the positions only move past
// records whose objects are written, so a delivery started again on the
// same stream delivers what was buffered, and nothing twice.
func TestDeliveryResumesFromItsPositionsAfterAStop(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, arrivalDelivery(), dir)
	r.stream.Put([]fakeapi.Record{rec("k", "{\"a\":1}\n")})
	r.step(t)
	r.now = r.now.Add(time.Minute)
	r.step(t) // written
	r.stream.Put([]fakeapi.Record{rec("k", "{\"a\":2}\n")})
	r.step(t) // buffered when the process dies
	r.stream.Close()

	again := newRig(t, arrivalDelivery(), dir)
	if err := again.f.Drain(); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, b := range again.sink.objects {
		bodies = append(bodies, string(b))
	}
	if len(bodies) != 1 || bodies[0] != "{\"a\":2}\n" {
		t.Errorf("after a restart delivery wrote %q, want only the buffered event", bodies)
	}
}

// When S3 refuses, delivery says so once, keeps the records and writes
// them when it can.
func TestDeliveryRetriesAFailingS3AndSaysSoOnce(t *testing.T) {
	r := newRig(t, arrivalDelivery(), t.TempDir())
	r.sink.fail = fmt.Errorf("disk full")
	r.stream.Put([]fakeapi.Record{rec("k", "{}\n")})
	r.step(t)
	r.now = r.now.Add(time.Hour)
	r.step(t)
	r.step(t)
	if len(r.logs) != 1 || !strings.Contains(r.logs[0], "disk full") {
		t.Errorf("logs %q, want one line naming the error", r.logs)
	}
	r.sink.fail = nil
	r.step(t)
	if len(r.sink.objects) != 1 {
		t.Errorf("nothing written once S3 took writes again")
	}
}

// Deleting the bucket's folder under a running pipeline costs only the
// objects that were in it: the bucket is made again and the next object lands.
func TestS3MakesTheBucketAgainWhenItsFolderIsDeleted(t *testing.T) {
	dir := t.TempDir()
	var logs []string
	s, _, err := OpenS3(dir, "bucket", func(l string) { logs = append(logs, l) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("raw-data/a", []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "buckets")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("raw-data/b", []byte("two\n")); err != nil {
		t.Fatalf("after the folder was deleted: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(s.Folder(), "raw-data", "b")); string(got) != "two\n" || len(logs) != 1 {
		t.Errorf("object %q, logs %q", got, logs)
	}
}
