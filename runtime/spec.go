package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"

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
// mounted on rootfs.
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
	for _, g := range u.Sgids {
		if !slices.Contains(gids, uint32(g)) {
			gids = append(gids, uint32(g))
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
	return &specs.Process{
		Terminal:        p.tty,
		Args:            p.args,
		Env:             env,
		Cwd:             cwd,
		User:            specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: gids},
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		NoNewPrivileges: !c.Host.Privileged,
	}, nil
}

// spec is the runtime-spec of container c, whose root is mounted on rootfs,
// with Docker's default isolation: mount, PID, UTS, IPC and (unless
// --network host) network namespaces; Docker's capabilities, masked and
// read-only paths, device rules and seccomp profile; no_new_privs. With
// --privileged: every capability and device of the host, /sys and cgroups
// writable, nothing masked, no seccomp.
//
// netns is the network namespace it joins: "" for one of its own (loopback
// only, or set up by the network store), "host" for none, or the path of
// one. files is the directory whose hosts, hostname and resolv.conf are
// bound on /etc (another container's, for --network container:).
func (s *Store) spec(c *Container, rootfs string, proc *specs.Process, netns, files string) (*specs.Spec, error) {
	dir := files
	ro := func(opts ...string) []string {
		if c.Host.Privileged {
			return opts
		}
		return append(opts, "ro")
	}
	spec := &specs.Spec{
		Version:    specs.Version,
		Root:       &specs.Root{Path: rootfs, Readonly: c.Host.ReadonlyRootfs},
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
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(dir, "resolv.conf"), Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(dir, "hostname"), Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(dir, "hosts"), Options: []string{"rbind", "rprivate"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath(c.ID),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
	switch netns {
	case "host":
	case "":
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	default:
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	}
	for _, m := range c.Mounts {
		opts := []string{"rbind", "rprivate"}
		if !m.RW {
			opts = append(opts, "ro")
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	r := spec.Linux.Resources
	if c.Host.Memory > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &c.Host.Memory}
	}
	if c.Host.NanoCPUs > 0 {
		period := uint64(100000)
		quota := c.Host.NanoCPUs * int64(period) / 1e9
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if c.Host.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: &c.Host.PidsLimit}
	}
	if c.Host.Privileged {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		spec.Linux.Devices = hostDevices()
		return spec, nil
	}
	spec.Linux.MaskedPaths = maskedPaths
	spec.Linux.ReadonlyPaths = readonlyPaths
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

// x32Supported reports whether the kernel runs x32 system calls (always
// false but on amd64), probed with getpid(2) as an x32 call.
var x32Supported = sync.OnceValue(func() bool {
	if goruntime.GOARCH != "amd64" {
		return false
	}
	const x32Bit, getpid = 0x40000000, 39
	_, _, errno := unix.Syscall(x32Bit|getpid, 0, 0, 0)
	return errno != unix.ENOSYS
})

// hostDevices lists the host's device nodes directly under /dev, for --privileged.
func hostDevices() []specs.LinuxDevice {
	entries, err := os.ReadDir("/dev")
	if err != nil {
		return nil
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		switch e.Name() {
		case "console", "ptmx", "tty", "pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr":
			continue // the container's own
		}
		var st unix.Stat_t
		p := "/dev/" + e.Name()
		if unix.Lstat(p, &st) != nil {
			continue
		}
		typ := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			continue
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
	}
	return out
}
