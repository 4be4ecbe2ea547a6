package local

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/itchyny/gojq"
)

// Sink is where delivery writes objects: the local S3 server's bucket.
type Sink interface {
	Put(key string, body []byte) error
}

// Firehose is a delivery stream reading a Stream, as the synthesized one
// does: records are de-aggregated, partitioned by the metadata extraction
// query and given their newline as its processors say, buffered per
// partition until the buffering interval or size is reached, and written as
// one object named as Firehose names them, compressed as configured. It
// keeps its position in each shard in a file, moved only past records
// whose objects are written, so a stop loses nothing and a restart
// delivers the rest (at least once, as Firehose does).
type Firehose struct {
	cfg   Delivery
	in    *Stream
	out   Sink
	state string // the position file
	now   func() time.Time
	query *gojq.Code
	log   func(string)

	mu      sync.Mutex
	next    []int64 // per shard: the offset to read next
	buffers map[string]*buffer
	stats   DeliveryStats
	failing string // the last write error, said once
}

// DeliveryStats are the delivery stream's counts since it started.
type DeliveryStats struct {
	Objects, Events, Errors int
}

type buffer struct {
	prefix  string // the prefix with partition keys filled in, timestamps not
	errType string // for error output: Firehose's error-output-type
	data    bytes.Buffer
	started time.Time // when its first record was buffered
	oldest  time.Time // the oldest arrival in it, which names its folder
	events  int
	first   map[int]int64 // per shard: its first record's offset
}

// NewFirehose starts from the positions saved in state, if any.
func NewFirehose(cfg Delivery, in *Stream, out Sink, state string, log func(string)) (*Firehose, error) {
	f := &Firehose{cfg: cfg, in: in, out: out, state: state, now: time.Now, log: log,
		next: make([]int64, in.Shards()), buffers: map[string]*buffer{}}
	if cfg.Query != "" {
		q, err := gojq.Parse(cfg.Query)
		if err != nil {
			return nil, fmt.Errorf("the metadata extraction query: %w", err)
		}
		if f.query, err = gojq.Compile(q); err != nil {
			return nil, fmt.Errorf("the metadata extraction query: %w", err)
		}
	}
	raw, err := os.ReadFile(state)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var saved []int64
		if err := json.Unmarshal(raw, &saved); err != nil || len(saved) != len(f.next) {
			return nil, fmt.Errorf("%s: not the positions of %d shards; delete it to deliver the stream from its start", state, len(f.next))
		}
		f.next = saved
	}
	return f, nil
}

// Stats returns the counts so far.
func (f *Firehose) Stats() DeliveryStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Run delivers until ctx ends, then writes every buffer out (Ctrl-C in the
// middle of a delivery loses nothing) and returns.
func (f *Firehose) Run(ctx context.Context) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return f.Drain()
		case <-tick.C:
			if err := f.step(false); err != nil {
				return err
			}
		}
	}
}

// Drain reads what is left in the stream and writes every buffer.
func (f *Firehose) Drain() error { return f.step(true) }

func (f *Firehose) step(all bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for shard := range f.next {
		for {
			entries, err := f.in.Read(shard, f.next[shard], 1000)
			if err != nil {
				return err
			}
			for _, e := range entries {
				f.add(e)
				f.next[shard] = e.Next
			}
			if len(entries) < 1000 {
				break
			}
		}
	}
	now := f.now()
	for key, b := range f.buffers {
		if all || b.data.Len() >= f.cfg.SizeBytes || now.Sub(b.started) >= f.cfg.Interval {
			if err := f.write(b); err != nil {
				if msg := err.Error(); msg != f.failing {
					f.failing = msg
					f.log(fmt.Sprintf("delivery: cannot write to S3, retrying (nothing is lost: the stream keeps the records): %v", err))
				}
				continue
			}
			f.failing = ""
			delete(f.buffers, key)
		}
	}
	return f.save()
}

// add processes one stream record into the buffers.
func (f *Firehose) add(e Entry) {
	subs := [][]byte{e.Data}
	if f.cfg.Deaggregate {
		var err error
		if subs, err = jsonObjects(e.Data); err != nil {
			f.addError(e, "processing-failed", "Deaggregation.ParseFailed", err.Error(), e.Data)
			return
		}
	}
	for _, sub := range subs {
		prefix := f.cfg.Prefix
		if f.query != nil {
			keys, err := f.extract(sub)
			if err != nil {
				f.addError(e, "partitioning-failed", "DynamicPartitioning.MetadataExtractionFailed", err.Error(), sub)
				continue
			}
			prefix = partitionKey.ReplaceAllStringFunc(prefix, func(m string) string {
				return keys[partitionKey.FindStringSubmatch(m)[1]]
			})
		}
		if f.cfg.AppendLine {
			sub = append(sub[:len(sub):len(sub)], '\n')
		}
		f.buffer(prefix, "", e, sub, bytes.Count(sub, []byte{'\n'}))
	}
}

func (f *Firehose) addError(e Entry, errType, code, message string, raw []byte) {
	line, _ := json.Marshal(map[string]any{
		"attemptsMade": 1, "arrivalTimestamp": e.Arrival.UnixMilli(), "errorCode": code, "errorMessage": message,
		"attemptEndingTimestamp": f.now().UnixMilli(), "rawData": base64.StdEncoding.EncodeToString(raw),
	})
	f.buffer(f.cfg.ErrorPrefix, errType, e, append(line, '\n'), 0)
}

func (f *Firehose) buffer(prefix, errType string, e Entry, data []byte, events int) {
	key := errType + "\x00" + prefix
	b := f.buffers[key]
	if b == nil {
		b = &buffer{prefix: prefix, errType: errType, started: f.now(), oldest: e.Arrival, first: map[int]int64{}}
		f.buffers[key] = b
	}
	if _, ok := b.first[e.Shard]; !ok {
		b.first[e.Shard] = e.Offset
	}
	if e.Arrival.Before(b.oldest) {
		b.oldest = e.Arrival
	}
	b.data.Write(data)
	b.events += events
}

var (
	partitionKey = regexp.MustCompile(`!\{partitionKeyFromQuery:([^}]+)\}`)
	timestamp    = regexp.MustCompile(`!\{timestamp:([^}]+)\}`)
	javaToGo     = strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05")
)

// write puts one buffer as one object, named as Firehose names objects:
// the delivery stream's name and version, the time, a random id.
func (f *Firehose) write(b *buffer) error {
	at := b.oldest.UTC()
	prefix := timestamp.ReplaceAllStringFunc(b.prefix, func(m string) string {
		return at.Format(javaToGo.Replace(timestamp.FindStringSubmatch(m)[1]))
	})
	prefix = strings.ReplaceAll(prefix, "!{firehose:error-output-type}", b.errType)
	var id [16]byte
	_, _ = rand.Read(id[:])
	name := fmt.Sprintf("%s-1-%s-%x-%x-%x-%x-%x", f.cfg.Name, at.Format("2006-01-02-15-04-05"), id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	body := b.data.Bytes()
	if f.cfg.GZIP {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(body)
		zw.Close()
		body, name = z.Bytes(), name+".gz"
	}
	if err := f.out.Put(prefix+name, body); err != nil {
		return err
	}
	f.stats.Objects++
	f.stats.Events += b.events
	if b.errType != "" {
		f.stats.Errors += bytes.Count(b.data.Bytes(), []byte{'\n'})
	}
	return nil
}

// save records, per shard, the offset below which every record is in an
// object: the first record of any buffer not yet written, else the next.
func (f *Firehose) save() error {
	done := append([]int64(nil), f.next...)
	for _, b := range f.buffers {
		for shard, off := range b.first {
			if off < done[shard] {
				done[shard] = off
			}
		}
	}
	raw, _ := json.Marshal(done)
	tmp := f.state + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.state)
}

// extract runs the metadata extraction query on one record.
func (f *Firehose) extract(record []byte) (map[string]string, error) {
	return partitionKeys(f.query, record)
}

// PartitionKeys runs a metadata extraction query (jq) on one record as
// delivery does: an object of partition keys, or the error for which
// Firehose sends the record to errors/. Tests hold it to jq 1.6.
func PartitionKeys(query string, record []byte) (map[string]string, error) {
	q, err := gojq.Parse(query)
	if err != nil {
		return nil, err
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, err
	}
	return partitionKeys(code, record)
}

func partitionKeys(code *gojq.Code, record []byte) (map[string]string, error) {
	var v any
	if err := json.Unmarshal(record, &v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	iter := code.Run(v)
	out, ok := iter.Next()
	if !ok {
		return nil, fmt.Errorf("the query returned nothing")
	}
	if err, isErr := out.(error); isErr {
		return nil, err
	}
	m, isMap := out.(map[string]any)
	if !isMap {
		return nil, fmt.Errorf("the query returned %T, not an object", out)
	}
	keys := map[string]string{}
	for k, val := range m {
		s, isStr := val.(string)
		if !isStr {
			return nil, fmt.Errorf("partition key %s is %T, not a string", k, val)
		}
		keys[k] = s
	}
	return keys, nil
}

// jsonObjects splits a record into the JSON values it holds, as Firehose's
// JSON de-aggregation does (objects side by side or one per line).
func jsonObjects(data []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out [][]byte
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
}
