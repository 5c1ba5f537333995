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
	// As Docker: a container killed by hand is not restarted by its policy.
	if hasPolicy(c) {
		if err := s.markStopped(ctx, c.ID); err != nil {
			return err
		}
	}
	s.emit(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := s.signal(c.ID, sig); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return fmt.Errorf("%w: Container %s is not running", ErrNotRunning, c.ID)
		}
		return err
	}
	if sig != syscall.SIGKILL {
		return nil
	}
	// As Docker's: a kill returns once the end is recorded (or, with --rm,
	// the container is gone), so that what comes next sees the container
	// exited; bounded, as Docker's ten seconds, for a process the kernel
	// cannot end (in an uninterruptible sleep).
	wctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	_, err = s.Wait(wctx, c.ID)
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		return nil
	case ctx.Err() == nil && wctx.Err() != nil:
		return fmt.Errorf("container %s: still running %v after SIGKILL", ShortID(c.ID), killTimeout)
	}
	return err
}

// killTimeout is how long Kill waits for a container's end after SIGKILL.
const killTimeout = 10 * time.Second

// Stop stops container ref as `docker stop` does: its stop signal (SIGTERM
// unless the image says otherwise), then, if it still runs after timeout,
// SIGKILL. It returns once the container's end is recorded. A container that
// does not run is left as it is.
func (s *Store) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status == Restarting {
		// Between two runs: its monitor sees the mark and gives up.
		if err := s.markStopped(ctx, c.ID); err != nil {
			return err
		}
		_, err := s.Wait(ctx, c.ID)
		return err
	}
	if c.State.Status != Running && c.State.Status != Paused {
		return nil
	}
	if err := s.markStopped(ctx, c.ID); err != nil {
		return err
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
	if err == nil {
		s.emit(c, "stop", nil)
	}
	return err
}

// Wait waits until container ref is not running, and returns its exit code.
// A container that was created and never started is waited for until it has
// run and stopped, as Docker does. A container whose monitor restarts it is
// waited for until its current run ends.
func (s *Store) Wait(ctx context.Context, ref string) (int, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return 0, err
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if !hasPolicy(c) {
		return s.waitOwned(ctx, id)
	}
	// Its monitor owns it across its runs: the record tells when a run ends.
	if c.State.Status == Exited {
		return c.State.ExitCode, nil
	}
	running := c.Live()
	run := c.State.StartedAt
	for {
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
		if c, err = s.Get(ctx, id); err != nil {
			return 0, err
		}
		switch c.State.Status {
		case Exited:
			return c.State.ExitCode, nil
		case Restarting:
			if running {
				return c.State.ExitCode, nil // the run it waited for ended
			}
		case Running, Paused:
			if !running {
				running, run = true, c.State.StartedAt
			} else if !c.State.StartedAt.Equal(run) {
				return c.State.ExitCode, nil // it ended, and another began
			}
		}
	}
}

// waitOwned is Wait of container id, whose owner lets go of it when it
// ends.
func (s *Store) waitOwned(ctx context.Context, id string) (int, error) {
	for {
		// The owner holds its lock until the end is recorded.
		l, err := lockfile.Shared(ctx, s.path(id, "owner.lock"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("%w: %s", ErrNotFound, id)
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

// Signal passes sig on to the init of running container ref, as the
// signal proxy of an attached client does: unlike Kill, it does not count
// as a stop by hand.
func (s *Store) Signal(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	return s.signal(c.ID, sig)
}
