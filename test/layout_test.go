package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/fakeapi"
	"github.com/tributary/tributary/internal/nodetools"
)

// javaTime formats t with the Java DateTimeFormatter letters Firehose's
// !{timestamp:...} and Athena's projection.<col>.format take (those the
// layout uses).
func javaTime(pattern string, t time.Time) string {
	return t.UTC().Format(strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15").Replace(pattern))
}

// jq16 runs jq 1.6 (the only version Firehose documents; the pinned one of
// internal/nodetools) with query on one record and returns its output.
func jq16(query, record string) (string, error) { return nodetools.JQ16(query, record) }

// firehoseFolder evaluates a delivery stream's S3 prefix, as Firehose
// does, for a record that arrived at arrival: !{timestamp:...} in UTC,
// !{partitionKeyFromQuery:k} from the stream's own jq query run on the record.
func firehoseFolder(t *testing.T, destination map[string]any, record string, arrival time.Time) string {
	t.Helper()
	keys := map[string]string{}
	processors, _ := get(destination, "ProcessingConfiguration", "Processors").([]any)
	for _, proc := range processors {
		for _, param := range get(proc, "Parameters").([]any) {
			if get(param, "ParameterName") != "MetadataExtractionQuery" {
				continue
			}
			out, err := jq16(get(param, "ParameterValue").(string), record)
			if err != nil {
				t.Fatalf("jq: %v: %s", err, out)
			}
			for _, kv := range regexp.MustCompile(`"(\w+)":"([^"]*)"`).FindAllStringSubmatch(out, -1) {
				keys[kv[1]] = kv[2]
			}
		}
	}
	return regexp.MustCompile(`!\{(timestamp|partitionKeyFromQuery):([^}]+)\}`).ReplaceAllStringFunc(get(destination, "Prefix").(string), func(m string) string {
		kind, arg, _ := strings.Cut(m[2:len(m)-1], ":")
		if kind == "timestamp" {
			return javaTime(arg, arrival)
		}
		return keys[arg]
	})
}

// athenaFolder is where Athena reads the hour of t for a table: dt formatted
// with projection.dt.format, put in storage.location.template.
func athenaFolder(table map[string]any, t time.Time) string {
	params := get(table, "Properties", "TableInput", "Parameters")
	return strings.Replace(joined(get(params, "storage.location.template")), "${dt}", javaTime(get(params, "projection.dt.format").(string), t), 1)
}

// As synthesized, in both layouts and both formats: the folder Firehose writes an event to
// (its prefix evaluated, with jq 1.6 running the stream's own query
// in the event-time layout) is the folder Athena's projection reads for that
// hour, for every table, across an hour boundary, the end of a year and with
// fractional seconds.
func TestFirehoseWritesWhereAthenaReads(t *testing.T) {
	samples := []struct{ time, folder string }{
		{"2026-11-25T14:59:59.999Z", "2026/11/25/14"},
		{"2026-11-25T15:00:00.000Z", "2026/11/25/15"},
		{"2026-12-31T23:59:59.999999Z", "2026/12/31/23"},
		{"2027-01-01T00:00:00Z", "2027/01/01/00"},
	}
	for _, settings := range []map[string]any{nil, apiKeySettings, customSettings, openSettings} {
		tpl := synth(t, settings).pipeline()
		_, stream := only(t, tpl, "AWS::KinesisFirehose::DeliveryStream")
		destination := get(stream, "Properties", "ExtendedS3DestinationConfiguration").(map[string]any)
		// "${Bucket.Arn}" -> "s3://${Bucket}/", as the tables name the bucket.
		bucket := "s3://" + strings.TrimSuffix(joined(get(destination, "BucketARN")), ".Arn}") + "}/"
		tables := resourcesOf(tpl, "AWS::Glue::Table")
		for id, table := range tables { // the errors table reads the error prefix, not the hour folders
			if get(table, "Properties", "TableInput", "Name") == "errors" {
				delete(tables, id)
			}
		}
		want := 1 + len(strs(settings["eventSchema"]))
		if settings["outputFormat"] == "PARQUET" {
			want-- // no events_raw: it reads text
		}
		if len(tables) != want {
			t.Fatalf("%v: %d tables, want %d", settings, len(tables), want)
		}
		for _, s := range samples {
			when, err := time.Parse(time.RFC3339Nano, s.time)
			if err != nil {
				t.Fatal(err)
			}
			arrival := when
			if settings["partitioning"] == "EVENT_TIME" {
				arrival = when.Add(time.Hour) // the event's own time decides
			}
			record := fmt.Sprintf(`{"event_id":"e-1","event_time":%q,"value":"30"}`, s.time)
			written := bucket + firehoseFolder(t, destination, record, arrival)
			if !strings.HasSuffix(written, "/"+s.folder+"/") {
				t.Errorf("%v: an event of %s (arrived %s) is written to %s, want the folder %s", settings, s.time, arrival.Format(time.RFC3339), written, s.folder)
			}
			for id, table := range tables {
				if read := athenaFolder(table, when); read != written {
					t.Errorf("%v: %s: an event of %s is written to %s, Athena reads that hour from %s", settings, id, s.time, written, read)
				}
			}
		}
	}
}

// As synthesized, the event-time delivery stream's own query (real jq 1.6)
// refuses every event_time that is not a real UTC instant in the documented
// format, so Firehose sends such an event to the error prefix, not to a
// wrong hour folder; and still takes the valid ones.
func TestSynthesizedQueryRefusesWrongTimes(t *testing.T) {
	_, stream := only(t, synth(t, apiKeySettings).pipeline(), "AWS::KinesisFirehose::DeliveryStream")
	var query string
	processors, _ := get(stream, "Properties", "ExtendedS3DestinationConfiguration", "ProcessingConfiguration", "Processors").([]any)
	for _, proc := range processors {
		for _, param := range get(proc, "Parameters").([]any) {
			if get(param, "ParameterName") == "MetadataExtractionQuery" {
				query = get(param, "ParameterValue").(string)
			}
		}
	}
	if query == "" {
		t.Fatal("no MetadataExtractionQuery")
	}
	for _, bad := range []string{
		"2026-11-25T15:08:10Zjunk", "2026-02-30T15:08:10Z", "2026-11-25T15:08:60Z", "2026-11-25T15:60:10Z",
		"2026-11-25T24:00:00Z", "999-11-25T15:08:10Z", "2026-11-25T15:08:10+09:00",
	} {
		if out, err := jq16(query, fmt.Sprintf(`{"event_id":"e1","event_time":%q}`, bad)); err == nil {
			t.Errorf("event_time %s: extracted %s, want jq to fail (error prefix)", bad, out)
		}
	}
	if out, err := jq16(query, `{"event_time":"2026-11-25T15:08:10.5Z"}`); err != nil || out != `{"day":"25","hour":"15","month":"11","year":"2026"}` {
		t.Errorf("a valid time: %s %v", out, err)
	}
}

// recoverFilter is the README's jq filter that takes the records out of
// Firehose's error documents.
const recoverFilter = `.rawData | @base64d | split("\n")[] | select(length > 0)`

// firehoseErrorObjects writes error objects into dir as a copy of a day's
// error prefix holds them (dir/<HH>/<object>) and Firehose writes them
// (documents with the fields its guide lists for each error type, arrival
// times in milliseconds), one gzipped in hour 15, one plain in hour 16 whose
// documents follow each other without a newline; the records are packed
// (several events, each ending in a newline) or single. It returns the
// events, in order.
func firehoseErrorObjects(t *testing.T, dir string) []string {
	t.Helper()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	events := []string{
		`{"event_id":"a","event_time":"2026-02-30T10:00:00Z","value":"30"}`,
		`{"event_id":"b","value":"31"}`,
		`{"event_id":"c","event_time":"2026-11-25T15:08:10+09:00","type":"Tip 3"}`,
		`{"event_id":"d","event_time":"2026-11-25T15:08:10Z","level":"high"}`,
	}
	// partitioning-failed (the processing-failed shape of the guide: lower-case errorCode).
	partitioning, _ := json.Marshal(map[string]any{"attemptsMade": 1, "arrivalTimestamp": 1764083290000, "errorCode": "DynamicPartitioning.MetadataExtractionFailed",
		"errorMessage": "Non JSON record provided", "attemptEndingTimestamp": 1764083291000, "rawData": b64(events[0] + "\n" + events[1] + "\n")})
	another, _ := json.Marshal(map[string]any{"attemptsMade": 1, "arrivalTimestamp": 1764083292000, "errorCode": "DynamicPartitioning.MetadataExtractionFailed",
		"errorMessage": "no valid event_time", "attemptEndingTimestamp": 1764083293000, "rawData": b64(events[2] + "\n")})
	// format-conversion-failed, as the guide's schema: ErrorCode, the table.
	conversion, _ := json.Marshal(map[string]any{"attemptsMade": 1, "arrivalTimestamp": 1764083294000, "ErrorCode": "DataFormatConversion.ParseError",
		"ErrorMessage": "Cannot parse", "attemptEndingTimestamp": 1764083295000, "rawData": b64(events[3] + "\n"),
		"sequenceNumber": "49650000000000000000000000000000000000000000000000000002", "subSequenceNumber": 0,
		"dataCatalogTable": map[string]any{"catalogId": "123456789012", "databaseName": "tributary_prod", "tableName": "events", "region": "us-east-1", "versionId": "0",
			"catalogArn": "arn:aws:glue:us-east-1:123456789012:catalog"}})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(append(append(partitioning, '\n'), append(another, '\n')...))
	zw.Close()
	for name, body := range map[string][]byte{
		"15/Tributary-PROD-Delivery-1-2026-11-25-15-08-10-8c1e0f4a.gz": gz.Bytes(),
		"16/Tributary-PROD-Delivery-1-2026-11-25-16-09-10-9d2f1a5b":    append(conversion, conversion...), // the record twice, no newline between
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return events
}

// readmeRecovery is the recovery block of docs/querying.md, line by line.
func readmeRecovery(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../docs/querying.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(aws s3 cp --recursive s3://<BucketName>/errors/.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("docs/querying.md has no recovery block (aws s3 cp ... errors/)")
	}
	return strings.Split(strings.TrimSpace(string(m[1])), "\n")
}

// The README's way back in, run as written on error objects laid out as
// Firehose writes them (gzipped and plain, packed records, documents of
// both shapes): its zcat | jq line (jq 1.6, as on the host) gives back each
// failed event as one line, the events of a packed record each on its
// own; its producer line, run with the built producer against the local
// fake API (with -auth none: the fake checks no signature), sends them,
// and the API stores each event as it was, its event_id and event_time
// kept; an event that had no event_time gets the time it is sent.
func TestRecoveredEventsComeBackThroughTheProducer(t *testing.T) {
	lines := readmeRecovery(t)
	// The copy of a day's prefix gives failed/<HH>/<object>, which the zcat line's glob must reach.
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "aws s3 cp --recursive s3://<BucketName>/errors/partitioning-failed/2026/11/25/ failed/ ") ||
		!strings.HasPrefix(lines[1], "zcat -f failed/*/* | jq -r '"+recoverFilter+"' > recovered.ndjson") ||
		!strings.HasPrefix(lines[3], "go run ./cmd/producer -url <IngestUrl> -source stdin < recovered.ndjson") {
		t.Fatalf("docs/querying.md recovery block changed:\n%s", strings.Join(lines, "\n"))
	}
	dir := t.TempDir()
	events := firehoseErrorObjects(t, filepath.Join(dir, "failed"))
	extract := exec.Command("bash", "-o", "pipefail", "-c", lines[1])
	extract.Dir = dir
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", lines[1], err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "recovered.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	// Objects in name order (zcat's glob): hour 15's gzipped one's records, then hour 16's plain one's twice.
	want := strings.Join([]string{events[0], events[1], events[2], events[3], events[3]}, "\n") + "\n"
	if string(got) != want {
		t.Fatalf("recovered.ndjson\n got %q\nwant %q", got, want)
	}

	bin := filepath.Join(dir, "producer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/producer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	api := fakeapi.Start(fakeapi.Faults{})
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	command := strings.NewReplacer("go run ./cmd/producer ", bin+" ", "<IngestUrl>", api.URL).Replace(lines[3]) + " -auth none"
	send := exec.CommandContext(ctx, "bash", "-c", command)
	send.Dir = dir
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	var stored []string
	for _, e := range api.Events() {
		stored = append(stored, strings.TrimSuffix(string(e), "\n"))
	}
	// b had no event_time: the producer stamps it with the time it is sent,
	// put first, the event's own keys after it as written.
	stamped := regexp.MustCompile(`^\{"event_time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)","event_id":"b","value":"31"\}$`)
	for i, e := range stored {
		if m := stamped.FindStringSubmatch(e); m != nil {
			if sent, err := time.Parse(time.RFC3339, m[1]); err == nil && time.Since(sent).Abs() < time.Hour {
				stored[i] = events[1]
			}
		}
	}
	sort.Strings(stored)
	wantStored := []string{events[0], events[1], events[2], events[3], events[3]} // sorted by event_id already
	if fmt.Sprint(stored) != fmt.Sprint(wantStored) {
		t.Errorf("the API stored\n %s\nwant (b with the time it was sent)\n %s", strings.Join(stored, "\n "), strings.Join(wantStored, "\n "))
	}
}
