package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/opencontainers/runc/libcontainer"
)

// Freeze stops the processes of container ref (the cgroup freezer) until
// thaw is called, so that a commit reads a layer no process writes. A
// container that does not run, or that the user paused, is left as it is.
//
// A freeze does not outlive its caller: it holds the container's pause.lock
// and leaves a "frozen" mark meanwhile, and if it dies before it thaws, the
// next process to look at the container (Get, ps) thaws it.
func (s *Store) Freeze(ctx context.Context, ref string) (thaw func() error, err error) {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != Running {
		return func() error { return nil }, nil
	}
	if !s.CanFreeze() {
		return nil, errNoFreezer(c.ID)
	}
	l, err := lockfile.Exclusive(ctx, s.path(c.ID, "pause.lock"))
	if err != nil {
		return nil, err
	}
	lc, err := libcontainer.Load(s.state, c.ID)
	if err != nil {
		l.Unlock()
		if errors.Is(err, libcontainer.ErrNotExist) {
			return func() error { return nil }, nil // it has just stopped
		}
		return nil, err
	}
	mark := s.path(c.ID, "frozen")
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		l.Unlock()
		return nil, err
	}
	if err := lc.Pause(); err != nil {
		os.Remove(mark)
		l.Unlock()
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return func() error { return nil }, nil
		}
		return nil, fmt.Errorf("freeze %s: %w", ShortID(c.ID), err)
	}
	return func() error {
		defer l.Unlock()
		err := lc.Resume()
		if errors.Is(err, libcontainer.ErrNotPaused) {
			err = nil
		}
		os.Remove(mark)
		return err
	}, nil
}

// thawAbandoned thaws a container left frozen by a Freeze whose caller died.
func (s *Store) thawAbandoned(id string) {
	mark := s.path(id, "frozen")
	if _, err := os.Stat(mark); err != nil {
		return
	}
	l, ok, err := lockfile.TryExclusive(s.path(id, "pause.lock"))
	if err != nil || !ok {
		return // a Freeze is under way
	}
	defer l.Unlock()
	if lc, err := libcontainer.Load(s.state, id); err == nil {
		lc.Resume()
	}
	os.Remove(mark)
}

// Pause freezes running container ref until Unpause, as `docker pause`.
func (s *Store) Pause(ctx context.Context, ref string) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if !s.CanFreeze() {
		return errNoFreezer(c.ID)
	}
	switch c.State.Status {
	case Paused:
		return fmt.Errorf("%w: Container %s is already paused", ErrConflict, c.ID)
	case Running:
	default:
		return fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
	}
	_, err = s.update(ctx, c.ID, func(c *Container) error {
		if c.State.Status != Running {
			return fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
		}
		lc, err := libcontainer.Load(s.state, c.ID)
		if err != nil {
			return fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
		}
		if err := lc.Pause(); err != nil {
			return err
		}
		c.State.Status = Paused
		return nil
	})
	if err == nil {
		s.emit(c, "pause", nil)
	}
	return err
}

// Unpause thaws container ref, paused by Pause.
func (s *Store) Unpause(ctx context.Context, ref string) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != Paused {
		return fmt.Errorf("%w: Container %s is not paused", ErrConflict, c.ID)
	}
	_, err = s.update(ctx, c.ID, func(c *Container) error {
		if c.State.Status != Paused {
			return fmt.Errorf("%w: Container %s is not paused", ErrConflict, c.ID)
		}
		if lc, err := libcontainer.Load(s.state, c.ID); err == nil {
			if err := lc.Resume(); err != nil && !errors.Is(err, libcontainer.ErrNotPaused) {
				return err
			}
		}
		c.State.Status = Running
		return nil
	})
	if err == nil {
		s.emit(c, "unpause", nil)
	}
	return err
}

// ViewBase mounts what container ref stands on — its image and the init
// layer, without its changes — read-only, calls fn with it, and unmounts:
// the base a diff compares its upper directory with.
func (s *Store) ViewBase(ctx context.Context, ref string, fn func(base string) error) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	return s.view(ctx, c, []string{s.initLayer}, fn)
}
