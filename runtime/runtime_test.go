package runtime

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, c := range []struct {
		ep, cmd, flagEP, args []string
		want                  string
	}{
		{ep: []string{"ep"}, cmd: []string{"c1", "c2"}, want: "ep c1 c2"},
		{ep: []string{"ep"}, cmd: []string{"c1"}, args: []string{"a"}, want: "ep a"},
		{cmd: []string{"c1"}, args: []string{"a", "b"}, want: "a b"},
		{ep: []string{"ep"}, cmd: []string{"c1"}, flagEP: []string{"new"}, want: "new"},
		{ep: []string{"ep"}, cmd: []string{"c1"}, flagEP: []string{"new"}, args: []string{"a"}, want: "new a"},
		{ep: []string{"ep"}, cmd: []string{"c1"}, flagEP: []string{""}, want: ""},
		{ep: []string{"ep"}, cmd: []string{"c1"}, flagEP: []string{""}, args: []string{"a"}, want: "a"},
		{ep: []string{"/bin/sh", "-c", "x"}, want: "/bin/sh -c x"},
	} {
		ep, cmd := Command(c.ep, c.cmd, c.flagEP, c.args)
		if got := strings.Join(append(ep, cmd...), " "); got != c.want {
			t.Errorf("Command(%q, %q, %q, %q) = %q, want %q", c.ep, c.cmd, c.flagEP, c.args, got, c.want)
		}
	}
}

// A bare KEY is the front end's to resolve: the runtime never reads its
// own process's environment for a container.
func TestMergeEnv(t *testing.T) {
	t.Setenv("CAIRN_TEST_HOST", "hostval")
	got, err := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4", "CAIRN_TEST_HOST", "CAIRN_TEST_UNSET_X", "D="})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=3", "C=4", "D="}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := mergeEnv(nil, []string{"=x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty name: %v", err)
	}
	c := &Container{}
	c.Config.Hostname = "h"
	c.Config.Env = []string{"PATH=/only"}
	if env := processEnv(c, true, []string{"X=1"}); !slices.Equal(env, []string{"PATH=/only", "HOSTNAME=h", "TERM=xterm", "X=1"}) {
		t.Fatalf("processEnv: %q", env)
	}
}

func TestParseVolumes(t *testing.T) {
	ms, err := containerMounts(mountSources{binds: []string{"/host/a/:/ctr/a:ro", "named:/n", "/anon", "/h:/n/deeper"}, imageVolumes: map[string]struct{}{"/img": {}, "/anon": {}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		s := m.Type + " " + m.Destination
		switch {
		case m.Type == "bind":
			s += " " + m.Source
		case !m.Anonymous:
			s += " " + m.Name
		case len(m.Name) != 64:
			t.Errorf("anonymous volume name %q", m.Name)
		}
		if !m.RW {
			s += " ro"
		}
		got = append(got, s)
	}
	want := []string{"volume /n named", "volume /anon", "volume /img", "bind /ctr/a /host/a ro", "bind /n/deeper /h"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for _, bad := range [][]string{{"/a:rel"}, {"/a:/"}, {"/a:/b:bogus"}, {"a:b:c:d"}, {":/x"}, {"bad name:/x"}, {"/x", "/y:/x/"}} {
		if _, err := containerMounts(mountSources{binds: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM, "SIGUSR1": syscall.SIGUSR1, "9": syscall.SIGKILL, "hup": syscall.SIGHUP} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"NOPE", "0", "-1", "99", ""} {
		if _, err := ParseSignal(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSignal(%q): %v", bad, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	host := hostCaps()
	if len(host) == 0 {
		t.Fatal("no host capabilities")
	}
	caps, err := capabilities(HostConfig{})
	if err != nil || !slices.Equal(caps, slices.DeleteFunc(slices.Clone(defaultCaps), func(c string) bool { return !slices.Contains(host, c) })) {
		t.Fatalf("default: %v %v", caps, err)
	}
	caps, _ = capabilities(HostConfig{CapAdd: []string{"sys_admin", "CAP_NET_ADMIN"}, CapDrop: []string{"chown"}})
	if !slices.Contains(caps, "CAP_SYS_ADMIN") || !slices.Contains(caps, "CAP_NET_ADMIN") || slices.Contains(caps, "CAP_CHOWN") {
		t.Fatalf("add/drop: %v", caps)
	}
	caps, _ = capabilities(HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}})
	if !slices.Equal(caps, []string{"CAP_KILL"}) {
		t.Fatalf("drop ALL, add KILL: %v", caps)
	}
	caps, _ = capabilities(HostConfig{Privileged: true})
	if !slices.Equal(caps, host) {
		t.Fatalf("privileged: %v, the host holds %v", caps, host)
	}
	if _, err := capabilities(HostConfig{CapAdd: []string{"NOT_A_CAP"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown capability: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"a", "web", "a_b.c-d", "0x"} {
		if !validName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "_a", "-a", "a b", "a/b", "é"} {
		if validName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		n := randomName()
		if !validName(n) || !strings.Contains(n, "_") {
			t.Fatalf("generated name %q", n)
		}
		seen[n] = true
	}
	if len(seen) < 40 {
		t.Fatalf("50 generated names, only %d different", len(seen))
	}
	for _, h := range []string{"box", "a.b-c", strings.Repeat("a", 63)} {
		if !validHostname(h) {
			t.Errorf("hostname %q refused", h)
		}
	}
	for _, h := range []string{"", "-a", "a..b", "a_b", strings.Repeat("a", 64)} {
		if validHostname(h) {
			t.Errorf("hostname %q accepted", h)
		}
	}
}
