package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Restarting is the status of a container whose monitor waits to start it
// again (--restart), as Docker's.
const Restarting = "restarting"

var killSignal = syscall.SIGKILL

// ParseRestartPolicy parses --restart: no, on-failure[:N], always,
// unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("%w: maximum retry count must be an integer: %q", ErrInvalid, count)
		}
		p.MaximumRetryCount = n
	}
	return p, checkRestartPolicy(&p)
}

// checkRestartPolicy checks a policy as Docker's daemon does, the name ""
// becoming "no".
func checkRestartPolicy(p *RestartPolicy) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch p.Name {
	case "", "no":
		p.Name = "no"
		if p.MaximumRetryCount != 0 {
			return bad("maximum retry count cannot be used with restart policy 'no'")
		}
	case "always", "unless-stopped":
		if p.MaximumRetryCount != 0 {
			return bad("maximum retry count cannot be used with restart policy '%s'", p.Name)
		}
	case "on-failure":
		if p.MaximumRetryCount < 0 {
			return bad("maximum retry count cannot be negative")
		}
	default:
		return bad("invalid restart policy '%s'", p.Name)
	}
	return nil
}

// restarts reports whether the policy of c has its monitor start it again
// after it exited with code, as Docker's restart manager decides: never
// after a manual stop; on-failure after a non-zero exit, at most
// MaximumRetryCount times (0: no bound); always and unless-stopped always.
func restarts(c *Container, code int) bool {
	if c.ManuallyStopped {
		return false
	}
	switch p := c.Host.RestartPolicy; p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// HasRestartPolicy says whether the container's monitor starts it again
// after it exits (--restart always, unless-stopped or on-failure).
func (c *Container) HasRestartPolicy() bool { return hasPolicy(c) }

// hasPolicy reports whether c has a restart policy that may restart it.
func hasPolicy(c *Container) bool {
	switch c.Host.RestartPolicy.Name {
	case "always", "unless-stopped", "on-failure":
		return true
	}
	return false
}

// backoff is Docker's delay before a restart: 100 ms, doubled at every
// restart in a row, at most a minute; a run of ten seconds or more starts
// it again from 100 ms.
type backoff struct{ next time.Duration }

func (b *backoff) delay(ran time.Duration) time.Duration {
	if ran >= 10*time.Second || b.next == 0 {
		b.next = 100 * time.Millisecond
	}
	d := b.next
	b.next = min(2*b.next, time.Minute)
	return d
}

// markStopped records that the container was stopped on purpose (stop,
// kill, rm -f), so that its monitor does not start it again.
func (s *Store) markStopped(ctx context.Context, id string) error {
	_, err := s.update(ctx, id, func(c *Container) error {
		c.ManuallyStopped = true
		return nil
	})
	return err
}

// BootRestart starts, after a reboot, the containers whose policy says so
// (always, and unless-stopped unless they were stopped by hand), as
// Docker's daemon does when it starts and podman-restart.service does. It
// returns the IDs it started and the errors of those it could not.
func (s *Store) BootRestart(ctx context.Context) ([]string, error) {
	list, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var started []string
	var errs []error
	for _, c := range list {
		p := c.Host.RestartPolicy.Name
		if c.State.Status == Running || c.State.Status == Paused || c.State.Status == Restarting {
			continue
		}
		if p != "always" && (p != "unless-stopped" || c.ManuallyStopped) {
			continue
		}
		if err := s.StartDetached(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", ShortID(c.ID), err))
			continue
		}
		started = append(started, c.ID)
	}
	return started, errors.Join(errs...)
}
