package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// --volumes-from's mounts give way to -v and --mount at the same place; -v
// and --mount (and --tmpfs) may not share one; an image's VOLUME is
// anonymous unless something else is mounted there.
func TestContainerMounts(t *testing.T) {
	src := t.TempDir()
	ms, err := containerMounts(mountSources{
		binds: []string{src + ":/b:ro,rshared", "vol:/v:nocopy"},
		specs: []MountSpec{
			{Type: "tmpfs", Target: "/t", TmpfsOptions: &TmpfsOptions{SizeBytes: 2 << 20, Mode: 0o1770}},
			{Type: "bind", Source: src, Target: "/from/replaced", ReadOnly: true, BindOptions: &BindOptions{Propagation: "rslave"}},
			{Type: "volume", Target: "/anon"},
		},
		tmpfs:        map[string]string{"/tt": "size=1m"},
		from:         []Mount{{Type: "volume", Name: "lent", Destination: "/from/replaced", RW: true}, {Type: "volume", Name: "lent2", Destination: "/from/kept", RW: true}},
		imageVolumes: map[string]struct{}{"/img": {}, "/v": {}, "/tt": {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		s := m.Type + " " + m.Destination
		switch {
		case m.Type == "bind":
			s += " " + m.Propagation
		case m.Type == "tmpfs":
			s += " " + m.Data
		case m.Anonymous:
			s += " anonymous"
		default:
			s += " " + m.Name
		}
		if !m.RW {
			s += " ro"
		}
		if m.NoCopy {
			s += " nocopy"
		}
		got = append(got, s)
	}
	want := []string{"bind /b rshared ro", "volume /v vol nocopy", "tmpfs /t mode=1770,size=2m", "volume /anon anonymous", "volume /img anonymous",
		"bind /from/replaced rslave ro", "volume /from/kept lent2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for name, bad := range map[string]mountSources{
		"-v and --mount":    {binds: []string{"/a:/x"}, specs: []MountSpec{{Type: "tmpfs", Target: "/x"}}},
		"-v and --tmpfs":    {binds: []string{"/a:/x"}, tmpfs: map[string]string{"/x": ""}},
		"bind without src":  {specs: []MountSpec{{Type: "bind", Target: "/x"}}},
		"missing bind src":  {specs: []MountSpec{{Type: "bind", Source: filepath.Join(src, "nope"), Target: "/x"}}},
		"tmpfs with source": {specs: []MountSpec{{Type: "tmpfs", Source: "x", Target: "/x"}}},
		"unknown type":      {specs: []MountSpec{{Type: "npipe", Target: "/x"}}},
		"bad propagation":   {binds: []string{"/a:/x:shared,private"}},
		"nocopy on a bind":  {binds: []string{"/a:/x:nocopy"}},
		"ro and rw":         {binds: []string{"v:/x:ro,rw"}},
		"relative tmpfs":    {tmpfs: map[string]string{"x": ""}},
	} {
		if _, err := containerMounts(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTmpfsOptions(t *testing.T) {
	for data, want := range map[string]string{
		"":                   "noexec,nosuid,nodev",
		"exec":               "exec,nosuid,nodev",
		"size=1m,mode=700":   "noexec,nosuid,nodev,size=1m,mode=700",
		"size=1m,size=2m,rw": "noexec,nosuid,nodev,size=2m,rw",
	} {
		got, err := tmpfsOptions(data, false)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("tmpfsOptions(%q) = %q, %v; want %q", data, got, err, want)
		}
	}
	if got, _ := tmpfsOptions("", true); strings.Join(got, ",") != "noexec,nosuid,nodev,ro" {
		t.Errorf("read-only: %q", got)
	}
	for _, bad := range []string{"bogus", "size", "uid:0"} {
		if _, err := tmpfsOptions(bad, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1g", 3 << 20: "3m", 4096: "4k", 1000: "1000"} {
		if got := tmpfsSize(n); got != want {
			t.Errorf("tmpfsSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDeviceRules(t *testing.T) {
	r, err := parseDeviceRule("c 1:9 rwm")
	if err != nil || r.Type != "c" || *r.Major != 1 || *r.Minor != 9 || r.Access != "rwm" || !r.Allow {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = parseDeviceRule("a *:* m")
	if err != nil || r.Major != nil || r.Minor != nil {
		t.Fatalf("wildcards: %+v %v", r, err)
	}
	for _, bad := range []string{"c 1:9", "x 1:9 r", "c 1 r", "c 1:9 rr", "c 1:9 q", "c -1:9 r"} {
		if _, err := parseDeviceRule(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	devs, rules, err := mappedDevices([]DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/xnull", CgroupPermissions: "r"}})
	if err != nil || len(devs) != 1 || devs[0].Path != "/dev/xnull" || devs[0].Major != 1 || devs[0].Minor != 3 || rules[0].Access != "r" {
		t.Fatalf("%+v %+v %v", devs, rules, err)
	}
	if _, _, err := mappedDevices([]DeviceMapping{{PathOnHost: "/etc/hostname"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a regular file: %v", err)
	}
}

func TestSecurityOpts(t *testing.T) {
	o, err := parseSecurityOpts([]string{"no-new-privileges=false", "seccomp=unconfined", "label=disable", "systempaths=unconfined", "apparmor=unconfined"})
	if err != nil || o.noNewPrivileges == nil || *o.noNewPrivileges || o.seccomp != "unconfined" || !o.unconfinedPaths {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := parseSecurityOpts([]string{"no-new-privileges"}); err != nil || !*o.noNewPrivileges {
		t.Fatalf("bare no-new-privileges: %+v %v", o, err)
	}
	if o, err := parseSecurityOpts([]string{"seccomp:unconfined"}); err != nil || o.seccomp != "unconfined" {
		t.Fatalf("the older colon: %+v %v", o, err)
	}
	bad := []string{"bogus=1", "nothing", "no-new-privileges=maybe", "systempaths=confined"}
	if !selinuxEnabled() {
		bad = append(bad, "label=type:svirt_t")
	}
	if !apparmorEnabled() {
		bad = append(bad, "apparmor=docker-default")
	}
	for _, b := range bad {
		if _, err := parseSecurityOpts([]string{b}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", b, err)
		}
	}
}

func TestRlimits(t *testing.T) {
	rl, err := posixRlimits([]Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "core", Soft: -1, Hard: -1}})
	if err != nil || len(rl) != 2 || rl[0].Type != "RLIMIT_NOFILE" || rl[0].Soft != 100 || rl[0].Hard != 200 || rl[1].Hard != ^uint64(0) {
		t.Fatalf("%+v %v", rl, err)
	}
	if _, err := posixRlimits([]Ulimit{{Name: "bogus"}}); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if err := checkUlimits([]Ulimit{{Name: "nofile", Soft: 200, Hard: 100}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("soft over hard: %v", err)
	}
	if !hasCapSysResource() {
		if err := checkUlimits([]Ulimit{{Name: "nofile", Soft: -1, Hard: -1}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
			t.Fatalf("above this process's hard limit: %v", err)
		}
	}
}

func TestSysctls(t *testing.T) {
	h := &HostConfig{NetworkMode: "none", IpcMode: "private"}
	for _, ok := range []string{"net.ipv4.ip_forward", "kernel.shmmax", "fs.mqueue.msg_max", "kernel.sem"} {
		if err := checkSysctl(ok, h); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"kernel.hostname", "vm.swappiness", "fs.file-max"} {
		if err := checkSysctl(bad, h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if err := checkSysctl("net.ipv4.ip_forward", &HostConfig{NetworkMode: ModeHost}); !errors.Is(err, ErrInvalid) {
		t.Errorf("net.* with the host's network: %v", err)
	}
	if err := checkSysctl("kernel.shmmax", &HostConfig{IpcMode: "host"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("IPC's with the host's IPC: %v", err)
	}
}

func TestHealthcheckMerge(t *testing.T) {
	image := &dockerspec.HealthcheckConfig{Test: []string{"CMD", "check"}, Interval: 5e9, Retries: 2}
	got := mergeHealthcheck(&dockerspec.HealthcheckConfig{Interval: 1e9}, image)
	if strings.Join(got.Test, " ") != "CMD check" || got.Interval != 1e9 || got.Retries != 2 {
		t.Fatalf("%+v", got)
	}
	if got := mergeHealthcheck(&dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, image); got.Test[0] != "NONE" {
		t.Fatalf("--no-healthcheck: %+v", got)
	}
	if got := mergeHealthcheck(nil, nil); got != nil {
		t.Fatalf("none: %+v", got)
	}
	for _, bad := range []*dockerspec.HealthcheckConfig{{Interval: 1}, {Retries: -1}, {Timeout: -1e9}, {Test: []string{"SHELL", "x"}}} {
		if err := checkHealthcheck(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestInitBinary(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "tini-static")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	saved := initCandidates
	defer func() { initCandidates = saved }()
	initCandidates = []string{script, filepath.Join(dir, "none")}
	if _, err := initBinary(); !errors.Is(err, ErrNoInit) {
		t.Fatalf("a script is not a static init: %v", err)
	}
}
