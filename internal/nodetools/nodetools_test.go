package nodetools_test

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/layout"
	"github.com/tributary/tributary/internal/nodetools"
)

// firehoseQuery is the event-time layout's MetadataExtractionQuery as the
// CDK writes it: {"key":expression,...}, keys sorted.
func firehoseQuery() string {
	var parts []string
	event := layout.Layout{DataPrefix: "raw-data/", By: layout.EventTime}
	for k, v := range event.JQ() {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// The pinned jq is jq 1.6: it has what 1.6 added over 1.5 ($__loc__) and
// lacks what 1.7 added (pick), and it runs the layout's query.
func TestJQ16IsJQ16(t *testing.T) {
	if out, err := nodetools.JQ16(`$__loc__`, `null`); err != nil || out != `{"file":"<top-level>","line":1}` {
		t.Errorf("$__loc__ (jq 1.6): %q %v", out, err)
	}
	if out, err := nodetools.JQ16(`pick(.a)`, `{"a":1}`); err == nil || !strings.Contains(err.Error(), "pick/1 is not defined") {
		t.Errorf("pick (jq 1.7) ran: %q %v", out, err)
	}
	out, err := nodetools.JQ16(firehoseQuery(), `{"event_time":"2026-11-25T15:08:10.123Z"}`)
	if want := `{"day":"25","hour":"15","month":"11","year":"2026"}`; err != nil || out != want {
		t.Errorf("the layout's query: %q %v, want %s", out, err, want)
	}
}

// On the synthesized query, the pinned jq answers as the real jq 1.6 (as
// Debian 12 ships it, on glibc) does, for the event times the tests use and
// for malformed ones: the same keys, or an error with the same message.
// Known differences are left out: a lowercase "t", a space before a number
// (" 5"), second 61 and years 0-99, which Emscripten's strptime and glibc's
// parse differently; and times from 2038-01-19T03:14:08Z on, past this
// build's 32-bit time_t (it wraps to 1901).
// With CI=true a real jq 1.6 is required; elsewhere its absence skips this.
func TestJQ16MatchesRealJQ(t *testing.T) {
	version, err := exec.Command("jq", "--version").Output()
	if err != nil || strings.TrimSpace(string(version)) != "jq-1.6" {
		msg := fmt.Sprintf("cross-checking the pinned jq needs the real jq 1.6 on PATH (Debian 12: apt-get install jq), found %q", strings.TrimSpace(string(version)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	query := firehoseQuery()
	for _, record := range []string{
		// As the tests use them: hour boundaries, the end of a year, a leap
		// day, fractional seconds of any length.
		`{"event_time":"2026-11-25T14:59:59.999Z"}`,
		`{"event_time":"2026-11-25T15:00:00Z"}`,
		`{"event_time":"2026-11-25T15:00:00.000Z","value":"30"}`,
		`{"event_time":"2026-11-25T15:08:10.123456789Z"}`,
		`{"event_time":"2026-12-31T23:59:59.999999Z"}`,
		`{"event_time":"2027-01-01T00:00:00Z"}`,
		`{"event_time":"2028-02-29T09:30:00Z"}`,
		`{"event_time":"1970-01-01T00:00:00Z"}`,
		`{"event_time":"2038-01-19T03:14:07Z"}`,
		// Odd but parsed alike: a day past the month's end (normalized),
		// second 60, anything between the seconds and the final Z.
		`{"event_time":"2026-02-30T15:08:10Z"}`,
		`{"event_time":"2026-11-25T15:08:60Z"}`,
		`{"event_time":"2026-11-25T15:08:10+02:00Z"}`,
		`{"event_time":"2026-11-25T15:08:10 Z"}`,
		// Rejected by both: what TestEventTimeWithoutUTCTimeFails sends,
		// and out-of-range fields, letters, a time before 1970-01-01.
		`{"event_id":"e1"}`,
		`{"event_time":null}`,
		`{"event_time":1764083290}`,
		`{"event_time":"2026-11-25T17:08:10+02:00"}`,
		`{"event_time":"2026-11-25T15:08Z"}`,
		`{"event_time":"2026-11-25"}`,
		`{"event_time":"garbage garbage garbageZ"}`,
		`{"event_time":"2026-13-45T15:08:10Z"}`,
		`{"event_time":"2026-11-25T24:00:00Z"}`,
		`{"event_time":"2026-11-00T15:08:10Z"}`,
		`{"event_time":"2026-11-25T15:08:1xZ"}`,
		`{"event_time":"2026-11-25T15:08:10z"}`,
		`{"event_time":"2026/11/25T15:08:10Z"}`,
		`{"event_time":"1969-12-31T23:59:59Z"}`,
	} {
		cmd := exec.Command("jq", "-c", query)
		cmd.Stdin = strings.NewReader(record)
		out, err := cmd.CombinedOutput()
		want := strings.TrimSpace(string(out))
		if err != nil {
			// The real jq counts input lines from 1, this build from 0.
			want = "error: " + strings.Replace(want, "(at <stdin>:1)", "(at <stdin>:0)", 1)
		}
		got, err := nodetools.JQ16(query, record)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want {
			t.Errorf("%s:\n pinned jq: %s\n   real jq: %s", record, got, want)
		}
	}
}
