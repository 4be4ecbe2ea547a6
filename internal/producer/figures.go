package producer

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// unconfirmedSlots is how many seconds unconfirmed tells apart: about 4.5
// hours. Past that, an event still unconfirmed shares its slot with newer
// ones, which can make the age read older than it is (never younger) until
// they too are confirmed.
const unconfirmedSlots = 1 << 14

// unconfirmed counts the events read but not yet confirmed or dead-lettered
// by the second they were read, so the age of the oldest costs two atomic
// adds an event and, when asked (a stats line, a minute's metrics), a scan
// from the oldest second found last time. Events kept in the spool or
// abandoned at shutdown stay counted: they are unconfirmed still.
type unconfirmed struct {
	start time.Time
	now   func() time.Time
	slots [unconfirmedSlots]atomic.Int64

	mu    sync.Mutex
	floor int64 // no event counted was read before this second
}

func newUnconfirmed(now func() time.Time) *unconfirmed {
	return &unconfirmed{start: now(), now: now}
}

// add counts an event read now and returns its mark for done; a mark is
// never 0, the zero value of an event not counted.
func (u *unconfirmed) add() uint32 {
	sec := uint32(u.now().Sub(u.start) / time.Second)
	u.slots[sec%unconfirmedSlots].Add(1)
	return sec + 1
}

// done uncounts the event of mark (0: not counted).
func (u *unconfirmed) done(mark uint32) {
	if mark == 0 {
		return
	}
	u.slots[(mark-1)%unconfirmedSlots].Add(-1)
}

// oldest is the age of the oldest event counted, from the start of the
// second it was read in (so at most a second more than its age); 0 when
// none is.
func (u *unconfirmed) oldest() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	cur := int64(now.Sub(u.start) / time.Second)
	// Events are only added at the current second, so the seconds before
	// the floor stay empty; one pass over the slots sees every one.
	for n := 0; u.floor <= cur && n < unconfirmedSlots; n++ {
		if u.slots[u.floor%unconfirmedSlots].Load() > 0 {
			return now.Sub(u.start.Add(time.Duration(u.floor) * time.Second))
		}
		u.floor++
	}
	// Every slot empty; a second back, for an add that read the clock
	// before this scan and counted after it.
	u.floor = max(0, cur-1)
	return 0
}

// The dead-letter reason classes, the Reason dimension of the producer's
// EventsDeadLettered metric (docs/producer.md, "CloudWatch"): a small fixed
// set, so that each is an alarm or a dashboard line and the metrics cost
// stays bounded.
const (
	ClassInvalid  = "invalid"   // not a JSON object, not UTF-8, a duplicate key
	ClassTooLarge = "too-large" // a line or event over what a Kinesis record takes, or a 413
	Class403      = "403"       // 401 or 403: the API refuses the credentials
	Class4xx      = "4xx"       // any other 4xx, or a redirect: a request the API will never take
	Class5xx      = "5xx"       // 5xx answers, or answers that never confirmed (outcome unknown)
	ClassShutdown = "shutdown"  // not confirmed before the shutdown deadline
)

// ReasonClasses are the classes, in the order the stats line and the
// metrics list them.
var ReasonClasses = [...]string{ClassInvalid, ClassTooLarge, Class403, Class4xx, Class5xx, ClassShutdown}

// shutdownReason starts the reason of an event not confirmed before the
// shutdown deadline (abandon).
const shutdownReason = "not confirmed by the API before the shutdown deadline"

// deadLetterClass sorts a dead-letter entry into one of ReasonClasses, from the
// status of the answer and the reason the producer wrote.
func deadLetterClass(e deadLetter) string {
	switch {
	case e.Status == 413 || strings.Contains(e.Reason, "the most a Kinesis record takes"):
		return ClassTooLarge
	case e.Status == 401 || e.Status == 403:
		return Class403
	case e.Status >= 300 && e.Status < 500:
		return Class4xx
	case e.Status >= 500, e.Status >= 200 && e.Status < 300: // 2xx: after answers that never confirmed
		return Class5xx
	case strings.HasPrefix(e.Reason, shutdownReason):
		return ClassShutdown
	}
	return ClassInvalid // no answer: the line could not be made an event
}
