package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"golang.org/x/sys/unix"
)

// Kill sends sig to the init of running container ref.
func (s *Store) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != Running && c.State.Status != Paused {
		return fmt.Errorf("%w: Container %s is not running", ErrNotRunning, c.ID)
	}
	if err := s.signal(c.ID, sig); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return fmt.Errorf("%w: Container %s is not running", ErrNotRunning, c.ID)
		}
		return err
	}
	return nil
}

// Stop stops container ref as `docker stop` does: its stop signal (SIGTERM
// unless the image says otherwise), then, if it still runs after timeout,
// SIGKILL. It returns once the container's end is recorded. A container that
// does not run is left as it is.
func (s *Store) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != Running && c.State.Status != Paused {
		return nil
	}
	sig := syscall.SIGTERM
	if c.Config.StopSignal != "" {
		if sig, err = ParseSignal(c.Config.StopSignal); err != nil {
			return err
		}
	}
	if c.State.Status == Paused {
		sig = syscall.SIGKILL // a frozen process cannot act on a signal
	}
	if err := s.signal(c.ID, sig); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	_, err = s.Wait(tctx, c.ID)
	cancel()
	if err == nil || ctx.Err() != nil {
		return err
	}
	if err := s.signal(c.ID, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	_, err = s.Wait(ctx, c.ID)
	return err
}

// Wait waits until container ref is not running, and returns its exit code.
// A container that was created and never started is waited for until it has
// run and stopped, as Docker does.
func (s *Store) Wait(ctx context.Context, ref string) (int, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return 0, err
	}
	for {
		// The owner holds its lock until the end is recorded.
		l, err := lockfile.Shared(ctx, s.path(id, "owner.lock"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("%w: %s", ErrNotFound, ref)
			}
			return 0, err
		}
		l.Unlock()
		c, err := s.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		if c.State.Status == Exited {
			return c.State.ExitCode, nil
		}
		// Created, or an orphan that runs on without its owner.
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// waitOwner takes the owner lock of container id, waiting (30 seconds at
// most) for an owner to finish.
func (s *Store) waitOwner(ctx context.Context, id string) (*lockfile.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := lockfile.Exclusive(ctx, s.path(id, "owner.lock"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("container %s: its owner did not finish in 30 seconds", ShortID(id))
	}
	return l, err
}

// killWait kills an orphaned container and waits (10 seconds at most) until
// its processes are gone.
func (s *Store) killWait(ctx context.Context, id string) error {
	s.signal(id, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for s.alive(id) {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: still running 10 seconds after SIGKILL", ShortID(id))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// ParseSignal parses a signal as Docker's CLI takes it: a name with or
// without "SIG" ("TERM", "SIGKILL") or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: invalid signal: %s", ErrInvalid, s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: invalid signal: %s", ErrInvalid, s)
}
