package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/parquet-go/parquet-go"
)

// Magic bytes of what Firehose writes. The key's suffix does not tell:
// SNAPPY and HADOOP_SNAPPY objects both end in .snappy, and an object's
// Content-Encoding may make an HTTP client decode it on the way.
var (
	gzipMagic    = []byte{0x1f, 0x8b}
	zipMagic     = []byte("PK\x03\x04")
	xerialMagic  = []byte("\x82SNAPPY\x00")         // snappy-java's stream: Firehose's SNAPPY
	framedMagic  = []byte("\xff\x06\x00\x00sNaPpY") // the official snappy framing format
	parquetMagic = []byte("PAR1")
)

// eventIDs reads one object Firehose wrote, in any format the settings
// allow, and returns the event_id of each event in it (empty for events
// without one), in order.
func eventIDs(body []byte) ([]string, error) {
	switch {
	case bytes.HasPrefix(body, parquetMagic):
		return parquetIDs(body)
	case bytes.HasPrefix(body, gzipMagic):
		zr, err := gzip.NewReader(bytes.NewReader(body)) // reads every member
		if err != nil {
			return nil, fmt.Errorf("GZIP: %w", err)
		}
		return jsonIDs(zr)
	case bytes.HasPrefix(body, zipMagic):
		zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			return nil, fmt.Errorf("ZIP: %w", err)
		}
		var ids []string
		for _, f := range zr.File { // Firehose writes one entry; read any
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("ZIP entry %s: %w", f.Name, err)
			}
			more, err := jsonIDs(rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("ZIP entry %s: %w", f.Name, err)
			}
			ids = append(ids, more...)
		}
		return ids, nil
	case bytes.HasPrefix(body, xerialMagic):
		raw, err := xerial.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("SNAPPY (snappy-java): %w", err)
		}
		return jsonIDs(bytes.NewReader(raw))
	case bytes.HasPrefix(body, framedMagic):
		return jsonIDs(snappy.NewReader(bytes.NewReader(body)))
	case len(body) == 0 || body[0] == '{' || body[0] == '\n' || body[0] == ' ':
		return jsonIDs(bytes.NewReader(body))
	}
	raw, err := hadoopSnappy(body)
	if err != nil {
		return nil, fmt.Errorf("not JSON lines, GZIP, ZIP, snappy or Parquet; as HADOOP_SNAPPY: %w", err)
	}
	return jsonIDs(bytes.NewReader(raw))
}

// jsonIDs reads newline-delimited JSON events.
func jsonIDs(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("not a JSON line: %.80q", line)
		}
		ids = append(ids, e.EventID)
	}
	return ids, sc.Err()
}

// hadoopSnappy decodes Hadoop's snappy block stream (HADOOP_SNAPPY): blocks
// of a 4-byte big-endian uncompressed length, then chunks of a 4-byte
// big-endian compressed length and a raw snappy block, up to that length.
func hadoopSnappy(b []byte) ([]byte, error) {
	var out []byte
	next := func() (int, error) {
		if len(b) < 4 {
			return 0, errors.New("truncated length")
		}
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		return n, nil
	}
	for len(b) > 0 {
		want, err := next()
		if err != nil {
			return nil, err
		}
		for got := 0; got < want; {
			n, err := next()
			if err != nil {
				return nil, err
			}
			if n > len(b) {
				return nil, fmt.Errorf("chunk of %d bytes, %d left", n, len(b))
			}
			chunk, err := snappy.Decode(nil, b[:n])
			if err != nil {
				return nil, err
			}
			out, got, b = append(out, chunk...), got+len(chunk), b[n:]
			if got > want {
				return nil, fmt.Errorf("block holds %d bytes, its header says %d", got, want)
			}
		}
	}
	return out, nil
}

// parquetIDs reads the event_id column of a Parquet file (Firehose's
// record format conversion writes one column per column of the typed table,
// which always has event_id).
func parquetIDs(body []byte) ([]string, error) {
	type row struct {
		EventID *string `parquet:"event_id,optional"`
	}
	rows, err := parquet.Read[row](bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, fmt.Errorf("Parquet: %w", err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		if r.EventID != nil {
			ids[i] = *r.EventID
		}
	}
	return ids, nil
}
