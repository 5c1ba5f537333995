package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/runtime"
)

func TestParseMount(t *testing.T) {
	m, err := parseMount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rshared")
	if err != nil || m.Type != "bind" || m.Source != "/a" || m.Target != "/b" || !m.ReadOnly || m.BindOptions.Propagation != "rshared" {
		t.Fatalf("%+v %v", m, err)
	}
	m, err = parseMount("target=/v,source=vol,volume-nocopy,ro=false")
	if err != nil || m.Type != "volume" || m.Source != "vol" || m.ReadOnly || !m.VolumeOptions.NoCopy {
		t.Fatalf("a volume by default: %+v %v", m, err)
	}
	m, err = parseMount("type=tmpfs,destination=/t,tmpfs-size=2m,tmpfs-mode=1770")
	if err != nil || m.TmpfsOptions.SizeBytes != 2<<20 || m.TmpfsOptions.Mode != 0o1770 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"type=bind,src=/a", "type=tmpfs,dst=/t,bind-propagation=shared", "dst=/x,bogus=1", "dst=/x,readonly=maybe",
		"type=tmpfs,dst=/t,tmpfs-mode=99", "dst=/x,volume-driver=nfs", "dst=/x,volume-opt=type=nfs", "type=bind,src=/a,dst=/b,bind-nonrecursive", "src"} {
		if _, err := parseMount(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]runtime.DeviceMapping{
		"/dev/zero":              {PathOnHost: "/dev/zero", PathInContainer: "/dev/zero", CgroupPermissions: "rwm"},
		"/dev/zero:r":            {PathOnHost: "/dev/zero", PathInContainer: "/dev/zero", CgroupPermissions: "r"},
		"/dev/zero:/dev/xz":      {PathOnHost: "/dev/zero", PathInContainer: "/dev/xz", CgroupPermissions: "rwm"},
		"/dev/zero:/dev/xz:rw":   {PathOnHost: "/dev/zero", PathInContainer: "/dev/xz", CgroupPermissions: "rw"},
		"/dev/sda:/dev/xvda:rwm": {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"},
	} {
		got, err := parseDevice(in)
		if err != nil || got != want {
			t.Errorf("parseDevice(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"/a:/b:rwx", "a:b:c:d", "zero", "/dev/zero:/x:rr"} {
		if _, err := parseDevice(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseThrottle(t *testing.T) {
	if d, err := parseThrottleDevice("/dev/vda:1mb", true); err != nil || d.Rate != 1<<20 {
		t.Fatalf("%+v %v", d, err)
	}
	if d, err := parseThrottleDevice("/dev/vda:100", false); err != nil || d.Rate != 100 {
		t.Fatalf("%+v %v", d, err)
	}
	if d, err := parseWeightDevice("/dev/vda:200"); err != nil || d.Weight != 200 {
		t.Fatalf("%+v %v", d, err)
	}
	for _, bad := range []string{"vda:1", "/dev/vda", "/dev/vda:x"} {
		if _, err := parseThrottleDevice(bad, false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := parseWeightDevice("/dev/vda:5"); err == nil {
		t.Error("weight 5: no error")
	}
}

func TestLabelFileAndSecurityOpts(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "labels")
	os.WriteFile(f, []byte("# comment\n\na=1\nb\n  c=x=y\n"), 0o644)
	got, err := readLabelFile(f)
	if err != nil || !slices.Equal(got, []string{"a=1", "c=x=y"}) {
		t.Fatalf("%q %v", got, err)
	}
	p := filepath.Join(dir, "profile.json")
	os.WriteFile(p, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	opts, err := securityOpts([]string{"seccomp=" + p, "no-new-privileges", "label:disable"})
	if err != nil || opts[0] != `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}` || opts[1] != "no-new-privileges" {
		t.Fatalf("%q %v", opts, err)
	}
	if _, err := securityOpts([]string{"seccomp=" + filepath.Join(dir, "none.json")}); err == nil || !strings.Contains(err.Error(), "opening seccomp profile") {
		t.Fatalf("a missing profile: %v", err)
	}
}

// Every refused flag is declared with its reason, so that --help shows it.
func TestRefusedFlagsDeclared(t *testing.T) {
	flags := map[string]string{}
	for _, f := range runCommand().Flags {
		for _, n := range f.Names() {
			flags[n] = f.String()
		}
	}
	for _, r := range refusedFlags {
		if !strings.Contains(flags[r.name], "refused: "+r.reason) {
			t.Errorf("--%s: %q", r.name, flags[r.name])
		}
	}
	for _, n := range []string{"sig-proxy", "detach-keys", "attach", "init", "mount", "ulimit", "restart"} {
		if flags[n] == "" {
			t.Errorf("--%s is not declared", n)
		}
	}
}
