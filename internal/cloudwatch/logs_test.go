package cloudwatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/cloudwatch"
	"github.com/tributary/tributary/internal/fakecloudwatch"
)

const group, stream = "/tributary/trial/producer", "i-0abc"

// startShipper runs a Shipper against fake until the test ends (or stop).
func startShipper(t *testing.T, fake *fakecloudwatch.Server, log *logBuf, buffer int, timeout time.Duration) (*cloudwatch.Shipper, func()) {
	t.Helper()
	s := newShipper(t, fake, log, buffer, timeout)
	return s, run(t, s)
}

func newShipper(t *testing.T, fake *fakecloudwatch.Server, log *logBuf, buffer int, timeout time.Duration) *cloudwatch.Shipper {
	t.Helper()
	s, err := cloudwatch.NewShipper(cloudwatch.LogsConfig{
		Group: group, Stream: stream, Endpoint: fake.URL, Region: "eu-west-1", Credentials: creds,
		FlushEvery: 20 * time.Millisecond, Timeout: timeout, BufferBytes: buffer, Log: log.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts s; the func it returns (called at the test's end too) stops it.
func run(t *testing.T, s *cloudwatch.Shipper) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestShipperBatchesWithinTheLimitsInOrder(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	var log logBuf
	s := newShipper(t, fake, &log, 64<<20, 0)

	// 12,000 short lines reach the count limit first, 1,500 lines of 1 KB
	// the size limit; all are written before the shipper starts.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var want []string
	for i := range 13_500 {
		pad := ""
		if i >= 12_000 {
			pad = strings.Repeat("x", 1000)
		}
		want = append(want, fmt.Sprintf(`{"time":%q,"level":"INFO","msg":"line %d%s"}`, base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i, pad))
	}
	for _, l := range want {
		fmt.Fprintln(s, l)
	}
	run(t, s)
	waitFor(t, "every line shipped", func() bool { return s.Shipped() == int64(len(want)) })

	got := fake.Events(group, stream)
	if len(got) != len(want) {
		t.Fatalf("%d events stored, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Message != want[i] {
			t.Fatalf("event %d is %.40q, want %.40q: lines out of order", i, e.Message, want[i])
		}
		if e.Timestamp != base.UnixMilli()+int64(i) {
			t.Fatalf("event %d at %d, want its time field %d", i, e.Timestamp, base.UnixMilli()+int64(i))
		}
	}
	batches := fake.LogBatches()
	full := false
	for i, b := range batches {
		if len(b.Events) > cloudwatch.MaxLogBatchEvents || b.Bytes > cloudwatch.MaxLogBatchBytes {
			t.Errorf("batch %d: %d events, %d bytes", i, len(b.Events), b.Bytes)
		}
		full = full || b.Bytes > cloudwatch.MaxLogBatchBytes-1100
	}
	if len(batches) < 3 || len(batches[0].Events) != cloudwatch.MaxLogBatchEvents || !full {
		t.Errorf("%d batches (first of %d events): want one at each limit", len(batches), len(batches[0].Events))
	}
	if n := fake.CreateLogStreamCalls(); n != 1 {
		t.Errorf("CreateLogStream called %d times, want once", n)
	}
	if s.Dropped() != 0 || len(log.lines(t, "")) != 0 {
		t.Errorf("dropped %d, logged %v", s.Dropped(), log.lines(t, ""))
	}
}

func TestShipperTimestamps(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	fake.CreateLogStream(group, stream) // a stream left by an earlier run: ResourceAlreadyExists is fine
	var log logBuf
	s, stop := startShipper(t, fake, &log, 0, 0)

	at := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	before := time.Now().UnixMilli()
	lines := []string{
		fmt.Sprintf(`{"time":%q,"msg":"a"}`, at.Format(time.RFC3339Nano)),
		"not JSON", // when it was written
		fmt.Sprintf(`{"time":%q,"msg":"earlier"}`, at.Add(-time.Second).Format(time.RFC3339Nano)), // kept in order
		fmt.Sprintf(`{"time":%q,"msg":"a month ago"}`, at.AddDate(0, -1, 0).Format(time.RFC3339Nano)),
		"", // no event
		"in " + strings.Repeat("two ", 2) + "writes" + strings.Repeat("é", 140000), // cut to the API's event limit
	}
	fmt.Fprint(s, strings.Join(lines[:5], "\n")+"\n"+lines[5][:9])
	fmt.Fprint(s, lines[5][9:]+"\n")
	after := time.Now().UnixMilli()
	waitFor(t, "the lines shipped", func() bool { return s.Shipped() == 5 })
	stop()

	got := fake.Events(group, stream)
	if len(got) != 5 {
		t.Fatalf("%d events, want 5", len(got))
	}
	inWrite := func(ts int64) bool { return ts >= before && ts <= after }
	switch {
	case got[0].Timestamp != at.UnixMilli():
		t.Errorf("a line's time field: %d, want %d", got[0].Timestamp, at.UnixMilli())
	case !inWrite(got[1].Timestamp) || got[1].Message != "not JSON":
		t.Errorf("a line without time: %v, want the write time in [%d, %d]", got[1], before, after)
	case got[2].Timestamp != got[1].Timestamp || !strings.Contains(got[2].Message, "earlier"):
		t.Errorf("an earlier time after a later one: %v, want the one before's %d", got[2], got[1].Timestamp)
	case !inWrite(got[3].Timestamp):
		t.Errorf("a time the API would refuse (a month ago): %d, want the write time", got[3].Timestamp)
	case len(got[4].Message)+cloudwatch.LogEventOverhead > cloudwatch.MaxLogEventBytes || !strings.HasPrefix(got[4].Message, "in two two writesé"):
		t.Errorf("a long line in two writes: %d bytes, starting %.20q", len(got[4].Message), got[4].Message)
	}
	if !strings.HasSuffix(got[4].Message, "é") {
		t.Error("a cut line ends in a broken character")
	}
	if n := fake.CreateLogStreamCalls(); n != 1 || len(log.lines(t, "")) != 0 {
		t.Errorf("CreateLogStream %d times (want 1); logged %v", n, log.lines(t, ""))
	}
}

func TestShipperNeverBlocksWhileCloudWatchHangs(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	fake.SetFault(fakecloudwatch.Logs, fakecloudwatch.Fault{Hang: true})
	var log logBuf
	const buffer = 64 << 10
	s, _ := startShipper(t, fake, &log, buffer, 50*time.Millisecond)

	line := func(i int) string { return fmt.Sprintf(`{"msg":"line %06d"}`, i) }
	done := make(chan struct{})
	go func() {
		for i := range 50_000 {
			l := line(i) + "\n"
			if n, err := s.Write([]byte(l)); n != len(l) || err != nil {
				t.Errorf("Write: %d, %v; want %d, nil (a tee beside stderr must not stop)", n, err, len(l))
				break
			}
			if i == 1000 {
				// Let the shipper try (and hang) while writes go on.
				waitFor(t, "a hung request", func() bool { return fake.Requests(fakecloudwatch.Logs) > 0 })
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // generous: the writes must not wait for CloudWatch at all
		t.Fatal("writes blocked while CloudWatch hangs")
	}
	waitFor(t, "the outage logged", func() bool { return len(log.lines(t, "cloudwatch logs: cannot publish")) > 0 })
	if s.Dropped() == 0 {
		t.Fatal("nothing dropped: the buffer is not bounded")
	}

	fake.SetFault(fakecloudwatch.Logs, fakecloudwatch.Fault{})
	fmt.Fprintln(s, "last")
	waitFor(t, "the last line shipped", func() bool {
		e := fake.Events(group, stream)
		return len(e) > 0 && e[len(e)-1].Message == "last"
	})
	got := fake.Events(group, stream)
	size := 0
	for i, e := range got {
		size += len(e.Message) + cloudwatch.LogEventOverhead
		if i > 0 && i < len(got)-1 && e.Message <= got[i-1].Message {
			t.Fatalf("event %d %q after %q: out of order", i, e.Message, got[i-1].Message)
		}
	}
	// The newest lines survive, the oldest are dropped, and no more was held
	// than the buffer and the batch in flight.
	if got[0].Message == line(0) || got[len(got)-2].Message != line(49_999) || size > 2*buffer+len("last")+cloudwatch.LogEventOverhead {
		t.Errorf("stored %d events, %d bytes, from %q to %q", len(got), size, got[0].Message, got[len(got)-2].Message)
	}
	if int64(len(got)-1)+s.Dropped() != 50_000 {
		t.Errorf("%d stored + %d dropped != 50,000 written: lines lost uncounted", len(got)-1, s.Dropped())
	}
	if n := len(log.lines(t, "cloudwatch logs: cannot publish")); n != 1 {
		t.Errorf("%d outage warnings, want 1", n)
	}
	waitFor(t, "recovery logged", func() bool { return len(log.lines(t, "cloudwatch logs: publishing again")) == 1 })
	if r := log.lines(t, "cloudwatch logs: publishing again")[0]; r["dropped_lines"].(float64) != float64(s.Dropped()) {
		t.Errorf("recovery line %v, want dropped_lines %d", r, s.Dropped())
	}
}

func TestShipperRefusedKeepsLinesAndRecovers(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	fake.SetFault(fakecloudwatch.Logs, fakecloudwatch.Fault{Refuse: true})
	var log logBuf
	s, _ := startShipper(t, fake, &log, 0, 0)
	fmt.Fprintln(s, "one")
	waitFor(t, "two refused requests", func() bool { return fake.Requests(fakecloudwatch.Logs) >= 2 })
	warns := log.lines(t, "cloudwatch logs: cannot publish")
	if len(warns) != 1 || !strings.Contains(warns[0]["error"].(string), "AccessDeniedException") {
		t.Fatalf("want one warning naming AccessDeniedException, got %v", warns)
	}
	fake.SetFault(fakecloudwatch.Logs, fakecloudwatch.Fault{})
	fmt.Fprintln(s, "two")
	waitFor(t, "both lines", func() bool { return s.Shipped() == 2 })
	if e := fake.Events(group, stream); len(e) != 2 || e[0].Message != "one" || e[1].Message != "two" || s.Dropped() != 0 {
		t.Errorf("stored %v, dropped %d", e, s.Dropped())
	}
}

func TestShipperMissingLogGroupIsLogged(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	var log logBuf
	s, _ := startShipper(t, fake, &log, 0, 0)
	fmt.Fprintln(s, "one")
	waitFor(t, "the outage logged", func() bool { return len(log.lines(t, "cloudwatch logs: cannot publish")) == 1 })
	if w := log.lines(t, "cloudwatch logs")[0]; !strings.Contains(w["error"].(string), "ResourceNotFoundException: The specified log group does not exist.") || w["log_group"] != group {
		t.Errorf("warning %v", w)
	}
}

func TestShipperShipsWhatIsLeftWhenStopped(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	var log logBuf
	s, err := cloudwatch.NewShipper(cloudwatch.LogsConfig{
		Group: group, Stream: stream, Endpoint: fake.URL, Region: "eu-west-1", Credentials: creds,
		FlushEvery: time.Hour, Log: log.logger(), // no flush before the stop
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	fmt.Fprintln(s, `{"msg":"stopping"}`)
	stop()
	if e := fake.Events(group, stream); len(e) != 1 || e[0].Message != `{"msg":"stopping"}` {
		t.Errorf("stored %v, want the last line", e)
	}
}

func TestShipperChattyLogOneRequestAFlush(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	var log logBuf
	s, stop := startShipper(t, fake, &log, 0, 0) // flushes every 20 ms
	start := time.Now()
	for i := range 300 {
		fmt.Fprintf(s, "line %d\n", i)
		time.Sleep(time.Millisecond)
	}
	stop()
	elapsed := time.Since(start)
	// One request a flush, and one more at the stop, not one a line.
	if n, most := len(fake.LogBatches()), int(elapsed/(20*time.Millisecond))+2; n > most || s.Shipped() != 300 {
		t.Errorf("%d requests in %v for %d lines, want at most %d", n, elapsed, s.Shipped(), most)
	}
}

func TestShipperRecreatesADeletedStream(t *testing.T) {
	fake := fakecloudwatch.New()
	defer fake.Close()
	fake.CreateLogGroup(group)
	var log logBuf
	s, _ := startShipper(t, fake, &log, 0, 0)
	fmt.Fprintln(s, "one")
	waitFor(t, "the first line", func() bool { return s.Shipped() == 1 })
	fake.DeleteLogStream(group, stream)
	fmt.Fprintln(s, "two")
	waitFor(t, "the second line", func() bool { return s.Shipped() == 2 })
	if e := fake.Events(group, stream); len(e) != 1 || e[0].Message != "two" || fake.CreateLogStreamCalls() != 2 {
		t.Errorf("stream holds %v after %d CreateLogStream calls, want [two] after 2", e, fake.CreateLogStreamCalls())
	}
	warns := log.lines(t, "cloudwatch logs: cannot publish")
	if len(warns) != 1 || !strings.Contains(warns[0]["error"].(string), "The specified log stream does not exist.") ||
		len(log.lines(t, "cloudwatch logs: publishing again")) != 1 {
		t.Errorf("logged %v", log.lines(t, ""))
	}
}
