package filesource

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked is a lock another process holds.
var ErrLocked = errors.New("another producer holds it")

// Flock takes an exclusive lock on f without waiting (ErrLocked when
// another process holds it), as the checkpoint's lock is taken; the
// producer's other files are locked so too. The kernel drops it when f is
// closed or the process ends, kill -9 included: no stale lock.
func Flock(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return ErrLocked
		}
		return err
	}
	return nil
}

// LockCheckpoint locks <checkpoint>.lock (the checkpoint itself is replaced
// at every save, so it cannot hold a lock): two producers on one checkpoint
// would each send every line and overwrite each other's saves.
func LockCheckpoint(checkpoint string) (*os.File, error) {
	path := checkpoint + ".lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lock %s: %w", path, err)
	}
	if err := Flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("another producer is running with the checkpoint %s (%s is locked): stop it first. Two producers must never follow the same files, even with separate checkpoints: each would send every line, with different ids that deduplication cannot remove. To split the work, give each its own -files matching different files, and its own -checkpoint and -dead-letter", checkpoint, path)
		}
		return nil, fmt.Errorf("checkpoint lock %s: %w", path, err)
	}
	return f, nil
}
