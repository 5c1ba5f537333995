package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	if rep.Error == "" {
		return nil
	}
	kind := map[string]error{"not-found": ErrCommandNotFound, "cannot-invoke": ErrCannotInvoke, "running": ErrRunning}[rep.Kind]
	if kind != nil {
		return &kindError{kind: kind, err: errors.New(rep.Error)}
	}
	return errors.New(rep.Error)
}

// Serve is the monitor of container id, in the process StartDetached
// started: it starts the container, reports to fd 3, and owns the container
// until it exits. Signals that would end it are ignored: it must outlive
// whatever started it, and record the container's end.
func (s *Store) Serve(ctx context.Context, id string) error {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	out := os.NewFile(3, "report")
	t, err := s.Start(context.WithoutCancel(ctx), id, IO{Log: true})
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
	b, _ := json.Marshal(rep)
	out.Write(b)
	out.Close()
	if err != nil {
		return err
	}
	_, err = t.Wait(ctx)
	return err
}
