package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// imageConfig reads the config of an image of the store.
func (s *store) imageConfig(ref string) (ocispec.Manifest, map[string]any) {
	s.t.Helper()
	id := strings.TrimSpace(s.ok("image", "inspect", "-f", "{{.Id}}", ref))
	var m ocispec.Manifest
	for _, d := range s.index().Manifests {
		b, _ := os.ReadFile(filepath.Join(s.root, "images", "blobs", "sha256", d.Digest.Encoded()))
		var mm ocispec.Manifest
		if json.Unmarshal(b, &mm) == nil && mm.Config.Digest.String() == id {
			m = mm
		}
	}
	if m.Config.Digest == "" {
		s.t.Fatalf("no manifest for %s", ref)
	}
	b, err := os.ReadFile(filepath.Join(s.root, "images", "blobs", "sha256", digest.Digest(id).Encoded()))
	if err != nil {
		s.t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		s.t.Fatal(err)
	}
	return m, c
}

// topLayer reads the last layer blob of an image as tar entries.
type layerEntry struct {
	hdr  *tar.Header
	body []byte
}

func (s *store) topLayer(ref string) (map[string]layerEntry, []string, int64) {
	s.t.Helper()
	m, _ := s.imageConfig(ref)
	top := m.Layers[len(m.Layers)-1]
	f, err := os.Open(filepath.Join(s.root, "images", "blobs", "sha256", top.Digest.Encoded()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	entries := map[string]layerEntry{}
	var order []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.t.Fatalf("layer of %s: %v", ref, err)
		}
		var body []byte
		if h.Size < 1<<20 {
			body, _ = io.ReadAll(tr)
		}
		entries[h.Name] = layerEntry{h, body}
		order = append(order, h.Name)
	}
	return entries, order, top.Size
}

// The seed scenario: run, change, commit with an author and a message, run
// the new image; its history and config say what Docker's would.
func TestCommitSeed(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "--name", "web", "busybox", "sh", "-c", "echo hello > /index.html; rm /etc/group; touch /test")
	if out := s.ok("diff", "web"); out != "C /etc\nD /etc/group\nA /index.html\nA /test\n" {
		t.Fatalf("diff: %q", out)
	}
	id := strings.TrimSpace(s.ok("commit", "-a", "Ann <ann@example.org>", "-m", "add index", "-c", `CMD ["httpd","-f"]`, "-c", "EXPOSE 80", "web", "web:1.0"))
	if digest.Digest(id).Validate() != nil {
		t.Fatalf("commit printed %q", id)
	}
	if out := s.ok("run", "--rm", "web:1.0", "sh", "-c", "cat /index.html; test -e /test && echo test; test -e /etc/group || echo nogroup"); out != "hello\ntest\nnogroup\n" {
		t.Fatalf("the committed image: %q", out)
	}
	hist := s.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "web:1.0")
	if !strings.HasPrefix(hist, "sh -c echo hello > /index.html; rm /etc/group; touch /test|add index\n") {
		t.Fatalf("history: %q", hist)
	}
	m, c := s.imageConfig("web:1.0")
	cfg := c["config"].(map[string]any)
	if c["author"] != "Ann <ann@example.org>" || c["comment"] != "add index" || fmt.Sprint(cfg["Cmd"]) != "[httpd -f]" || fmt.Sprint(cfg["ExposedPorts"]) != "map[80/tcp:map[]]" {
		t.Fatalf("config: %v", c)
	}
	_, base := s.imageConfig("busybox")
	diffs := c["rootfs"].(map[string]any)["diff_ids"].([]any)
	if len(diffs) != 2 || diffs[0] != base["rootfs"].(map[string]any)["diff_ids"].([]any)[0] || len(m.Layers) != 2 {
		t.Fatalf("diff IDs %v, layers %v", diffs, m.Layers)
	}
	// The layer is the change: uncompressed, its digest its diff ID.
	if m.Layers[1].Digest.String() != diffs[1] || m.Layers[1].MediaType != ocispec.MediaTypeImageLayer {
		t.Fatalf("layer %+v, diff ID %v", m.Layers[1], diffs[1])
	}
	entries, order, _ := s.topLayer("web:1.0")
	if strings.Join(order, " ") != "etc/ etc/.wh.group index.html test" {
		t.Fatalf("layer entries: %q", order)
	}
	if string(entries["index.html"].body) != "hello\n" {
		t.Fatalf("index.html in the layer: %q", entries["index.html"].body)
	}
	s.checkConsistent()

	// Without a name: untagged, and the ID printed.
	id2 := strings.TrimSpace(s.ok("commit", "web"))
	if !strings.Contains(s.ok("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"), "<none>:<none> "+id2) {
		t.Fatalf("an unnamed commit is not listed untagged")
	}
	s.ok("rm", "web")
}

// A container with no change: one more history entry, marked empty_layer,
// and no layer, as Docker does.
func TestCommitEmpty(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("create", "--name", "idle", "busybox", "true")
	s.ok("commit", "-m", "nothing", "-c", "ENV A=1", "idle", "idle:1")
	m, c := s.imageConfig("idle:1")
	hist := c["history"].([]any)
	last := hist[len(hist)-1].(map[string]any)
	if len(m.Layers) != 1 || len(c["rootfs"].(map[string]any)["diff_ids"].([]any)) != 1 || last["empty_layer"] != true || last["comment"] != "nothing" {
		t.Fatalf("an empty commit: layers %d, history %v", len(m.Layers), last)
	}
	if out := s.ok("run", "--rm", "idle:1", "sh", "-c", "echo $A"); out != "1\n" {
		t.Fatalf("env: %q", out)
	}
	s.ok("rm", "idle")
}

// Every -c instruction changes the config as Docker's; others are refused.
func TestCommitChanges(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "--name", "src", "-e", "FROM_RUN=r", "-w", "/tmp", "busybox", "touch", "x")
	s.ok("commit",
		"-c", "ENV A=1 B=$FROM_RUN", "-c", "ENTRYPOINT [\"/bin/echo\"]", "-c", "CMD hello world",
		"-c", "EXPOSE 80 53/udp 8000-8001", "-c", "LABEL team=cairn tier=\"front end\"", "-c", "ONBUILD RUN echo built",
		"-c", "USER nobody", "-c", "VOLUME /data /cache", "-c", "WORKDIR sub", "-c", "STOPSIGNAL SIGINT",
		"src", "changed")
	_, c := s.imageConfig("changed")
	cfg := c["config"].(map[string]any)
	checks := map[string]string{
		"Env":          "[FROM_RUN=r A=1 B=r]",
		"Entrypoint":   "[/bin/echo]",
		"Cmd":          "[/bin/sh -c hello world]",
		"ExposedPorts": "map[53/udp:map[] 80/tcp:map[] 8000/tcp:map[] 8001/tcp:map[]]",
		"Labels":       "map[team:cairn tier:front end]",
		"OnBuild":      "[RUN echo built]",
		"User":         "nobody",
		"Volumes":      "map[/cache:map[] /data:map[]]",
		"WorkingDir":   "/tmp/sub",
		"StopSignal":   "SIGINT",
	}
	for k, want := range checks {
		if got := fmt.Sprint(cfg[k]); got != want {
			t.Errorf("%s: %s, want %s", k, got, want)
		}
	}
	// Without a change, the container's config is the image's: its command, its env.
	s.ok("commit", "src", "plain")
	_, c = s.imageConfig("plain")
	if cfg := c["config"].(map[string]any); fmt.Sprint(cfg["Cmd"]) != "[touch x]" || !strings.Contains(fmt.Sprint(cfg["Env"]), "FROM_RUN=r") {
		t.Errorf("commit keeps the container's command and env: %v", cfg)
	}
	before := len(s.index().Manifests)
	s.fails(125, "RUN is not a valid change command", "commit", "-c", "RUN true", "src", "bad")
	s.fails(125, "invalid", "commit", "-c", "STOPSIGNAL NOPE", "src", "bad")
	s.fails(125, "invalid reference format", "commit", "src", "Bad:Name")
	s.fails(1, "No such container", "commit", "nosuch", "bad")
	if len(s.index().Manifests) != before {
		t.Fatal("a refused commit changed the store")
	}
	s.ok("rm", "src")
}

// Everything a container can change survives commit → save → load → run,
// and the layer says exactly what changed. The changes are made from the
// host through the container's own mounted root while it runs: the kernel
// writes the upper directory as if the container had made them.
func TestCommitFidelity(t *testing.T) {
	s := newStore(t)
	lower := layerTar(t, dir("lower/"), file("lower/file", "x"), dir("lower/tree/"), file("lower/tree/a", "a"), dir("lower/tree/b/"), file("lower/tree/b/c", "c"),
		dir("lower/dir2/"), file("lower/dir2/keep", "k"), file("lower/renamed", "r"), file("lower/chmod", "m"), file("lower/chown", "o"),
		file("lower/mtime", "t"), file("lower/hardsrc", "hard"), file("lower/f2d", "f"), dir("lower/d2f/"), file("lower/d2f/in", "i"),
		fixtures.Symlink("lower/s2f", "file"), file("lower/f2s", "s"))
	s.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{Names: []string{"fid"}, Layers: [][]byte{busyboxTar(t), lower}})))
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "f", "fid", "sleep", "1000"))
	m := filepath.Join(s.root, "containers", id, "rootfs")
	p := func(name string) string { return filepath.Join(m, name) }
	must(t, os.Remove(p("lower/file")))
	must(t, os.RemoveAll(p("lower/tree")))
	must(t, os.RemoveAll(p("lower/dir2")))
	must(t, os.Mkdir(p("lower/dir2"), 0o750))
	must(t, os.WriteFile(p("lower/dir2/new"), []byte("new"), 0o644))
	must(t, os.Rename(p("lower/renamed"), p("lower/renamed2")))
	must(t, os.Remove(p("lower/f2d")))
	must(t, os.Mkdir(p("lower/f2d"), 0o755))
	must(t, os.RemoveAll(p("lower/d2f")))
	must(t, os.WriteFile(p("lower/d2f"), []byte("now a file"), 0o644))
	must(t, os.Remove(p("lower/s2f")))
	must(t, os.WriteFile(p("lower/s2f"), []byte("was a link"), 0o644))
	must(t, os.Remove(p("lower/f2s")))
	must(t, os.Symlink("/etc/passwd", p("lower/f2s")))
	must(t, os.Chmod(p("lower/chmod"), 0o600))
	must(t, os.Lchown(p("lower/chown"), 1234, 5678))
	old := time.Unix(1234567890, 0)
	must(t, os.Chtimes(p("lower/mtime"), old, old))
	must(t, os.MkdirAll(p("new"), 0o755))
	must(t, os.WriteFile(p("new/h1"), []byte("linked"), 0o644))
	must(t, os.Link(p("new/h1"), p("new/h2")))
	must(t, os.Link(p("lower/hardsrc"), p("new/hl")))
	must(t, unix.Mkfifo(p("new/fifo"), 0o640))
	must(t, unix.Mknod(p("new/cdev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("new/bdev"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	must(t, os.WriteFile(p("new/suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(p("new/suid"), 0o755|os.ModeSetuid))
	must(t, os.Mkdir(p("new/sgid"), 0o755))
	must(t, os.Chmod(p("new/sgid"), 0o755|os.ModeSetgid))
	must(t, os.Mkdir(p("new/sticky"), 0o777))
	must(t, os.Chmod(p("new/sticky"), 0o777|os.ModeSticky))
	must(t, os.WriteFile(p("new/capfile"), []byte("cap"), 0o755))
	// cap_net_bind_service+ep, VFS_CAP_REVISION_2.
	capv2 := []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(t, unix.Setxattr(p("new/capfile"), "security.capability", capv2, 0))
	must(t, os.WriteFile(p("new/x"), []byte("x"), 0o644))
	must(t, unix.Setxattr(p("new/x"), "user.a", []byte("1"), 0))
	must(t, unix.Setxattr(p("new/x"), "user.mime_type", []byte("text/plain"), 0))
	long := strings.Repeat("n", 255)
	must(t, os.WriteFile(p("new/"+long), []byte("255"), 0o644))
	bad := "bad-\xff\xfe-name"
	must(t, os.WriteFile(p("new/"+bad), []byte("not utf-8"), 0o644))
	// A path of more than 4 KiB: made one directory at a time, relative to its parent.
	deep := deepPath(t, p("new"), 20, 230) // 20 levels of 230 bytes: 4.6 KiB
	sp, err := os.Create(p("new/sparse"))
	must(t, err)
	must(t, sp.Truncate(1<<30))
	_, err = sp.WriteAt([]byte("fourteen bytes"), 512<<20)
	must(t, err)
	sp.Close()

	s.ok("commit", "-m", "everything", "f", "fid:2")
	entries, order, size := s.topLayer("fid:2")
	has := func(name string) layerEntry {
		e, ok := entries[name]
		if !ok {
			t.Errorf("the layer lacks %q", name)
		}
		return e
	}
	for _, name := range []string{"lower/.wh.file", "lower/.wh.tree", "lower/.wh.renamed", "lower/dir2/", "lower/dir2/.wh..wh..opq", "lower/dir2/new", "lower/renamed2"} {
		has(name)
	}
	for _, name := range order {
		if strings.HasPrefix(name, "lower/tree/") || name == "lower/dir2/keep" {
			t.Errorf("the layer holds %q: a deleted tree is one whiteout", name)
		}
		for k := range entries[name].hdr.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("%s carries %s", name, k)
			}
		}
	}
	if h := has("new/h2").hdr; h.Typeflag != tar.TypeLink || h.Linkname != "new/h1" {
		t.Errorf("new/h2: %+v", h)
	}
	if h1, hl := has("lower/hardsrc").hdr, has("new/hl").hdr; !(h1.Typeflag == tar.TypeReg && hl.Typeflag == tar.TypeLink && hl.Linkname == "lower/hardsrc") {
		t.Errorf("a new link to a lower file: %+v %+v", h1, hl)
	}
	if h := has("new/capfile").hdr; h.PAXRecords["SCHILY.xattr.security.capability"] != string(capv2) {
		t.Errorf("new/capfile xattrs: %v", h.PAXRecords)
	}
	if h := has("new/x").hdr; h.PAXRecords["SCHILY.xattr.user.a"] != "1" || h.PAXRecords["SCHILY.xattr.user.mime_type"] != "text/plain" {
		t.Errorf("user.* xattrs: %v", h.PAXRecords)
	}
	if h := has("lower/").hdr; h.Mode != 0o755 || h.Typeflag != tar.TypeDir {
		t.Errorf("the parent directory lower/: %+v", h)
	}
	if size > 4<<20 {
		t.Errorf("the layer is %d bytes: the 1 GiB sparse file was not kept sparse", size)
	}

	// Through save and load into another store, and a container of it.
	archive := filepath.Join(t.TempDir(), "fid2.tar")
	s.ok("save", "-o", archive, "fid:2")
	s2 := newStore(t)
	s2.ok("load", "-i", archive)
	out := s2.ok("run", "--rm", "fid:2", "sh", "-c", "cd /lower; ls -A; echo; cat dir2/new d2f s2f renamed2; readlink f2s; stat -c '%a %u:%g %Y' chmod chown mtime")
	want := "chmod\nchown\nd2f\ndir2\nf2d\nf2s\nhardsrc\nmtime\nrenamed2\ns2f\n\nnewnow a filewas a linkr/etc/passwd\n600 0:0 1700000000\n644 1234:5678 1700000000\n644 0:0 1234567890\n"
	if out != want {
		t.Errorf("the committed image, run:\n%q\nwant\n%q", out, want)
	}
	s2.viewImage("fid:2", func(root string) {
		var st unix.Stat_t
		check := func(name string, mode uint32, rdev uint64) {
			if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if st.Mode != mode || st.Rdev != rdev {
				t.Errorf("%s: mode %o rdev %d, want %o %d", name, st.Mode, st.Rdev, mode, rdev)
			}
		}
		check("new/fifo", unix.S_IFIFO|0o640, 0)
		check("new/cdev", unix.S_IFCHR|0o600, unix.Mkdev(1, 3))
		check("new/bdev", unix.S_IFBLK|0o600, unix.Mkdev(7, 0))
		check("new/suid", unix.S_IFREG|unix.S_ISUID|0o755, 0)
		check("new/sgid", unix.S_IFDIR|unix.S_ISGID|0o755, 0)
		check("new/sticky", unix.S_IFDIR|unix.S_ISVTX|0o777, 0)
		check("lower/dir2", unix.S_IFDIR|0o750, 0)
		var a, b unix.Stat_t
		unix.Lstat(filepath.Join(root, "new/h1"), &a)
		unix.Lstat(filepath.Join(root, "new/h2"), &b)
		if a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("the hardlink group new/h1, new/h2: inodes %d %d, links %d", a.Ino, b.Ino, a.Nlink)
		}
		v := make([]byte, 64)
		if n, err := unix.Getxattr(filepath.Join(root, "new/capfile"), "security.capability", v); err != nil || !bytes.Equal(v[:n], capv2) {
			t.Errorf("security.capability: %x %v", v[:n], err)
		}
		if n, err := unix.Getxattr(filepath.Join(root, "new/x"), "user.mime_type", v); err != nil || string(v[:n]) != "text/plain" {
			t.Errorf("user.mime_type: %q %v", v[:n], err)
		}
		for _, name := range []string{"new/" + long, "new/" + bad} {
			if _, err := os.Lstat(filepath.Join(root, name)); err != nil {
				t.Errorf("%q: %v", name, err)
			}
		}
		if b, err := readDeep(root, filepath.Join("new", deep)); err != nil || string(b) != "deep" {
			t.Errorf("the file at the end of a %d-byte path: %q %v", len(deep), b, err)
		}
		unix.Stat(filepath.Join(root, "new/sparse"), &st)
		if st.Size != 1<<30 || st.Blocks*512 > 1<<20 {
			t.Errorf("new/sparse: size %d, %d bytes on disk", st.Size, st.Blocks*512)
		}
		for _, gone := range []string{"lower/file", "lower/tree", "lower/dir2/keep", "lower/renamed"} {
			if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
				t.Errorf("%s should be gone: %v", gone, err)
			}
		}
	})

	// A file named .wh.* cannot be represented: the commit is refused, naming it.
	must(t, os.WriteFile(p("new/.wh.sneaky"), nil, 0o644))
	before := len(s.index().Manifests)
	s.fails(1, "new/.wh.sneaky", "commit", "f", "fid:3")
	if len(s.index().Manifests) != before {
		t.Fatal("a refused commit changed the store")
	}
	if out := s.ok("exec", "f", "echo", "thawed"); out != "thawed\n" {
		t.Fatalf("the container after a refused commit: %q", out)
	}
	s.ok("rm", "-f", "f")
	s.checkConsistent()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deepPath makes levels nested directories of names n bytes long under dir,
// with a file "deep" at the end, and returns the path below dir.
func deepPath(t *testing.T, dir string, levels, n int) string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	var parts []string
	for i := 0; i < levels; i++ {
		name := fmt.Sprintf("%03d", i) + strings.Repeat("d", n-3)
		must(t, unix.Mkdirat(fd, name, 0o755))
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = next
		parts = append(parts, name)
	}
	f, err := unix.Openat(fd, "deep", unix.O_WRONLY|unix.O_CREAT, 0o644)
	must(t, err)
	unix.Write(f, []byte("deep"))
	unix.Close(f)
	unix.Close(fd)
	return strings.Join(append(parts, "deep"), "/")
}

// readDeep reads root/name one component at a time (name may be over PATH_MAX).
func readDeep(root, name string) ([]byte, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(name, "/")
	for _, c := range parts[:len(parts)-1] {
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = next
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, parts[len(parts)-1], unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(f)
	buf := make([]byte, 64)
	n, err := unix.Read(f, buf)
	return buf[:max(n, 0)], err
}

// The same change committed twice has the same diff ID; with --timestamp,
// two containers making it at different times give the same image.
func TestCommitRepeatable(t *testing.T) {
	s := newStore(t)
	s.busybox()
	change := "mkdir -p /app && echo v1 > /app/conf && touch -d @1700000000 /app/conf /app && rm /etc/group"
	s.ok("run", "--name", "a", "busybox", "sh", "-c", change)
	s.ok("commit", "a", "r:1")
	time.Sleep(1100 * time.Millisecond)
	s.ok("commit", "a", "r:2")
	layer := func(ref string) any {
		_, c := s.imageConfig(ref)
		ids := c["rootfs"].(map[string]any)["diff_ids"].([]any)
		return ids[len(ids)-1]
	}
	if layer("r:1") != layer("r:2") {
		t.Fatalf("the same change, committed twice: %v and %v", layer("r:1"), layer("r:2"))
	}
	s.ok("run", "--name", "b", "busybox", "sh", "-c", change+"; touch /late")
	time.Sleep(1100 * time.Millisecond)
	s.ok("run", "--name", "c", "busybox", "sh", "-c", change+"; touch /late")
	ib := strings.TrimSpace(s.ok("commit", "--timestamp", "1700000000", "b", "ts:b"))
	ic := strings.TrimSpace(s.ok("commit", "--timestamp", "1700000000", "c", "ts:c"))
	if ib != ic {
		t.Fatalf("--timestamp: two commits of one change give %s and %s", ib, ic)
	}
	if out := s.ok("image", "inspect", "-f", "{{.Created}}", "ts:b"); !strings.HasPrefix(out, "2023-11-14T22:13:20") {
		t.Fatalf("created: %q", out)
	}
	s.ok("rm", "a", "b", "c")
}

// A running container is frozen while its layer is read: a file it keeps
// appending to is committed whole, line by line.
func TestCommitRunningPaused(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "busy", "busybox", "sh", "-c", "while true; do echo 0123456789abcdef >> /log; done")
	waitFor(t, 10*time.Second, "the log to grow", func() bool {
		r := s.run(nil, "exec", "busy", "sh", "-c", "test $(wc -c < /log) -gt 2000000")
		return r.Code == 0
	})
	for i := 0; i < 3; i++ {
		r := s.run(nil, "commit", "busy", fmt.Sprintf("busy:%d", i))
		if r.Code != 0 || strings.Contains(r.Stderr, "warning") {
			t.Fatalf("commit of a busy container: %+v", r)
		}
		entries, _, _ := s.topLayer(fmt.Sprintf("busy:%d", i))
		e := entries["log"]
		if e.hdr == nil || e.hdr.Size%17 != 0 {
			t.Fatalf("commit %d: the log is %v bytes: torn", i, e.hdr)
		}
	}
	if st := s.status("busy"); st != "running" {
		t.Fatalf("after the commits the container is %s", st)
	}
	s.ok("rm", "-f", "busy")
}

// A commit killed with SIGKILL at any moment leaves nothing that later
// commands trust, and never a frozen container.
func TestCommitKilled(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "big", "busybox", "sh", "-c", "dd if=/dev/urandom of=/blob bs=1M count=96 2>/dev/null; sleep 1000")
	waitFor(t, 30*time.Second, "the container's change", func() bool {
		return s.run(nil, "exec", "big", "sh", "-c", "test $(wc -c < /blob) -eq 100663296").Code == 0
	})
	before := s.index()
	for i, delay := range []time.Duration{0, 10, 30, 60, 100, 150} {
		bg := s.start("commit", "big", fmt.Sprintf("big:%d", i))
		time.Sleep(delay * time.Millisecond)
		bg.cmd.Process.Signal(syscall.SIGKILL)
		bg.wait(t, 30*time.Second)
		// Whatever happened, the container runs on, thawed.
		if out := s.ok("exec", "big", "echo", "alive"); out != "alive\n" {
			t.Fatalf("after a killed commit: %q", out)
		}
		s.checkConsistent()
	}
	// The images are those before, or those a whole commit made.
	names := map[string]bool{}
	for _, d := range s.index().Manifests {
		names[d.Annotations[ocispec.AnnotationRefName]] = true
	}
	for _, d := range before.Manifests {
		delete(names, d.Annotations[ocispec.AnnotationRefName])
	}
	for n := range names {
		if !strings.HasPrefix(n, "docker.io/library/big:") {
			t.Fatalf("unexpected image %q", n)
		}
	}
	// The same commit then succeeds, and prune sweeps what the killed ones left.
	s.ok("commit", "big", "big:done")
	s.ok("rm", "-f", "big")
	s.ok("image", "prune", "-f")
	if left, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(left) > 0 {
		t.Fatalf("prune left %d entries in tmp", len(left))
	}
	s.checkConsistent()
}

// pause freezes a container until unpause, as Docker's.
func TestPause(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "p", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done")
	s.ok("pause", "p")
	if out := s.ok("ps", "--format", "{{.Status}}"); !strings.HasSuffix(out, "(Paused)\n") {
		t.Fatalf("ps of a paused container: %q", out)
	}
	id := s.containerID("p")
	n := func() string {
		b, _ := os.ReadFile(filepath.Join(s.root, "containers", id, "rootfs", "tmp", "n"))
		return string(b)
	}
	before := n()
	time.Sleep(200 * time.Millisecond)
	if after := n(); after != before {
		t.Fatalf("a paused container ran on: %q then %q", before, after)
	}
	s.fails(1, "is paused", "exec", "p", "true")
	s.fails(1, "already paused", "pause", "p")
	s.ok("unpause", "p")
	waitFor(t, 10*time.Second, "the unpaused container to run", func() bool { return n() != before })
	s.fails(1, "not paused", "unpause", "p")
	s.ok("pause", "p")
	s.ok("stop", "-t", "1", "p") // a paused container is killed, as Docker does
	if st := s.status("p"); st != "exited" {
		t.Fatalf("after stop: %s", st)
	}
	s.ok("rm", "p")
}
