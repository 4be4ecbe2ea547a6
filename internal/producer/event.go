// Package producer reads JSON events from a source, gives each an id and a
// time, and sends them to the Tributary ingest API at least once: an event is
// confirmed by the API, or written to the dead-letter file with the reason,
// never dropped silently. It is plain Go and imports no CDK package.
package producer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
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
	born  uint32 // its mark in run.unconfirmed
}

// errNotObject marks input that cannot be sent: it goes to the dead-letter file.
var errNotObject = errors.New("not a JSON object")

// errNotUTF8 marks input that is not valid UTF-8, which JSON text must be.
var errNotUTF8 = errors.New("not valid UTF-8, which JSON text must be (the line is kept in raw_base64)")

// enricher enriches events in one pass over each line, reusing its buffers
// from one line to the next: one per goroutine.
type enricher struct {
	body  []byte // the object's members, compacted
	stack []byte // the closing brackets a value still needs
	// The top-level keys so far: spans of the line, or of names for keys
	// with escapes, decoded. Not pointers, so noting one costs no write
	// barrier while the GC runs.
	keys  [manyKeys]keySpan
	nkeys int
	names []byte
	seen  map[string]struct{} // all the keys, once there are manyKeys
	milli int64               // the millisecond stamp is for
	stamp []byte              // `"event_time":"…",`
}

// keySpan is where a key is: raw[from:to], or names[from:to] when decoded.
type keySpan struct {
	from, to int
	decoded  bool
}

// manyKeys is when an object's keys are looked up in a map rather than
// compared one by one.
const manyKeys = 32

// keepBytes is the most an enricher keeps of its buffer between lines.
const keepBytes = 64 << 10

// maxDepth is how deeply a value may nest, encoding/json's limit.
const maxDepth = 10000

// enrich reads raw as one JSON object and adds event_id (id, or a random
// one when id is "") and event_time (now, RFC 3339 UTC) unless it has them:
// its own, whatever their values, are kept. Anything after the object but
// white space, or a key twice, makes the whole line invalid: half a line is
// not an event.
//
// It validates raw as exactly one JSON object (valid UTF-8, nothing
// after it but white space, no top-level key twice once decoded, nesting
// within encoding/json's limit) and compacts it: white space between tokens
// is dropped, keys, strings and numbers are kept byte for byte. The
// event_id and event_time it lacks are put first; the user's keys follow in
// the user's order. A line it refuses gets the reason the decoder of
// decodeObject gives, so reasons read as they always have.
func (e *enricher) enrich(raw []byte, id string, now time.Time) (data []byte, eventID string, err error) {
	if !utf8.Valid(raw) {
		// Decoding would turn each bad byte into U+FFFD: two keys could
		// become one (a field dropped) and values would not be as written.
		return nil, "", errNotUTF8
	}
	if cap(e.body) > keepBytes { // not held on to after a rare large line
		e.body = nil
	}
	// Local while the line is read: appending to e's fields would cost a
	// write barrier each while the GC runs.
	body, stack := e.body[:0], e.stack[:0]
	e.nkeys, e.names, e.seen = 0, e.names[:0], nil
	var own []byte // the event's event_id, as written
	hasID, hasTime := false, false
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return nil, "", syntaxError(raw)
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			k := i
			if i = scanString(raw, i); i < 0 {
				return nil, "", syntaxError(raw)
			}
			key, span := raw[k+1:i-1], keySpan{from: k + 1, to: i - 1}
			if bytes.IndexByte(key, '\\') >= 0 {
				var s string
				if json.Unmarshal(raw[k:i], &s) != nil {
					return nil, "", syntaxError(raw)
				}
				key = []byte(s)
				span = keySpan{from: len(e.names), to: len(e.names) + len(s), decoded: true}
			}
			body = append(body, raw[k:i]...)
			if i = skipSpace(raw, i); i == len(raw) || raw[i] != ':' {
				return nil, "", syntaxError(raw)
			}
			body = append(body, ':')
			v := skipSpace(raw, i+1)
			if body, stack, i = compactValue(body, stack, raw, v); i < 0 {
				return nil, "", syntaxError(raw)
			}
			// After its value, as the decoder finds it.
			if e.known(raw, key, span) {
				return nil, "", fmt.Errorf("%w %q: the line is kept here as it is rather than one value dropped", errDuplicateKey, key)
			}
			switch string(key) {
			case "event_id":
				hasID, own = true, raw[v:i]
			case "event_time":
				hasTime = true
			}
			if i = skipSpace(raw, i); i == len(raw) {
				return nil, "", syntaxError(raw)
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return nil, "", syntaxError(raw)
			}
			body = append(body, ',')
			i = skipSpace(raw, i+1)
		}
	}
	e.body, e.stack = body, stack
	if rest := raw[i:]; !jsonSpace(rest) {
		return nil, "", fmt.Errorf("%w: content after the object: %.40q", errNotObject, rest)
	}
	var idJSON []byte // the added event_id as JSON, when it needs escapes
	if hasID {
		eventID = ownID(own)
	} else {
		eventID = id
		if eventID == "" {
			eventID = randomID()
		}
		if !plainString(eventID) {
			idJSON, _ = json.Marshal(eventID) // as the general path writes it
		}
	}
	n := len(body) + 2
	if !hasID && idJSON == nil {
		n += len(`"event_id":"",`) + len(eventID)
	} else if !hasID {
		n += len(`"event_id":,`) + len(idJSON)
	}
	if !hasTime {
		e.timeStamp(now)
		n += len(e.stamp)
	}
	if len(body) == 0 && (!hasID || !hasTime) {
		n-- // no comma after the last key added
	}
	if n > MaxEventBytes {
		return nil, eventID, fmt.Errorf("event is %d bytes; the most a Kinesis record takes is %d", n, MaxEventBytes)
	}
	data = make([]byte, 0, n)
	data = append(data, '{')
	if !hasID {
		if idJSON == nil {
			data = append(data, `"event_id":"`...)
			data = append(data, eventID...)
			data = append(data, `",`...)
		} else {
			data = append(data, `"event_id":`...)
			data = append(data, idJSON...)
			data = append(data, ',')
		}
	}
	if !hasTime {
		data = append(data, e.stamp...)
	}
	if len(body) == 0 && (!hasID || !hasTime) {
		data = data[:len(data)-1]
	}
	data = append(data, body...)
	return append(data, '}'), eventID, nil
}

// known reports whether key, at span, was a key of the object before, and
// notes it.
func (e *enricher) known(raw, key []byte, span keySpan) bool {
	if e.seen == nil {
		for _, k := range e.keys[:e.nkeys] {
			if bytes.Equal(e.keyBytes(raw, k), key) {
				return true
			}
		}
		if span.decoded {
			e.names = append(e.names, key...)
		}
		if e.nkeys < manyKeys {
			e.keys[e.nkeys] = span
			e.nkeys++
			return false
		}
		e.seen = make(map[string]struct{}, 2*manyKeys) // the first keys, once
		for _, k := range e.keys {
			e.seen[string(e.keyBytes(raw, k))] = struct{}{}
		}
	}
	if _, ok := e.seen[string(key)]; ok {
		return true
	}
	e.seen[string(key)] = struct{}{}
	return false
}

func (e *enricher) keyBytes(raw []byte, k keySpan) []byte {
	if k.decoded {
		return e.names[k.from:k.to]
	}
	return raw[k.from:k.to]
}

// timeStamp sets e.stamp to now's event_time member.
func (e *enricher) timeStamp(now time.Time) {
	ms := now.UnixMilli()
	if e.stamp != nil && ms == e.milli {
		return
	}
	e.milli = ms
	e.stamp = append(e.stamp[:0], `"event_time":"`...)
	e.stamp = time.UnixMilli(ms).UTC().AppendFormat(e.stamp, "2006-01-02T15:04:05.000Z07:00")
	e.stamp = append(e.stamp, `",`...)
}

// ownID is the eventID of an event with its own event_id v: a string's
// text ("" for null), or the value as written.
func ownID(v []byte) string {
	switch {
	case v[0] == '"' && bytes.IndexByte(v, '\\') < 0:
		return string(v[1 : len(v)-1])
	case v[0] == '"':
		var s string
		_ = json.Unmarshal(v, &s) // validated: it decodes
		return s
	case string(v) == "null":
		return ""
	}
	return string(v)
}

// plainString reports whether s is written as a JSON string with no
// escapes, by json.Marshal too (which escapes <, > and &).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// syntaxError is why raw, which enrich found is not one JSON object, is
// refused: in the words of the decoder the producer always used.
func syntaxError(raw []byte) error {
	if _, err := decodeObject(json.NewDecoder(bytes.NewReader(raw))); err != nil {
		return err
	}
	return fmt.Errorf("%w: not valid JSON", errNotObject)
}

// compactValue checks the JSON value at raw[i:] and appends it to body
// without the white space between its tokens; it returns body, stack (its
// buffer for the brackets to close) and where the value ends, or -1 when it
// is not valid JSON.
func compactValue(body, stack, raw []byte, i int) ([]byte, []byte, int) {
	stack = stack[:0]
	for {
		// A value starts at i.
		if i >= len(raw) {
			return body, stack, -1
		}
		switch c := raw[i]; c {
		case '"':
			j := scanString(raw, i)
			if j < 0 {
				return body, stack, -1
			}
			body = append(body, raw[i:j]...)
			i = j
		case '{', '[':
			if len(stack) == maxDepth {
				return body, stack, -1
			}
			body = append(body, c)
			stack = append(stack, c+2) // '}' and ']'
			i = skipSpace(raw, i+1)
			if i < len(raw) && raw[i] == c+2 {
				body = append(body, c+2)
				stack = stack[:len(stack)-1]
				i++
			} else if c == '{' {
				if body, i = member(body, raw, i); i < 0 {
					return body, stack, -1
				}
				continue
			} else {
				continue
			}
		case 't':
			if !bytes.HasPrefix(raw[i:], []byte("true")) {
				return body, stack, -1
			}
			body = append(body, "true"...)
			i += 4
		case 'f':
			if !bytes.HasPrefix(raw[i:], []byte("false")) {
				return body, stack, -1
			}
			body = append(body, "false"...)
			i += 5
		case 'n':
			if !bytes.HasPrefix(raw[i:], []byte("null")) {
				return body, stack, -1
			}
			body = append(body, "null"...)
			i += 4
		default:
			j := scanNumber(raw, i)
			if j < 0 {
				return body, stack, -1
			}
			body = append(body, raw[i:j]...)
			i = j
		}
		// A value ended at i: close what it ends, or go on to the next.
		for {
			if len(stack) == 0 {
				return body, stack, i
			}
			if i = skipSpace(raw, i); i == len(raw) {
				return body, stack, -1
			}
			top := stack[len(stack)-1]
			if raw[i] == top {
				body = append(body, top)
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if raw[i] != ',' {
				return body, stack, -1
			}
			body = append(body, ',')
			i = skipSpace(raw, i+1)
			if top == '}' {
				if body, i = member(body, raw, i); i < 0 {
					return body, stack, -1
				}
			}
			break
		}
	}
}

// member checks the key and colon of a nested object's member at raw[i:]
// and appends them to body; it returns body and where the member's value
// starts, or -1. (Keys of nested objects may repeat: they are kept as
// written.)
func member(body, raw []byte, i int) ([]byte, int) {
	j := scanString(raw, i)
	if j < 0 {
		return body, -1
	}
	body = append(body, raw[i:j]...)
	if j = skipSpace(raw, j); j == len(raw) || raw[j] != ':' {
		return body, -1
	}
	body = append(body, ':')
	return body, skipSpace(raw, j+1)
}

// scanString checks the JSON string at raw[i:] and returns where it ends,
// or -1. raw is valid UTF-8.
func scanString(raw []byte, i int) int {
	if i >= len(raw) || raw[i] != '"' {
		return -1
	}
	for i++; i < len(raw); i++ {
		for i < len(raw) && plainByte[raw[i]] { // most of a string
			i++
		}
		if i == len(raw) {
			break
		}
		switch c := raw[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i++; i == len(raw) {
				return -1
			}
			switch raw[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(raw) {
					return -1
				}
				for _, h := range raw[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// plainByte marks the bytes a JSON string holds as they are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber checks the JSON number at raw[i:] and returns where it ends,
// or -1.
func scanNumber(raw []byte, i int) int {
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	switch {
	case i < len(raw) && raw[i] == '0':
		i++
	case i < len(raw) && '1' <= raw[i] && raw[i] <= '9':
		i = digits(raw, i)
	default:
		return -1
	}
	if i < len(raw) && raw[i] == '.' {
		if j := digits(raw, i+1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		j := digits(raw, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(raw []byte, i int) int {
	for i < len(raw) && '0' <= raw[i] && raw[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
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
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
