package test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/tributary/tributary/internal/localsql"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// duckdb runs statements in dir and returns each one's rows.
func duckdb(t *testing.T, dir string, statements []string) [][]map[string]any {
	t.Helper()
	if err := installTools(); err != nil {
		t.Fatal(err)
	}
	results, err := localsql.Run("../.tools", dir, statements)
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// event is one event's line as the producer writes it, at time at; no id
// when id is "".
func event(id string, at time.Time) string {
	e := map[string]any{"value": "30", "type": "Tip 3", "event_time": at.Format("2006-01-02T15:04:05.000Z07:00")}
	if id != "" {
		e["event_id"] = id
	}
	line, _ := json.Marshal(e)
	return string(line)
}

// landLines writes lines as Firehose lays them out: one object per hour
// under prefix yyyy/MM/dd/HH/, named as Firehose names them, plain or
// gzipped (.gz).
func landLines(t *testing.T, dir, prefix string, hours map[time.Time][]string, gzipped map[time.Time]bool) {
	for hour, lines := range hours {
		body, name := []byte(strings.Join(lines, "\n")+"\n"), "Tributary-PROD-Delivery-1-"+hour.Format("2006-01-02-15-04-05")+"-8c1e0f4a-2b3d-4e5f-9a6b-7c8d9e0f1a2b"
		if gzipped[hour] {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body, name = b.Bytes(), name+".gz"
		}
		folder := filepath.Join(dir, prefix, hour.Format("2006/01/02/15"))
		if err := os.MkdirAll(folder, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// landEvents lands events with ids (the i-th a minute after its hour
// began) under prefix.
func landEvents(t *testing.T, dir, prefix string, hours map[time.Time][]string, gzipped map[time.Time]bool) {
	lines := map[time.Time][]string{}
	for hour, ids := range hours {
		for i, id := range ids {
			lines[hour] = append(lines[hour], event(id, hour.Add(time.Duration(i)*time.Minute)))
		}
	}
	landLines(t, dir, prefix, lines, gzipped)
}

// toParquet turns the objects under prefix (newline-delimited events) into
// Parquet files of the typed table's columns, as Firehose's format
// conversion writes one object per buffer, with DuckDB's writer (not
// Firehose's: the bytes differ, the columns are the table's).
func toParquet(t *testing.T, dir, prefix string, columns map[string]string) {
	var cols []string
	for name, typ := range columns {
		cols = append(cols, fmt.Sprintf("'%s': '%s'", name, typ))
	}
	sort.Strings(cols)
	var statements []string
	var objects []string
	filepath.WalkDir(filepath.Join(dir, prefix), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			objects = append(objects, path)
		}
		return err
	})
	for _, o := range objects {
		rel, _ := filepath.Rel(dir, o)
		// A plain and a gzipped object of one hour share a name but for .gz:
		// keep them apart, or one's rows would be lost.
		statements = append(statements, fmt.Sprintf(`COPY (SELECT * FROM read_json('%s', format = 'newline_delimited', columns = {%s})) TO '%s.parquet' (FORMAT PARQUET)`,
			rel, strings.Join(cols, ", "), strings.Replace(rel, ".gz", "-gz", 1)))
	}
	duckdb(t, dir, statements)
	for _, o := range objects {
		os.Remove(o)
	}
}

// layoutCase is one configuration the saved queries run in, and what they
// must return there.
type layoutCase struct {
	name     string
	settings map[string]any
	// eventTime: the hour folder is the event's own (Firehose sends lines it
	// cannot partition to errors/ instead); parquet: converted objects (no
	// bad line can be one: it goes to format-conversion-failed).
	eventTime, parquet bool
	// Expected rows, as JSON, with the hours filled in.
	perHour, latest, dedupFiltered, dedupAll string
}

// The named queries, as synthesized, run on files laid out as Firehose
// writes them (plain and gzipped; Parquet), through stand-ins of the
// synthesized tables, in each layout: the schema-free table and the typed
// one by arrival time, the typed one by event time, and Parquet by arrival
// time (a record per event) and by event time; each query returns what docs/querying.md says it does. DuckDB runs them;
// the few Athena functions it lacks are macros (localsql.Macros). Each
// layout lands the same events as Firehose would in it: by arrival time a
// copy delivered an hour later lies in the next folder, and lines that are
// not events or have a +09:00 time are stored; by event time every copy
// lies in its event's folder, and such lines go to errors/; in Parquet a
// line whose keys collide by case fails conversion too.
func TestNamedQueriesOnLandedEvents(t *testing.T) {
	now := time.Now().UTC()
	if left := now.Truncate(time.Hour).Add(time.Hour).Sub(now); left < 10*time.Second {
		time.Sleep(left + time.Second) // the queries' windows move on the hour
		now = time.Now().UTC()
	}
	h0 := now.Truncate(time.Hour)
	h1, h2, old := h0.Add(-time.Hour), h0.Add(-2*time.Hour), h0.Add(-30*time.Hour)
	h23, h24 := h0.Add(-23*time.Hour), h0.Add(-24*time.Hour) // the oldest of the last 24 hour folders, and the one before
	dt := func(t time.Time) string { return t.Format("2006/01/02/15") }
	fill := func(s string) string {
		return strings.NewReplacer("H23", dt(h23), "H0", dt(h0), "H1", dt(h1), "H2", dt(h2), "NIL", `\u003cnil\u003e`).Replace(s)
	}
	typed := map[string]any{"eventSchema": "testdata/event-schema.json", "producerHost": "false"}
	for _, c := range []layoutCase{
		{name: "schema-free, by arrival time", settings: nil,
			perHour:       `[{"dt":"H23","events":"1"},{"dt":"H2","events":"4"},{"dt":"H1","events":"8"},{"dt":"H0","events":"2"}]`,
			latest:        `["H0 e6","H0 e12","H1 e9","H1 NIL","H1 NIL","H1 e1","H1 e5","H1 e4","H1 NIL","H1 NIL"]`,
			dedupFiltered: `[{"events":"13","ids":"8"}]`, dedupAll: `[{"events":"17"}]`},
		// The case collision is a row of NULLs: no id, no time, last.
		{name: "typed, by arrival time", settings: typed,
			perHour:       `[{"dt":"H23","events":"1"},{"dt":"H2","events":"4"},{"dt":"H1","events":"8"},{"dt":"H0","events":"2"}]`,
			latest:        `["H0 e6","H0 e12","H1 NIL","H1 NIL","H1 e1","H1 e5","H1 e4","H1 NIL","H1 NIL","H1 NIL"]`,
			dedupFiltered: `[{"events":"13","ids":"7"}]`, dedupAll: `[{"events":"17"}]`},
		// e1's second copy lies in e1's folder: the view removes it.
		{name: "typed, by event time", settings: apiKeySettings, eventTime: true,
			perHour:       `[{"dt":"H23","events":"1"},{"dt":"H2","events":"5"},{"dt":"H1","events":"5"},{"dt":"H0","events":"1"}]`,
			latest:        `["H0 e6","H1 NIL","H1 NIL","H1 e5","H1 e4","H1 NIL"]`,
			dedupFiltered: `[{"events":"9","ids":"6"}]`, dedupAll: `[{"events":"13"}]`},
		// A record per event (Parquet by arrival time needs it): converted
		// rows in their arrival hour, the +09:00 one too; no bad line is a row.
		{name: "Parquet, by arrival time", settings: map[string]any{"eventSchema": "testdata/event-schema.json", "outputFormat": "PARQUET",
			"recordPacking": "PER_EVENT", "producerHost": "false"}, parquet: true,
			perHour:       `[{"dt":"H23","events":"1"},{"dt":"H2","events":"4"},{"dt":"H1","events":"5"},{"dt":"H0","events":"2"}]`,
			latest:        `["H0 e6","H0 e12","H1 NIL","H1 NIL","H1 e1","H1 e5","H1 e4"]`,
			dedupFiltered: `[{"events":"10","ids":"7"}]`, dedupAll: `[{"events":"14"}]`},
		{name: "Parquet, by event time", settings: openSettings, eventTime: true, parquet: true,
			perHour:       `[{"dt":"H23","events":"1"},{"dt":"H2","events":"5"},{"dt":"H1","events":"4"},{"dt":"H0","events":"1"}]`,
			latest:        `["H0 e6","H1 NIL","H1 NIL","H1 e5","H1 e4"]`,
			dedupFiltered: `[{"events":"8","ids":"6"}]`, dedupAll: `[{"events":"12"}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tpl := synth(t, c.settings).pipeline()
			prefix := fmt.Sprint(get(tpl, "Outputs", "DataPrefix", "Value"))
			if want := map[[2]bool]string{{false, false}: "raw-data/", {true, false}: "raw-data/by-event-time/", {false, true}: "raw-data/parquet/", {true, true}: "raw-data/parquet-by-event-time/"}[[2]bool{c.eventTime, c.parquet}]; prefix != want {
				t.Fatalf("data prefix %s, want %s", prefix, want)
			}
			dir := t.TempDir()
			landNamedQueryDataset(t, dir, prefix, c, h0, h1, h2, h23, h24, old)
			queries := localsql.NamedQueries(tpl)
			views, err := localsql.TableViews(tpl)
			if err != nil {
				t.Fatal(err)
			}
			if len(queries) != 6 {
				t.Fatalf("%d named queries", len(queries))
			}
			statements := append(append(append([]string{}, localsql.Macros...), views...),
				queries["Events per hour"], queries["Latest events"], queries["Duplicates by event_id"],
				queries["Create the view without duplicates"],
				fmt.Sprintf("SELECT count(*) AS events, count(DISTINCT event_id) AS ids FROM events_dedup WHERE dt >= '%s'", dt(h2)),
				"SELECT count(*) AS events FROM events_dedup",
				queries["Errors per type and hour"], queries["Latest errors"])
			results := duckdb(t, dir, statements)[len(statements)-8:]
			check := func(what string, got any, want string) {
				t.Helper()
				raw, _ := json.Marshal(got)
				if string(raw) != fill(want) {
					t.Errorf("%s\n got %s\nwant %s", what, raw, fill(want))
				}
			}
			// Every line is a row, a bad one too: the queries answer over the rest.
			check("events per hour (24 folders: h23 in, h24 out)", results[0], c.perHour)
			var latest []string
			for _, r := range results[1] {
				latest = append(latest, fmt.Sprint(r["dt"], " ", r["event_id"]))
			}
			check("latest events (the last hour folders, newest first)", latest, c.latest)
			if c.eventTime {
				check("duplicates", results[2], `[{"copies":"2","event_id":"e1","first_hour":"H2","last_hour":"H2"},{"copies":"2","event_id":"e3","first_hour":"H2","last_hour":"H2"}]`)
			} else {
				check("duplicates", results[2], `[{"copies":"2","event_id":"e1","first_hour":"H2","last_hour":"H1"},{"copies":"2","event_id":"e3","first_hour":"H2","last_hour":"H2"}]`)
			}
			// One row per event_id and hour: a copy in the same folder goes,
			// events without an id stay (bad lines too, as events without an id).
			check("the view, with a dt filter", results[4], c.dedupFiltered)
			check("the view, every hour", results[5], c.dedupAll)
			check("errors per type and hour (projected types, last 24 folders)", results[6],
				`[{"dt":"H1","error_type":"partitioning-failed","records":"2"},{"dt":"H0","error_type":"format-conversion-failed","records":"2"}]`)
			var errs []string
			for _, r := range results[7] {
				errs = append(errs, fmt.Sprint(r["error_type"], " ", r["dt"] == dt(h0), " ", r["error_code"], " ", r["error_message"], " ", r["record"]))
			}
			sort.Strings(errs)
			check("latest errors: why, and the record decoded", errs, `["format-conversion-failed true DataFormatConversion.InvalidSchema because DataFormatConversion.InvalidSchema {\"event_id\":\"x3\"}",`+
				`"format-conversion-failed true DataFormatConversion.ParseError because DataFormatConversion.ParseError NIL",`+
				`"partitioning-failed false DynamicPartitioning.MetadataExtractionFailed because DynamicPartitioning.MetadataExtractionFailed {\"event_id\":\"x1\",\"event_time\":\"2026-02-30T10:00:00Z\"}\n",`+
				`"partitioning-failed false DynamicPartitioning.MetadataExtractionFailed because DynamicPartitioning.MetadataExtractionFailed {\"event_id\":\"x2\"}\n"]`)
		})
	}
}

// landNamedQueryDataset lands the events of TestNamedQueriesOnLandedEvents
// under prefix as Firehose would in c's layout, and the same error
// documents in every layout.
func landNamedQueryDataset(t *testing.T, dir, prefix string, c layoutCase, h0, h1, h2, h23, h24, old time.Time) {
	gzipped := map[time.Time]bool{h1: true, h0: true, old: true}
	if c.eventTime {
		landEvents(t, dir, prefix, map[time.Time][]string{
			h24: {"e2"},
			h23: {"e10"},
			h2:  {"e1", "e2", "e3", "e3", "e1"}, // e1's second copy, delivered an hour later, is in its event's hour
			h1:  {"e4", "e5", "", ""},
			h0:  {"e6"},
			old: {"e7", "e8"},
		}, gzipped)
	} else {
		landEvents(t, dir, prefix, map[time.Time][]string{
			h24: {"e2"},                     // a copy of e2 outside the last 24 hour folders
			h23: {"e10"},                    // inside them
			h2:  {"e1", "e2", "e3", "e3"},   // e3 twice in one hour
			h1:  {"e4", "e5", "e1", "", ""}, // e1 again an hour later; two events without an id
			h0:  {"e6"},
			old: {"e7", "e8"}, // before the last 24 hours
		}, gzipped)
		// Ten minutes before h0, written at +09:00: its text sorts after e6's
		// "Z" time, its instant before. (By event time jq refuses it.)
		landLines(t, dir, prefix, map[time.Time][]string{h0: {event("e12", h0.Add(-10*time.Minute).In(time.FixedZone("JST", 9*3600)))}}, nil)
	}
	// A plain object beside h1's gzipped one, with lines that must cost only
	// themselves: not JSON, not an object (by event time jq refuses both),
	// and a key twice by case (the typed table reads it as NULLs; the JSON
	// line's event_id is still e9; Parquet conversion refuses it).
	bad := []string{`{"event_id":"bad","value":`, `[1,2]`}
	if c.eventTime || c.parquet { // jq refuses them; format conversion does too
		bad = nil
	}
	if !c.parquet {
		bad = append(bad, `{"event_id":"e9","Event_Id":"x","value":"30","event_time":"`+h1.Add(5*time.Minute).Format(time.RFC3339)+`"}`)
	}
	landLines(t, dir, prefix, map[time.Time][]string{h1: bad}, nil)
	if c.parquet {
		toParquet(t, dir, prefix, map[string]string{"value": "VARCHAR", "type": "VARCHAR", "event_id": "VARCHAR", "event_time": "VARCHAR"})
	}
	// Firehose's error documents (its guide's shapes: field names differ by
	// error type), gzipped and plain; one in a folder the table does not
	// project, one 30 hours back, one whose rawData is not base64.
	errorDoc := func(code, codeField, raw string) string {
		doc, _ := json.Marshal(map[string]any{"attemptsMade": 1, "arrivalTimestamp": h1.UnixMilli(), codeField: code,
			strings.Replace(codeField, "Code", "Message", 1): "because " + code, "rawData": raw})
		return string(doc)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	landLines(t, dir, "errors/partitioning-failed", map[time.Time][]string{
		h1:  {errorDoc("DynamicPartitioning.MetadataExtractionFailed", "errorCode", b64(`{"event_id":"x1","event_time":"2026-02-30T10:00:00Z"}`+"\n")), errorDoc("DynamicPartitioning.MetadataExtractionFailed", "errorCode", b64(`{"event_id":"x2"}`+"\n"))},
		old: {errorDoc("DynamicPartitioning.MetadataExtractionFailed", "errorCode", b64(`{"event_id":"x0"}`))},
	}, map[time.Time]bool{h1: true})
	landLines(t, dir, "errors/format-conversion-failed", map[time.Time][]string{h0: {errorDoc("DataFormatConversion.InvalidSchema", "lastErrorCode", b64(`{"event_id":"x3"}`)), errorDoc("DataFormatConversion.ParseError", "ErrorCode", "%%% not base64")}}, nil)
	landLines(t, dir, "errors/some-other-failed", map[time.Time][]string{h0: {errorDoc("Other", "errorCode", b64("x"))}}, nil)
}

// A schema whose properties are reserved words (order, select), start with
// _ or have capitals gives a view and saved queries that run: every column
// is quoted. DuckDB, like Athena, refuses these names unquoted.
func TestNamedQueriesWithReservedColumnNames(t *testing.T) {
	h0 := time.Now().UTC().Truncate(time.Hour)
	dir := t.TempDir()
	line := func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"event_time":%q,"order":"o-%[1]s","select":7,"_from":"f","Table":true}`, id, h0.Format(time.RFC3339))
	}
	landLines(t, dir, "raw-data/", map[time.Time][]string{h0: {line("a"), line("a"), line("b")}}, nil)
	tpl := synth(t, map[string]any{"eventSchema": "testdata/reserved-schema.json", "producerHost": "false"}).pipeline()
	queries := localsql.NamedQueries(tpl)
	views, err := localsql.TableViews(tpl)
	if err != nil {
		t.Fatal(err)
	}
	statements := append(append(append([]string{}, localsql.Macros...), views...),
		queries["Events per hour"], queries["Latest events"], queries["Duplicates by event_id"], queries["Create the view without duplicates"],
		`SELECT "order", "select", "_from", "table", event_id FROM events_dedup ORDER BY "order"`)
	results := duckdb(t, dir, statements)[len(statements)-5:]
	for what, want := range map[int]string{
		0: fmt.Sprintf(`[{"dt":"%s","events":"3"}]`, h0.Format("2006/01/02/15")),
		2: fmt.Sprintf(`[{"copies":"2","event_id":"a","first_hour":"%[1]s","last_hour":"%[1]s"}]`, h0.Format("2006/01/02/15")),
		4: `[{"_from":"f","event_id":"a","order":"o-a","select":"7","table":true},{"_from":"f","event_id":"b","order":"o-b","select":"7","table":true}]`,
	} {
		if raw, _ := json.Marshal(results[what]); string(raw) != want {
			t.Errorf("statement %d:\n got %s\nwant %s", what, raw, want)
		}
	}
	// The three share one event_time: their order is not defined, their ids and columns are.
	var latest []string
	for _, r := range results[1] {
		latest = append(latest, fmt.Sprint(r["event_id"], " ", r["order"], " ", r["select"], " ", r["_from"], " ", r["table"]))
	}
	sort.Strings(latest)
	if got := strings.Join(latest, ", "); got != "a o-a 7 f true, a o-a 7 f true, b o-b 7 f true" {
		t.Errorf("latest events: %s (%v)", got, results[1])
	}
}
