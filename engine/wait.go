package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cairn-runtime/cairn/events"
	"github.com/cairn-runtime/cairn/runtime"
)

// WaitCondition is what a wait waits for, as Docker's API names it.
type WaitCondition string

// Docker's wait conditions.
const (
	// WaitNotRunning: the container is not running (now, if it is not).
	WaitNotRunning WaitCondition = "not-running"
	// WaitNextExit: the end of its current run, or of the next one if it
	// is not running (the docker CLI asks before it starts a container).
	WaitNextExit WaitCondition = "next-exit"
	// WaitRemoved: the container is gone (run --rm).
	WaitRemoved WaitCondition = "removed"
)

// ParseWaitCondition parses Docker's condition ("" is not-running).
func ParseWaitCondition(s string) (WaitCondition, error) {
	switch c := WaitCondition(s); c {
	case "":
		return WaitNotRunning, nil
	case WaitNotRunning, WaitNextExit, WaitRemoved:
		return c, nil
	}
	return "", fmt.Errorf("%w: invalid condition: %q", ErrInvalid, s)
}

// WaitContainer reads container ref as it is now, and returns what waits
// for cond from there: the exit code of the run it ends with. It is two
// steps so that a caller can tell its client it waits (the docker CLI
// starts the container once it knows) before it does. A container removed
// when its run ended (--rm) has its exit code from the journal's die event.
func (e *Engine) WaitContainer(ctx context.Context, ref string, cond WaitCondition) (func(context.Context) (int, error), error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	id, since := c.ID, time.Now()
	running := c.Up()
	// gone is the exit code of a container removed while it was waited for.
	gone := func(ctx context.Context, last int) (int, error) {
		if code, ok := e.lastExit(ctx, id, since); ok {
			return code, nil
		}
		return last, nil
	}
	untilExit := func(ctx context.Context) (int, error) {
		code, err := e.Containers.Wait(ctx, id)
		if errors.Is(err, runtime.ErrNotFound) {
			return gone(ctx, 0)
		}
		return code, err
	}
	switch cond {
	case WaitNotRunning:
		if !running {
			code := c.State.ExitCode
			return func(context.Context) (int, error) { return code, nil }, nil
		}
		return untilExit, nil
	case WaitNextExit:
		if running {
			return untilExit, nil
		}
		// Not running: until a run begins (or a start fails), then its end.
		started, failed := c.State.StartedAt, c.State.Error
		return func(ctx context.Context) (int, error) {
			for {
				c, err := e.Containers.Get(ctx, id)
				if errors.Is(err, runtime.ErrNotFound) {
					return gone(ctx, 0)
				}
				if err != nil {
					return 0, err
				}
				if !c.State.StartedAt.Equal(started) {
					return untilExit(ctx)
				}
				if c.State.Error != failed && c.State.Error != "" {
					return c.State.ExitCode, nil
				}
				if err := pause(ctx, 20*time.Millisecond); err != nil {
					return 0, err
				}
			}
		}, nil
	case WaitRemoved:
		return func(ctx context.Context) (int, error) {
			last := c.State.ExitCode
			for {
				c, err := e.Containers.Get(ctx, id)
				if errors.Is(err, runtime.ErrNotFound) {
					return gone(ctx, last)
				}
				if err != nil {
					return 0, err
				}
				last = c.State.ExitCode
				if err := pause(ctx, 50*time.Millisecond); err != nil {
					return 0, err
				}
			}
		}, nil
	}
	return nil, fmt.Errorf("%w: invalid condition: %q", ErrInvalid, cond)
}

// lastExit is the exit code of the last die event of container id since
// then, if the journal has one.
func (e *Engine) lastExit(ctx context.Context, id string, since time.Time) (int, bool) {
	if e.Events == nil {
		return 0, false
	}
	code, found := 0, false
	e.Events.Read(ctx, events.ReadOptions{Since: since, Filter: events.Filter{"type": {events.Container}, "container": {id}, "event": {"die"}}},
		func(ev events.Event) error {
			if n, err := strconv.Atoi(ev.Actor.Attributes["exitCode"]); err == nil && ev.Actor.ID == id {
				code, found = n, true
			}
			return nil
		})
	return code, found
}

// pause waits for d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
