package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
)

// ExecOptions are those of `cairn exec`.
type ExecOptions struct {
	Args       []string
	Env        []string // KEY=VALUE (the caller resolves a bare KEY)
	WorkingDir string   // empty: the container's
	User       string   // empty: the container's
	Tty        bool
	OpenStdin  bool
	IO         IO // Stdin, Stdout, Stderr, terminal size; never logged
}

// Process is a process started in a running container by Exec.
type Process struct {
	proc *libcontainer.Process
	io   *stdio
}

// Exec starts a process in running container ref, in its namespaces and
// cgroups, with its capabilities, seccomp profile and environment.
func (s *Store) Exec(ctx context.Context, ref string, o ExecOptions) (*Process, error) {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status == Paused {
		return nil, fmt.Errorf("%w: Container %s is paused, unpause the container before exec", ErrConflict, c.ID)
	}
	if c.State.Status != Running {
		return nil, fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
	}
	if len(o.Args) == 0 {
		return nil, fmt.Errorf("%w: no command specified", ErrInvalid)
	}
	env, err := mergeEnv(nil, o.Env)
	if err != nil {
		return nil, err
	}
	lc, err := libcontainer.Load(s.state, c.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
	}
	cwd := c.Config.WorkingDir
	if o.WorkingDir != "" {
		if !filepath.IsAbs(o.WorkingDir) {
			return nil, fmt.Errorf("%w: the working directory '%s' is invalid, it needs to be an absolute path", ErrInvalid, o.WorkingDir)
		}
		cwd = o.WorkingDir
	}
	user := c.Config.User
	if o.User != "" {
		user = o.User
	}
	spec, err := process(c, s.RootFS(c.ID), processSpec{args: o.Args, env: processEnv(c, o.Tty, env), cwd: cwd, user: user, tty: o.Tty})
	if err != nil {
		return nil, err
	}
	p := &Process{proc: newProcess(spec, false), io: &stdio{}}
	if err := p.io.setup(p.proc, o.IO, o.Tty, o.OpenStdin); err != nil {
		p.io.close()
		return nil, err
	}
	if err := lc.Run(p.proc); err != nil {
		p.io.close()
		return nil, startError(fmt.Errorf("exec in %s: %w", ShortID(c.ID), err))
	}
	if err := p.io.started(o.IO, o.OpenStdin); err != nil {
		p.proc.Signal(syscall.SIGKILL)
		p.Wait(ctx)
		return nil, err
	}
	return p, nil
}

// Pid is the process's ID on the host (0 if it is not known).
func (p *Process) Pid() int {
	pid, _ := p.proc.Pid()
	return pid
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.proc.Signal(sig) }

// Resize sets the size of the process's terminal, if it has one.
func (p *Process) Resize(width, height uint16) error { return p.io.resize(width, height) }

// Wait waits for the process to exit, and its output to be copied, and
// returns its exit code (128+n for a signal n). ctx only carries values:
// the process is waited for to its end.
func (p *Process) Wait(ctx context.Context) (int, error) {
	ps, _ := p.proc.Wait()
	p.io.close()
	return exitStatus(ps), nil
}

// Release lets a process go on without being waited for (exec -d).
func (p *Process) Release() { p.io.close() }

// exitStatus is the exit code of a process as a shell reports it.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 255
	}
	ws := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}
