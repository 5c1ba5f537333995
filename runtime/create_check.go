package runtime

// Checking what a new container asks of the host (its HostConfig, limits,
// sysctls, health check) and filling in Docker's defaults.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkHost checks the HostConfig of a new container and fills in Docker's
// defaults, refusing by name, with the reason, what cairn cannot do here.
func (s *Store) checkHost(ctx context.Context, h *HostConfig) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if err := checkRestartPolicy(&h.RestartPolicy); err != nil {
		return err
	}
	if h.AutoRemove && h.RestartPolicy.Name != "no" {
		return bad("can't create 'AutoRemove' container with restart policy")
	}
	if err := checkLogConfig(&h.LogConfig); err != nil {
		return err
	}
	switch h.VolumeDriver {
	case "", "local":
	default:
		return bad("--volume-driver %s: cairn has the local volume driver only (other drivers are Docker's volume plugins)", h.VolumeDriver)
	}
	switch h.Runtime {
	case "", "runc":
		h.Runtime = "runc"
	default:
		return bad("--runtime %s: unknown or invalid runtime name: cairn runs containers with runc's libcontainer, built in: its only runtime is runc", h.Runtime)
	}
	switch h.Isolation {
	case "", "default":
		h.Isolation = ""
	default:
		return bad("Invalid isolation: %q - Linux only supports 'default'", h.Isolation)
	}
	container := func(mode, what string) (string, error) {
		other, err := s.Get(ctx, strings.TrimPrefix(mode, ModeContainer))
		if err != nil {
			return "", fmt.Errorf("--%s %s: %w", what, mode, err)
		}
		return ModeContainer + other.ID, nil
	}
	var err error
	switch m := h.IpcMode; {
	case m == "":
		h.IpcMode = "private"
	case m == "private", m == "shareable", m == "none", m == "host":
	case strings.HasPrefix(m, ModeContainer) && len(m) > len(ModeContainer):
		if h.IpcMode, err = container(m, "ipc"); err != nil {
			return err
		}
	default:
		return bad("invalid IPC mode: %s (private, shareable, none, host or container:NAME)", m)
	}
	switch m := h.PidMode; {
	case m == "", m == "host":
	case strings.HasPrefix(m, ModeContainer) && len(m) > len(ModeContainer):
		if h.PidMode, err = container(m, "pid"); err != nil {
			return err
		}
	default:
		return bad("invalid PID mode: %s (host or container:NAME)", m)
	}
	switch h.UTSMode {
	case "", "host":
	default:
		return bad("invalid UTS mode: %s (the only other than the container's own is host)", h.UTSMode)
	}
	switch h.UsernsMode {
	case "", "host":
	default:
		return bad("--userns %s: user namespace remapping is not supported by cairn (yet): containers run in the host's user namespace (--userns host)", h.UsernsMode)
	}
	switch h.CgroupnsMode {
	case "":
		h.CgroupnsMode = "host" // Docker's default on cgroup v1
		if features().v2 {
			h.CgroupnsMode = "private"
		}
	case "host":
	case "private":
		if _, err := os.Stat("/proc/self/ns/cgroup"); err != nil {
			return bad("--cgroupns private: the kernel has no cgroup namespaces")
		}
	default:
		return bad("invalid cgroup namespace mode: %s (host or private)", h.CgroupnsMode)
	}
	switch {
	case h.ShmSize < 0:
		return bad("SHM size can not be less than 0")
	case h.ShmSize > 0 && (h.IpcMode == "host" || strings.HasPrefix(h.IpcMode, ModeContainer)):
		return bad("--shm-size: the container uses the /dev/shm of --ipc %s, whose size is not its own", h.IpcMode)
	case h.ShmSize > 0 && h.IpcMode == "none":
		return bad("--shm-size: with --ipc none the container has no /dev/shm")
	case h.ShmSize == 0:
		h.ShmSize = DefaultShmSize
	}
	if h.OomScoreAdj < -1000 || h.OomScoreAdj > 1000 {
		return bad("Invalid value %d, range for oom score adj is [-1000, 1000]", h.OomScoreAdj)
	}
	if h.OomScoreAdj != 0 && !hasCapSysResource() {
		if own := ownOomScoreAdj(); h.OomScoreAdj < own {
			return bad("--oom-score-adj %d: lower than this process's own (%d), which needs CAP_SYS_RESOURCE: cairn does not have it", h.OomScoreAdj, own)
		}
	}
	if err := checkUlimits(h.Ulimits); err != nil {
		return err
	}
	for _, d := range h.Devices {
		if d.CgroupPermissions != "" && !validPerms(d.CgroupPermissions) {
			return bad("invalid device mode %q for --device %s: some of r, w, m", d.CgroupPermissions, d.PathOnHost)
		}
		if d.PathInContainer != "" && !filepath.IsAbs(d.PathInContainer) {
			return bad("--device %s: the path in the container must be absolute: %s", d.PathOnHost, d.PathInContainer)
		}
	}
	if !h.Privileged {
		if _, _, err := mappedDevices(h.Devices); err != nil {
			return err
		}
	}
	if _, err := deviceRules(h.DeviceCgroupRules); err != nil {
		return err
	}
	sec, err := parseSecurityOpts(h.SecurityOpt)
	if err != nil {
		return err
	}
	if p := sec.seccomp; p != "" && p != "unconfined" && p != "builtin" {
		if !SeccompEnabled {
			return bad("--security-opt seccomp: this cairn was built without seccomp: it cannot apply a profile")
		}
		if _, err := seccomp.LoadProfile(p, &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}); err != nil {
			return bad("--security-opt seccomp: the profile: %v", err)
		}
	}
	if h.Init != nil && *h.Init {
		if _, err := initBinary(); err != nil {
			return fmt.Errorf("--init: %w", err)
		}
	}
	for dst, data := range h.Tmpfs {
		if _, err := tmpfsOptions(data, false); err != nil {
			return fmt.Errorf("--tmpfs %s: %w", dst, err)
		}
	}
	if p := h.CgroupParent; p != "" {
		for _, part := range strings.Split(p, "/") {
			if part == ".." {
				return bad("invalid --cgroup-parent %s: no '..'", p)
			}
		}
	}
	for _, ms := range h.Mounts {
		if ms.Type == "tmpfs" && ms.TmpfsOptions != nil && ms.TmpfsOptions.Mode&^0o7777 != 0 {
			return bad("invalid tmpfs mode %o", uint32(ms.TmpfsOptions.Mode))
		}
	}
	if err := checkRootlessLimits(h); err != nil {
		return err
	}
	// As Docker's daemon: with -m and swap accounted, swap is as much again.
	if h.Memory > 0 && h.MemorySwap == 0 && features().swap {
		h.MemorySwap = 2 * h.Memory
	}
	if err := checkResources(h); err != nil {
		return err
	}
	// As Docker's daemon: a container that shares the host's PIDs or IPC, or
	// is privileged, is not labeled (SELinux), and its record says so.
	labeled := slices.ContainsFunc(h.SecurityOpt, func(o string) bool { return strings.HasPrefix(o, "label=") || strings.HasPrefix(o, "label:") })
	if (h.Privileged || h.PidMode == "host" || h.IpcMode == "host") && !labeled {
		h.SecurityOpt = append(h.SecurityOpt, "label=disable")
	}
	switch {
	case h.Privileged:
		h.MaskedPaths, h.ReadonlyPaths = nil, nil
	case sec.unconfinedPaths:
		h.MaskedPaths, h.ReadonlyPaths = []string{}, []string{}
	default:
		h.MaskedPaths, h.ReadonlyPaths = slices.Clone(maskedPaths), slices.Clone(readonlyPaths)
	}
	return nil
}

// ipcSysctls are the IPC namespace's sysctls: Docker's list.
var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// checkSysctl allows, as Docker, the sysctls of the namespaces the
// container has of its own: IPC (kernel.msg*, kernel.sem, kernel.shm*,
// fs.mqueue.*) and network (net.*).
func checkSysctl(k string, h *HostConfig) error {
	switch {
	case slices.Contains(ipcSysctls, k), strings.HasPrefix(k, "fs.mqueue."):
		if h.IpcMode == "host" || strings.HasPrefix(h.IpcMode, ModeContainer) {
			return fmt.Errorf("%w: sysctl %q is not allowed: the container does not have an IPC namespace of its own (--ipc %s)", ErrInvalid, k, h.IpcMode)
		}
	case strings.HasPrefix(k, "net."):
		if h.NetworkMode == ModeHost || strings.HasPrefix(h.NetworkMode, ModeContainer) {
			return fmt.Errorf("%w: sysctl %q is not allowed: the container does not have a network namespace of its own (--network %s)", ErrInvalid, k, h.NetworkMode)
		}
	default:
		return fmt.Errorf("%w: sysctl %q is not namespaced: it would change the host (a container may set kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.*)", ErrInvalid, k)
	}
	return nil
}

// hasCapSysResource reports whether this process may raise limits past its
// own (rlimits, a lower OOM score).
func hasCapSysResource() bool {
	caps, err := capability.NewPid2(0)
	if err != nil || caps.Load() != nil {
		return false
	}
	return caps.Get(capability.EFFECTIVE, capability.CAP_SYS_RESOURCE)
}

func ownOomScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// checkUlimits checks --ulimit's against what this process holds: a hard
// limit above its own needs CAP_SYS_RESOURCE (the container's limits are set
// from here, by libcontainer).
func checkUlimits(us []Ulimit) error {
	seen := map[string]bool{}
	for _, u := range us {
		res, ok := rlimitNames[u.Name]
		if !ok {
			return fmt.Errorf("%w: invalid ulimit type: %s", ErrInvalid, u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("%w: --ulimit %s given twice", ErrInvalid, u.Name)
		}
		seen[u.Name] = true
		soft, hard := rlimitValue(u.Soft), rlimitValue(u.Hard)
		if soft > hard {
			return fmt.Errorf("%w: ulimit soft limit must be less than or equal to hard limit: %d > %d", ErrInvalid, u.Soft, u.Hard)
		}
		var own unix.Rlimit
		if err := unix.Getrlimit(res, &own); err != nil {
			return err
		}
		if hard > own.Max && !hasCapSysResource() {
			return fmt.Errorf("%w: --ulimit %s=%d:%d: the hard limit is above this process's own (%s), and raising it needs CAP_SYS_RESOURCE: cairn does not have it",
				ErrInvalid, u.Name, u.Soft, u.Hard, rlimitString(own.Max))
		}
	}
	return nil
}

func rlimitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// checkHealthcheck checks --health-*'s as Docker's daemon does.
func checkHealthcheck(hc *dockerspec.HealthcheckConfig) error {
	if hc == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", hc.Interval}, {"Timeout", hc.Timeout}, {"StartPeriod", hc.StartPeriod}, {"StartInterval", hc.StartInterval}} {
		if d.v < 0 || d.v > 0 && d.v < time.Millisecond {
			return fmt.Errorf("%w: %s in Healthcheck cannot be less than 1ms", ErrInvalid, d.name)
		}
	}
	if hc.Retries < 0 {
		return fmt.Errorf("%w: Retries in Healthcheck cannot be negative", ErrInvalid)
	}
	if len(hc.Test) > 0 {
		switch hc.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return fmt.Errorf("%w: invalid health check test %q: NONE, CMD or CMD-SHELL", ErrInvalid, hc.Test[0])
		}
	}
	return nil
}

// mergeHealthcheck is the health check of a container as Docker's daemon
// makes it: the image's, with what the user said over it.
func mergeHealthcheck(user, image *dockerspec.HealthcheckConfig) *dockerspec.HealthcheckConfig {
	if user == nil {
		if image == nil {
			return nil
		}
		hc := *image
		return &hc
	}
	hc := *user
	if image != nil {
		if len(hc.Test) == 0 {
			hc.Test = image.Test
		}
		if hc.Interval == 0 {
			hc.Interval = image.Interval
		}
		if hc.Timeout == 0 {
			hc.Timeout = image.Timeout
		}
		if hc.StartPeriod == 0 {
			hc.StartPeriod = image.StartPeriod
		}
		if hc.StartInterval == 0 {
			hc.StartInterval = image.StartInterval
		}
		if hc.Retries == 0 {
			hc.Retries = image.Retries
		}
	}
	return &hc
}
