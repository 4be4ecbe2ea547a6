package producer

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// SourceReplay resends the events of a dead-letter file (Config.ReplayFrom).
const SourceReplay = "replay"

// Replay reasons: which dead-letter entries are sent again.
const (
	ReplayShutdown = "shutdown" // not confirmed before the shutdown deadline (the API down or slow)
	Replay5xx      = "5xx"      // a 5xx answer, also as the last attempt before a shutdown
	Replay403      = "403"      // refused with 403 (a key or a role since fixed), also as the last attempt
	ReplayAll      = "all"
)

// ReplayReasons lists the reasons Config.ReplayReason may be.
var ReplayReasons = []string{ReplayShutdown, Replay5xx, Replay403, ReplayAll}

// replayChosen reports whether a dead-letter entry is one reason selects.
func replayChosen(d deadLetter, reason string) bool {
	const shutdown = "not confirmed by the API before the shutdown deadline"
	last := ""
	if i := strings.Index(d.Reason, "; last attempt: "); i >= 0 && strings.HasPrefix(d.Reason, shutdown) {
		last = d.Reason[i+len("; last attempt: "):]
	}
	switch reason {
	case ReplayShutdown:
		return strings.HasPrefix(d.Reason, shutdown)
	case Replay5xx:
		return d.Status >= 500 && d.Status <= 599 || strings.HasPrefix(last, "HTTP 5")
	case Replay403:
		return d.Status == 403 || strings.HasPrefix(last, "HTTP 403")
	}
	return reason == ReplayAll
}

// replay hands out the events of the dead-letter file at path that reason
// selects, as they were written (an event keeps its event_id and
// event_time). The file is only read. A last line without its newline (an
// entry being written) is left out.
func replay(ctx context.Context, path, reason string, emit func(context.Context, line) bool, cfg Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the dead-letter file to replay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	chosen, skipped, bad := 0, 0, 0
	defer func() {
		cfg.Log.Info("replay: dead-letter entries read", "from", path, "reason", reason, "sent_again", chosen, "not_chosen", skipped, "not_entries", bad)
	}()
	for ctx.Err() == nil {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			var d deadLetter
			switch {
			case json.Unmarshal(b, &d) != nil:
				bad++
			case !replayChosen(d, reason):
				skipped++
			default:
				l := line{data: d.Event}
				switch {
				case d.RawBase64 != "":
					l.data, _ = base64.StdEncoding.DecodeString(d.RawBase64)
				case d.Event == nil:
					l.data = []byte(d.Raw)
				}
				chosen++
				if !emit(ctx, l) {
					return nil
				}
			}
		}
		if err != nil {
			return nil
		}
	}
	return nil
}
