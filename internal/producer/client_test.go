package producer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"testing"
)

// Every answer sorts the events of a request one way; docs/producer.md's table
// says the same. Undocumented 2xx answers are resent: the events may be
// stored, and a duplicate is better than a loss.
func TestClassifyAnswers(t *testing.T) {
	const seq = `{"sequenceNumber":"1","shardId":"shardId-000000000000"}`
	for _, c := range []struct {
		batch  bool
		n      int
		status int
		body   string
		want   string
	}{
		{false, 1, 200, seq, "stored"},
		{false, 1, 200, `{}`, "retry"},
		{false, 1, 200, ``, "retry"},
		{false, 1, 201, seq, "retry"},
		{false, 1, 202, `{}`, "retry"},
		{false, 1, 204, ``, "retry"},
		{true, 2, 202, `{}`, "retry"},
		{true, 2, 200, `{"failedRecordCount":0,"records":[{"sequenceNumber":"1"},{"sequenceNumber":"2"}]}`, "stored"},
		{true, 2, 200, `{"failedRecordCount":1,"records":[{"sequenceNumber":"1"},{"errorCode":"ProvisionedThroughputExceededException"}]}`, "stored [0], retry [1]"},
		{true, 2, 200, `{"records":[{"sequenceNumber":"1"}]}`, "retry"},
		{true, 2, 200, `{"records":[{"sequenceNumber":"1"},{}]}`, "stored [0], retry [1]"},
		{true, 2, 200, `{}`, "retry"},
		{true, 2, 200, `{"sequenceNumber":"1","shardId":"shardId-000000000000","events":2}`, "stored"}, // packed
		{true, 2, 200, `{"sequenceNumber":"1","shardId":"shardId-000000000000","events":null}`, "stored"},
		{true, 3, 200, `{"sequenceNumber":"1","events":1}`, "stored [0], retry [1 2]"}, // the record holds the first event only
		{true, 3, 200, `{"sequenceNumber":"1","events":0}`, "retry"},
		{true, 2, 200, `{"sequenceNumber":"1","events":3}`, "retry"}, // more than sent: unreadable
		{true, 2, 200, `{"sequenceNumber":"1","events":-1}`, "retry"},
		{true, 2, 200, `{"sequenceNumber":"","events":2}`, "retry"},
		{true, 2, 200, `{"events":2}`, "retry"},
		{false, 1, 408, `{"message":"Request Timeout"}`, "retry"},
		{false, 1, 429, `{"message":"slow down"}`, "retry"},
		{false, 1, 500, `{}`, "retry"},
		{false, 1, 503, ``, "retry"},
		{true, 2, 400, `{}`, "split"},
		{true, 2, 413, `{}`, "split"},
		{false, 1, 400, `{"message":"bad"}`, "dead"},
		{false, 1, 401, `{}`, "dead"},
		{true, 2, 403, `{}`, "dead"},
		{false, 1, 404, `{}`, "dead"},
		{false, 1, 413, `{}`, "dead"},
		{true, 2, 415, `{}`, "dead"},
		{false, 1, 302, ``, "dead"},
	} {
		o := (&client{batch: c.batch}).classify(c.status, []byte(c.body), c.n)
		got := "none"
		all := make([]int, c.n)
		for i := range all {
			all[i] = i
		}
		switch {
		case o.split:
			got = "split"
		case slices.Equal(o.stored, all):
			got = "stored"
		case slices.Equal(o.retry, all):
			got = "retry"
		case slices.Equal(o.dead, all):
			got = "dead"
		case len(o.stored) > 0 || len(o.retry) > 0:
			got = fmt.Sprintf("stored %v, retry %v", o.stored, o.retry)
		}
		if got != c.want || o.status != c.status {
			t.Errorf("batch=%v HTTP %d %s: %s (status %d), want %s", c.batch, c.status, c.body, got, o.status, c.want)
		}
	}
}

// A reused gzip writer starts each body afresh: nothing of the one before
// is in the next.
func TestGzippedReusesWriters(t *testing.T) {
	big := bytes.Repeat([]byte(`{"event_id":"x","n":12345},`), 5000)
	for _, body := range [][]byte{big, []byte(`[{"a":1}]`), big[:1000], {}} {
		zr, err := gzip.NewReader(bytes.NewReader(gzipped(body)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes in, %d out (%v)", len(body), len(got), err)
		}
	}
}
