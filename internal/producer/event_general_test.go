package producer

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"
)

// enrich is the fast path with an enricher of its own.
func enrich(raw []byte, id string, now time.Time) ([]byte, string, error) {
	var e enricher
	return e.enrich(raw, id, now)
}

// enrichGeneral is the producer's first way of enriching an event, kept as
// the reference the fast path (enrich) is checked against: it decodes the
// object into a map and encodes it again (keys sorted), with the same rules
// for what is refused and for the ids.
func enrichGeneral(raw []byte, id string, now time.Time) (data []byte, eventID string, err error) {
	if !utf8.Valid(raw) {
		return nil, "", errNotUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	obj, err := decodeObject(dec)
	if err != nil {
		return nil, "", err
	}
	if rest := raw[dec.InputOffset():]; !jsonSpace(rest) {
		return nil, "", fmt.Errorf("%w: content after the object: %.40q", errNotObject, rest)
	}
	if own, ok := obj["event_id"]; ok {
		if json.Unmarshal(own, &eventID) != nil {
			eventID = string(own)
		}
	} else {
		eventID = id
		if eventID == "" {
			eventID = randomID()
		}
		obj["event_id"], _ = json.Marshal(eventID)
	}
	if _, ok := obj["event_time"]; !ok {
		obj["event_time"], _ = json.Marshal(now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, "", fmt.Errorf("%w: %v", errNotObject, err)
	}
	data = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(data) > MaxEventBytes {
		return nil, eventID, fmt.Errorf("event is %d bytes; the most a Kinesis record takes is %d", len(data), MaxEventBytes)
	}
	return data, eventID, nil
}

// uuid's ids are those it gave when it formatted them with fmt: a line's
// id must not change with the producer's version.
func TestUUIDAsBefore(t *testing.T) {
	for i := range 1000 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if i == 0 {
			b = [16]byte{}
		}
		want := b
		want[8] = want[8]&0x3f | 0x80
		if got, w := uuid(b), fmt.Sprintf("%x-%x-%x-%x-%x", want[0:4], want[4:6], want[6:8], want[8:10], want[10:16]); got != w {
			t.Fatalf("uuid(%x) = %s, want %s", b, got, w)
		}
	}
	if got := chainID([32]byte{1, 2, 3}); got != "01020300-0000-8000-8000-000000000000" {
		t.Errorf("chainID = %s", got)
	}
}

// An added event_id is written as json.Marshal writes it, escapes and all.
func TestEnrichEscapesTheID(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 5, 6, 7_000_000, time.UTC)
	for _, id := range []string{`plain-id`, `a"b\c`, `<&>`, "tab\there", "grüße"} {
		got, gotID, err := enrich([]byte(`{"n":1}`), id, now)
		gen, _, _ := enrichGeneral([]byte(`{"n":1}`), id, now)
		q, _ := json.Marshal(id)
		if want := `{"event_id":` + string(q) + `,"event_time":"2026-11-24T23:05:06.007Z","n":1}`; err != nil || string(got) != want || gotID != id {
			t.Errorf("id %q: %s (%v), want %s", id, got, err, want)
		}
		if !bytes.Contains(gen, q) {
			t.Errorf("id %q: the general path wrote %s", id, gen)
		}
	}
}
