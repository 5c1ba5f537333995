package rootless

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/user"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/internal/lockfile"
)

const (
	joinEnv  = "_CAIRN_JOIN"  // the pid of the pause process to join (join.go)
	pauseEnv = "_CAIRN_PAUSE" // this process is the pause process (join.go)
)

// The files that hold the user's IDs, as shadow's tools name them.
var (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// ErrSetup is a user's set-up that rootless cairn cannot work with; the
// message says what to change.
var ErrSetup = errors.New("rootless set-up")

func init() {
	// The constructor has joined, if asked to: nothing started from here
	// on (a monitor, a container's init) must join again.
	os.Unsetenv(joinEnv)
}

// Needed reports whether this cairn must Enter before it does anything:
// it runs as an unprivileged user, outside that user's namespace.
func Needed() bool { return os.Geteuid() != 0 && !Active() }

// Enter re-executes cairn (self, with this process's arguments) in the
// user's namespace, starting the pause process that holds it if none runs.
// It returns only with an error.
func Enter(ctx context.Context, self string) error {
	dir, err := RunDir()
	if err != nil {
		return err
	}
	l, err := lockfile.Exclusive(ctx, filepath.Join(dir, "pause.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock() // on an error; an exec closes it
	pid := runningPause(dir)
	if pid == 0 {
		if pid, err = startPause(self, dir); err != nil {
			return err
		}
	}
	env := append(os.Environ(), joinEnv+"="+strconv.Itoa(pid), uidEnv+"="+strconv.Itoa(os.Getuid()))
	return fmt.Errorf("re-execute cairn in the user namespace: %w", syscall.Exec(self, os.Args, env))
}

// PausePID is the pid of the user's pause process, 0 if none runs.
func PausePID() int {
	dir, err := RunDir()
	if err != nil {
		return 0
	}
	return runningPause(dir)
}

// runningPause is the pid the pid file of dir names, if that process is
// still the one that wrote it (its start time says so), else 0.
func runningPause(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "pause.pid"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 || startTime(pid) != f[1] {
		return 0
	}
	return pid
}

// startTime is field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot: with the pid, it names one process for good.
func startTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// startPause starts the pause process in new user and mount namespaces,
// maps their IDs, and records it in dir.
func startPause(self, dir string) (int, error) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := osuser.LookupId(name); err == nil {
		name = u.Username
	}
	cmd := exec.Command(self)
	cmd.Args = []string{"cairn-pause"}
	cmd.Env = []string{pauseEnv + "=1"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS, Setsid: true}
	uidmap, errU := exec.LookPath("newuidmap")
	gidmap, errG := exec.LookPath("newgidmap")
	var uids, gids []user.SubID
	single := errU != nil || errG != nil
	if single {
		// Without the setuid helpers a user may map only its own IDs:
		// containers see one user, root, and files of any other ID fail
		// to unpack (naming them).
		fmt.Fprintf(os.Stderr, "WARNING: newuidmap and newgidmap not found (Debian's package uidmap): containers of user %s get one ID, root, mapped to %d\n", name, uid)
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	} else {
		var err error
		if uids, err = subordinate(SubUIDFile, name, uid); err != nil {
			return 0, fmt.Errorf("%w: read the subordinate UIDs of user %s: %w", ErrSetup, name, err)
		}
		if gids, err = subordinate(SubGIDFile, name, uid); err != nil {
			return 0, fmt.Errorf("%w: read the subordinate GIDs of user %s: %w", ErrSetup, name, err)
		}
		for _, f := range []struct {
			file   string
			ranges []user.SubID
		}{{SubUIDFile, uids}, {SubGIDFile, gids}} {
			if len(f.ranges) == 0 {
				return 0, fmt.Errorf("%w: user %s has no subordinate IDs in %s: add a line %q there, as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s",
					ErrSetup, name, f.file, name+":100000:65536", name)
			}
		}
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%w: start the pause process in a new user namespace: %w (are user namespaces enabled? see /proc/sys/user/max_user_namespaces)", ErrSetup, err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) (int, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if !single {
		for _, m := range []struct {
			tool, file string
			own        int
			ranges     []user.SubID
		}{{uidmap, SubUIDFile, uid, uids}, {gidmap, SubGIDFile, gid, gids}} {
			args := []string{strconv.Itoa(pid)}
			for _, l := range mappings(m.own, m.ranges) {
				args = append(args, strconv.FormatInt(l.Inside, 10), strconv.FormatInt(l.Outside, 10), strconv.FormatInt(l.Count, 10))
			}
			if out, err := exec.Command(m.tool, args...).CombinedOutput(); err != nil {
				return fail(fmt.Errorf("%w: map the IDs of user %s from %s: %s %s: %s", ErrSetup, name, m.file,
					filepath.Base(m.tool), strings.Join(args, " "), strings.TrimSpace(string(out))))
			}
		}
	}
	if err := atomicfile.Replace(filepath.Join(dir, "pause.pid"), []byte(fmt.Sprintf("%d %s\n", pid, startTime(pid))), 0o600); err != nil {
		return fail(err)
	}
	cmd.Process.Release()
	return pid, nil
}
