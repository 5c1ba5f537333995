package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/internal/lockfile"
)

// report is what a monitor tells the process that started it, once the
// container has started or failed to.
type report struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"` // "not-found", "cannot-invoke", "running"
}

// StartDetached starts container ref in the background, as `run -d` and
// `start` do: a monitor process (cairn re-executed, in a session of its own)
// starts it and owns it until it exits, keeping its output in its log. It
// returns once the container has started, with the error if it did not.
func (s *Store) StartDetached(ctx context.Context, ref string) error {
	return s.startDetached(ctx, ref, false)
}

// StartAttached starts container ref in the background as StartDetached
// does, but its monitor starts it only once a client has attached (Attach
// with Starting), as Docker's CLI attaches before it starts: nothing the
// container writes or reads is lost, and the client learns how the start
// went. It returns once the monitor waits for the client.
func (s *Store) StartAttached(ctx context.Context, ref string) error {
	return s.startDetached(ctx, ref, true)
}

// attachFirstEnv tells the monitor StartAttached started to wait for its
// client; it is runtime's own, from the process that starts it.
const attachFirstEnv = "CAIRN_MONITOR_ATTACH_FIRST"

func (s *Store) startDetached(ctx context.Context, ref string, attachFirst bool) error {
	id, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	if s.monitor == nil {
		return errors.New("runtime: no monitor command configured")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.OpenFile(s.path(id, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return err
	}
	defer logf.Close()
	cmd := s.monitor(id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	if attachFirst {
		cmd.Env = append(os.Environ(), attachFirstEnv+"=1")
	}
	cmd.ExtraFiles = []*os.File{w} // fd 3: the report
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the monitor of %s: %w", ShortID(id), err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		st, _ := cmd.Process.Wait()
		return fmt.Errorf("the monitor of %s exited (%v) before the container started: see %s", ShortID(id), st, s.path(id, "monitor.log"))
	}
	cmd.Process.Release() // it outlives us
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("the monitor of %s: %w", ShortID(id), err)
	}
	return rep.err()
}

// Serve is the monitor of container id, in the process StartDetached
// started: it starts the container, reports to fd 3, and owns the container
// until it exits — and, as its restart policy says, starts it again, with
// Docker's back-off, until it exits for good. Meanwhile it keeps the
// container's log, serves its terminal or stdin and its output to `attach`
// clients, and runs its health check. Signals that would end it are
// caught and dropped: it must outlive whatever started it, and record the
// container's end.
func (s *Store) Serve(ctx context.Context, id string) error {
	// Caught, not ignored: an ignored signal stays ignored across exec,
	// and the container's processes must get SIGINT and SIGHUP as usual.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for range sigs {
		}
	}()
	ctx = context.WithoutCancel(ctx)
	// Inherited without close-on-exec: what the monitor starts (a
	// rootless container's pasta, which stays) must not hold the report
	// open, or its reader never sees its end.
	syscall.CloseOnExec(3)
	out := os.NewFile(3, "report")
	// The owner lock first: a second monitor of a running container must
	// not take the attach socket of the first.
	owner, ok, err := lockfile.TryExclusive(s.path(id, "owner.lock"))
	if err == nil && !ok {
		err = fmt.Errorf("container %s: %w", ShortID(id), ErrRunning)
	}
	if err != nil {
		reportStart(out, err)
		return err
	}
	defer owner.Unlock()
	c, err := s.read(id)
	var h *hub
	if err == nil {
		h, err = s.serveAttach(c)
	}
	if err != nil {
		reportStart(out, err)
		return err
	}
	defer h.close()
	attachFirst := os.Getenv(attachFirstEnv) == "1"
	if attachFirst {
		reportStart(out, nil) // ready: the client attaches, then it starts
		select {
		case <-h.attached:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s: no client attached in 30 seconds", ShortID(id))
		}
	}
	var delays backoff
	for run := 0; ; run++ {
		t, stdin, err := s.startServed(ctx, id, owner, h, run > 0)
		if run == 0 && !attachFirst {
			reportStart(out, err)
		}
		if err != nil {
			h.failed(err)
			return err
		}
		if run == 0 && attachFirst {
			h.started()
		}
		health, stopHealth := sync.WaitGroup{}, func() {}
		if healthArgs(t.c.Config.Healthcheck, t.c.Config.Shell) != nil {
			hctx, cancel := context.WithCancel(ctx)
			health.Add(1)
			go s.checkHealth(hctx, t.c, &health)
			stopHealth = cancel
		}
		t.Retain = hasPolicy(t.c)
		code, err := t.Wait(ctx)
		stopHealth()
		health.Wait()
		if stdin != nil {
			stdin.Close()
		}
		h.ended(code)
		if err != nil || !t.Retain {
			return err
		}
		if t.c.State.Status != Restarting {
			return nil // its policy, as Wait recorded its end, says it is done
		}
		if !s.waitRestart(ctx, id, delays.delay(t.c.State.FinishedAt.Sub(t.c.State.StartedAt))) {
			return nil
		}
	}
}

// startServed starts a run of container id for its monitor, wired to the
// hub: a stdin pipe of its own for this run (with -i), its output to the
// log and to the attached clients.
func (s *Store) startServed(ctx context.Context, id string, owner *lockfile.Lock, h *hub, restart bool) (*Task, io.Closer, error) {
	o := IO{Log: true, Stdout: h.output(1), Stderr: h.output(2)}
	c, err := s.read(id)
	if err != nil {
		return nil, nil, err
	}
	var pipe *stdinPipe
	if c.Config.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		o.Stdin, pipe = r, &stdinPipe{r: r, w: w}
		if !c.Config.Tty {
			// The container has its copy once started; with a terminal
			// cairn reads it, to the pty, until the run ends.
			defer r.Close()
			pipe.r = nil
		}
	}
	t, err := s.startOwned(ctx, id, o, owner, restart)
	if err != nil {
		if pipe != nil {
			pipe.Close()
		}
		return nil, nil, err
	}
	if pipe == nil {
		h.run(nil, t.Resize)
		return t, nil, nil
	}
	h.run(pipe.w, t.Resize)
	return t, pipe, nil
}

// stdinPipe is the pipe of one run's stdin: the hub writes w; r is cairn's
// own read end, with a terminal.
type stdinPipe struct{ r, w *os.File }

func (p *stdinPipe) Close() error {
	p.w.Close()
	if p.r != nil {
		p.r.Close()
	}
	return nil
}

// waitRestart records that container id waits delay to be started again,
// and waits; it returns false when it was stopped or removed meanwhile
// (stop, kill, rm -f), recording it exited.
func (s *Store) waitRestart(ctx context.Context, id string, delay time.Duration) bool {
	_, err := s.update(ctx, id, func(c *Container) error {
		if !c.ManuallyStopped {
			c.State.Status, c.State.Restarting = Restarting, true
		}
		return nil
	})
	if err != nil {
		return false
	}
	deadline := time.Now().Add(delay)
	for {
		c, err := s.read(id)
		if err != nil {
			return false
		}
		if c.ManuallyStopped {
			s.update(ctx, id, func(c *Container) error {
				c.State.Status, c.State.Restarting = Exited, false
				return nil
			})
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(min(100*time.Millisecond, time.Until(deadline)))
	}
}

// reportStart tells the process that started the monitor how the first
// start went, on fd 3.
func reportStart(out *os.File, err error) {
	b, _ := json.Marshal(reportOf(err))
	out.Write(b)
	out.Close()
}

// reportOf is what a monitor says of a start: its error and its kind.
func reportOf(err error) report {
	var rep report
	if err != nil {
		rep.Error = err.Error()
		switch {
		case errors.Is(err, ErrCommandNotFound):
			rep.Kind = "not-found"
		case errors.Is(err, ErrCannotInvoke):
			rep.Kind = "cannot-invoke"
		case errors.Is(err, ErrRunning):
			rep.Kind = "running"
		}
	}
	return rep
}

// startError is the error a report says, with its kind.
func (rep report) err() error {
	if rep.Error == "" {
		return nil
	}
	kind := map[string]error{"not-found": ErrCommandNotFound, "cannot-invoke": ErrCannotInvoke, "running": ErrRunning}[rep.Kind]
	if kind != nil {
		return &kindError{kind: kind, err: errors.New(rep.Error)}
	}
	return errors.New(rep.Error)
}
