package runtime

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/userns"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// hostCaps are the capabilities this process can grant: those of its bounding
// set. (Asking for one it lacks fails with "unable to apply caps".)
func hostCaps() []string {
	last, err := capability.LastCap()
	if err != nil {
		return defaultCaps
	}
	var out []string
	for _, c := range capability.ListKnown() {
		if c > last {
			continue
		}
		if ok, err := capability.GetBound(c); err == nil && ok {
			out = append(out, capName(c))
		}
	}
	return out
}

func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

func knownCap(name string) bool {
	return slices.ContainsFunc(capability.ListKnown(), func(c capability.Cap) bool { return capName(c) == name })
}

func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// capabilities applies --privileged, --cap-add and --cap-drop to Docker's
// default set as Docker does (drops first, then adds), never granting what
// the host does not hold.
func capabilities(h HostConfig) ([]string, error) {
	host := hostCaps()
	if h.Privileged {
		return host, nil
	}
	for _, c := range slices.Concat(h.CapAdd, h.CapDrop) {
		if c := normalizeCap(c); c != "ALL" && !knownCap(c) {
			return nil, fmt.Errorf("%w: unknown capability: %q", ErrInvalid, c)
		}
	}
	caps := slices.Clone(defaultCaps)
	for _, c := range h.CapDrop {
		c = normalizeCap(c)
		if c == "ALL" {
			caps = nil
			continue
		}
		caps = slices.DeleteFunc(caps, func(x string) bool { return x == c })
	}
	for _, c := range h.CapAdd {
		c = normalizeCap(c)
		if c == "ALL" {
			caps = slices.Clone(host)
			continue
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return slices.DeleteFunc(caps, func(x string) bool { return !slices.Contains(host, x) }), nil
}

// openInRoot opens name for reading inside rootfs, resolving every symlink as
// if rootfs were "/": a container cannot make cairn read a host file.
func openInRoot(rootfs, name string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(rootfs, name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}

// resolveUser finds the uid, gid, groups and home of a USER spec (name or
// number, with an optional :group) in the container's own /etc/passwd and
// /etc/group.
func resolveUser(rootfs, spec string) (*user.ExecUser, error) {
	if spec == "" {
		spec = "0:0"
	}
	var passwd, group io.Reader
	if f, err := openInRoot(rootfs, "/etc/passwd"); err == nil {
		defer f.Close()
		passwd = f
	}
	if f, err := openInRoot(rootfs, "/etc/group"); err == nil {
		defer f.Close()
		group = f
	}
	u, err := user.GetExecUser(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("%w: unable to find user %s: %w", ErrInvalid, spec, err)
	}
	return u, nil
}

// processSpec describes one process of a container.
type processSpec struct {
	args []string
	env  []string
	cwd  string
	user string
	tty  bool
}

// process is the runtime-spec process for p in container c, whose root is
// mounted on rootfs: its user and groups (--group-add's too), capabilities,
// no_new_privs (on unless --privileged, or no-new-privileges=false) and
// --ulimit's limits. Exec'd processes get the same, as in Docker.
func process(c *Container, rootfs string, p processSpec) (*specs.Process, error) {
	u, err := resolveUser(rootfs, p.user)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(c.Host)
	if err != nil {
		return nil, err
	}
	// The primary group is among the supplementary ones, as in Docker.
	gids := []uint32{uint32(u.Gid)}
	add := func(g int) {
		if !slices.Contains(gids, uint32(g)) {
			gids = append(gids, uint32(g))
		}
	}
	for _, g := range u.Sgids {
		add(g)
	}
	if len(c.Host.GroupAdd) > 0 {
		var group io.Reader
		if f, err := openInRoot(rootfs, "/etc/group"); err == nil {
			defer f.Close()
			group = f
		}
		more, err := user.GetAdditionalGroups(c.Host.GroupAdd, group)
		if err != nil {
			return nil, fmt.Errorf("%w: --group-add: %w", ErrInvalid, err)
		}
		for _, g := range more {
			add(g)
		}
	}
	env := p.env
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+u.Home)
	}
	cwd := p.cwd
	if cwd == "" {
		cwd = "/"
	}
	sec, err := parseSecurityOpts(c.Host.SecurityOpt)
	if err != nil {
		return nil, err
	}
	nnp := !c.Host.Privileged
	if sec.noNewPrivileges != nil {
		nnp = *sec.noNewPrivileges
	}
	rlimits, err := posixRlimits(c.Host.Ulimits)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Terminal:        p.tty,
		Args:            p.args,
		Env:             env,
		Cwd:             cwd,
		User:            specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: gids},
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		NoNewPrivileges: nnp,
		Rlimits:         rlimits,
	}, nil
}

// spec is the runtime-spec of container c, whose root is mounted on rootfs,
// with Docker's default isolation: mount, PID, UTS, IPC and (unless
// --network host) network namespaces; Docker's capabilities, masked and
// read-only paths, device rules and seccomp profile; no_new_privs. With
// --privileged: every capability and device of the host, /sys and cgroups
// writable, nothing masked, no seccomp. Then what `run`'s options change:
// the namespaces (--pid, --ipc, --uts, --cgroupns), mounts (--mount,
// --tmpfs, --shm-size, --init), devices and their rules, cgroup limits,
// sysctls, the seccomp profile and system paths (--security-opt).
//
// It completes proc, the container's process, with what is the init's
// alone: --init's tini before the command, and --oom-score-adj.
//
// netns is the network namespace it joins: "" for one of its own (loopback
// only, or set up by the network store), "host" for none, or the path of
// one. files is the directory whose hosts, hostname and resolv.conf are
// bound on /etc (another container's, for --network container:).
func (s *Store) spec(c *Container, rootfs string, proc *specs.Process, netns, files string) (*specs.Spec, error) {
	h := &c.Host
	dir := files
	ro := func(opts ...string) []string {
		if h.Privileged {
			return opts
		}
		return append(opts, "ro")
	}
	sec, err := parseSecurityOpts(h.SecurityOpt)
	if err != nil {
		return nil, err
	}
	if h.OomScoreAdj != 0 {
		proc.OOMScoreAdj = &h.OomScoreAdj
	}
	spec := &specs.Spec{
		Version:    specs.Version,
		Root:       &specs.Root{Path: rootfs, Readonly: h.ReadonlyRootfs},
		Hostname:   c.Config.Hostname,
		Domainname: c.Config.Domainname,
		Process:    proc,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: ro("nosuid", "noexec", "nodev")},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: ro("nosuid", "noexec", "nodev", "relatime")},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: containerCgroupsPath(c),
			Namespaces:  []specs.LinuxNamespace{{Type: specs.MountNamespace}},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Sysctl: maps.Clone(h.Sysctls),
		},
		Annotations: maps.Clone(h.Annotations),
	}
	// Namespaces.
	ns := func(typ specs.LinuxNamespaceType, path string) {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
	}
	shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize(h), 10)}}
	switch m := h.IpcMode; {
	case m == "host":
		shm = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}}
	case strings.HasPrefix(m, ModeContainer):
		donor, err := s.donor(c, strings.TrimPrefix(m, ModeContainer), "IPC")
		if err != nil {
			return nil, err
		}
		ns(specs.IPCNamespace, fmt.Sprintf("/proc/%d/ns/ipc", donor.State.Pid))
		shm = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}}
		if donor.Host.IpcMode == "shareable" {
			shm.Source = filepath.Join(s.RootFS(donor.ID), "dev", "shm")
		}
	case m == "shareable":
		// Its /dev and /dev/shm are mounted here, on the host, under its
		// root: they come into its mount namespace as it is made, and a
		// container that joins its IPC binds that same /dev/shm. They go
		// with the root's mount when it ends (unmounted with what is below).
		ns(specs.IPCNamespace, "")
		if err := mountShareableDev(rootfs, shmSize(h)); err != nil {
			return nil, err
		}
		spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev" })
		shm.Destination = ""
	case m == "none":
		ns(specs.IPCNamespace, "")
		shm.Destination = ""
	default: // private
		ns(specs.IPCNamespace, "")
	}
	if shm.Destination != "" {
		spec.Mounts = append(spec.Mounts, shm)
	}
	switch m := h.PidMode; {
	case m == "host":
	case strings.HasPrefix(m, ModeContainer):
		donor, err := s.donor(c, strings.TrimPrefix(m, ModeContainer), "PID")
		if err != nil {
			return nil, err
		}
		ns(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", donor.State.Pid))
	default:
		ns(specs.PIDNamespace, "")
	}
	if h.UTSMode == "host" {
		spec.Hostname, spec.Domainname = "", ""
	} else {
		ns(specs.UTSNamespace, "")
	}
	if h.CgroupnsMode == "private" {
		ns(specs.CgroupNamespace, "")
	}
	switch netns {
	case "host":
		if userns.RunningInUserNS() {
			// sysfs is mounted only by the user namespace that owns the
			// network namespace: a rootless container on the host's
			// network binds the host's /sys, as runc's rootless spec does.
			for i, m := range spec.Mounts {
				if m.Type == "sysfs" {
					spec.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: ro("rbind", "nosuid", "noexec", "nodev")}
				}
			}
		}
	case "":
		ns(specs.NetworkNamespace, "")
	default:
		ns(specs.NetworkNamespace, netns)
	}
	if userns.RunningInUserNS() {
		// The cgroups are not this user's to make: libcontainer joins
		// none it cannot write (checkRootlessLimits has refused any limit).
		spec.Linux.CgroupsPath = ""
	}

	// Mounts: /etc's files, then volumes, binds and tmpfs, parents first.
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(dir, "resolv.conf"), Options: []string{"rbind", "rprivate"}},
		specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(dir, "hostname"), Options: []string{"rbind", "rprivate"}},
		specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(dir, "hosts"), Options: []string{"rbind", "rprivate"}},
	)
	binds, err := s.userMounts(c)
	if err != nil {
		return nil, err
	}
	for _, m := range binds {
		for _, o := range m.Options {
			switch o {
			case "shared", "rshared":
				spec.Linux.RootfsPropagation = "rshared"
			case "slave", "rslave":
				if spec.Linux.RootfsPropagation == "" {
					spec.Linux.RootfsPropagation = "rslave"
				}
			}
		}
	}
	spec.Mounts = append(spec.Mounts, binds...)
	if h.Init != nil && *h.Init {
		path, err := initBinary()
		if err != nil {
			return nil, err
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: containerInitPath, Type: "bind", Source: path, Options: []string{"bind", "ro"}})
		proc.Args = append([]string{containerInitPath, "--"}, proc.Args...)
	}

	// Resources.
	r, err := resources(h)
	if err != nil {
		return nil, err
	}
	r.Devices = spec.Linux.Resources.Devices
	spec.Linux.Resources = r
	if h.CpuRealtimeRuntime > 0 {
		if err := ensureRealtimeBudget(cgroupParent(h), h.CpuRealtimePeriod, h.CpuRealtimeRuntime); err != nil {
			return nil, err
		}
	}
	if userns.RunningInUserNS() {
		dropUnmappedIDs(spec)
	}
	devices, rules, err := mappedDevices(h.Devices)
	if err != nil {
		return nil, err
	}
	more, err := deviceRules(h.DeviceCgroupRules)
	if err != nil {
		return nil, err
	}
	rules = append(rules, more...)

	if h.Privileged {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		spec.Linux.Devices = hostDevices()
		for _, d := range devices { // --device's, at the paths they ask
			if !slices.ContainsFunc(spec.Linux.Devices, func(h specs.LinuxDevice) bool { return h.Path == d.Path }) {
				spec.Linux.Devices = append(spec.Linux.Devices, d)
			}
		}
		return spec, nil
	}
	spec.Linux.Devices = devices
	r.Devices = append(r.Devices, rules...)
	spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = maskedPaths, readonlyPaths
	if h.MaskedPaths != nil || h.ReadonlyPaths != nil {
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = h.MaskedPaths, h.ReadonlyPaths
	}
	if sec.unconfinedPaths {
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
	}
	switch {
	case sec.seccomp == "unconfined":
		return spec, nil
	case sec.seccomp != "" && sec.seccomp != "builtin":
		if !SeccompEnabled {
			return nil, fmt.Errorf("%w: --security-opt seccomp: this cairn was built without seccomp", ErrInvalid)
		}
		profile, err := seccomp.LoadProfile(sec.seccomp, spec)
		if err != nil {
			return nil, fmt.Errorf("%w: --security-opt seccomp: %w", ErrInvalid, err)
		}
		spec.Linux.Seccomp = profile
		return spec, nil
	}
	if !SeccompEnabled {
		return spec, nil // the caller says so (see SeccompEnabled)
	}
	profile, err := seccomp.GetDefaultProfile(spec) // it reads the capabilities
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if !x32Supported() {
		// The x32 rules of Docker's profile are a third of the filter and
		// cost some 10 ms to compile in every container's init; on a kernel
		// without the x32 ABI no process can make an x32 system call anyway.
		profile.Architectures = slices.DeleteFunc(profile.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
	}
	spec.Linux.Seccomp = profile
	return spec, nil
}
