package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size (mount's size=, "48m") on a directory of
// the test, unmounted at its end, whatever happened.
func mountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	must(t, os.Mkdir(dir, 0o755))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a tmpfs of %s on %s: %v", size, dir, err)
	}
	t.Cleanup(func() { unmountAll(t, dir) })
	return dir
}

// remount changes the options of the mount on dir ("size=112m", "ro", "rw").
func remount(t testing.TB, dir, opts string) {
	t.Helper()
	var flags uintptr = unix.MS_REMOUNT
	if opts == "ro" {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dir, "", flags, opts); err != nil {
		t.Fatalf("remount %s %s: %v", dir, opts, err)
	}
}

// unmountAll unmounts dir, lazily if it is busy.
func unmountAll(t testing.TB, dir string) {
	if err := unix.Unmount(dir, 0); err != nil && err != unix.EINVAL {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}
}

// storeAt is a store of the test whose root is root (newStore puts it in
// the test's temporary directory). Mount what root is on before: its
// cleanup must run first.
func storeAt(t testing.TB, root string) *store {
	t.Helper()
	s := &store{t: t, root: root, env: []string{
		"CAIRN_CONFIG=" + filepath.Join(t.TempDir(), "no-config.json"), "DOCKER_CONFIG=" + t.TempDir(),
	}}
	t.Cleanup(s.cleanup)
	return s
}

// tmpEntries are what the store's tmp/ holds.
func (s *store) tmpEntries() []string {
	entries, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// images is what `images -a` shows of the store, but the times.
func (s *store) images() string {
	s.t.Helper()
	return s.ok("images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}")
}

// containers is what `ps -a` shows of the store, but the times.
func (s *store) containers() string {
	s.t.Helper()
	return s.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}}")
}

// A store on a small filesystem that fills while an image comes in: the
// command fails with "no space left on device", the object it was writing
// and the root named, and what to do; nothing of it is visible or left in
// tmp/; the store is as it was; with more room, the same command succeeds.
func TestFullDisk(t *testing.T) {
	const big = 30 << 20 // the filesystem has 48 MiB: the blob and the snapshot of this need 60
	cases := []struct {
		name string
		// prepare puts in the store what the command needs; it returns the
		// command, what its error must name, and a check of its success.
		prepare func(t *testing.T, s *store) (args []string, names string, check func())
	}{
		{"load", func(t *testing.T, s *store) ([]string, string, func()) {
			img := fixtureImage{Names: []string{"big:1"}, Layers: [][]byte{busyboxTar(t), layerTar(t, file("big", randomBytes(t, big)))}}
			return []string{"load", "-i", writeFile(t, dockerArchive(t, img))}, `archive entry "`, func() {
				s.ok("run", "--rm", "big:1", "test", "-s", "/big")
			}
		}},
		{"pull", func(t *testing.T, s *store) ([]string, string, func()) {
			repo := uniqueRepo(t, testutil.Registry(t))
			src := registryStore(t, "", "")
			src.layeredImage(repo+":1", big, 1<<10)
			src.ok("push", repo+":1")
			return []string{"pull", repo + ":1"}, "layer sha256:", func() {
				s.ok("run", "--rm", repo+":1", "test", "-s", "/data/big")
			}
		}},
		{"commit", func(t *testing.T, s *store) ([]string, string, func()) {
			// The container's layer is on the same filesystem: 20 MiB there,
			// and its commit needs 40 more.
			s.ok("run", "--name", "writer", "busybox", "dd", "if=/dev/urandom", "of=/big", "bs=1M", "count=20")
			return []string{"commit", "writer", "big:commit"}, "commit of container ", func() {
				s.ok("run", "--rm", "big:commit", "test", "-s", "/big")
			}
		}},
		{"build RUN", func(t *testing.T, s *store) ([]string, string, func()) {
			ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1M count=20\n"})
			return []string{"build", "-t", "big:run", ctx}, "RUN: commit of build step /bin/sh -c dd", func() {
				s.ok("run", "--rm", "big:run", "test", "-s", "/big")
			}
		}},
		{"build COPY", func(t *testing.T, s *store) ([]string, string, func()) {
			ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY big /big\n", "big": randomBytes(t, big)})
			return []string{"build", "-t", "big:copy", ctx}, "COPY: commit of build step /bin/sh -c #(nop) COPY file:", func() {
				s.ok("run", "--rm", "big:copy", "test", "-s", "/big")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := mountTmpfs(t, "48m")
			s := storeAt(t, filepath.Join(fs, "root"))
			s.busybox()
			args, names, check := c.prepare(t, s)
			s.ok("image", "prune", "-f")
			images, ps, before := s.images(), s.containers(), s.fingerprint()

			r := s.run(nil, args...)
			if r.Code == 0 {
				t.Fatalf("cairn %s succeeded on a full filesystem:\n%s", strings.Join(args, " "), r.Stdout)
			}
			for _, want := range []string{"no space left on device", names, "the store's root " + s.root + " is on tmpfs mounted on " + fs, "free space there", "or use another --root"} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("cairn %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, r.Stderr)
				}
			}
			if got := s.images(); got != images {
				t.Errorf("images changed:\nbefore %s\nafter  %s", images, got)
			}
			if got := s.containers(); got != ps {
				t.Errorf("ps -a changed:\nbefore %s\nafter  %s", ps, got)
			}
			s.checkConsistent()
			if left := s.tmpEntries(); len(left) > 0 {
				t.Errorf("the failure left in tmp/: %v", left)
			}
			// A pull keeps the layers it had whole (Fetch): the prune
			// removes them, as nothing names them.
			s.ok("image", "prune", "-f")
			if got := s.fingerprint(); got != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, got)
			}

			remount(t, fs, "size=112m")
			s.ok(args...)
			check()
			s.checkConsistent()
		})
	}
}

// A root on a read-only filesystem: what only reads works; what writes
// fails, saying the root is read-only and what to do, and changes nothing.
func TestReadOnlyRoot(t *testing.T) {
	fs := mountTmpfs(t, "32m")
	s := storeAt(t, filepath.Join(fs, "root"))
	s.busybox()
	s.ok("tag", "busybox", "spare")
	id := strings.TrimSpace(s.ok("create", "--name", "idle", "busybox", "true"))
	archive := writeFile(t, dockerArchive(t, fixtureImage{Names: []string{"other:1"}, Layers: [][]byte{layerTar(t, file("f", "x"))}}))
	ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	images, ps, before := s.images(), s.containers(), s.fingerprint()

	remount(t, fs, "ro")
	t.Cleanup(func() { unix.Mount("", fs, "", unix.MS_REMOUNT, "rw") }) // before the store's cleanup
	if got := s.images(); got != images {
		t.Errorf("images on a read-only root:\n%s\nwant\n%s", got, images)
	}
	if got := s.containers(); got != ps {
		t.Errorf("ps -a on a read-only root:\n%s\nwant\n%s", got, ps)
	}
	s.ok("image", "inspect", "busybox")
	s.ok("inspect", id)
	for _, args := range [][]string{
		{"load", "-i", archive},
		{"tag", "busybox", "busybox:2"},
		{"rmi", "spare"},
		{"run", "--rm", "busybox", "true"},
		{"start", "idle"},
		{"commit", "idle", "idle:1"},
		{"build", "-t", "built", ctx},
		{"image", "prune", "-f"},
		{"rm", "idle"},
	} {
		r := s.run(nil, args...)
		if r.Code == 0 {
			t.Errorf("cairn %s succeeded on a read-only root", strings.Join(args, " "))
			continue
		}
		for _, want := range []string{"read-only file system", "the store's root " + s.root + " is on a read-only filesystem (tmpfs mounted on " + fs + ")", "remount it read-write or use another --root"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("cairn %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, r.Stderr)
			}
		}
	}
	// A new store there cannot even be made.
	fresh := &store{t: t, root: filepath.Join(fs, "new")}
	fresh.fails(125, "the store's root "+fresh.root+" is on a read-only filesystem", "images")

	remount(t, fs, "rw")
	if got := s.fingerprint(); got != before {
		t.Errorf("the store changed:\nbefore %s\nafter  %s", before, got)
	}
	s.ok("tag", "busybox", "busybox:2")
	s.checkConsistent()
}

// A root on overlayfs, which overlayfs refuses as an upper directory: run
// and a build's RUN fail, naming the root's filesystem and what to use.
func TestRootWithoutOverlay(t *testing.T) {
	base := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		dirs[d] = filepath.Join(base, d)
		must(t, os.Mkdir(dirs[d], 0o755))
	}
	if err := unix.Mount("overlay", dirs["merged"], "overlay", 0, "lowerdir="+dirs["lower"]+",upperdir="+dirs["upper"]+",workdir="+dirs["work"]); err != nil {
		t.Fatalf("mount an overlay on %s: %v", dirs["merged"], err)
	}
	t.Cleanup(func() { unmountAll(t, dirs["merged"]) })
	s := storeAt(t, filepath.Join(dirs["merged"], "root"))
	s.busybox() // an image needs no overlay: its snapshots are plain directories
	want := s.root + " is on overlay (mounted on " + dirs["merged"] + "), where overlayfs cannot keep a container's writable layer: use a store root (--root) on ext4, xfs, btrfs or tmpfs"
	s.fails(125, want, "run", "--rm", "busybox", "true")
	ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	r := s.fails(1, want, "build", "-t", "built", ctx)
	if !strings.Contains(r.Stderr, "RUN: mount overlay on ") {
		t.Errorf("build: the error must say which step and mount: %s", r.Stderr)
	}
	if out := s.ok("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
	if left := s.tmpEntries(); len(left) > 0 {
		t.Errorf("left in tmp/: %v", left)
	}
	s.checkConsistent()
}
