// Package producer reads JSON events from a source, gives each an id and a
// time, and sends them to the Tributary ingest API at least once: an event is
// confirmed by the API, or written to the dead-letter file with the reason,
// never dropped silently. It is plain Go and imports no CDK package.
package producer

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxEventBytes is the largest event sent: a Kinesis record holds 1 MiB of
// data and partition key, and the API adds a newline and keys of up to 256
// characters.
const MaxEventBytes = 1<<20 - 512

// Event is one JSON object on its way to the API.
type Event struct {
	ID    string
	Data  []byte // compact JSON object with event_id and event_time
	pos   *position
	cost  int64  // bytes it holds of the queue
	spool uint64 // its record in the spool; 0 when not spooled
}

// errNotObject marks input that cannot be sent: it goes to the dead-letter file.
var errNotObject = errors.New("not a JSON object")

// errNotUTF8 marks input that is not valid UTF-8, which JSON text must be.
var errNotUTF8 = errors.New("not valid UTF-8, which JSON text must be (the line is kept in raw_base64)")

// enrich parses raw as one JSON object and adds event_id (id, or a random
// one when id is "") and event_time (now, RFC 3339 UTC) unless it has them:
// its own, whatever their values, are kept. Values are kept as written; keys
// come out sorted. Anything after the object but white space, or a key
// twice, makes the whole line invalid: half a line is not an event.
func enrich(raw []byte, id string, now time.Time) (data []byte, eventID string, err error) {
	if !utf8.Valid(raw) {
		// Decoding would turn each bad byte into U+FFFD: two keys could
		// become one (a field dropped) and values would not be as written.
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
		// The event's own id, whatever it is (a number, "", null), is
		// kept as written: replacing it would lose the user's data.
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
	enc.SetEscapeHTML(false) // "<" stays "<": the data as the user wrote it
	if err := enc.Encode(obj); err != nil {
		return nil, "", fmt.Errorf("%w: %v", errNotObject, err)
	}
	data = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(data) > MaxEventBytes {
		return nil, eventID, fmt.Errorf("event is %d bytes; the most a Kinesis record takes is %d", len(data), MaxEventBytes)
	}
	return data, eventID, nil
}

// errDuplicateKey marks an object with a key twice: decoding would keep the
// last value and drop the other without a word, so the line is dead-lettered.
var errDuplicateKey = errors.New("duplicate key")

// decodeObject reads one JSON object, its values kept as written.
func decodeObject(dec *json.Decoder) (map[string]json.RawMessage, error) {
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		if err == nil {
			err = fmt.Errorf("a JSON %s", kind(tok))
		}
		return nil, fmt.Errorf("%w: %v", errNotObject, err)
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotObject, err)
		}
		key := tok.(string) // the decoder checks that an object's key is a string
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %v", errNotObject, err)
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("%w %q: the line is kept here as it is rather than one value dropped", errDuplicateKey, key)
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("%w: %v", errNotObject, err)
	}
	return obj, nil
}

// kind names a JSON value by its first token, for error messages.
func kind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "array"
		}
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprint(tok)
}

// jsonSpace reports whether b holds only JSON white space.
func jsonSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// randomID is a random (version 4) UUID: for events that cannot be read twice.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	return uuid(b)
}

// chainID is the id of a line of a followed file: a UUID (version 8) made of
// the file's chain hash after that line (see internal/filesource), so the same line
// read again gets the same id and different lines get different ones.
func chainID(chain [32]byte) string {
	var b [16]byte
	copy(b[:], chain[:])
	b[6] = b[6]&0x0f | 0x80
	return uuid(b)
}

func uuid(b [16]byte) string {
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
