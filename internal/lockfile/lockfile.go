package lockfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held flock on one file.
type Lock struct {
	f *os.File
}

// Exclusive waits until it holds an exclusive lock on path (created if missing),
// or ctx ends.
func Exclusive(ctx context.Context, path string) (*Lock, error) {
	return lock(ctx, path, unix.LOCK_EX)
}

// Shared waits until it holds a shared lock on path (created if missing), or ctx ends.
func Shared(ctx context.Context, path string) (*Lock, error) {
	return lock(ctx, path, unix.LOCK_SH)
}

// TryExclusive takes an exclusive lock on path (created if missing) if no one
// holds a lock on it; ok is false when someone does.
func TryExclusive(path string) (l *Lock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		return &Lock{f: f}, true, nil
	case unix.EWOULDBLOCK:
		f.Close()
		return nil, false, nil
	}
	f.Close()
	return nil, false, fmt.Errorf("lock %s: %w", path, err)
}

func lock(ctx context.Context, path string, how int) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// flock cannot be interrupted by a context, so poll with a growing pause.
	wait := 500 * time.Microsecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		if wait < 20*time.Millisecond {
			wait *= 2
		}
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}
