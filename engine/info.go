package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/user"

	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/rootless"
	"github.com/cairn-runtime/cairn/snapshot"

	"github.com/cairn-runtime/cairn/runtime"
	"golang.org/x/sys/unix"
)

// What the build says of cairn, set by the linker:
//
//	go build -ldflags "-X github.com/cairn-runtime/cairn/engine.version=1.2.3
//	  -X github.com/cairn-runtime/cairn/engine.gitCommit=abc1234
//	  -X github.com/cairn-runtime/cairn/engine.buildTime=2026-12-02T10:00:00Z" ./cmd/cairn
//
// Unset, the commit and the time come from the Go toolchain's VCS stamp
// (debug.ReadBuildInfo's vcs.revision and vcs.time) when it made one.
var (
	version   = ""
	gitCommit = ""
	buildTime = ""
)

// Build is what the binary knows of its own build.
type Build struct {
	Version   string    // cairn's version ("dev" unless the build set one)
	GitCommit string    // short, with "-dirty" for a modified tree; "" if unknown
	BuildTime time.Time // zero if unknown
	GoVersion string
	Os, Arch  string
	// Runc is the version of the libcontainer module linked in ("1.5.2").
	Runc string
}

// BuildInfo returns what this binary knows of its own build.
func BuildInfo() Build {
	b := Build{Version: version, GitCommit: gitCommit, GoVersion: goruntime.Version(), Os: goruntime.GOOS, Arch: goruntime.GOARCH}
	if t, err := time.Parse(time.RFC3339, buildTime); err == nil {
		b.BuildTime = t
	}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil && b.BuildTime.IsZero() {
					b.BuildTime = t
				}
			}
		}
		if b.GitCommit == "" && rev != "" {
			b.GitCommit = rev[:min(len(rev), 7)]
			if modified == "true" {
				b.GitCommit += "-dirty"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/opencontainers/runc" {
				if d.Replace != nil {
					d = d.Replace
				}
				b.Runc = strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// Version is `docker version`'s server half, in the shape of Docker's
// API (types.Version): cairn's engine is the binary itself, with
// libcontainer linked in as its runc.
type Version struct {
	Platform      struct{ Name string }
	Components    []Component
	Version       string
	APIVersion    string `json:"ApiVersion,omitempty"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string
	Experimental  bool `json:",omitempty"`
	BuildTime     string
}

// Component is one part of the engine, with its version and details.
type Component struct {
	Name    string
	Version string
	Details map[string]string
}

// EngineName is the platform name `cairn version` shows: "Server: cairn Engine".
const EngineName = "cairn Engine"

// ServerVersion returns what `docker version` shows of the server.
func ServerVersion() Version {
	b := BuildInfo()
	v := Version{
		Version: b.Version, GitCommit: b.GitCommit, GoVersion: b.GoVersion, Os: b.Os, Arch: b.Arch,
		KernelVersion: kernelVersion(),
	}
	v.Platform.Name = EngineName
	if !b.BuildTime.IsZero() {
		v.BuildTime = b.BuildTime.UTC().Format(time.RFC3339Nano)
	}
	details := map[string]string{
		"GitCommit": b.GitCommit, "GoVersion": b.GoVersion, "Os": b.Os, "Arch": b.Arch,
		"KernelVersion": v.KernelVersion, "Experimental": "false",
	}
	if !b.BuildTime.IsZero() {
		details["BuildTime"] = b.BuildTime.UTC().Format(time.ANSIC)
	}
	v.Components = []Component{{Name: "Engine", Version: b.Version, Details: details}}
	if b.Runc != "" {
		// libcontainer is linked in: it has no commit of its own to show.
		v.Components = append(v.Components, Component{Name: "runc", Version: b.Runc, Details: map[string]string{"GitCommit": ""}})
	}
	return v
}

// Info is `docker info`'s server half, in the shape of Docker's API
// (types.Info), with the fields that mean something for cairn.
type Info struct {
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int
	Driver            string
	DriverStatus      [][2]string
	Plugins           struct {
		Volume        []string
		Network       []string
		Authorization []string
		Log           []string
	}
	MemoryLimit        bool
	PidsLimit          bool
	CPUShares          bool
	IPv4Forwarding     bool
	Debug              bool
	SystemTime         string
	LoggingDriver      string
	CgroupDriver       string
	CgroupVersion      string
	KernelVersion      string
	OperatingSystem    string
	OSVersion          string
	OSType             string
	Architecture       string
	IndexServerAddress string
	RegistryConfig     struct {
		InsecureRegistryCIDRs []string
		Mirrors               []string
	}
	NCPU               int
	MemTotal           int64
	DockerRootDir      string
	Name               string
	Labels             []string
	ExperimentalBuild  bool
	ServerVersion      string
	Runtimes           map[string]Runtime
	DefaultRuntime     string
	Swarm              struct{ LocalNodeState string }
	LiveRestoreEnabled bool
	RuncCommit         struct{ ID, Expected string }
	SecurityOptions    []string
	Warnings           []string
	// Rootless is set for the store of an unprivileged user: cairn's own
	// field, as Podman's host.security.rootless and idMappings are.
	Rootless *RootlessInfo `json:",omitempty"`
}

// RootlessInfo is what `cairn info` says of a rootless store.
type RootlessInfo struct {
	UID      int      // the user's own ID: container root
	UIDMap   []string // the namespace's maps, "inside:outside:count"
	GIDMap   []string
	PausePID int    // the process that holds the user's namespace
	Storage  string // how layers are mounted
	Network  string // the user-mode network's helper
	Limits   string // which limits can be enforced
}

// Runtime is an OCI runtime of Info.
type Runtime struct {
	Path string `json:"path"`
}

// Info returns what `docker info` shows of the store and the host.
func (e *Engine) Info(ctx context.Context) (*Info, error) {
	ctrs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	b := BuildInfo()
	v := &Info{
		Containers: len(ctrs), Images: len(imgs),
		Driver: "overlay", LoggingDriver: "json-file",
		MemoryLimit: true, PidsLimit: true, CPUShares: true,
		SystemTime:   time.Now().Format(time.RFC3339Nano),
		CgroupDriver: runtime.CgroupDriver, CgroupVersion: runtime.CgroupVersion(),
		KernelVersion: kernelVersion(), OSType: goruntime.GOOS, Architecture: machine(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               goruntime.NumCPU(), MemTotal: int64(runtime.HostMemory()),
		DockerRootDir: e.Root, Labels: []string{}, ServerVersion: b.Version,
		Runtimes:       map[string]Runtime{"runc": {Path: "libcontainer, linked in"}},
		DefaultRuntime: "runc",
		// Containers outlive every cairn process: there is no daemon
		// whose restart would stop them.
		LiveRestoreEnabled: true,
	}
	for _, c := range ctrs {
		switch c.State.Status {
		case runtime.Running:
			v.ContainersRunning++
		case runtime.Paused:
			v.ContainersPaused++
		default:
			v.ContainersStopped++
		}
	}
	v.DriverStatus = [][2]string{
		{"Backing Filesystem", backingFS(e.Root)},
		{"Supports d_type", "true"},
		{"Native Overlay Diff", "true"}, // commit reads the upper directory
		{"userxattr", strconv.FormatBool(e.rootless)},
	}
	if e.rootless {
		v.SecurityOptions = append(v.SecurityOptions, "name=rootless")
		v.Rootless = rootlessInfo()
		if !e.Containers.CanFreeze() {
			v.CgroupDriver = "none" // as rootless Docker says on cgroup v1
			v.MemoryLimit, v.PidsLimit, v.CPUShares = false, false, false
			v.Warnings = append(v.Warnings, "WARNING: a rootless store on cgroup v1 has no limits and no pause: they are refused, and commit does not pause")
		}
	}
	v.Plugins.Volume = []string{"local"}
	v.Plugins.Network = []string{"bridge", "host", "null"}
	v.Plugins.Log = []string{"json-file"}
	v.Swarm.LocalNodeState = "inactive"
	if fw, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		v.IPv4Forwarding = strings.TrimSpace(string(fw)) == "1"
	}
	v.OperatingSystem, v.OSVersion = osRelease()
	v.Name, _ = os.Hostname()
	if b.Runc != "" {
		v.RuncCommit.ID, v.RuncCommit.Expected = "v"+b.Runc, "v"+b.Runc
	}
	if runtime.SeccompEnabled {
		v.SecurityOptions = append(v.SecurityOptions, "name=seccomp,profile=default")
	} else {
		v.Warnings = append(v.Warnings, "WARNING: cairn was built without seccomp: containers run without the default seccomp profile")
	}
	// Every container's process runs with no_new_privs, as with dockerd
	// --no-new-privileges.
	v.SecurityOptions = append(v.SecurityOptions, "name=no-new-privileges")
	v.RegistryConfig.InsecureRegistryCIDRs = []string{"127.0.0.0/8"}
	v.RegistryConfig.Mirrors = []string{}
	if _, err := e.Registry(nil); err == nil && e.registry != nil {
		for _, r := range e.registry.Insecure {
			if !slices.Contains(v.RegistryConfig.InsecureRegistryCIDRs, r) {
				v.RegistryConfig.InsecureRegistryCIDRs = append(v.RegistryConfig.InsecureRegistryCIDRs, r)
			}
		}
		v.RegistryConfig.Mirrors = append(v.RegistryConfig.Mirrors, e.registry.Mirrors...)
	} else if err != nil {
		v.Warnings = append(v.Warnings, "WARNING: "+err.Error())
	}
	return v, nil
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return goruntime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// osRelease is the host's PRETTY_NAME and VERSION_ID (os-release(5)).
func osRelease() (name, version string) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, val, ok := strings.Cut(sc.Text(), "=")
			if !ok {
				continue
			}
			val = strings.Trim(val, `"'`)
			switch k {
			case "PRETTY_NAME":
				name = val
			case "VERSION_ID":
				version = val
			}
		}
		break
	}
	if name == "" {
		name = "Linux"
	}
	return name, version
}

// backingFS names the filesystem dir is on, as Docker's overlay2 driver does.
func backingFS(dir string) string {
	var st unix.Statfs_t
	for d := dir; ; d = filepath.Dir(d) {
		if unix.Statfs(d, &st) == nil {
			break
		}
		if d == "/" {
			return "<unknown>"
		}
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "extfs", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
		unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs", 0x2fc12fc1: "zfs",
		unix.F2FS_SUPER_MAGIC: "f2fs", unix.NFS_SUPER_MAGIC: "nfs", unix.SQUASHFS_MAGIC: "squashfs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return "<unknown>"
}

// rootlessInfo describes the user namespace this cairn runs in.
func rootlessInfo() *RootlessInfo {
	r := &RootlessInfo{UID: rootless.UID(), PausePID: rootless.PausePID()}
	switch d, err := snapshot.Driver(); {
	case err != nil:
		r.Storage = "none: " + err.Error()
	case d == "overlay":
		r.Storage = "overlay, the kernel's, with userxattr"
	default:
		r.Storage = d
	}
	uids, _ := user.CurrentProcessUIDMap()
	gids, _ := user.CurrentProcessGIDMap()
	for _, m := range []struct {
		maps []user.IDMap
		out  *[]string
	}{{uids, &r.UIDMap}, {gids, &r.GIDMap}} {
		for _, l := range m.maps {
			*m.out = append(*m.out, fmt.Sprintf("%d:%d:%d", l.ID, l.ParentID, l.Count))
		}
	}
	if p, err := network.UserModeHelper(); err == nil {
		r.Network = "pasta (" + p + "), ports forwarded by pasta"
	} else {
		r.Network = "none: " + err.Error()
	}
	if runtime.CgroupVersion() == "2" {
		r.Limits = "cgroup v2: those of the controllers delegated to the user"
	} else {
		r.Limits = "none: cgroup v" + runtime.CgroupVersion() + " delegates no cgroup to a user"
	}
	return r
}
