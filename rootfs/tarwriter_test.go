package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

// On-disk fixtures for the tar writer, declared in code. An fsNode is one
// file, made relative to its parent's fd so that paths of any length work;
// build sets the metadata once every file exists, children first, so that
// making a child does not move its directory's mtime.

type fsNode struct {
	name     string
	create   func(t testing.TB, root string, pfd int, base string)
	link     bool // a hard link: its target's metadata are its own
	symlink  bool
	perm     uint32
	uid, gid int
	mtime    time.Time
	xattrs   [][2]string
}

type chunk struct {
	off  int64
	data string
}

func fsDir(name string) fsNode {
	return fsNode{name: name, perm: 0o755, mtime: tartest.Time, create: func(t testing.TB, _ string, pfd int, base string) {
		check(t, "mkdir "+name, unix.Mkdirat(pfd, base, 0o700))
	}}
}

func fsFile(name, body string) fsNode {
	return fsSparse(name, int64(len(body)), chunk{0, body})
}

// fsSparse is a file of size bytes, holes but for the chunks.
func fsSparse(name string, size int64, chunks ...chunk) fsNode {
	return fsNode{name: name, perm: 0o644, mtime: tartest.Time, create: func(t testing.TB, _ string, pfd int, base string) {
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		check(t, "create "+name, err)
		defer unix.Close(fd)
		check(t, "truncate "+name, unix.Ftruncate(fd, size))
		for _, c := range chunks {
			check(t, "write "+name, pwrite(fd, []byte(c.data), c.off))
		}
	}}
}

func fsSym(name, target string) fsNode {
	return fsNode{name: name, symlink: true, mtime: tartest.Time, create: func(t testing.TB, _ string, pfd int, base string) {
		check(t, "symlink "+name, unix.Symlinkat(target, pfd, base))
	}}
}

func fsHard(name, target string) fsNode {
	return fsNode{name: name, link: true, create: func(t testing.TB, root string, pfd int, base string) {
		tfd, tbase := parentFD(t, root, target)
		defer unix.Close(tfd)
		check(t, "link "+name, unix.Linkat(tfd, tbase, pfd, base, 0))
	}}
}

// fsDev is a device, fifo or socket node; typ is S_IFCHR, S_IFBLK,
// S_IFIFO or S_IFSOCK.
func fsDev(name string, typ uint32, major, minor uint32) fsNode {
	return fsNode{name: name, perm: 0o600, mtime: tartest.Time, create: func(t testing.TB, _ string, pfd int, base string) {
		check(t, "mknod "+name, unix.Mknodat(pfd, base, typ|0o600, int(unix.Mkdev(major, minor))))
	}}
}

func (n fsNode) mode(perm uint32) fsNode   { n.perm = perm; return n }
func (n fsNode) owner(uid, gid int) fsNode { n.uid, n.gid = uid, gid; return n }
func (n fsNode) at(mtime time.Time) fsNode { n.mtime = mtime; return n }
func (n fsNode) xattr(name, value string) fsNode {
	n.xattrs = append(slices.Clip(n.xattrs), [2]string{name, value})
	return n
}

func check(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// parentFD opens the parent directory of name below root (O_PATH) and
// returns it with the last component of name.
func parentFD(t testing.TB, root, name string) (int, string) {
	t.Helper()
	dir, base := path.Split(name)
	if dir == "" {
		fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		check(t, "open "+root, err)
		return fd, base
	}
	return openLong(t, root, strings.TrimSuffix(dir, "/")), base
}

// build makes the nodes below root, which exists.
func build(t testing.TB, root string, nodes ...fsNode) {
	t.Helper()
	for _, n := range nodes {
		pfd, base := parentFD(t, root, n.name)
		n.create(t, root, pfd, base)
		unix.Close(pfd)
	}
	for _, n := range slices.Backward(nodes) {
		if n.link {
			continue
		}
		pfd, base := parentFD(t, root, n.name)
		// chown, then xattrs (chown drops security.capability), then chmod
		// (chown drops setuid bits), then times.
		check(t, "chown "+n.name, unix.Fchownat(pfd, base, n.uid, n.gid, unix.AT_SYMLINK_NOFOLLOW))
		for _, x := range n.xattrs {
			proc := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
			check(t, "setxattr "+n.name+" "+x[0], unix.Lsetxattr(proc, x[0], []byte(x[1]), 0))
		}
		if !n.symlink {
			check(t, "chmod "+n.name, unix.Fchmodat(pfd, base, n.perm, 0))
		}
		ts := unix.NsecToTimespec(n.mtime.UnixNano())
		check(t, "utimes "+n.name, unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
		unix.Close(pfd)
	}
}

// describe lists the files below root (root itself excluded) with what
// their tar entries carry: type and mode, owner, mtime in seconds, size
// and a digest of the contents, symlink target, device numbers, xattrs,
// and for a non-directory of several links the first name of its inode.
// Sockets are left out. With private false, so are the xattrs that must
// not reach a tar.
func describe(t testing.TB, root string, private bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	var walk func(dfd int, prefix string)
	walk = func(dfd int, prefix string) {
		for _, base := range dirNames(t, dfd) {
			name := prefix + base
			var st unix.Stat_t
			check(t, "lstat "+name, unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW))
			typ := st.Mode & unix.S_IFMT
			if typ == unix.S_IFSOCK {
				continue
			}
			d := fmt.Sprintf("mode=%o owner=%d:%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
			switch typ {
			case unix.S_IFREG:
				fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				check(t, "open "+name, err)
				f := os.NewFile(uintptr(fd), name)
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				check(t, "read "+name, err)
				d += fmt.Sprintf(" size=%d sha256=%x", st.Size, h.Sum(nil)[:8])
			case unix.S_IFLNK:
				buf := make([]byte, unix.PathMax)
				n, err := unix.Readlinkat(dfd, base, buf)
				check(t, "readlink "+name, err)
				d += fmt.Sprintf(" target=%q", buf[:n])
			case unix.S_IFCHR, unix.S_IFBLK:
				d += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
			if typ != unix.S_IFDIR && st.Nlink > 1 {
				if _, ok := inodes[st.Ino]; !ok {
					inodes[st.Ino] = name
				}
				d += fmt.Sprintf(" nlink=%d inode=%q", st.Nlink, inodes[st.Ino])
			}
			d += " xattrs=" + fdXattrs(t, dfd, base, private)
			out[name] = d
			if typ == unix.S_IFDIR {
				cfd, err := unix.Openat(dfd, base, dirFlags, 0)
				check(t, "open "+name, err)
				walk(cfd, name+"/")
				unix.Close(cfd)
			}
		}
	}
	fd, err := unix.Open(root, dirFlags, 0)
	check(t, "open "+root, err)
	defer unix.Close(fd)
	walk(fd, "")
	return out
}

func dirNames(t testing.TB, dfd int) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	var names []string
	for {
		n, err := unix.Getdents(dfd, buf)
		check(t, "getdents", err)
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names
}

func fdXattrs(t testing.TB, dfd int, base string, private bool) string {
	t.Helper()
	proc := fmt.Sprintf("/proc/self/fd/%d/%s", dfd, base)
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(proc, buf)
	check(t, "llistxattr "+base, err)
	var out []string
	for _, x := range strings.Split(string(buf[:n]), "\x00") {
		if x == "" || !private && privateXattr(x) {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(proc, x, v)
		check(t, "lgetxattr "+base+" "+x, err)
		out = append(out, fmt.Sprintf("%q=%q", x, v[:m]))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func diffTrees(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %q missing", what, k)
		} else if g != want[k] {
			t.Errorf("%s: %q differs:\n  source %s\n  got    %s", what, k, want[k], g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %q appeared: %s", what, k, g)
		}
	}
}

func writeTree(t testing.TB, root string, opts TarOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteTree(context.Background(), &b, root, opts); err != nil {
		t.Fatalf("WriteTree: %v", err)
	}
	return b.Bytes()
}

// gnuTar extracts data into dir with GNU tar, as root: owners, modes,
// times and every xattr kept. Pre-1970 times are not warned about.
func gnuTar(t testing.TB, data []byte, dir string, args ...string) {
	t.Helper()
	testutil.RequiresGNUTar(t)
	args = append([]string{"-x", "--xattrs", "--xattrs-include=*", "--warning=no-timestamp", "-f", "-", "-C", dir}, args...)
	cmd := exec.Command("tar", args...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("GNU tar -x: %v\n%s", err, stderr.String())
	}
}

// readTar reads a whole stream with archive/tar: headers in order and the
// digest of each entry's data.
func readTar(t testing.TB, data []byte) ([]*tar.Header, map[string]string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hdrs []*tar.Header
	sums := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, sums
		}
		check(t, "tar reader", err)
		h := sha256.New()
		n, err := io.Copy(h, tr)
		check(t, "tar reader "+hdr.Name, err)
		if hdr.Typeflag == tar.TypeReg {
			sums[hdr.Name] = fmt.Sprintf("size=%d sha256=%x", n, h.Sum(nil)[:8])
		}
		hdrs = append(hdrs, hdr)
	}
}

func blocks(t testing.TB, root, name string) int64 {
	t.Helper()
	fd := openLong(t, root, name)
	defer unix.Close(fd)
	var st unix.Stat_t
	check(t, "stat "+name, unix.Fstat(fd, &st))
	return st.Blocks * 512
}

var (
	long = strings.Repeat("n", 255)
	// deep is a directory path over 4 KiB (PATH_MAX) long.
	deep = func() string {
		var comps []string
		for i := 0; len(strings.Join(comps, "/")) <= 4200; i++ {
			comps = append(comps, fmt.Sprintf("%03d", i)+strings.Repeat("d", 247))
		}
		return strings.Join(comps, "/")
	}()
	badUTF8     = "bad\xff\xfe"
	sparseLong  = "sparse-" + strings.Repeat("s", 150) + "\xff"
	oldTime     = time.Date(1960, 1, 2, 3, 4, 5, 0, time.UTC)
	nanoTime    = time.Date(2022, 2, 3, 4, 5, 6, 789, time.UTC)
	largeID     = 3000000 // over 2^21: does not fit a ustar field
	capV2       = capability()
	sparseFiles = []string{"sparse", "sparse-end", "hole", badUTF8 + "/" + sparseLong, deep + "/sparse"}
)

// capability is a struct vfs_cap_data, revision 2: effective,
// CAP_NET_BIND_SERVICE permitted.
func capability() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b)
}

// richTree holds every kind of file and metadata a tar entry carries.
func richTree() []fsNode {
	nodes := []fsNode{
		fsDir("bin"),
		fsFile("bin/ping", "elf\x00binary").mode(0o4755).owner(1000, 2000).
			xattr("security.capability", capV2).xattr("user.mime", "application/x-elf"),
		fsFile("bin/sgid", "#!/bin/sh\n").mode(0o2711),
		fsDir("tmp").mode(0o1777),
		fsDir("sgid").mode(0o2750).owner(10, 20).xattr("user.d", "dir").xattr("trusted.note", "t"),
		fsDir("etc"),
		fsFile("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		fsHard("etc/hard", "etc/passwd"),
		fsHard("bin/passwd", "etc/passwd"), // the first name written of this inode
		fsSym("link", "etc/passwd").owner(3, 4).xattr("trusted.s", "s"),
		fsHard("link2", "link"),
		fsSym("dangling", "/nonexistent/target"),
		fsDir("dev"),
		fsDev("dev/null", unix.S_IFCHR, 1, 3).mode(0o666),
		fsDev("dev/loop0", unix.S_IFBLK, 7, 0).mode(0o660).owner(0, 6),
		fsDev("dev/big", unix.S_IFCHR, 4000, 1000000),
		fsDev("dev/fifo", unix.S_IFIFO, 0, 0).mode(0o620).xattr("trusted.f", "fifo"),
		fsHard("dev/fifo2", "dev/fifo"),
		fsDev("dev/sock", unix.S_IFSOCK, 0, 0),
		fsFile("empty", ""),
		fsFile("xattrs", "x").xattr("user.empty", "").xattr("user.bin", "\x00\xff\x01").
			xattr("trusted.overlay.origin", "o").xattr("user.overlay.redirect", "u").
			xattr("security.selinux", "system_u:object_r:etc_t:s0").xattr("user."+badUTF8, "v"),
		fsDir("upper").xattr("trusted.overlay.opaque", "y"),
		fsFile("bigid", "id").owner(largeID, largeID+1),
		fsFile("old", "1960").at(oldTime),
		fsFile("nanos", "ns").at(nanoTime),
		fsSparse("sparse", 64<<20, chunk{0, "head"}, chunk{40 << 20, "middle"}).mode(0o640).owner(5, 6).xattr("user.s", "sparse"),
		fsSparse("sparse-end", 8<<20, chunk{4 << 20, "x"}, chunk{8<<20 - 3, "end"}),
		fsSparse("hole", 16<<20),
		fsFile(long, "255"),
		fsDir(badUTF8),
		fsFile(badUTF8+"/f\x80", "bad utf-8"),
		fsSym(badUTF8+"/l", "target\xff"),
		fsSparse(badUTF8+"/"+sparseLong, 1<<20, chunk{512 << 10, "data"}).owner(largeID, 7).at(oldTime).xattr("user.x", "y"),
	}
	dir := ""
	for _, c := range strings.Split(deep, "/") {
		dir = path.Join(dir, c)
		nodes = append(nodes, fsDir(dir))
	}
	return append(nodes,
		fsFile(deep+"/"+long, "deep"),
		fsSparse(deep+"/sparse", 1<<20, chunk{4096, "deep sparse"}),
		fsHard("zz-deep-hard", deep+"/"+long),
	)
}

func TestWriteTree(t *testing.T) {
	testutil.RequiresRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	check(t, "mkdir", os.Mkdir(src, 0o755))
	build(t, src, richTree()...)
	want := describe(t, src, false)
	data := writeTree(t, src, TarOptions{})
	t.Logf("%d entries, %d bytes of tar", len(want), len(data))
	if len(data) > 256<<10 {
		t.Errorf("tar of %d bytes: sparse files written whole?", len(data))
	}

	t.Run("Apply", func(t *testing.T) {
		dst := filepath.Join(tmp, "apply")
		check(t, "mkdir", os.Mkdir(dst, 0o755))
		mustApply(t, dst, data)
		diffTrees(t, "applied", want, describe(t, dst, true))
		for _, name := range sparseFiles {
			if n := blocks(t, dst, name); n > 256<<10 {
				t.Errorf("%s: %d bytes on disk, want a sparse file", name, n)
			}
		}
	})

	t.Run("GNU tar", func(t *testing.T) {
		dst := filepath.Join(tmp, "gnu")
		check(t, "mkdir", os.Mkdir(dst, 0o755))
		// GNU tar cannot make paths over PATH_MAX: leave out the deep tree.
		gnuTar(t, data, dst, "--exclude=000d*", "--exclude=zz-deep-hard")
		shallow := maps.Clone(want)
		maps.DeleteFunc(shallow, func(name string, _ string) bool { return len(name) > 4000 || name == "zz-deep-hard" })
		maps.DeleteFunc(shallow, func(name string, _ string) bool { return strings.HasPrefix(name, "000d") })
		diffTrees(t, "GNU tar", shallow, describe(t, dst, true))
		for _, name := range sparseFiles {
			if strings.HasPrefix(name, "000d") {
				continue
			}
			if n := blocks(t, dst, name); n > 64<<10 {
				t.Errorf("%s: %d bytes on disk, want a sparse file", name, n)
			}
		}
	})

	t.Run("archive/tar", func(t *testing.T) {
		hdrs, sums := readTar(t, data)
		seen := map[string]bool{}
		var lastIn = map[string]string{} // directory -> last child name
		for _, h := range hdrs {
			name := strings.TrimSuffix(h.Name, "/")
			if h.Uname != "" || h.Gname != "" {
				t.Errorf("%q: user %q group %q, want no names", h.Name, h.Uname, h.Gname)
			}
			if strings.HasPrefix(h.Name, "./") || strings.HasPrefix(h.Name, "/") {
				t.Errorf("%q: want a name without ./ or /", h.Name)
			}
			if (h.Typeflag == tar.TypeDir) != strings.HasSuffix(h.Name, "/") {
				t.Errorf("%q: type %q; directories, and only they, end with /", h.Name, h.Typeflag)
			}
			if h.ModTime.Nanosecond() != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
				t.Errorf("%q: mtime %v atime %v ctime %v, want whole-second mtime alone", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
			}
			for k := range h.PAXRecords {
				if x, ok := strings.CutPrefix(k, paxXattr); ok && privateXattr(x) || k == "atime" || k == "ctime" {
					t.Errorf("%q: PAX record %q must not be written", h.Name, k)
				}
			}
			parent, base := path.Split(name)
			parent = strings.TrimSuffix(parent, "/")
			if parent != "" && !seen[parent] {
				t.Errorf("%q before its parent", h.Name)
			}
			if last, ok := lastIn[parent]; ok && last >= base {
				t.Errorf("%q after %q in one directory: want bytewise order", base, last)
			}
			lastIn[parent] = base
			seen[name] = true
		}
		for name, sum := range sums {
			if w := want[name]; !strings.Contains(w, sum) {
				t.Errorf("%q read back by archive/tar: %s, want %s", name, sum, w)
			}
		}
		byName := map[string]*tar.Header{}
		for _, h := range hdrs {
			byName[strings.TrimSuffix(h.Name, "/")] = h
		}
		if _, ok := byName["dev/sock"]; ok {
			t.Error("socket written")
		}
		for _, c := range []struct {
			name, want string
		}{
			{"bin/ping", fmt.Sprintf("type=%q mode=4755 owner=1000:2000 cap=%t", tar.TypeReg, true)},
			{"bin/passwd", fmt.Sprintf("type=%q mode=644 owner=0:0 cap=%t", tar.TypeReg, false)},
			{"etc/hard", fmt.Sprintf("type=%q mode=644 owner=0:0 cap=%t link=bin/passwd", tar.TypeLink, false)},
			{"etc/passwd", fmt.Sprintf("type=%q mode=644 owner=0:0 cap=%t link=bin/passwd", tar.TypeLink, false)},
			{"dev/fifo2", fmt.Sprintf("type=%q mode=620 owner=0:0 cap=%t link=dev/fifo", tar.TypeLink, false)},
			{"link", fmt.Sprintf("type=%q mode=777 owner=3:4 cap=%t link=etc/passwd", tar.TypeSymlink, false)},
			{"link2", fmt.Sprintf("type=%q mode=777 owner=3:4 cap=%t link=link", tar.TypeLink, false)},
			{"dev/big", fmt.Sprintf("type=%q mode=600 owner=0:0 cap=%t dev=4000:1000000", tar.TypeChar, false)},
			{"dev/loop0", fmt.Sprintf("type=%q mode=660 owner=0:6 cap=%t dev=7:0", tar.TypeBlock, false)},
			{"tmp", fmt.Sprintf("type=%q mode=1777 owner=0:0 cap=%t", tar.TypeDir, false)},
			{"bigid", fmt.Sprintf("type=%q mode=644 owner=%d:%d cap=%t", tar.TypeReg, largeID, largeID+1, false)},
		} {
			h := byName[c.name]
			if h == nil {
				t.Errorf("%q: no entry", c.name)
				continue
			}
			got := fmt.Sprintf("type=%q mode=%o owner=%d:%d cap=%t", h.Typeflag, h.Mode, h.Uid, h.Gid, h.PAXRecords[paxXattr+"security.capability"] == capV2)
			if h.Linkname != "" {
				got += " link=" + h.Linkname
			}
			if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
				got += fmt.Sprintf(" dev=%d:%d", h.Devmajor, h.Devminor)
			}
			if got != c.want {
				t.Errorf("%q: %s, want %s", c.name, got, c.want)
			}
		}
		for _, name := range sparseFiles {
			if h := byName[name]; h == nil || h.PAXRecords["GNU.sparse.major"] != "1" || h.PAXRecords["GNU.sparse.minor"] != "0" {
				t.Errorf("%q: not a PAX 1.0 sparse entry", name)
			}
		}
		for _, name := range []string{"bin/ping", "empty", "etc/hard"} {
			if _, ok := byName[name].PAXRecords["GNU.sparse.major"]; ok {
				t.Errorf("%q: a sparse entry, but the file has no holes", name)
			}
		}
		if h := byName["old"]; !h.ModTime.Equal(oldTime) {
			t.Errorf("old: mtime %v, want %v", h.ModTime, oldTime)
		}
		if h := byName["nanos"]; !h.ModTime.Equal(nanoTime.Truncate(time.Second)) || h.Format != tar.FormatUSTAR {
			t.Errorf("nanos: mtime %v format %v, want %v in a ustar header", h.ModTime, h.Format, nanoTime.Truncate(time.Second))
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		if again := writeTree(t, src, TarOptions{}); !bytes.Equal(again, data) {
			t.Error("the same tree written twice gives different bytes")
		}
		other := filepath.Join(tmp, "other")
		check(t, "mkdir", os.Mkdir(other, 0o755))
		build(t, other, richTree()...)
		if again := writeTree(t, other, TarOptions{}); !bytes.Equal(again, data) {
			t.Error("two copies of a tree give different bytes")
		}
	})
}

func TestTarWriterWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src, fsDir("d"), fsFile("d/keep", "k"), fsDir("o").xattr("trusted.overlay.opaque", "y"))
	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{Layer: true})
	ctx := context.Background()
	for _, err := range []error{
		tw.Add(ctx, src, "d"),
		tw.Add(ctx, src, "d/keep"),
		tw.AddWhiteout("d/gone"),
		tw.AddWhiteout("top"),
		tw.Add(ctx, src, "o"),
		tw.AddOpaque("o"),
		tw.AddOpaque("."),
	} {
		check(t, "write", err)
	}
	for _, name := range []string{"", ".", "/a", "a/", "./a", "a//b", "a/../b", "..", "../a"} {
		if err := tw.AddWhiteout(name); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("tar entry %q", name)) {
			t.Errorf("AddWhiteout(%q) = %v, want an error naming it", name, err)
		}
		if name == "." {
			continue
		}
		if err := tw.AddOpaque(name); err == nil {
			t.Errorf("AddOpaque(%q) succeeded", name)
		}
		if err := tw.Add(ctx, src, name); err == nil {
			t.Errorf("Add(%q) succeeded", name)
		}
	}
	if err := tw.AddWhiteout("d/.wh.x"); !errors.Is(err, ErrUnrepresentable) {
		t.Errorf("whiteout of a whiteout name: %v, want ErrUnrepresentable", err)
	}
	check(t, "Close", tw.Close())

	hdrs, _ := readTar(t, b.Bytes())
	var got []string
	for _, h := range hdrs {
		got = append(got, h.Name)
		if strings.Contains(h.Name, whiteoutPrefix) {
			if h.Typeflag != tar.TypeReg || h.Size != 0 || h.Mode != 0 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 || len(h.PAXRecords) != 0 {
				t.Errorf("%q: %+v, want an empty regular file, mode 0, 0:0, at the epoch", h.Name, h)
			}
		}
	}
	if want := []string{"d/", "d/keep", "d/.wh.gone", ".wh.top", "o/", "o/.wh..wh..opq", ".wh..wh..opq"}; !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}

	root, _ := sandbox(t)
	mustApply(t, root, b.Bytes())
	// The root is opaque: the layer's whiteouts hide nothing, and Apply drops them.
	for _, name := range []string{"d/gone", "top"} {
		if err := unix.Lstat(filepath.Join(root, name), &unix.Stat_t{}); err != unix.ENOENT {
			t.Errorf("%s: lstat: %v, want no whiteout below an opaque root", name, err)
		}
	}
	for _, name := range []string{"o", "."} {
		if got := getxattr(t, filepath.Join(root, name), OverlayOpaque); got != "y" {
			t.Errorf("%s: %s = %q, want y", name, OverlayOpaque, got)
		}
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "d"), OverlayOpaque, nil); err != unix.ENODATA {
		t.Errorf("d is opaque (%v)", err)
	}
}

func TestTarWriterLayerNames(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src, fsDir("d"), fsFile("d/.wh.x", "x"), fsFile("d/.wh..wh..opq", "o"), fsFile("d/ok", "ok"))
	ctx := context.Background()

	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{Layer: true})
	err := tw.Add(ctx, src, "d/.wh.x")
	if !errors.Is(err, ErrUnrepresentable) || !strings.Contains(err.Error(), `tar entry "d/.wh.x"`) {
		t.Errorf("Add of a .wh. name in a layer: %v, want ErrUnrepresentable naming it", err)
	}
	check(t, "Add after a refusal", tw.Add(ctx, src, "d/ok"))
	check(t, "Close", tw.Close())
	if hdrs, _ := readTar(t, b.Bytes()); len(hdrs) != 1 || hdrs[0].Name != "d/ok" {
		t.Errorf("stream after a refusal: %v", hdrs)
	}

	err = WriteTree(ctx, io.Discard, src, TarOptions{Layer: true})
	if !errors.Is(err, ErrUnrepresentable) || !strings.Contains(err.Error(), `tar entry "d/.wh..wh..opq"`) {
		t.Errorf("WriteTree of a layer: %v, want ErrUnrepresentable naming d/.wh..wh..opq", err)
	}
	hdrs, _ := readTar(t, writeTree(t, src, TarOptions{}))
	if len(hdrs) != 4 {
		t.Errorf("export: %d entries, want 4: d/ and its three files", len(hdrs))
	}
}

// A 1 GiB file holding 14 bytes is a tar of a few KiB.
func TestTarWriterSparseHuge(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	const size, off, body = 1 << 30, 512 << 20, "fourteen bytes"
	build(t, src, fsSparse("huge", size, chunk{off, body}))
	data := writeTree(t, src, TarOptions{})
	// PAX header and records, ustar header, sparse map, one 4 KiB block of
	// data (the filesystem's unit of holes), end of archive.
	if want := 512 + 512 + 512 + 512 + 4096 + 1024; len(data) != want {
		t.Errorf("tar of %d bytes, want %d", len(data), want)
	}

	tr := tar.NewReader(bytes.NewReader(data))
	hdr, err := tr.Next()
	check(t, "tar reader", err)
	if hdr.Name != "huge" || hdr.Size != size {
		t.Fatalf("entry %q of %d bytes, want huge of %d", hdr.Name, hdr.Size, size)
	}
	buf := make([]byte, 1<<20)
	var pos int64
	for {
		n, err := tr.Read(buf)
		for i, c := range buf[:n] {
			at := pos + int64(i)
			want := byte(0)
			if at >= off && at < off+int64(len(body)) {
				want = body[at-off]
			}
			if c != want {
				t.Fatalf("byte %d = %q, want %q", at, c, want)
			}
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		check(t, "read", err)
	}
	if pos != size {
		t.Errorf("read %d bytes, want %d", pos, size)
	}

	for name, extract := range map[string]func(string){
		"Apply":   func(dst string) { mustApply(t, dst, data) },
		"GNU tar": func(dst string) { gnuTar(t, data, dst) },
	} {
		dst := t.TempDir()
		extract(dst)
		got := make([]byte, len(body)+2)
		f, err := os.Open(filepath.Join(dst, "huge"))
		check(t, name, err)
		_, err = f.ReadAt(got, off-1)
		f.Close()
		check(t, name, err)
		if string(got) != "\x00"+body+"\x00" {
			t.Errorf("%s: %q around the data", name, got)
		}
		st := lstat(t, filepath.Join(dst, "huge"))
		if st.Size != size || st.Blocks*512 > 64<<10 {
			t.Errorf("%s: size %d, %d bytes on disk, want %d, sparse", name, st.Size, st.Blocks*512, size)
		}
	}
}

// A sparse file over 8 GiB: its size does not fit a ustar field.
func TestTarWriterSparseOver8GiB(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	const size = 20 << 30
	build(t, src, fsSparse("big", size, chunk{0, "start"}, chunk{size - 3, "end"}).owner(largeID, 1))
	data := writeTree(t, src, TarOptions{})
	tr := tar.NewReader(bytes.NewReader(data))
	hdr, err := tr.Next()
	check(t, "tar reader", err)
	head := make([]byte, 5)
	_, err = io.ReadFull(tr, head)
	check(t, "read", err)
	if hdr.Size != size || hdr.Uid != largeID || string(head) != "start" {
		t.Errorf("entry of %d bytes, uid %d, starting %q", hdr.Size, hdr.Uid, head)
	}
	dst := t.TempDir()
	gnuTar(t, data, dst)
	st := lstat(t, filepath.Join(dst, "big"))
	tail := make([]byte, 3)
	f, err := os.Open(filepath.Join(dst, "big"))
	check(t, "open", err)
	_, err = f.ReadAt(tail, size-3)
	f.Close()
	check(t, "read", err)
	if st.Size != size || st.Uid != uint32(largeID) || string(tail) != "end" {
		t.Errorf("GNU tar: size %d, uid %d, ending %q", st.Size, st.Uid, tail)
	}
}

func TestTarWriterLongPath(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	nodes := []fsNode{}
	dir := ""
	for _, c := range strings.Split(deep, "/") {
		dir = path.Join(dir, c)
		nodes = append(nodes, fsDir(dir))
	}
	build(t, src, append(nodes, fsFile(deep+"/"+long, "deep"))...)
	name := deep + "/" + long
	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{Layer: true})
	check(t, "Add", tw.Add(context.Background(), src, name))
	check(t, "Add", tw.Add(context.Background(), src, deep))
	check(t, "Close", tw.Close())
	hdrs, sums := readTar(t, b.Bytes())
	if len(hdrs) != 2 || hdrs[0].Name != name || hdrs[1].Name != deep+"/" || !strings.HasPrefix(sums[name], "size=4 ") {
		t.Fatalf("entries %v", hdrs)
	}
	root, _ := sandbox(t)
	mustApply(t, root, b.Bytes())
	if got := describe(t, root, true)[name]; got != describe(t, src, false)[name] {
		t.Errorf("applied: %s", got)
	}
}

// Paths deeper than the fd cache's window: a bounded number of fds.
func TestWriteTreeDeep(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	var nodes []fsNode
	name := ""
	for i := 0; i < 5*cacheWindow; i++ {
		name = path.Join(name, fmt.Sprint(i%10))
		nodes = append(nodes, fsDir(name), fsFile(name+"/f", fmt.Sprint(i)))
	}
	build(t, src, nodes...)
	fds := openFds(t)
	peak := 0
	w := writerFunc(func(p []byte) (int, error) {
		peak = max(peak, openFds(t))
		return len(p), nil
	})
	var b bytes.Buffer
	check(t, "WriteTree", WriteTree(context.Background(), io.MultiWriter(&b, w), src, TarOptions{}))
	if now := openFds(t); now != fds {
		t.Errorf("open fds: %d before WriteTree, %d after", fds, now)
	}
	if peak > fds+3*cacheWindow {
		t.Errorf("%d fds open while writing, %d before", peak, fds)
	}
	root, _ := sandbox(t)
	mustApply(t, root, b.Bytes())
	diffTrees(t, "applied", describe(t, src, false), describe(t, root, true))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A tree where a parent is a symlink: nothing is read through it.
func TestTarWriterSymlinkParent(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src, fsSym("a", "/etc"), fsSym("b", "."), fsDir("d"), fsSym("d/up", ".."))
	ctx := context.Background()
	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{})
	for name, parent := range map[string]string{"a/passwd": "a", "b/a": "b", "d/up/a": "d/up", "d/up/d/up/b": "d/up"} {
		err := tw.Add(ctx, src, name)
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), fmt.Sprintf("tar entry %q: parent %q", name, parent)) {
			t.Errorf("Add(%q) = %v, want ErrUnsafe naming parent %q", name, err, parent)
		}
	}
	check(t, "Add", tw.Add(ctx, src, "a"))
	check(t, "Close", tw.Close())
	if bytes.Contains(b.Bytes(), []byte("root:")) {
		t.Error("/etc/passwd read through a symlinked parent")
	}
	if hdrs, _ := readTar(t, b.Bytes()); len(hdrs) != 1 || hdrs[0].Typeflag != tar.TypeSymlink || hdrs[0].Linkname != "/etc" {
		t.Errorf("entries %v, want the symlink a alone", hdrs)
	}
	hdrs, _ := readTar(t, writeTree(t, src, TarOptions{}))
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
	}
	if want := []string{"a", "b", "d/", "d/up"}; !slices.Equal(names, want) {
		t.Errorf("WriteTree entries %q, want %q", names, want)
	}
}

func TestTarWriterContext(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src, fsFile("a", "a"), fsFile("big", noise(8<<20)), fsFile("c", "c"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteTree(ctx, io.Discard, src, TarOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteTree = %v, want context.Canceled", err)
	}
	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{})
	if err := tw.Add(ctx, src, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Add = %v, want context.Canceled", err)
	}
	check(t, "Close", tw.Close())
	if hdrs, _ := readTar(t, b.Bytes()); len(hdrs) != 0 {
		t.Errorf("%d entries written after cancel", len(hdrs))
	}

	// Cancelled in the middle of a file: the stream is broken for good.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	tw = NewTarWriter(writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil }), TarOptions{})
	err := tw.Add(ctx, src, "big")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `tar entry "big"`) {
		t.Errorf("Add = %v, want context.Canceled naming big", err)
	}
	if err2 := tw.Add(context.Background(), src, "c"); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("Add after a broken entry = %v, want %v", err2, err)
	}
	if err2 := tw.Close(); err2 == nil {
		t.Error("Close of a broken stream succeeded")
	}
}

// Files that change while they are written: the stream stays valid.
func TestTarWriterChanged(t *testing.T) {
	testutil.RequiresRoot(t)
	body := noise(4 << 20)
	for _, c := range []struct {
		name   string
		file   fsNode
		change func(src string) error
		want   func(got []byte) bool // the entry's data
		err    string
	}{
		{"shrinks", fsFile("f", body),
			func(src string) error { return os.Truncate(filepath.Join(src, "f"), 100<<10) },
			func(got []byte) bool {
				return len(got) == len(body) && string(got[:copyBuffer]) == body[:copyBuffer] &&
					bytes.Count(got[copyBuffer:], []byte{0}) == len(body)-copyBuffer
			},
			`tar entry "f": changed while being read`},
		{"grows", fsFile("f", body),
			func(src string) error {
				f, err := os.OpenFile(filepath.Join(src, "f"), os.O_APPEND|os.O_WRONLY, 0)
				if err == nil {
					_, err = f.WriteString("more")
					f.Close()
				}
				return err
			},
			func(got []byte) bool { return string(got) == body },
			`tar entry "f": changed while being read`},
		{"sparse shrinks", fsSparse("f", 64<<20, chunk{0, body}, chunk{32 << 20, "late"}),
			func(src string) error { return os.Truncate(filepath.Join(src, "f"), 1<<20) },
			func(got []byte) bool {
				return len(got) == 64<<20 && string(got[:1<<20]) == body[:1<<20] && bytes.Count(got[1<<20:], []byte{0}) == len(got)-1<<20
			},
			`tar entry "f": changed while being read`},
		{"vanishes", fsFile("f", body),
			func(src string) error { return os.Remove(filepath.Join(src, "z")) },
			func(got []byte) bool { return string(got) == body },
			`tar entry "z": open: no such file or directory`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			build(t, src, c.file, fsFile("z", "last"))
			var b bytes.Buffer
			once := false
			w := writerFunc(func(p []byte) (int, error) {
				if !once {
					once = true
					check(t, "change", c.change(src))
				}
				return b.Write(p)
			})
			err := WriteTree(context.Background(), w, src, TarOptions{})
			if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("WriteTree = %v, want ErrChanged and %q", err, c.err)
			}
			tr := tar.NewReader(&b)
			hdr, err := tr.Next()
			check(t, "tar reader", err)
			got, err := io.ReadAll(tr)
			check(t, "tar reader", err)
			if hdr.Name != "f" || !c.want(got) {
				t.Errorf("entry %q: %d bytes, not the ones expected", hdr.Name, len(got))
			}
			n := 0
			for {
				if _, err := tr.Next(); err == io.EOF {
					break
				} else {
					check(t, "tar reader", err)
				}
				n++
			}
			if want := map[bool]int{true: 0, false: 1}[c.name == "vanishes"]; n != want {
				t.Errorf("%d entries after f, want %d", n, want)
			}
		})
	}
}

func TestTarWriterErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src, fsFile("a", "a"), fsFile("eq", "x"))
	ctx := context.Background()
	var b bytes.Buffer
	tw := NewTarWriter(&b, TarOptions{})
	if err := tw.Add(ctx, src, "missing"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `tar entry "missing"`) {
		t.Errorf("Add(missing) = %v, want not exist, naming it", err)
	}
	if err := tw.Add(ctx, src, "a/b"); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("Add(a/b) = %v, want ENOTDIR", err)
	}
	if err := tw.Add(ctx, filepath.Join(src, "none"), "a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Add in a missing root = %v, want not exist", err)
	}
	if err := unix.Setxattr(filepath.Join(src, "eq"), "user.a=b", []byte("v"), 0); err == nil {
		if err := tw.Add(ctx, src, "eq"); !errors.Is(err, ErrUnrepresentable) || !strings.Contains(err.Error(), `tar entry "eq": xattr "user.a=b"`) {
			t.Errorf("Add(eq) = %v, want ErrUnrepresentable naming the xattr", err)
		}
	}
	check(t, "Add after errors", tw.Add(ctx, src, "a"))
	check(t, "Close", tw.Close())
	check(t, "second Close", tw.Close())
	if err := tw.Add(ctx, src, "a"); err == nil {
		t.Error("Add after Close succeeded")
	}
	if hdrs, _ := readTar(t, b.Bytes()); len(hdrs) != 1 || hdrs[0].Name != "a" {
		t.Errorf("entries %v, want a alone", hdrs)
	}
}

// BenchmarkWriteTree writes 5,000 files of 4 KiB in 100 directories.
func BenchmarkWriteTree(b *testing.B) {
	testutil.RequiresRoot(b)
	src := b.TempDir()
	data := binaryLike(5000 * 4096)
	var nodes []fsNode
	for i := 0; i < 5000; i++ {
		if i%50 == 0 {
			nodes = append(nodes, fsDir(fmt.Sprintf("d%03d", i/50)))
		}
		nodes = append(nodes, fsFile(fmt.Sprintf("d%03d/file%05d.so", i/50, i), string(data[i*4096:(i+1)*4096])))
	}
	build(b, src, nodes...)
	b.SetBytes(5000 * 4096)
	for b.Loop() {
		if err := WriteTree(context.Background(), io.Discard, src, TarOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Ordinary entries are the bytes Docker writes: archive/tar's headers from
// tar.FileInfoHeader, with Docker's changes (go-archive's
// FileInfoHeaderNoLookups: no user or group names, PAX, mtime truncated to
// seconds, no atime or ctime; names relative, directories with "/").
func TestWriteTreeDockerBytes(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	build(t, src,
		fsDir("etc").mode(0o750).owner(1, 2),
		fsFile("etc/passwd", "root:x:0:0::/root:/bin/sh\n").at(nanoTime),
		fsHard("etc/passwd2", "etc/passwd"),
		fsFile("bin", "#!/bin/sh\n").mode(0o4755).owner(largeID, 0),
		fsSym("link", "etc/passwd"),
		fsDir(strings.Repeat("x", 99)),
		fsFile(strings.Repeat("x", 99)+"/"+long, "long"),
	)
	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	seen := map[uint64]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if d.Type() == fs.ModeSymlink {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		name, _ := filepath.Rel(src, p)
		hdr.Name, hdr.Uname, hdr.Gname, hdr.Format = name, "", "", tar.FormatPAX
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = hdr.ModTime.Truncate(time.Second), time.Time{}, time.Time{}
		if d.IsDir() {
			hdr.Name += "/"
		}
		if st := fi.Sys().(*syscall.Stat_t); !d.IsDir() && st.Nlink > 1 {
			if first, ok := seen[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[st.Ino] = name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	check(t, "reference stream", err)
	check(t, "reference stream", tw.Close())
	if got := writeTree(t, src, TarOptions{}); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("stream differs from Docker's:\n%s", cmpTars(t, got, want.Bytes()))
	}
}

func cmpTars(t testing.TB, got, want []byte) string {
	g, _ := readTar(t, got)
	w, _ := readTar(t, want)
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		if i < len(g) {
			fmt.Fprintf(&b, "  got  %+v\n", *g[i])
		}
		if i < len(w) {
			fmt.Fprintf(&b, "  want %+v\n", *w[i])
		}
	}
	return b.String()
}
