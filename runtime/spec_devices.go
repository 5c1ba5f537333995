package runtime

// What a container may touch on the host: device nodes and their cgroup
// rules, resource limits (--ulimit), and the --security-opt it asked for.

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mappedDevices are the device nodes --device makes in the container, and
// the rules that let it use them: a directory maps every device under it.
func mappedDevices(mapped []DeviceMapping) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	addOne := func(host, ctr, perms string) error {
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err != nil {
			return fmt.Errorf("%w: error gathering device information while adding custom device %q: %w", ErrInvalid, host, err)
		}
		typ := deviceType(st.Mode)
		if typ == "" {
			return fmt.Errorf("%w: error gathering device information while adding custom device %q: not a device node", ErrInvalid, host)
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		devs = append(devs, specs.LinuxDevice{Path: ctr, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid})
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms})
		return nil
	}
	for _, d := range mapped {
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		ctr := d.PathInContainer
		if ctr == "" {
			ctr = d.PathOnHost
		}
		st, err := os.Stat(d.PathOnHost)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: error gathering device information while adding custom device %q: %w", ErrInvalid, d.PathOnHost, err)
		}
		if !st.IsDir() {
			if err := addOne(d.PathOnHost, ctr, perms); err != nil {
				return nil, nil, err
			}
			continue
		}
		err = filepath.WalkDir(d.PathOnHost, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Type()&(os.ModeDevice|os.ModeCharDevice) == 0 {
				return nil
			}
			rel, _ := filepath.Rel(d.PathOnHost, p)
			return addOne(p, filepath.Join(ctr, rel), perms)
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return devs, rules, nil
}

// deviceRules parses --device-cgroup-rule's "TYPE MAJOR:MINOR ACCESS"
// ("c 1:3 rwm", "a *:* m").
func deviceRules(in []string) ([]specs.LinuxDeviceCgroup, error) {
	var out []specs.LinuxDeviceCgroup
	for _, rule := range in {
		r, err := parseDeviceRule(rule)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseDeviceRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := fmt.Errorf("%w: invalid device cgroup rule %q: the format is 'TYPE MAJOR:MINOR ACCESS', TYPE one of a, b, c, MAJOR and MINOR numbers or *, ACCESS some of r, w, m", ErrInvalid, rule)
	f := strings.Fields(rule)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) || !validPerms(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	ma, mi, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return &n, err == nil && n >= 0
	}
	major, ok1 := num(ma)
	minor, ok2 := num(mi)
	if !ok1 || !ok2 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: major, Minor: minor, Access: f[2]}, nil
}

// validPerms reports whether p is a device cgroup access: some of r, w, m,
// each once.
func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for i, c := range p {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(p[i+1:], c) {
			return false
		}
	}
	return true
}

// rlimitNames are --ulimit's names, as Docker's (go-units) has them.
var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS,
	"rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING,
	"stack": unix.RLIMIT_STACK,
}

// rlimitValue is a --ulimit value as the kernel has it: -1 is unlimited.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}

// posixRlimits are the runtime-spec limits of --ulimit's.
func posixRlimits(in []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range in {
		if _, ok := rlimitNames[u.Name]; !ok {
			return nil, fmt.Errorf("%w: invalid ulimit type: %s", ErrInvalid, u.Name)
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Hard: rlimitValue(u.Hard), Soft: rlimitValue(u.Soft)})
	}
	return out, nil
}

// lcRlimits are the libcontainer limits of a runtime-spec process's (its
// --ulimit's), for the libcontainer process (newProcess).
func lcRlimits(p *specs.Process) []configs.Rlimit {
	var out []configs.Rlimit
	for _, r := range p.Rlimits {
		if n, ok := rlimitNames[strings.ToLower(strings.TrimPrefix(r.Type, "RLIMIT_"))]; ok {
			out = append(out, configs.Rlimit{Type: n, Hard: r.Hard, Soft: r.Soft})
		}
	}
	return out
}

// securityOpts are the --security-opt a container was created with.
type securityOpts struct {
	seccomp         string // "": Docker's default; "unconfined"; "builtin"; else a profile (JSON)
	noNewPrivileges *bool
	unconfinedPaths bool // systempaths=unconfined: nothing masked or read-only in /proc and /sys
	labelDisable    bool
}

// parseSecurityOpts parses --security-opt as Docker's daemon does (KEY=VALUE,
// or the older KEY:VALUE), refusing what cairn cannot do on this host.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			t := true
			o.noNewPrivileges = &t
			continue
		}
		if opt == "disable" { // Docker's old label:disable shorthand
			o.labelDisable = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return o, fmt.Errorf("%w: invalid --security-opt: %q", ErrInvalid, opt)
		}
		switch k {
		case "seccomp":
			o.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%w: invalid --security-opt %s: %q", ErrInvalid, k, v)
			}
			o.noNewPrivileges = &b
		case "systempaths":
			if v != "unconfined" {
				return o, fmt.Errorf("%w: invalid --security-opt systempaths=%s: the only value is unconfined", ErrInvalid, v)
			}
			o.unconfinedPaths = true
		case "label":
			if v == "disable" {
				o.labelDisable = true // without SELinux there is nothing to label
				continue
			}
			if !selinuxEnabled() {
				return o, fmt.Errorf("%w: --security-opt label=%s: SELinux is not enabled on this host (no /sys/fs/selinux): there is no label to set", ErrInvalid, v)
			}
			return o, fmt.Errorf("%w: --security-opt label=%s: cairn does not set SELinux labels", ErrInvalid, v)
		case "apparmor":
			if v == "unconfined" {
				continue // cairn applies no AppArmor profile
			}
			if !apparmorEnabled() {
				return o, fmt.Errorf("%w: --security-opt apparmor=%s: AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled): no profile can be applied", ErrInvalid, v)
			}
			return o, fmt.Errorf("%w: --security-opt apparmor=%s: cairn does not apply AppArmor profiles", ErrInvalid, v)
		default:
			return o, fmt.Errorf("%w: invalid --security-opt %q: cairn knows seccomp, no-new-privileges, systempaths, label and apparmor", ErrInvalid, opt)
		}
	}
	return o, nil
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
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
		typ := deviceType(st.Mode)
		if typ == "" {
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

// deviceType is the spec's type of a device node of mode m: "c" or "b", or
// "" for a file that is not one.
func deviceType(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFCHR:
		return "c"
	case unix.S_IFBLK:
		return "b"
	}
	return ""
}
