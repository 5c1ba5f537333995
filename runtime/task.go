package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/runc/libcontainer"
)

// Task is a running container owned by this process: it must Wait for it.
type Task struct {
	s     *Store
	c     *Container
	lc    *libcontainer.Container
	proc  *libcontainer.Process
	io    *stdio
	owner *lockfile.Lock
	net   *network.Attachment // its network, held while it runs (nil: none of the store's)
	// Retain keeps the owner lock after Wait: the monitor of a container
	// with a restart policy owns it across its runs.
	Retain bool
	// restart: this run is the monitor's restart of the container, not a
	// start someone asked for.
	restart bool
}

// ID is the container's ID.
func (t *Task) ID() string { return t.c.ID }

// Container is the container's record as it was started.
func (t *Task) Container() *Container { return t.c }

// Signal sends sig to the container's init.
func (t *Task) Signal(sig os.Signal) error { return t.proc.Signal(sig) }

// Resize sets the size of the container's terminal, if it has one.
func (t *Task) Resize(width, height uint16) error { return t.io.resize(width, height) }

// Start starts the process of container ref, which becomes this process's to
// Wait for: it mounts the container's root, readies its mounts and starts its
// process through libcontainer. A container already running is ErrRunning.
// When Start fails, nothing of the attempt is left, and the container stays
// as it was, with the error in its state.
func (s *Store) Start(ctx context.Context, ref string, o IO) (*Task, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	owner, ok, err := lockfile.TryExclusive(s.path(id, "owner.lock"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("container %s: %w", ShortID(id), ErrRunning)
	}
	t, err := s.startOwned(ctx, id, o, owner, false)
	if err != nil {
		owner.Unlock()
	}
	return t, err
}

// startOwned starts container id, whose owner lock the caller holds (and
// keeps, whatever happens): restart says it is the monitor's restart of
// it, which counts, rather than a start someone asked for, which clears
// the count and the mark of a manual stop.
func (s *Store) startOwned(ctx context.Context, id string, o IO, owner *lockfile.Lock, restart bool) (*Task, error) {
	t := &Task{s: s, owner: owner, io: &stdio{}, restart: restart}
	var err error
	if t.c, err = s.read(id); err != nil {
		return nil, err
	}
	if err := t.start(ctx, o); err != nil {
		t.io.close()
		if !errors.Is(err, ErrRunning) {
			if t.lc != nil {
				t.lc.Destroy()
			}
			bg := context.WithoutCancel(ctx)
			if derr := s.detachNetwork(bg, id); derr != nil {
				err = fmt.Errorf("%w (and undoing its network: %w)", err, derr)
			}
			if t.net != nil {
				t.net.Release()
			}
			snapshot.Unmount(s.RootFS(id))
			c, uerr := s.update(bg, id, func(c *Container) error {
				c.State.Error = err.Error()
				c.State.ExitCode = exitCodeOf(err)
				if c.Live() {
					c.State.Status, c.State.Pid = Exited, 0
				}
				return nil
			})
			if uerr == nil && c.Host.AutoRemove {
				s.remove(bg, c, true)
			}
		}
		return nil, err
	}
	s.emit(t.c, "start", nil)
	return t, nil
}

func (t *Task) start(ctx context.Context, o IO) error {
	s, c := t.s, t.c
	if c.Live() && s.alive(c.ID) {
		return fmt.Errorf("container %s: %w", ShortID(c.ID), ErrRunning)
	}
	// What a previous run left if its owner was killed.
	if err := s.cleanup(ctx, c); err != nil {
		return err
	}
	rootfs := s.RootFS(c.ID)
	m, err := s.snaps.Overlay(c.Chain, snapshot.Layers{
		Top:   []string{s.initLayer},
		Upper: s.Upper(c.ID), Work: s.path(c.ID, "work"),
	})
	if err != nil {
		return err
	}
	if err := m.Mount(rootfs); err != nil {
		return err
	}
	failpoint.Hit("container-mounted")
	if err := s.prepareMounts(ctx, c, rootfs); err != nil {
		return err
	}
	att, netns, files, err := s.attachNetwork(ctx, c)
	if err != nil {
		return err
	}
	if c.Host.NetworkMode == ModeHost {
		netns = "host"
	}
	t.net = att
	args := append([]string{c.Path}, c.Args...)
	proc, err := process(c, rootfs, processSpec{
		args: args, env: processEnv(c, c.Config.Tty, nil),
		cwd: c.Config.WorkingDir, user: c.Config.User, tty: c.Config.Tty,
	})
	if err != nil {
		return err
	}
	spec, err := s.spec(c, rootfs, proc, netns, files)
	if err != nil {
		return err
	}
	if t.lc, err = s.create(c.ID, spec); err != nil {
		return fmt.Errorf("create container %s: %w", ShortID(c.ID), err)
	}
	if o.Log {
		if t.io.log, err = s.openLog(c); err != nil {
			return err
		}
	}
	t.proc = newProcess(proc, true)
	if err := t.io.setup(t.proc, o, c.Config.Tty, c.Config.OpenStdin); err != nil {
		return err
	}
	if err := t.lc.Run(t.proc); err != nil {
		return startError(fmt.Errorf("start container %s: %w", ShortID(c.ID), err))
	}
	if err := t.io.started(o, c.Config.OpenStdin); err != nil {
		t.proc.Signal(syscall.SIGKILL)
		t.proc.Wait()
		return err
	}
	pid, _ := t.proc.Pid()
	t.c, err = s.update(ctx, c.ID, func(c *Container) error {
		c.State = State{Status: Running, Pid: pid, StartedAt: now()}
		if healthArgs(c.Config.Healthcheck, c.Config.Shell) != nil {
			c.State.Health = &Health{Status: HealthStarting, Log: []HealthProbe{}}
		}
		if t.restart {
			c.RestartCount++
		} else {
			c.RestartCount, c.ManuallyStopped = 0, false
		}
		return nil
	})
	if err != nil {
		t.proc.Signal(syscall.SIGKILL)
		t.proc.Wait()
	}
	return err
}

// Wait waits for the container's process to exit and returns its exit code
// (128+n for a signal n, as a shell has it): its output is copied out to the
// end, its exit recorded, its cgroups and mount removed, and, run with --rm,
// the container removed. The container is no longer this process's after.
// The end is recorded whatever becomes of ctx: it only carries values.
func (t *Task) Wait(ctx context.Context) (int, error) {
	ps, _ := t.proc.Wait()
	code := exitStatus(ps)
	t.io.close()
	oom := false
	if st, err := t.lc.State(); err == nil {
		oom = oomKilled(st.CgroupPaths)
	}
	if !t.Retain {
		defer t.owner.Unlock()
	}
	ctx = context.WithoutCancel(ctx) // whatever happens to the caller, the end is recorded
	s, c := t.s, t.c
	// The cgroups and the network go while the root is unmounted and, with
	// --rm, removed.
	destroyed := make(chan error, 1)
	go func() {
		err := destroy(t.lc)
		if nerr := s.detachNetwork(ctx, c.ID); err == nil {
			err = nerr
		}
		if t.net != nil {
			t.net.Release()
		}
		destroyed <- err
	}()
	if oom {
		s.emit(c, "oom", nil)
	}
	died := map[string]string{"exitCode": strconv.Itoa(code)}
	if c.Host.AutoRemove {
		err := snapshot.Unmount(s.RootFS(c.ID))
		if derr := <-destroyed; err == nil {
			err = derr
		}
		s.emit(c, "die", died)
		if err == nil {
			err = s.remove(ctx, c, true)
		}
		return code, err
	}
	ended, err := s.update(ctx, c.ID, func(c *Container) error {
		c.State.Status, c.State.Pid = Exited, 0
		c.State.ExitCode, c.State.OOMKilled = code, oom
		c.State.FinishedAt = now()
		if t.Retain && restarts(c, code) {
			// Straight from running to restarting, as Docker's: no reader
			// sees it exited in between.
			c.State.Status, c.State.Restarting = Restarting, true
		}
		err := snapshot.Unmount(s.RootFS(c.ID))
		if derr := <-destroyed; err == nil && derr != nil {
			err = fmt.Errorf("container %s: %w", ShortID(c.ID), derr)
		}
		return err
	})
	if err == nil {
		t.c = ended // the record as it ended: its monitor reads what it decided
	}
	s.emit(c, "die", died)
	return code, err
}

// exitCodeOf is the exit code Docker gives a container whose start failed.
func exitCodeOf(err error) int {
	switch {
	case errors.Is(err, ErrCommandNotFound):
		return 127
	case errors.Is(err, ErrCannotInvoke):
		return 126
	}
	return 128
}

// Remove removes container ref: its record, layers and state, and with
// o.Volumes its anonymous volumes. A running container is refused, unless
// o.Force, which kills it first.
func (s *Store) Remove(ctx context.Context, ref string, o RemoveOptions) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status == Running || c.State.Status == Paused || c.State.Status == Restarting {
		if !o.Force {
			procedure := "Stop the container before attempting removal or force remove"
			if c.State.Status == Paused {
				procedure = "Unpause and then stop the container before attempting removal or force remove" // Docker's words
			}
			return fmt.Errorf("%w: You cannot remove a %s container %s. %s", ErrConflict, c.State.Status, c.ID, procedure)
		}
		if hasPolicy(c) {
			if err := s.markStopped(ctx, c.ID); err != nil { // its monitor lets it go
				return err
			}
		}
		if err := s.signal(c.ID, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
			return err
		}
	}
	owner, err := s.waitOwner(ctx, c.ID)
	if errors.Is(err, ErrNotFound) {
		return nil // its owner removed it (--rm)
	} else if err != nil {
		return err
	}
	defer owner.Unlock()
	if c, err = s.read(c.ID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if s.alive(c.ID) { // an orphan
		if !o.Force {
			return fmt.Errorf("%w: You cannot remove a running container %s. Stop the container before attempting removal or force remove", ErrConflict, c.ID)
		}
		if err := s.killWait(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := s.cleanup(ctx, c); err != nil {
		return err
	}
	return s.remove(ctx, c, o.Volumes)
}

// RemoveOptions are those of `cairn rm`.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove its anonymous volumes too
}

// remove deletes a stopped container's directory (renamed out of sight first,
// so that it is gone at once) and, with volumes, its anonymous volumes.
func (s *Store) remove(ctx context.Context, c *Container, volumes bool) error {
	trash, err := os.MkdirTemp(s.tmp, "trash-")
	if err != nil {
		return err
	}
	// Renamed over the empty directory made for the name, not into it: a
	// prune sweeps tmp/ without regard for this process, and when it took
	// that directory meanwhile the rename makes the name again. So a
	// missing path here means the container was removed already.
	if err := syscall.Rename(s.path(c.ID), trash); err != nil { // os.Rename refuses a directory as its target
		os.Remove(trash)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove container %s: %w", ShortID(c.ID), err)
	}
	failpoint.Hit("container-trashed")
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove container %s: %w", ShortID(c.ID), err)
	}
	s.emit(c, "destroy", nil)
	if volumes {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Anonymous {
				if err := s.VolumeRemove(ctx, m.Name, true); err != nil && !errors.Is(err, ErrConflict) {
					return err
				}
			}
		}
	}
	return nil
}
