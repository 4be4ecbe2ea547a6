package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reasonClass is what kind of refusal err is: what a user sorts the
// dead-letter file by.
func reasonClass(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, errNotUTF8):
		return "not UTF-8"
	case errors.Is(err, errDuplicateKey):
		return "duplicate key"
	case errors.Is(err, errNotObject) && strings.Contains(err.Error(), "content after the object"):
		return "content after the object"
	case errors.Is(err, errNotObject):
		return "not a JSON object"
	case strings.Contains(err.Error(), "the most a Kinesis record takes"):
		return "too large"
	}
	return "unknown: " + err.Error()
}

// FuzzFastPathMatchesGeneral gives the fast path (enrich) and the general
// one (enrichGeneral) the same line: they must accept and refuse the same
// lines for the same reason, give the same event_id, and store the same
// event; the fast path's is the line compacted, the added keys first.
func FuzzFastPathMatchesGeneral(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{}`, ` { } `, "\t{\r\n}\n", `{"a":1,"b":"x","c":[1,2,{"d":null}],"e":true,"f":false}`,
		`{"event_id":"mine","event_time":"t"}`, `{"event_id":42}`, `{"event_id":null}`, `{"event_id":""}`,
		`{"event_id":[1, 2 ,3]}`, `{"event_id":{"a" : 1}}`, `{"event_id":"a\"b\u0041"}`, `{"event_id":"\ud800"}`,
		`{"event\u005fid":"x"}`, `{"event_\u0074ime":1}`, `{"a":1,"\u0061":2}`, `{"\ud800":1,"\udbff":2}`,
		`{"a":1,"b":2,"a":3}`, `{"o":{"a":1,"a":2}}`, `{"o":{"a":1},"o":2}`, `{"a":[{"b":1,"b":2}]}`,
		"{\"u\":\"Grüße 🎉 \u2028 \u2029\"}", "{\"\u2028\":1}", `{"k\n":1}`, "{\"k\x01\":1}", "{\"v\":\"\t\"}",
		`{"big":12345678901234567890123,"f":-0.0e-0,"g":1E+2,"h":0.5}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`,
		`{"n":1e}`, `{"n":+1}`, `{"n":NaN}`, `{"t":tru}`, `{"t":nulll}`, `{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a":1 "b":2}`,
		`{"a":1]`, `{"a":[1}`, `{"a":[1,]}`, `{1:2}`, `{'a':1}`, `{"a":1`, `{"a":`, `{"a`, `{`, ``, ` `, `[]`, `[1,2]`,
		`null`, `"text"`, `123`, `true`, `{"a":1} {"b":2}`, `{"a":1},{"b":2}`, `{"a":1}xyz`, `{"a":1}}`, "{\"a\":1} \t\r\n",
		"\ufeff{\"a\":1}", "{\"a\":1}\ufeff", "{\"a\":1}\x00", "{\"k\":1,\"\xffkey\":1,\"\xfekey\":2}", "{\"v\":\"caf\xe9\"}",
		`{"s":"\x"}`, `{"s":"\u12"}`, `{"s":"\u12G4"}`, `{"s":"\/\b\f\n\r\t\\"}`, `{"html":"<b>&</b>"}`,
		"{ \"a\" : { \"b\" : [ 1 , 2 ] } , \"c\" : \"d\" }",
		`{"a":[[[[[[[[[[[{"b":[{"c":{}}]}]]]]]]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	many := []string{}
	for i := range 3 * manyKeys {
		many = append(many, `"k`+strings.Repeat("x", i%7)+string(rune('a'+i%26))+`":1`)
	}
	f.Add([]byte("{" + strings.Join(many, ",") + "}"))
	// Past manyKeys, keys are looked up in a map: a key of the first ones
	// again, one of the later ones again, one escaped.
	f.Add([]byte("{" + strings.Join(many, ",") + `,"ka":2}`))
	f.Add([]byte("{" + strings.Join(many, ",") + "," + many[len(many)-1] + "}"))
	f.Add([]byte(`{"\u006ba":0,` + strings.Join(many, ",") + "}"))
	now := time.Date(2026, 11, 24, 23, 5, 6, 7_000_000, time.UTC)
	const id = "0f1e2d3c-4b5a-8968-8776-655443322110"
	var e enricher // reused, as a worker reuses it
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, fastID, fastErr := e.enrich(line, id, now)
		gen, genID, genErr := enrichGeneral(line, id, now)
		if fc, gc := reasonClass(fastErr), reasonClass(genErr); fc != gc {
			t.Fatalf("%.200q: fast %s (%v), general %s (%v)", line, fc, fastErr, gc, genErr)
		}
		if fastErr != nil && fastErr.Error() != genErr.Error() && reasonClass(fastErr) != "too large" {
			t.Fatalf("%.200q: reasons differ:\nfast    %v\ngeneral %v", line, fastErr, genErr)
		}
		if fastID != genID {
			t.Fatalf("%.200q: event_id %q, general %q", line, fastID, genID)
		}
		if fastErr != nil {
			if fast != nil {
				t.Fatalf("%.200q: refused with data %q", line, fast)
			}
			return
		}
		var fv, gv map[string]any
		fe, ge := decodeNumbers(fast, &fv), decodeNumbers(gen, &gv)
		if fe != nil || ge != nil {
			// A value nested as deeply as encoding/json takes, in an
			// object: both paths take it, no decoder reads it whole.
			if fe == nil || ge == nil || fe.Error() != ge.Error() || !strings.Contains(fe.Error(), "exceeded max depth") {
				t.Fatalf("%.200q: outputs do not decode: fast %v, general %v", line, fe, ge)
			}
			return
		}
		if !reflect.DeepEqual(fv, gv) {
			t.Fatalf("%.200q: fast %s\ngeneral %s", line, fast, gen)
		}
		if _, ok := fv["event_time"]; !ok {
			t.Fatalf("%.200q: no event_time in %s", line, fast)
		}
		// The fast path's event is the line compacted, the keys it lacked first.
		var compact bytes.Buffer
		if err := json.Compact(&compact, line); err != nil {
			t.Fatalf("%.200q: accepted, but json.Compact: %v", line, err)
		}
		var own map[string]json.RawMessage
		if err := json.Unmarshal(line, &own); err != nil {
			t.Fatalf("%.200q: accepted, but: %v", line, err)
		}
		added := ""
		if _, ok := own["event_id"]; !ok {
			added += `"event_id":"` + id + `",`
		}
		if _, ok := own["event_time"]; !ok {
			added += `"event_time":"2026-11-24T23:05:06.007Z",`
		}
		want := "{" + added + compact.String()[1:]
		if len(own) == 0 && added != "" {
			want = "{" + strings.TrimSuffix(added, ",") + "}"
		}
		if string(fast) != want {
			t.Fatalf("%.200q:\n got %s\nwant %s", line, fast, want)
		}
	})
}

// Both paths take a value nested as deeply as encoding/json takes, and
// refuse one nested deeper for the same reason. (Not in the fuzz corpus:
// the fuzzer crawls on inputs this long.)
func TestEnrichDepth(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 5, 6, 7_000_000, time.UTC)
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, true},
		{`{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, false},
		{`{"a":` + strings.Repeat(`{"b":`, maxDepth) + `1` + strings.Repeat("}", maxDepth) + `}`, true},
		{`{"a":` + strings.Repeat(`{"b":`, maxDepth+1) + `1` + strings.Repeat("}", maxDepth+1) + `}`, false},
	} {
		fast, _, fastErr := enrich([]byte(c.line), "id", now)
		gen, _, genErr := enrichGeneral([]byte(c.line), "id", now)
		if c.ok != (fastErr == nil) || c.ok != (genErr == nil) {
			t.Errorf("line of %d bytes: fast %v, general %v, want ok %v", len(c.line), fastErr, genErr, c.ok)
		}
		if !c.ok && (fastErr == nil || genErr == nil || fastErr.Error() != genErr.Error() || !strings.Contains(fastErr.Error(), "exceeded max depth")) {
			t.Errorf("reasons: fast %v, general %v", fastErr, genErr)
		}
		if c.ok && len(fast) != len(gen) {
			t.Errorf("fast %d bytes, general %d", len(fast), len(gen))
		}
	}
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// The size limit is on the event as sent, its added keys included, the
// same for both paths (keys without escapes: with them the general path's
// output can be shorter).
func TestEnrichSizeLimit(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 5, 6, 7_000_000, time.UTC)
	const id = "0f1e2d3c-4b5a-8968-8776-655443322110"
	added := len(`"event_id":"` + id + `","event_time":"2026-11-24T23:05:06.007Z",`)
	pad := MaxEventBytes - added - len(`{"a":""}`)
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{`{"a":"` + strings.Repeat("x", pad) + `"}`, true},
		{`{"a":"` + strings.Repeat("x", pad+1) + `"}`, false},
		{`{ "a" : "` + strings.Repeat("x", pad) + `" }`, true}, // white space is not sent
	} {
		for name, fn := range map[string]func([]byte, string, time.Time) ([]byte, string, error){"fast": enrich, "general": enrichGeneral} {
			data, eid, err := fn([]byte(c.line), id, now)
			if c.ok != (err == nil) || eid != id {
				t.Errorf("%s, line of %d bytes: err %v, event_id %q", name, len(c.line), err, eid)
			}
			if c.ok && len(data) != MaxEventBytes {
				t.Errorf("%s: %d bytes, want %d", name, len(data), MaxEventBytes)
			}
			if !c.ok && (err == nil || err.Error() != "event is 1048065 bytes; the most a Kinesis record takes is 1048064") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// BenchmarkEnrich is the cost of enriching a line of the benchmark's kind
// (about 200 bytes, 9 keys) on each path.
//
//	go test -run '^$' -bench Enrich -benchmem ./internal/producer
func BenchmarkEnrich(b *testing.B) {
	line := []byte(`{"ts":"2026-12-06T21:00:00.000Z","level":"info","service":"checkout","host":"ip-10-0-1-17","user_id":48213,"path":"/api/v1/cart/items","status":200,"duration_ms":12.5,"msg":"request served"}`)
	now := time.Now()
	const id = "0f1e2d3c-4b5a-8968-8776-655443322110"
	b.Run("fast", func(b *testing.B) {
		var e enricher
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, _, err := e.enrich(line, id, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, _, err := enrichGeneral(line, id, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
