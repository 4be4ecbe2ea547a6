// Package layout is the one definition of where events land in the bucket:
// UTC hour folders yyyy/MM/dd/HH/ under the data prefix, keyed by the time
// Firehose received an event (ArrivalTime) or by the event's own event_time
// (EventTime). The Firehose prefix, the jq that extracts the keys, the Glue
// tables' partition projection and the folders the smoke test lists are all
// derived from the fields below, so they cannot drift. Plain Go, no CDK.
package layout

import (
	"fmt"
	"strings"
	"time"
)

// Partitioning is what decides an event's hour folder.
type Partitioning string

const (
	// ArrivalTime: the hour Firehose received the record (Firehose's
	// !{timestamp:...}, in UTC). The default.
	ArrivalTime Partitioning = "ARRIVAL_TIME"
	// EventTime: the hour of the event's event_time (Firehose dynamic
	// partitioning with keys extracted by jq 1.6).
	EventTime Partitioning = "EVENT_TIME"
)

// Partitionings lists both, the default first.
var Partitionings = []Partitioning{ArrivalTime, EventTime}

// EventTimeField is the event's attribute EventTime reads: RFC 3339 in UTC
// ("Z"), with or without fractional seconds, as the producer writes it.
const EventTimeField = "event_time"

// Column is the partition column of the Glue tables: the hour folder as a
// string, such as 2026/11/25/15.
const Column = "dt"

// field is one level of the hour folders: its Firehose partition key, its
// pattern (Java DateTimeFormatter letters, which Firehose's !{timestamp:}
// and Athena's date projection both take), its strftime conversion (jq) and
// its Go layout.
type field struct{ key, java, strftime, goLayout string }

var fields = []field{
	{"year", "yyyy", "%Y", "2006"},
	{"month", "MM", "%m", "01"},
	{"day", "dd", "%d", "02"},
	{"hour", "HH", "%H", "15"},
}

func join(f func(field) string) string {
	parts := make([]string, len(fields))
	for i, x := range fields {
		parts[i] = f(x)
	}
	return strings.Join(parts, "/")
}

// HourFormat is the folder's pattern, yyyy/MM/dd/HH: Athena's
// projection.dt.format.
var HourFormat = join(func(f field) string { return f.java })

// goHourLayout is HourFormat for time.Format.
var goHourLayout = join(func(f field) string { return f.goLayout })

// Layout places events under DataPrefix (which ends in "/").
type Layout struct {
	DataPrefix string
	By         Partitioning
}

// FirehosePrefix is the delivery stream's S3 prefix.
func (l Layout) FirehosePrefix() string {
	return l.DataPrefix + join(func(f field) string {
		if l.By == EventTime {
			return "!{partitionKeyFromQuery:" + f.key + "}"
		}
		return "!{timestamp:" + f.java + "}"
	}) + "/"
}

// ErrorTypeColumn is the errors table's partition column for the first
// folder under the error prefix, !{firehose:error-output-type}.
const ErrorTypeColumn = "error_type"

// ErrorTypes are the folders Firehose writes under the error prefix for an
// S3 destination with this app's processing: jq extraction or
// de-aggregation failures (partitioning-failed, as the CDK's integration
// test of dynamic partitioning lists it; processing-failed, the
// processors' documented folder) and Parquet conversion failures
// (format-conversion-failed, documented). The errors table projects
// these; a type not listed is not projected (docs/querying.md says how to see
// every folder).
var ErrorTypes = []string{"format-conversion-failed", "partitioning-failed", "processing-failed"}

// ErrorLocationTemplate is the errors table's storage.location.template
// after "s3://<bucket>/", for errors under errorPrefix.
func ErrorLocationTemplate(errorPrefix string) string {
	return errorPrefix + "${" + ErrorTypeColumn + "}/${" + Column + "}/"
}

// ErrorFolders follow the error prefix: error type, then the arrival hour
// (Firehose allows no partitionKeyFromQuery there).
func ErrorFolders() string {
	return "!{firehose:error-output-type}/" + join(func(f field) string { return "!{timestamp:" + f.java + "}" }) + "/"
}

// JQ is the jq 1.6 expression of each partition key with EventTime (nil
// with ArrivalTime). Each accepts only a real UTC instant written as
// yyyy-MM-ddTHH:mm:ss, optionally .f to .fffffffff, then Z, and fails on
// anything else, which sends the event to the error prefix instead of a
// wrong folder: no event_time, not a string, another offset, text after
// the Z, a date or time that does not exist (30 February, :60, hour 24:
// jq's strptime and timegm would roll them over, so the time must come
// back unchanged from fromdateiso8601 | todate), a year of other than 4
// digits or before 1000 (jq 1.6 writes year 999 as "999", gojq as "0999":
// refused explicitly, both engines agree). Fractional seconds are checked, then dropped (jq 1.6's
// fromdateiso8601 refuses them). Regex-free: whether Firehose's jq has
// oniguruma is not documented.
func (l Layout) JQ() map[string]string {
	if l.By != EventTime {
		return nil
	}
	out := map[string]string{}
	fail := fmt.Sprintf(`error("no valid %s")`, EventTimeField)
	for _, f := range fields {
		// Parenthesized: the CDK writes the query as {"key":<expression>,...},
		// where jq takes no bare pipe or if as an object value.
		out[f.key] = fmt.Sprintf(`(.%s | if type == "string" and length >= 20 and endswith("Z") then . else %s end`+
			` | (.[0:19] + "Z") as $t | .[19:-1] as $f`+
			` | if ($t | explode | [.[0,1,2,3,5,6,8,9,11,12,14,15,17,18]] | all(. >= 48 and . <= 57))`+ // digits where digits go
			` and [$t[4:5], $t[7:8], $t[10:11], $t[13:14], $t[16:17]] == ["-", "-", "T", ":", ":"]`+
			` and $t[0:1] != "0"`+ // years 1000-9999
			` and ($f == "" or ($f | startswith(".") and length >= 2 and length <= 10 and (.[1:] | explode | all(. >= 48 and . <= 57))))`+
			` and ($t | fromdateiso8601 | todate) == $t`+ // a real instant: nothing rolled over
			` then $t | fromdateiso8601 | strftime(%q) else %s end)`,
			EventTimeField, fail, f.strftime, fail)
	}
	return out
}

// Folder is the folder of hour t (in UTC), with the data prefix.
func (l Layout) Folder(t time.Time) string {
	return l.DataPrefix + t.UTC().Format(goHourLayout) + "/"
}

// LocationTemplate is the Glue tables' storage.location.template after
// "s3://<bucket>/": Athena puts the dt value where ${dt} stands.
func (l Layout) LocationTemplate() string { return l.DataPrefix + "${" + Column + "}/" }

// Lookback is how far back the projection goes: folders older than this are
// not queried. Relative to the query's time, so synthesis stays
// deterministic.
const Lookback = "NOW-10YEARS"

// ProjectionRange is Athena's projection.dt.range. Arrival hours are never
// in the future; event times may run ahead of Athena's clock (a producer's
// clock), so with EventTime the range reaches a day ahead.
func (l Layout) ProjectionRange() (min, max string) {
	if l.By == EventTime {
		return Lookback, "NOW+1DAYS"
	}
	return Lookback, "NOW"
}
