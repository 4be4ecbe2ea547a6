package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/parquet-go/parquet-go"
	pqsnappy "github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/fakes3"
)

// encoders write an object as Firehose does in each format the settings
// allow, with the formats' own libraries or, for Hadoop's framing, by hand
// from its description (big-endian lengths around raw snappy blocks).
var encoders = map[string]func(t *testing.T, events [][]byte) []byte{
	"UNCOMPRESSED": func(_ *testing.T, events [][]byte) []byte { return bytes.Join(events, nil) },
	"GZIP": func(_ *testing.T, events [][]byte) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(bytes.Join(events, nil))
		zw.Close()
		return b.Bytes()
	},
	"ZIP": func(_ *testing.T, events [][]byte) []byte { // one deflated entry, named with a UUID
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create("3f1c2b7e-0d9a-4c55-8a1e-6b2f0c9d4e21")
		w.Write(bytes.Join(events, nil))
		zw.Close()
		return b.Bytes()
	},
	"SNAPPY": func(_ *testing.T, events [][]byte) []byte { return xerial.Encode(nil, bytes.Join(events, nil)) },
	"HADOOP_SNAPPY": func(_ *testing.T, events [][]byte) []byte {
		data := bytes.Join(events, nil)
		var b bytes.Buffer
		be := func(n int) { binary.Write(&b, binary.BigEndian, uint32(n)) }
		// Two blocks; the first of two chunks, as a large block would be.
		half := len(data) / 2
		first, second := data[:half], data[half:]
		be(len(first))
		for _, chunk := range [][]byte{first[:len(first)/2], first[len(first)/2:]} {
			c := snappy.Encode(nil, chunk)
			be(len(c))
			b.Write(c)
		}
		be(len(second))
		c := snappy.Encode(nil, second)
		be(len(c))
		b.Write(c)
		return b.Bytes()
	},
	"PARQUET": func(t *testing.T, events [][]byte) []byte { // the typed table's columns, Snappy pages
		type row struct {
			Value     *string `parquet:"value,optional"`
			Type      *string `parquet:"type,optional"`
			EventID   *string `parquet:"event_id,optional"`
			EventTime *string `parquet:"event_time,optional"`
		}
		rows := make([]row, len(events))
		for i, e := range events {
			var r struct{ Value, Type, EventID, EventTime *string }
			var m map[string]*string
			if err := json.Unmarshal(e, &m); err != nil {
				t.Error(err)
			}
			r.Value, r.Type, r.EventID, r.EventTime = m["value"], m["type"], m["event_id"], m["event_time"]
			rows[i] = row(r)
		}
		var b bytes.Buffer
		if err := parquet.Write(&b, rows, parquet.Compression(&pqsnappy.Codec{})); err != nil {
			t.Error(err)
		}
		return b.Bytes()
	},
}

// firehose copies what the fake API stored into objects of the fake S3, in
// format, under the data prefix and UTC hour folders of arrival (now) or,
// with eventTime, of each event's event_time, like the real delivery
// stream; drop and dup change what it writes.
func firehose(ctx context.Context, t *testing.T, api *fakeapi.API, store *fakes3.S3, format string, eventTime bool, drop, dup func(i int) bool) {
	delivered, n := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		recs := api.Events()
		if len(recs) == delivered {
			continue
		}
		now := time.Now().UTC()
		byHour := map[string][][]byte{}
		for i := delivered; i < len(recs); i++ {
			if drop != nil && drop(i) {
				continue
			}
			hour := now.Format("2006/01/02/15")
			if eventTime {
				var e struct {
					EventTime time.Time `json:"event_time"`
				}
				if err := json.Unmarshal(recs[i], &e); err != nil {
					t.Errorf("no event_time: %s", recs[i])
				}
				hour = e.EventTime.UTC().Format("2006/01/02/15")
			}
			byHour[hour] = append(byHour[hour], recs[i])
			if dup != nil && dup(i) {
				byHour[hour] = append(byHour[hour], recs[i])
			}
		}
		for hour, events := range byHour {
			n++
			store.Put("data-bucket", fmt.Sprintf("raw-data/%s/delivery-%d.%s", hour, n, strings.ToLower(format)), encoders[format](t, events), now)
		}
		delivered = len(recs)
	}
}

func setup(t *testing.T, faults fakeapi.Faults, drop, dup func(int) bool) (string, *fakes3.S3) {
	return setupFormat(t, faults, "GZIP", false, drop, dup)
}

func setupFormat(t *testing.T, faults fakeapi.Faults, format string, eventTime bool, drop, dup func(int) bool) (string, *fakes3.S3) {
	t.Helper()
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	api := fakeapi.Start(faults)
	t.Cleanup(api.Close)
	store := fakes3.Start()
	t.Cleanup(store.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go firehose(ctx, t, api, store, format, eventTime, drop, dup)
	// An old object that must not confuse the count.
	store.Put("data-bucket", "raw-data/2020/01/01/00/old.gz", []byte("not gzip"), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	outputs, _ := json.Marshal(map[string]map[string]string{
		"Tributary-PROD-Pipeline": {"IngestUrl": api.URL, "BucketName": "data-bucket", "DataPrefix": "raw-data/"},
		"Tributary-PROD-Producer": {"InstanceId": "i-0123"},
	})
	path := filepath.Join(t.TempDir(), "cdk-outputs.json")
	if err := os.WriteFile(path, outputs, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, store
}

func smokeArgs(outputs string, store *fakes3.S3, extra ...string) []string {
	return append([]string{"-outputs", outputs, "-count", "30", "-auth", "none", "-region", "us-east-1",
		"-s3-endpoint-url", store.URL, "-poll", "50ms", "-timeout", "5s"}, extra...)
}

func TestSmokeFindsEveryEvent(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{ThrottleEvery: 4}, nil, func(i int) bool { return i == 3 })
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"smoke: sent 30 events", "found 30 of 30 events; 0 missing, 1 duplicated", "end-to-end latency"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSmokeFailsOnAMissingEvent(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{}, func(i int) bool { return i == 7 }, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store, "-timeout", "500ms"), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "found 29 of 30 events; 1 missing, 0 duplicated") || !strings.Contains(out.String(), "missing: smoke-") {
		t.Errorf("exit %d, want 1 with the missing event named:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestSmokeFailsWhenTheAPIRejectsTheEvents(t *testing.T) {
	outputs, store := setup(t, fakeapi.Faults{APIKey: "right"}, nil, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), smokeArgs(outputs, store, "-auth", "api-key", "-api-key", "wrong"), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "the API did not take the test events: 0 sent, 30 rejected, 0 unconfirmed; first reason: HTTP 403: Forbidden") {
		t.Errorf("exit %d, want 1 naming the rejection:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestSmokeOutputsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(v any) string {
		p := filepath.Join(dir, fmt.Sprint(time.Now().UnixNano(), ".json"))
		raw, _ := json.Marshal(v)
		os.WriteFile(p, raw, 0o644)
		return p
	}
	two := write(map[string]map[string]string{
		"A-PROD-Pipeline": {"IngestUrl": "https://a/v1", "BucketName": "a", "DataPrefix": "raw-data/"},
		"B-dev-Pipeline":  {"IngestUrl": "https://b/v1", "BucketName": "b", "DataPrefix": "events/"},
	})
	if _, err := readOutputs(two, ""); err == nil || !strings.Contains(err.Error(), "choose one with -stack") {
		t.Errorf("two pipelines without -stack: %v", err)
	}
	if o, err := readOutputs(two, "B-dev-Pipeline"); err != nil || o.BucketName != "b" || o.DataPrefix != "events/" {
		t.Errorf("-stack B-dev-Pipeline: %+v, %v", o, err)
	}
	old := write(map[string]map[string]string{"A": {"IngestUrl": "https://a/v1"}})
	if _, err := readOutputs(old, ""); err == nil || !strings.Contains(err.Error(), "lacks BucketName or DataPrefix") {
		t.Errorf("outputs without DataPrefix: %v", err)
	}
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"-outputs", filepath.Join(dir, "none.json")}, &bytes.Buffer{}, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--outputs-file") {
		t.Errorf("missing outputs file: exit %d, %s", code, errOut.String())
	}
}

// Whatever the format and the layout, the smoke test finds every event
// (and counts a copy as a duplicate), telling the formats apart by their
// bytes: every object here ends in its format's name, not .gz or .snappy.
func TestSmokeReadsEveryFormatInBothLayouts(t *testing.T) {
	for _, format := range []string{"UNCOMPRESSED", "GZIP", "ZIP", "SNAPPY", "HADOOP_SNAPPY", "PARQUET"} {
		for _, eventTime := range []bool{false, true} {
			outputs, store := setupFormat(t, fakeapi.Faults{}, format, eventTime, nil, func(i int) bool { return i == 3 })
			var out, errOut bytes.Buffer
			code := run(context.Background(), smokeArgs(outputs, store), &out, &errOut)
			if code != 0 || !strings.Contains(out.String(), "found 30 of 30 events; 0 missing, 1 duplicated") {
				t.Errorf("%s (event time %v): exit %d\n%s%s", format, eventTime, code, out.String(), errOut.String())
			}
		}
	}
}

// A missing event is reported in the formats without a magic number of
// their own (Hadoop's framing) and in Parquet, too.
func TestSmokeReportsMissingEventsInEveryFormat(t *testing.T) {
	for _, format := range []string{"HADOOP_SNAPPY", "PARQUET", "ZIP"} {
		outputs, store := setupFormat(t, fakeapi.Faults{}, format, true, func(i int) bool { return i == 7 }, nil)
		var out, errOut bytes.Buffer
		code := run(context.Background(), smokeArgs(outputs, store, "-timeout", "500ms"), &out, &errOut)
		if code != 1 || !strings.Contains(out.String(), "found 29 of 30 events; 1 missing, 0 duplicated") {
			t.Errorf("%s: exit %d, want 1 with one missing:\n%s%s", format, code, out.String(), errOut.String())
		}
	}
}

// eventIDs reads what the encoders do not write: gzip of several members,
// a ZIP of two entries, the official snappy framing, an empty object; and
// names the format it could not read.
func TestEventIDsEdgeCases(t *testing.T) {
	events := [][]byte{[]byte(`{"event_id":"a"}` + "\n"), []byte(`{"event_id":"b","x":1}` + "\n"), []byte(`{"other":true}` + "\n")}
	var members bytes.Buffer
	for _, e := range events {
		zw := gzip.NewWriter(&members)
		zw.Write(e)
		zw.Close()
	}
	var twoEntries bytes.Buffer
	zw := zip.NewWriter(&twoEntries)
	for i, e := range [][][]byte{events[:1], events[1:]} {
		w, _ := zw.Create(fmt.Sprint("entry-", i))
		w.Write(bytes.Join(e, nil))
	}
	zw.Close()
	var framed bytes.Buffer
	sw := snappy.NewBufferedWriter(&framed)
	sw.Write(bytes.Join(events, nil))
	sw.Close()
	for name, body := range map[string][]byte{"gzip members": members.Bytes(), "zip entries": twoEntries.Bytes(), "framed snappy": framed.Bytes()} {
		if ids, err := eventIDs(body); err != nil || fmt.Sprint(ids) != "[a b ]" {
			t.Errorf("%s: %q, %v", name, ids, err)
		}
	}
	if ids, err := eventIDs(nil); err != nil || len(ids) != 0 {
		t.Errorf("empty object: %v, %v", ids, err)
	}
	for name, c := range map[string]struct {
		body []byte
		want string
	}{
		"corrupt gzip":    {[]byte{0x1f, 0x8b, 0, 0}, "GZIP: "},
		"corrupt xerial":  {append([]byte("\x82SNAPPY\x00"), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1), "SNAPPY (snappy-java): "},
		"corrupt parquet": {[]byte("PAR1garbage"), "Parquet: "},
		"unknown":         {[]byte("\x00\x00\x00\x09garbage"), "not JSON lines, GZIP, ZIP, snappy or Parquet; as HADOOP_SNAPPY: "},
		"not JSON":        {[]byte("{not json}\n"), "not a JSON line"},
	} {
		if _, err := eventIDs(c.body); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q...", name, err, c.want)
		}
	}
}
