package runtime

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Health statuses, as Docker's.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Docker's defaults for a health check that does not say.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	healthLogLength       = 5    // probes kept in State.Health.Log
	healthOutputMax       = 4096 // bytes of a probe's output kept
)

// healthArgs is the command a health check runs: CMD's words, or
// CMD-SHELL's through the container's shell; nil for none.
func healthArgs(hc *dockerspec.HealthcheckConfig, shell []string) []string {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), strings.Join(hc.Test[1:], " "))
	}
	return nil // NONE, or nothing Docker knows
}

// checkHealth runs the health check of container id, as Docker's daemon
// does, until ctx is done: every interval (after the start period's
// failures, which do not count), a probe exec'd in the container, killed
// after its timeout; retries failures in a row make it unhealthy, one
// success healthy. Each change of status is recorded and emitted.
func (s *Store) checkHealth(ctx context.Context, c *Container, wg *sync.WaitGroup) {
	defer wg.Done()
	hc := c.Config.Healthcheck
	args := healthArgs(hc, c.Config.Shell)
	if args == nil {
		return
	}
	interval, timeout, retries := hc.Interval, hc.Timeout, hc.Retries
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	started := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		probe := s.probe(ctx, c.ID, args, timeout)
		if ctx.Err() != nil {
			return // the container ended meanwhile: that probe says nothing
		}
		inStart := hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod
		var changed string
		s.update(context.WithoutCancel(ctx), c.ID, func(rec *Container) error {
			h := rec.State.Health
			if h == nil || rec.State.Status != Running {
				return nil
			}
			h.Log = append(h.Log, probe)
			if len(h.Log) > healthLogLength {
				h.Log = h.Log[len(h.Log)-healthLogLength:]
			}
			before := h.Status
			switch {
			case probe.ExitCode == 0:
				h.Status, h.FailingStreak = HealthHealthy, 0
			case inStart:
				// Failures in the start period do not count.
			default:
				h.FailingStreak++
				if h.FailingStreak >= retries {
					h.Status = HealthUnhealthy
				}
			}
			if h.Status != before {
				changed = h.Status
			}
			return nil
		})
		if changed != "" {
			s.emit(c, "health_status: "+changed, nil)
		}
	}
}

// probe runs one health check in container id.
func (s *Store) probe(ctx context.Context, id string, args []string, timeout time.Duration) HealthProbe {
	p := HealthProbe{Start: now()}
	var out limitedBuffer
	proc, err := s.Exec(ctx, id, ExecOptions{Args: args, IO: IO{Stdout: &out, Stderr: &out}})
	if err != nil {
		p.End, p.ExitCode, p.Output = now(), -1, err.Error()
		return p
	}
	done := make(chan int, 1)
	go func() {
		code, _ := proc.Wait(ctx)
		done <- code
	}()
	select {
	case p.ExitCode = <-done:
	case <-time.After(timeout):
		proc.Signal(killSignal)
		<-done
		p.ExitCode = -1
		out.WriteString("Health check exceeded timeout (" + timeout.String() + ")")
	case <-ctx.Done():
		proc.Signal(killSignal)
		<-done
		p.ExitCode = -1
	}
	p.End, p.Output = now(), out.String()
	return p
}

// limitedBuffer keeps the first healthOutputMax bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := healthOutputMax - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) WriteString(s string) { b.Write([]byte(s)) }

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
