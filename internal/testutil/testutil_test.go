package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeTB records what a helper asked of the test instead of stopping it.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestUnmetFailsUnderCIAndSkipsElsewhere(t *testing.T) {
	const tool = "cairn-no-such-tool"

	t.Setenv("CI", "true")
	f := &fakeTB{}
	RequiresTool(f, tool)
	if f.fatal == "" || f.skip != "" {
		t.Errorf("CI=true: fatal %q, skip %q; want a failure and no skip", f.fatal, f.skip)
	}
	if !strings.Contains(f.fatal, tool) {
		t.Errorf("CI=true: message %q does not name %s", f.fatal, tool)
	}

	t.Setenv("CI", "")
	f = &fakeTB{}
	RequiresTool(f, tool)
	if f.skip == "" || f.fatal != "" {
		t.Errorf("CI empty: fatal %q, skip %q; want a skip and no failure", f.fatal, f.skip)
	}

	f = &fakeTB{}
	RequiresTool(f, "sh")
	if f.skip != "" || f.fatal != "" {
		t.Errorf("sh is on PATH, yet fatal %q, skip %q", f.fatal, f.skip)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("module github.com/cairn-runtime/cairn")) {
		t.Errorf("%s/go.mod is not cairn's", root)
	}
}

func TestBusyboxRootfsContents(t *testing.T) {
	tarball := BusyboxRootfs(t)
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	entries := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "" || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "./") || path.Clean(name) != name {
			t.Errorf("entry name %q is not a clean relative path", hdr.Name)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 without names", name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %v, want the epoch", name, hdr.ModTime)
		}
		if hdr.Typeflag == tar.TypeSymlink {
			// Every applet link resolves, inside the tree, to bin/busybox.
			if path.IsAbs(hdr.Linkname) || path.Join(path.Dir(name), hdr.Linkname) != "bin/busybox" {
				t.Errorf("%s -> %s does not resolve to bin/busybox", name, hdr.Linkname)
			}
		}
		if name == "etc/passwd" || name == "etc/group" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[name] = string(b)
		}
		entries[name] = hdr
	}

	want := []struct {
		name string
		typ  byte
		mode int64
	}{
		{"bin/busybox", tar.TypeReg, 0o755},
		{"bin/sh", tar.TypeSymlink, 0o777},
		{"bin/echo", tar.TypeSymlink, 0o777},
		{"etc/passwd", tar.TypeReg, 0o644},
		{"etc/group", tar.TypeReg, 0o644},
		{"tmp", tar.TypeDir, 0o1777},
		{"root", tar.TypeDir, 0o700},
		{"dev", tar.TypeDir, 0o755},
		{"proc", tar.TypeDir, 0o755},
		{"sys", tar.TypeDir, 0o755},
	}
	for _, w := range want {
		hdr, ok := entries[w.name]
		if !ok {
			t.Errorf("%s: missing", w.name)
			continue
		}
		if hdr.Typeflag != w.typ || hdr.Mode&0o7777 != w.mode {
			t.Errorf("%s: type %q mode %o, want %q %o", w.name, hdr.Typeflag, hdr.Mode&0o7777, w.typ, w.mode)
		}
	}
	if hdr := entries["bin/sh"]; hdr != nil && hdr.Linkname != "busybox" {
		t.Errorf("bin/sh -> %s, want busybox", hdr.Linkname)
	}
	for _, user := range []string{"root:x:0:0:", "nobody:x:65534:65534:"} {
		if !strings.Contains(contents["etc/passwd"], "\n"+user) && !strings.HasPrefix(contents["etc/passwd"], user) {
			t.Errorf("etc/passwd has no %q line:\n%s", user, contents["etc/passwd"])
		}
	}
	if !strings.HasPrefix(contents["etc/group"], "root:x:0:") {
		t.Errorf("etc/group has no root group:\n%s", contents["etc/group"])
	}
}

func TestBusyboxRootfsIsDeterministic(t *testing.T) {
	cached := BusyboxRootfs(t)
	again := filepath.Join(t.TempDir(), "again.tar")
	if out, err := exec.Command(filepath.Join(RepoRoot(t), "hack", "busybox-rootfs"), again).CombinedOutput(); err != nil {
		t.Fatalf("hack/busybox-rootfs: %v\n%s", err, out)
	}
	a, err := os.ReadFile(cached)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the busybox rootfs differ (%d and %d bytes)", len(a), len(b))
	}
}

func TestBusyboxRootfsRunsInChroot(t *testing.T) {
	RequiresRoot(t)
	dir := BusyboxRootfsDir(t)
	cmd := exec.Command("/bin/sh", "-c", "echo ok; id -un; test -d /tmp -a -k /tmp && echo sticky")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh in chroot %s: %v\n%s", dir, err, out)
	}
	if got, want := string(out), "ok\nroot\nsticky\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDockerRunsBusybox(t *testing.T) {
	docker := Docker(t)
	tarball := BusyboxRootfs(t)

	var r [6]byte
	rand.Read(r[:])
	image := "cairn-testutil-busybox:" + hex.EncodeToString(r[:])
	docker.Run(t, "import", tarball, image)
	t.Cleanup(func() { docker.RunErr("rmi", "-f", image) })

	if got := docker.Run(t, "run", "--rm", "--network", "none", image, "sh", "-c", "echo ok"); got != "ok\n" {
		t.Errorf("docker run: got %q, want %q", got, "ok\n")
	}

	_, stderr, err := docker.RunErr("image", "inspect", "cairn-testutil-no-such-image")
	if err == nil || !strings.Contains(stderr, "No such") {
		t.Errorf("inspect of a missing image: err %v, stderr %q; want an error that says No such", err, stderr)
	}
}

func TestRegistryAnswers(t *testing.T) {
	addr := Registry(t)
	resp, err := http.Get("http://" + addr + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/_catalog: %s", resp.Status)
	}
}
