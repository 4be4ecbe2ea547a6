package producer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// errLocked is a lock another process holds.
var errLocked = errors.New("another producer holds it")

// flock takes an exclusive lock on f without waiting. The kernel drops it
// when f is closed or the process ends, kill -9 included: no stale lock.
func flock(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return errLocked
		}
		return err
	}
	return nil
}

// lockCheckpoint locks <checkpoint>.lock (the checkpoint itself is replaced
// at every save, so it cannot hold a lock): two producers on one checkpoint
// would each send every line and overwrite each other's saves.
func lockCheckpoint(checkpoint string) (*os.File, error) {
	path := checkpoint + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lock %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("another producer is running with the checkpoint %s (%s is locked): stop it first. Two producers must never follow the same files, even with separate checkpoints: each would send every line, with different ids that deduplication cannot remove. To split the work, give each its own -files matching different files, and its own -checkpoint and -dead-letter", checkpoint, path)
		}
		return nil, fmt.Errorf("checkpoint lock %s: %w", path, err)
	}
	return f, nil
}
