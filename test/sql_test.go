package test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"github.com/tributary/tributary/internal/localsql"
	"os"
	"path/filepath"
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

// landEvents writes events as Firehose lays them out: one object per hour
// under raw-data/yyyy/MM/dd/HH/, named as Firehose names them, plain or
// gzipped (.gz). Each event's event_time is in its hour.
func landEvents(t *testing.T, dir string, hours map[time.Time][]string, gzipped map[time.Time]bool) {
	for hour, ids := range hours {
		var lines bytes.Buffer
		for i, id := range ids {
			e := map[string]any{"value": "30", "type": "Tip 3", "event_time": hour.Add(time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z")}
			if id != "" {
				e["event_id"] = id
			}
			line, _ := json.Marshal(e)
			lines.Write(append(line, '\n'))
		}
		body, name := lines.Bytes(), "Tributary-PROD-Delivery-1-"+hour.Format("2006-01-02-15-04-05")+"-8c1e0f4a-2b3d-4e5f-9a6b-7c8d9e0f1a2b"
		if gzipped[hour] {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body, name = b.Bytes(), name+".gz"
		}
		folder := filepath.Join(dir, "raw-data", hour.Format("2006/01/02/15"))
		if err := os.MkdirAll(folder, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The named queries, as synthesized, run on files laid out as Firehose
// writes them (plain and gzipped), through stand-ins of the synthesized
// tables: for the schema-free table and for the typed one, each query
// returns what the README says it does. DuckDB runs them; the few Athena
// functions it lacks are macros (localsql.Macros).
func TestNamedQueriesOnLandedEvents(t *testing.T) {
	now := time.Now().UTC()
	if left := now.Truncate(time.Hour).Add(time.Hour).Sub(now); left < 10*time.Second {
		time.Sleep(left + time.Second) // the queries' windows move on the hour
		now = time.Now().UTC()
	}
	h0 := now.Truncate(time.Hour)
	h1, h2, old := h0.Add(-time.Hour), h0.Add(-2*time.Hour), h0.Add(-30*time.Hour)
	dir := t.TempDir()
	landEvents(t, dir, map[time.Time][]string{
		h2:  {"e1", "e2", "e3", "e3"},   // e3 twice in one hour
		h1:  {"e4", "e5", "e1", "", ""}, // e1 again an hour later; two events without an id
		h0:  {"e6"},
		old: {"e7", "e8"}, // before the last 24 hours
	}, map[time.Time]bool{h1: true, old: true})
	dt := func(t time.Time) string { return t.Format("2006/01/02/15") }

	for _, settings := range []map[string]any{nil, apiKeySettings} {
		tpl := synth(t, settings).pipeline()
		queries := localsql.NamedQueries(tpl)
		views, err := localsql.TableViews(tpl)
		if err != nil {
			t.Fatal(err)
		}
		if len(queries) != 4 {
			t.Fatalf("%v: %d named queries", settings, len(queries))
		}
		statements := append(append(append([]string{}, localsql.Macros...), views...),
			queries["Events per hour"], queries["Latest events"], queries["Duplicates by event_id"],
			queries["Create the view without duplicates"],
			fmt.Sprintf("SELECT count(*) AS events, count(DISTINCT event_id) AS ids FROM events_dedup WHERE dt >= '%s'", dt(h2)),
			"SELECT count(*) AS events FROM events_dedup")
		results := duckdb(t, dir, statements)[len(statements)-6:]
		check := func(what string, got any, want string) {
			t.Helper()
			raw, _ := json.Marshal(got)
			if string(raw) != want {
				t.Errorf("%v: %s\n got %s\nwant %s", settings, what, raw, want)
			}
		}
		check("events per hour", results[0], fmt.Sprintf(`[{"dt":"%s","events":"4"},{"dt":"%s","events":"5"},{"dt":"%s","events":"1"}]`, dt(h2), dt(h1), dt(h0)))
		var latest []string
		for _, r := range results[1] {
			latest = append(latest, fmt.Sprint(r["dt"], " ", r["event_id"]))
		}
		check("latest events (the last hour folders, newest first)", latest,
			fmt.Sprintf(`["%[1]s e6","%[2]s \u003cnil\u003e","%[2]s \u003cnil\u003e","%[2]s e1","%[2]s e5","%[2]s e4"]`, dt(h0), dt(h1)))
		check("duplicates", results[2], fmt.Sprintf(`[{"copies":"2","event_id":"e1","first_hour":"%s","last_hour":"%s"},{"copies":"2","event_id":"e3","first_hour":"%[1]s","last_hour":"%[1]s"}]`, dt(h2), dt(h1)))
		// One row per event_id and hour: e3's copy goes, e1 stays in both hours, events without an id stay.
		check("the view, with a dt filter", results[4], `[{"events":"9","ids":"6"}]`)
		check("the view, every hour", results[5], `[{"events":"11"}]`)
	}
}
