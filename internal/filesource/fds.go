package filesource

import (
	"math"
	"syscall"
)

// reservedFDs is what the producer keeps of RLIMIT_NOFILE for itself
// before followed files get any: stdin, stdout and stderr; the runtime's
// poller (epoll and its eventfd); the checkpoint's lock, temporary file and
// directory (synced after each fold), and its journal (open from one fold
// to the next); the dead-letter file; the spool; a
// directory a scan lists; a DNS lookup; and two sockets per request in
// flight (one being dialled while another closes), added by fileBudget.
const reservedFDs = 17

// fileBudget is how many followed files may be open at once under a limit
// of nofile descriptors: the rest wait (see Follower.scan). At least one,
// so that a tiny limit still makes progress.
func fileBudget(nofile uint64, concurrency int) int {
	reserved := uint64(reservedFDs + 2*concurrency)
	if nofile <= reserved {
		return 1
	}
	return int(min(nofile-reserved, math.MaxInt32))
}

// nofileLimit is RLIMIT_NOFILE as the process has it (Go raises the soft
// limit to the hard one at start); unlimited when it cannot be read.
func nofileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return math.MaxUint64
	}
	return rl.Cur
}
