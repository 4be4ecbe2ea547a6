package test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

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

// As synthesized, in both layouts: the folder Firehose writes an event to
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
	for _, settings := range []map[string]any{nil, apiKeySettings, customSettings} {
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
		if want := 1 + len(strs(settings["eventSchema"])); len(tables) != want {
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

// recoverFilter is docs/querying.md's jq filter that takes the records out of
// Firehose's error documents.
const recoverFilter = `.rawData | @base64d | split("\n")[] | select(length > 0)`

// The recovery command in docs/querying.md gives back each failed event as
// one line, the events of a packed record each on its own, with jq 1.6 (as
// on the host); the page holds the filter verbatim.
func TestRecoveredEventsComeBackAsLines(t *testing.T) {
	page, err := os.ReadFile("../docs/querying.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "jq -r '"+recoverFilter+"'") {
		t.Fatalf("docs/querying.md does not hold the recovery filter %s", recoverFilter)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	docs := fmt.Sprintf(`{"errorCode":"DynamicPartitioning.MetadataExtractionFailed","rawData":%q}`+"\n"+`{"ErrorCode":"x","rawData":%q}`,
		b64(`{"event_id":"a","event_time":"2026-02-30T10:00:00Z"}`+"\n"+`{"event_id":"b"}`+"\n"), b64(`{"event_id":"c"}`))
	cmd := exec.Command("jq", "-r", recoverFilter)
	cmd.Stdin = strings.NewReader(docs)
	out, err := cmd.CombinedOutput()
	if want := `{"event_id":"a","event_time":"2026-02-30T10:00:00Z"}` + "\n" + `{"event_id":"b"}` + "\n" + `{"event_id":"c"}` + "\n"; err != nil || string(out) != want {
		t.Errorf("recovered %q (%v), want %q", out, err, want)
	}
}
