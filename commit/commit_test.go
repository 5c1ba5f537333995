package commit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

func applied(t *testing.T, c image.Config, changes ...string) image.Config {
	t.Helper()
	cmds, err := ParseInstructions(changes)
	if err != nil {
		t.Fatal(err)
	}
	a := Applier{Config: &c}
	for _, cmd := range cmds {
		if err := a.Apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestApply(t *testing.T) {
	var base image.Config
	base.Config.Env = []string{"PATH=/bin", "HOME=/root"}
	base.Config.Cmd = []string{"old"}
	base.Config.WorkingDir = "/srv"

	c := applied(t, base, "ENV PATH=$PATH:/opt/bin X=${HOME}/x", "WORKDIR app", "WORKDIR /abs", "WORKDIR rel")
	if !slices.Equal(c.Config.Env, []string{"PATH=/bin:/opt/bin", "HOME=/root", "X=/root/x"}) || c.Config.WorkingDir != "/abs/rel" {
		t.Errorf("ENV, WORKDIR: %q %q", c.Config.Env, c.Config.WorkingDir)
	}
	if !slices.Equal(base.Config.Env, []string{"PATH=/bin", "HOME=/root"}) {
		t.Errorf("the base config was changed: %q", base.Config.Env)
	}
	c = applied(t, base, `ENTRYPOINT ["/bin/app"]`)
	if c.Config.Cmd != nil || !slices.Equal(c.Config.Entrypoint, []string{"/bin/app"}) {
		t.Errorf("ENTRYPOINT clears an inherited CMD: %q %q", c.Config.Entrypoint, c.Config.Cmd)
	}
	c = applied(t, base, "CMD echo $HOME", `ENTRYPOINT ["/bin/app"]`)
	if !slices.Equal(c.Config.Cmd, []string{"/bin/sh", "-c", "echo $HOME"}) {
		t.Errorf("CMD set here stays, shell form unexpanded: %q", c.Config.Cmd)
	}
	base.Config.Shell = []string{"/bin/bash", "-ec"}
	c = applied(t, base, "CMD run it")
	if !slices.Equal(c.Config.Cmd, []string{"/bin/bash", "-ec", "run it"}) {
		t.Errorf("CMD through SHELL: %q", c.Config.Cmd)
	}
	c = applied(t, base, "EXPOSE 80 443/TCP 53/udp 7000-7002", "VOLUME [\"/a\", \"/b\"]", "VOLUME /c", "LABEL a=1 \"b c\"=2", "ONBUILD COPY . /x", "USER 1000:1000", "STOPSIGNAL 9")
	for _, p := range []string{"80/tcp", "443/tcp", "53/udp", "7000/tcp", "7001/tcp", "7002/tcp"} {
		if _, ok := c.Config.ExposedPorts[p]; !ok {
			t.Errorf("EXPOSE: no %s in %v", p, c.Config.ExposedPorts)
		}
	}
	if len(c.Config.Volumes) != 3 || c.Config.Labels["b c"] != "2" || c.Config.OnBuild[0] != "COPY . /x" || c.Config.User != "1000:1000" || c.Config.StopSignal != "9" {
		t.Errorf("config: %+v", c.Config)
	}
	for _, bad := range []string{"RUN true", "FROM x", "COPY a b", "EXPOSE 99999", "EXPOSE 80/icmp", "STOPSIGNAL SIGNOPE"} {
		cmds, err := ParseInstructions([]string{bad})
		if err == nil {
			a := Applier{Config: &image.Config{}}
			err = a.Apply(cmds[0])
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if !errors.Is(err, ErrInstruction) && bad[:4] != "EXPO" && bad[:4] != "STOP" {
			t.Errorf("%q: %v, want ErrInstruction", bad, err)
		}
	}
}

// Diff reads the upper directory of a real overlay, as `docker diff`.
func TestDiff(t *testing.T) {
	testutil.RequiresRoot(t) // to mount overlayfs
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{lower, upper, work, merged, lower + "/etc", lower + "/opt/sub", lower + "/etc-x"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(lower+"/etc/group", nil, 0o644)
	os.WriteFile(lower+"/etc/keep", nil, 0o644)
	os.WriteFile(lower+"/opt/sub/f", nil, 0o644)
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work+",redirect_dir=off,metacopy=off,index=off"); err != nil {
		t.Fatal(err)
	}
	os.Remove(merged + "/etc/group")
	os.WriteFile(merged+"/etc/keep", []byte("changed"), 0o644)
	os.WriteFile(merged+"/etc-x/new", nil, 0o644)
	os.RemoveAll(merged + "/opt/sub")
	os.MkdirAll(merged+"/opt/sub", 0o755)
	os.WriteFile(merged+"/opt/sub/g", nil, 0o644)
	os.WriteFile(merged+"/top", nil, 0o644)
	unix.Unmount(merged, 0)
	got, err := Diff(context.Background(), upper, lower)
	if err != nil {
		t.Fatal(err)
	}
	// By path, as Docker sorts: "/etc-x" before "/etc/group".
	want := []string{"C /etc", "C /etc-x", "A /etc-x/new", "D /etc/group", "C /etc/keep", "C /opt", "C /opt/sub", "A /opt/sub/g", "A /top"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Diff:\n%v\nwant\n%v", got, want)
	}
}
