package layout_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/layout"
	"github.com/tributary/tributary/internal/nodetools"
)

// javaFormat renders the Java DateTimeFormatter letters the layout uses, as
// Firehose (!{timestamp:...}) and Athena (projection format) do.
func javaFormat(pattern string) string {
	return strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15").Replace(pattern) // as a Go layout
}

// renderFirehose evaluates a Firehose prefix for a record that arrived at
// arrival and whose partition keys are keys, as the Firehose guide describes.
func renderFirehose(t *testing.T, prefix string, arrival time.Time, keys map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`!\{(timestamp|partitionKeyFromQuery):([^}]+)\}`).ReplaceAllStringFunc(prefix, func(m string) string {
		kind, arg, _ := strings.Cut(m[2:len(m)-1], ":")
		if kind == "timestamp" {
			return arrival.UTC().Format(javaFormat(arg))
		}
		v, ok := keys[arg]
		if !ok {
			t.Fatalf("no partition key %s for %s", arg, prefix)
		}
		return v
	})
}

// renderAthena is the folder Athena reads for the dt partition holding t:
// dt formatted with projection.dt.format, put into the location template.
func renderAthena(l layout.Layout, t time.Time) string {
	dt := t.UTC().Format(javaFormat(layout.HourFormat))
	return strings.Replace(l.LocationTemplate(), "${"+layout.Column+"}", dt, 1)
}

// JQ runs jq 1.6 (Firehose documents jq 1.6 only; the pinned one of
// internal/nodetools) on one record with the delivery stream's metadata
// extraction query, written as the CDK writes it: {"key":expression,...},
// keys sorted.
func JQ(t *testing.T, query map[string]string, record string) (map[string]string, error) {
	t.Helper()
	var parts []string
	for _, k := range []string{"day", "hour", "month", "year"} {
		parts = append(parts, fmt.Sprintf("%q:%s", k, query[k]))
	}
	out, err := nodetools.JQ16("{"+strings.Join(parts, ",")+"}", record)
	if err != nil {
		return nil, err
	}
	var keys map[string]string
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		return nil, fmt.Errorf("jq output %s: %v", out, err)
	}
	return keys, nil
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// For sample times (an hour boundary on both sides, the end of a year, a
// leap day, fractional seconds), the folder Firehose writes and the folder
// Athena's projection reads for that hour are the same, in both layouts; and
// the smoke test lists that folder too.
func TestFirehoseAndAthenaAgreeOnFolders(t *testing.T) {
	samples := []struct{ time, folder string }{
		{"2026-11-25T14:59:59.999Z", "2026/11/25/14"},
		{"2026-11-25T15:00:00Z", "2026/11/25/15"},
		{"2026-11-25T15:08:10.123456789Z", "2026/11/25/15"},
		{"2026-12-31T23:59:59.999Z", "2026/12/31/23"},
		{"2027-01-01T00:00:00.000Z", "2027/01/01/00"},
		{"2028-02-29T09:30:00Z", "2028/02/29/09"},
		{"2026-11-25T15:08:10.123456789Z", "2026/11/25/15"}, // 9 fractional digits, the most the format allows
		{"2026-11-25T15:08:10.1Z", "2026/11/25/15"},
	}
	for _, prefix := range []string{"raw-data/", "events/json/"} {
		arrival := layout.Layout{DataPrefix: prefix, By: layout.ArrivalTime}
		event := layout.Layout{DataPrefix: prefix, By: layout.EventTime}
		for _, s := range samples {
			when := ts(s.time)
			want := prefix + s.folder + "/"
			if got := renderFirehose(t, arrival.FirehosePrefix(), when, nil); got != want {
				t.Errorf("ARRIVAL_TIME: Firehose writes a record that arrived at %s to %s, want %s", s.time, got, want)
			}
			keys, err := JQ(t, event.JQ(), fmt.Sprintf(`{"event_id":"e1","event_time":%q,"value":"30"}`, s.time))
			if err != nil {
				t.Errorf("EVENT_TIME: jq fails on event_time %s: %v", s.time, err)
				continue
			}
			// Arrival an hour later: the event's own time decides.
			if got := renderFirehose(t, event.FirehosePrefix(), when.Add(time.Hour), keys); got != want {
				t.Errorf("EVENT_TIME: Firehose writes an event of %s to %s, want %s", s.time, got, want)
			}
			for _, l := range []layout.Layout{arrival, event} {
				if got := renderAthena(l, when); got != want {
					t.Errorf("%s: Athena reads the hour of %s from %s, want %s", l.By, s.time, got, want)
				}
				if got := l.Folder(when); got != want {
					t.Errorf("%s: the smoke test lists %s for %s, want %s", l.By, got, s.time, want)
				}
			}
		}
	}
}

// Events without a usable event_time fail extraction, which sends them to
// the error prefix instead of a wrong folder: missing, null, a number, an
// offset other than Z (jq 1.6 would ignore it), no time at all, garbage.
func TestEventTimeWithoutUTCTimeFails(t *testing.T) {
	query := layout.Layout{DataPrefix: "raw-data/", By: layout.EventTime}.JQ()
	for _, record := range []string{
		`{"event_id":"e1"}`,
		`{"event_time":null}`,
		`{"event_time":1764083290}`,
		`{"event_time":"2026-11-25T17:08:10+02:00"}`,
		`{"event_time":"2026-11-25T15:08Z"}`,
		`{"event_time":"2026-11-25"}`,
		`{"event_time":"garbage garbage garbageZ"}`,
		`{"event_time":"2026-13-45T15:08:10Z"}`,
		// Not a real UTC instant in the documented format.
		`{"event_time":"2026-11-25T15:08:10Zjunk"}`,                 // text after the time
		`{"event_time":"2026-11-25T15:08:10Z junkZ"}`,               // text, then a Z
		`{"event_time":"2026-02-30T15:08:10Z"}`,                     // 30 February
		`{"event_time":"2027-02-29T15:08:10Z"}`,                     // 29 February of a common year
		`{"event_time":"2026-11-25T15:08:60Z"}`,                     // :60 seconds
		`{"event_time":"2026-11-25T15:60:10Z"}`,                     // :60 minutes
		`{"event_time":"2026-11-25T24:00:00Z"}`,                     // hour 24
		`{"event_time":"999-11-25T15:08:10Z"}`,                      // a year of 3 digits
		`{"event_time":"0999-11-25T15:08:10Z"}`,                     // a year before 1000 (jq 1.6 would write "999")
		`{"event_time":"+2026-11-25T15:08:10Z"}`,                    // a sign
		`{"event_time":"2026-11-25t15:08:10Z"}`,                     // lower-case t
		`{"event_time":"2026-11-25T15:08:10.Z"}`,                    // a point without digits
		`{"event_time":"2026-11-25T15:08:10.1234567890Z"}`,          // 10 fractional digits
		`{"event_time":"2026-11-25T15:08:10.12aZ"}`,                 // a letter among them
		`{"event_time":"2026-11-25T15:08:10+00:00"}`,                // UTC, but not as Z
		`{"event_time":"\uff12\uff10\uff12\uff16-11-25T15:08:10Z"}`, // full-width digits
	} {
		keys, err := JQ(t, query, record)
		if err == nil || !strings.Contains(err.Error(), "jq: error (at <stdin>") {
			t.Errorf("%s: extracted %v (%v), want jq to fail on this record (error prefix)", record, keys, err)
		}
	}
}

// The query as the CDK writes it ({"key":expression,...}) fits in
// Firehose's ProcessorParameter value (at most 5,120 characters).
func TestEventTimeQueryFitsFirehose(t *testing.T) {
	var parts []string
	for k, v := range (layout.Layout{DataPrefix: "raw-data/", By: layout.EventTime}).JQ() {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	if n := len("{" + strings.Join(parts, ",") + "}"); n > 5120 {
		t.Errorf("MetadataExtractionQuery is %d characters; Firehose takes at most 5,120", n)
	}
}

// The prefixes and the projection, written out: what the delivery stream
// and the tables are given.
func TestRenderedStrings(t *testing.T) {
	arrival := layout.Layout{DataPrefix: "raw-data/", By: layout.ArrivalTime}
	event := layout.Layout{DataPrefix: "raw-data/", By: layout.EventTime}
	for got, want := range map[string]string{
		arrival.FirehosePrefix():   "raw-data/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
		event.FirehosePrefix():     "raw-data/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/",
		layout.ErrorFolders():      "!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
		layout.HourFormat:          "yyyy/MM/dd/HH",
		arrival.LocationTemplate(): "raw-data/${dt}/",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if arrival.JQ() != nil {
		t.Errorf("ARRIVAL_TIME extracts keys: %v", arrival.JQ())
	}
	for l, want := range map[layout.Layout]string{arrival: "NOW-10YEARS,NOW", event: "NOW-10YEARS,NOW+1DAYS"} {
		if min, max := l.ProjectionRange(); min+","+max != want {
			t.Errorf("%s: range %s,%s, want %s", l.By, min, max, want)
		}
	}
}
