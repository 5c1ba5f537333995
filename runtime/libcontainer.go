package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/userns"

	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // device rules, which specconv emits
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of the init re-exec
	lcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SeccompEnabled reports whether this cairn was built with seccomp (the
// build tag "seccomp", with libseccomp): without it containers run without
// the default seccomp profile, and the front end should say so.
const SeccompEnabled = lcseccomp.Enabled

// IsInit reports whether this process was started by libcontainer as a
// container's init ("cairn init"); if so, the caller must call Init before
// doing anything else.
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == "init" }

// Init is the Go half of a container's init: it sets the container up from
// inside and executes its process. It never returns.
func Init() { libcontainer.Init() }

// create makes the libcontainer container of c from its runtime-spec.
func (s *Store) create(id string, spec *specs.Spec) (*libcontainer.Container, error) {
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, Spec: spec, RootlessCgroups: userns.RunningInUserNS()})
	if err != nil {
		return nil, err
	}
	return libcontainer.Create(s.state, id, cfg)
}

// newProcess is the libcontainer process of a runtime-spec process.
func newProcess(p *specs.Process, init bool) *libcontainer.Process {
	lp := &libcontainer.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: int(p.User.UID), GID: int(p.User.GID),
		NoNewPrivileges: &p.NoNewPrivileges,
		Init:            init,
	}
	lp.Rlimits = lcRlimits(p)
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted}
	}
	return lp
}

// alive reports whether container id has processes running (or frozen).
func (s *Store) alive(id string) bool {
	lc, err := libcontainer.Load(s.state, id)
	if err != nil {
		return false
	}
	st, err := lc.Status()
	return err == nil && (st == libcontainer.Running || st == libcontainer.Paused)
}

// signal sends sig to the init of container id.
func (s *Store) signal(id string, sig syscall.Signal) error {
	lc, err := libcontainer.Load(s.state, id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return ErrNotRunning
	} else if err != nil {
		return err
	}
	if err := lc.Signal(sig); err != nil {
		// Not running, or it ended between libcontainer's look and its
		// signal (os.ErrProcessDone, from the pidfd).
		if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
			return ErrNotRunning
		}
		return err
	}
	return nil
}

// cleanup removes what a container that no longer runs leaves: libcontainer's
// state and the container's cgroups (killing what is left in them), and the
// mount of its root, and its network. It is idempotent.
func (s *Store) cleanup(ctx context.Context, c *Container) error {
	// Its network first: a start cut short may have set it up before
	// libcontainer wrote anything.
	if err := s.detachNetwork(ctx, c.ID); err != nil {
		return fmt.Errorf("container %s: %w", ShortID(c.ID), err)
	}
	if _, err := os.Lstat(filepath.Join(s.state, c.ID)); errors.Is(err, os.ErrNotExist) {
		// libcontainer makes its directory before the cgroups: nothing of it is left.
		return snapshot.Unmount(s.RootFS(c.ID))
	}
	lc, err := libcontainer.Load(s.state, c.ID)
	switch {
	case err == nil:
		err = destroy(lc)
	case errors.Is(err, libcontainer.ErrNotExist):
		// A start cut short before libcontainer wrote its state may have
		// left its directory, cgroups, and a process in them.
		if err = destroyCgroups(containerCgroupsPath(c)); err == nil {
			err = os.RemoveAll(filepath.Join(s.state, c.ID))
		}
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", ShortID(c.ID), err)
	}
	return snapshot.Unmount(s.RootFS(c.ID))
}

// destroy removes libcontainer's state and the cgroups of a container whose
// init is gone (or is killed here, if it is frozen or never ran).
func destroy(lc *libcontainer.Container) error {
	if st, _ := lc.Status(); st == libcontainer.Paused {
		_ = lc.Signal(syscall.SIGKILL) // thaws it, too
	}
	return lc.Destroy()
}

// destroyCgroups kills what is left in the cgroups at path, and removes them.
func destroyCgroups(path string) error {
	m, err := manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		return err
	}
	if pids, err := m.GetAllPids(); err == nil {
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	return m.Destroy()
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// memory cgroup at path (cgroup v1 or v2).
func oomKilled(paths map[string]string) bool {
	path := paths["memory"]
	if path == "" {
		path = paths[""] // cgroup v2
	}
	if path == "" {
		return false
	}
	for _, name := range []string{"memory.oom_control", "memory.events"} {
		f, err := os.Open(filepath.Join(path, name))
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
				n, _ := strconv.Atoi(v)
				return n > 0
			}
		}
	}
	return false
}

// startError classifies an error of starting a process as Docker does: a
// command that does not exist (127), or that cannot be run (126).
//
// It reads the error's text because nothing else is left of it: the
// container's init reports a failed exec to libcontainer across a pipe as a
// bare message (libcontainer's initError), with no errno or type. dockerd
// and Podman classify runc's output the same way.
func startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "exec") && strings.Contains(msg, "no such file or directory"):
		return &kindError{kind: ErrCommandNotFound, err: err}
	case strings.Contains(msg, "permission denied") && strings.Contains(msg, "exec"),
		strings.Contains(msg, "exec format error"), strings.Contains(msg, "is a directory"):
		return &kindError{kind: ErrCannotInvoke, err: err}
	}
	return err
}

// kindError is an error that is one of the sentinels without saying so.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string {
	// libcontainer's own layers say nothing a user needs.
	msg := e.err.Error()
	for _, noise := range []string{"unable to start container process: ", "error during container init: "} {
		msg = strings.Replace(msg, noise, "", 1)
	}
	return msg
}

func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
