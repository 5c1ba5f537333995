package rootfs

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestApplyMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	mtime := time.Date(2019, 1, 2, 3, 4, 5, 123456789, time.UTC)
	atime := time.Date(2020, 6, 7, 8, 9, 10, 987654321, time.UTC)
	dirTime := time.Date(2018, 5, 6, 7, 8, 9, 0, time.UTC)
	size := mustApply(t, root, tartest.Tar(t,
		tartest.Dir("sgid").Mode(0o2750).Owner(10, 20).Times(dirTime, dirTime),
		tartest.File("sgid/setuid", "#!/bin/sh\n").Mode(0o4755).Owner(1000, 2000).Times(mtime, atime),
		tartest.Dir("tmp").Mode(0o1777).Times(dirTime, dirTime),
		tartest.File("tmp/file", "hello").Mode(0o600),
		tartest.Symlink("tmp/link", "../sgid/setuid").Owner(3, 4).Times(mtime, atime),
		tartest.Hardlink("tmp/hard", "sgid/setuid"),
		tartest.Char("dev/null", 1, 3).Mode(0o666),
		tartest.Block("dev/loop0", 7, 0).Mode(0o660).Owner(0, 6),
		tartest.Fifo("dev/fifo").Mode(0o620),
		tartest.File("implicit/a/file", "x"),
		tartest.Dir("again").Mode(0o700),
		tartest.File("again/x", ""),
		tartest.Dir("again/").Mode(0o751).Owner(5, 6).Times(dirTime, dirTime),
		tartest.Dir("./").Mode(0o711).Times(dirTime, dirTime),
	))
	if want := int64(len("#!/bin/sh\n") + len("hello") + len("x")); size != want {
		t.Errorf("size = %d, want %d", size, want)
	}

	for _, c := range []struct {
		name     string
		mode     uint32
		uid, gid uint32
		mtime    time.Time
		rdev     uint64
	}{
		{"sgid", unix.S_IFDIR | 0o2750, 10, 20, dirTime, 0},
		{"sgid/setuid", unix.S_IFREG | 0o4755, 1000, 2000, mtime, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0, dirTime, 0},
		{"tmp/file", unix.S_IFREG | 0o600, 0, 0, tartest.Time, 0},
		{"tmp/link", unix.S_IFLNK | 0o777, 3, 4, mtime, 0},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0, tartest.Time, unix.Mkdev(1, 3)},
		{"dev/loop0", unix.S_IFBLK | 0o660, 0, 6, tartest.Time, unix.Mkdev(7, 0)},
		{"dev/fifo", unix.S_IFIFO | 0o620, 0, 0, tartest.Time, 0},
		{"again", unix.S_IFDIR | 0o751, 5, 6, dirTime, 0},
		{".", unix.S_IFDIR | 0o711, 0, 0, dirTime, 0},
	} {
		st := lstat(t, filepath.Join(root, c.name))
		got := fmt.Sprintf("mode=%o owner=%d:%d mtime=%v rdev=%d", st.Mode, st.Uid, st.Gid, time.Unix(st.Mtim.Unix()).UTC(), st.Rdev)
		want := fmt.Sprintf("mode=%o owner=%d:%d mtime=%v rdev=%d", c.mode, c.uid, c.gid, c.mtime, c.rdev)
		if got != want {
			t.Errorf("%s: %s, want %s", c.name, got, want)
		}
	}
	if st := lstat(t, filepath.Join(root, "sgid/setuid")); time.Unix(st.Atim.Unix()).UTC() != atime {
		t.Errorf("atime = %v, want %v", time.Unix(st.Atim.Unix()).UTC(), atime)
	}
	if st := lstat(t, filepath.Join(root, "implicit/a")); st.Mode != unix.S_IFDIR|0o755 {
		t.Errorf("implicit directory mode = %o, want 40755", st.Mode)
	}
	if target, err := os.Readlink(filepath.Join(root, "tmp/link")); err != nil || target != "../sgid/setuid" {
		t.Errorf("symlink = %q, %v", target, err)
	}
	a, b := lstat(t, filepath.Join(root, "sgid/setuid")), lstat(t, filepath.Join(root, "tmp/hard"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d and %d, nlink %d; want one inode, nlink 2", a.Ino, b.Ino, a.Nlink)
	}
}

func TestApplyXattrs(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	// struct vfs_cap_data, revision 2: effective, CAP_NET_BIND_SERVICE permitted.
	capability := make([]byte, 20)
	binary.LittleEndian.PutUint32(capability[0:], 0x02000001)
	binary.LittleEndian.PutUint32(capability[4:], 1<<10)
	mustApply(t, root, tartest.Tar(t,
		tartest.File("bin/ping", "elf").Owner(1000, 1000).Mode(0o755).
			Xattr("security.capability", string(capability)).
			Xattr("user.mime", "application/x-elf").
			Xattr("trusted.note", "t").
			Xattr("trusted.overlay.redirect", "/etc").
			Xattr("user.overlay.origin", "x").
			Xattr("trusted.overlay.opaque", "y"),
		tartest.Dir("d").Xattr("user.d", "dir").Xattr("trusted.overlay.opaque", "y"),
		tartest.Symlink("s", "bin/ping").Xattr("user.ignored", "kernel refuses user.* on symlinks").Xattr("trusted.s", "s"),
	))
	for _, c := range []struct{ name, xattr, want string }{
		{"bin/ping", "security.capability", string(capability)},
		{"bin/ping", "user.mime", "application/x-elf"},
		{"bin/ping", "trusted.note", "t"},
		{"d", "user.d", "dir"},
		{"s", "trusted.s", "s"},
	} {
		if got := getxattr(t, filepath.Join(root, c.name), c.xattr); got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.name, c.xattr, got, c.want)
		}
	}
	for _, c := range []struct{ name, xattr string }{
		{"bin/ping", "trusted.overlay.redirect"},
		{"bin/ping", "user.overlay.origin"},
		{"bin/ping", "trusted.overlay.opaque"},
		{"d", "trusted.overlay.opaque"},
	} {
		if _, err := unix.Lgetxattr(filepath.Join(root, c.name), c.xattr, nil); err != unix.ENODATA {
			t.Errorf("%s: %s was set from the tar (err %v)", c.name, c.xattr, err)
		}
	}
}

func getxattr(t testing.TB, name, attr string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(name, attr, buf)
	if err != nil {
		t.Errorf("lgetxattr %s %s: %v", name, attr, err)
		return ""
	}
	return string(buf[:n])
}

func TestApplyWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	mustApply(t, root, tartest.Tar(t,
		tartest.Whiteout("gone"),
		tartest.Whiteout("deep/dir/gone"),
		tartest.Opaque("deep"),
		tartest.File(".wh..wh.plnk", ""),
		tartest.File("d/.wh..wh.aufs", ""),
		// A whiteout and a real entry of one name: the real entry wins.
		tartest.Whiteout("file-after"), tartest.File("file-after", "real"),
		tartest.File("file-before", "real"), tartest.Whiteout("file-before"),
		tartest.Whiteout("dir-after"), tartest.Dir("dir-after"), tartest.File("dir-after/x", ""),
		tartest.Whiteout("implicit-after"), tartest.File("implicit-after/x", ""),
		tartest.Whiteout("link-after"), tartest.Symlink("link-after", "gone"),
		tartest.File("target", "t"), tartest.Whiteout("hard-after"), tartest.Hardlink("hard-after", "target"),
	))
	for _, name := range []string{"gone", "deep/dir/gone"} {
		st := lstat(t, filepath.Join(root, name))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 character device", name, st.Mode, st.Rdev)
		}
	}
	if got := getxattr(t, filepath.Join(root, "deep"), OverlayOpaque); got != "y" {
		t.Errorf("deep: %s = %q, want y", OverlayOpaque, got)
	}
	for _, name := range []string{"deep/dir", "."} {
		if _, err := unix.Lgetxattr(filepath.Join(root, name), OverlayOpaque, nil); err != unix.ENODATA {
			t.Errorf("%s is opaque too (err %v)", name, err)
		}
	}
	for name, typ := range map[string]uint32{
		"file-after": unix.S_IFREG, "file-before": unix.S_IFREG, "dir-after": unix.S_IFDIR,
		"implicit-after": unix.S_IFDIR, "link-after": unix.S_IFLNK, "hard-after": unix.S_IFREG,
	} {
		if st := lstat(t, filepath.Join(root, name)); st.Mode&unix.S_IFMT != typ {
			t.Errorf("%s: mode %o, want type %o: the real entry should win", name, st.Mode, typ)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wh.") {
			t.Errorf("%s: whiteout entry applied as a file", e.Name())
		}
	}
}

// A layer with an opaque root hides every layer below it: its whiteouts
// hide nothing, and none is left; the real entry of a whiteout's name stays.
func TestApplyOpaqueRootDropsWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	mustApply(t, root, tartest.Tar(t,
		tartest.Whiteout("gone"),
		tartest.Whiteout("deep/dir/gone"),
		tartest.Opaque("deep"),
		tartest.Whiteout("file-after"), tartest.File("file-after", "real"),
		tartest.File("file-before", "real"), tartest.Whiteout("file-before"),
		tartest.Whiteout("dir-after"), tartest.Dir("dir-after"),
		tartest.Char("null", 1, 3),
		tartest.Opaque(""),
		tartest.Whiteout("late"),
	))
	for _, name := range []string{"gone", "deep/dir/gone", "late"} {
		if err := unix.Lstat(filepath.Join(root, name), &unix.Stat_t{}); err != unix.ENOENT {
			t.Errorf("%s: lstat: %v, want no whiteout", name, err)
		}
	}
	for name, typ := range map[string]uint32{"file-after": unix.S_IFREG, "file-before": unix.S_IFREG, "dir-after": unix.S_IFDIR, "null": unix.S_IFCHR, "deep/dir": unix.S_IFDIR} {
		if st := lstat(t, filepath.Join(root, name)); st.Mode&unix.S_IFMT != typ {
			t.Errorf("%s: mode %o, want type %o", name, st.Mode, typ)
		}
	}
	for _, name := range []string{"deep", "."} {
		if got := getxattr(t, filepath.Join(root, name), OverlayOpaque); got != "y" {
			t.Errorf("%s: %s = %q, want y", name, OverlayOpaque, got)
		}
	}
}

func TestApplyDuplicates(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, c := range []struct {
		name    string
		entries []tartest.Entry
		entry   string
	}{
		{"file twice", []tartest.Entry{tartest.File("a", "1"), tartest.File("a", "2")}, "a"},
		{"file then directory", []tartest.Entry{tartest.File("a", "1"), tartest.Dir("a")}, "a"},
		{"directory then file", []tartest.Entry{tartest.Dir("a"), tartest.File("./a", "1")}, "./a"},
		{"implicit directory then file", []tartest.Entry{tartest.File("a/b", "1"), tartest.File("a", "2")}, "a"},
		{"same file through a symlink", []tartest.Entry{tartest.Symlink("l", "d"), tartest.File("d/f", "1"), tartest.File("l/f", "2")}, "l/f"},
		{"symlink twice", []tartest.Entry{tartest.Symlink("a", "x"), tartest.Symlink("a", "y")}, "a"},
		{"whiteout twice", []tartest.Entry{tartest.Whiteout("a"), tartest.Whiteout("a")}, ".wh.a"},
		{"hardlink over its target", []tartest.Entry{tartest.File("a", "1"), tartest.Hardlink("a", "a")}, "a"},
		{"device twice", []tartest.Entry{tartest.Fifo("p"), tartest.Fifo("p")}, "p"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, _ := sandbox(t)
			_, err := apply(t, root, tartest.Tar(t, c.entries...))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("layer entry %q: duplicate entry", c.entry)) {
				t.Fatalf("Apply error = %v, want a duplicate entry error naming %q", err, c.entry)
			}
		})
	}
}

func TestApplyCorrupt(t *testing.T) {
	testutil.RequiresRoot(t)
	body := noise(1 << 20) // incompressible: a cut in the compressed stream falls in "big"
	valid := tartest.Tar(t, tartest.File("first", "hello"), tartest.File("big", body), tartest.File("last", "bye"))
	text := tartest.Tar(t, tartest.File("text", strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000)))
	badChecksum := append([]byte(nil), valid...)
	badChecksum[1024+3] ^= 0xff // the name of the second header ("big")

	for _, c := range []struct {
		name string
		data []byte
		want string // in the message
	}{
		{"truncated data", valid[:1024+512+1000], `layer entry "big": read: unexpected EOF`},
		{"truncated header", valid[:1024+512+len(body)+100], `corrupt layer stream after entry "big"`},
		{"size larger than data", tartest.Short(t, tartest.File("short", "only ten b"), 1000), `layer entry "short": read: unexpected EOF`},
		{"size larger than data, end blocks read as data",
			append(tartest.Short(t, tartest.File("short", "only ten b"), 1000), make([]byte, 1024)...), `corrupt layer stream after entry "short"`},
		{"bad checksum", badChecksum, `corrupt layer stream after entry "first": archive/tar: invalid tar header`},
		{"bad checksum of the first header", badChecksum[1024:], `corrupt layer stream at its start`},
		{"truncated gzip", gzipped(t, valid)[:2000], `layer entry "big": read: gzip stream: unexpected EOF`},
		{"gzip without its trailer", gzipped(t, valid)[:len(gzipped(t, valid))-4], `corrupt layer stream after entry "last": gzip stream`},
		{"corrupt gzip, stored blocks", corrupt(gzipped(t, valid)), `corrupt layer stream after entry "last": gzip stream: gzip: invalid checksum`},
		{"corrupt gzip, huffman blocks", corrupt(gzipped(t, text)), `gzip stream`},
		{"truncated zstd", zstded(t, valid)[:len(zstded(t, valid))/2], `layer entry "big": read: zstd stream: unexpected EOF`},
		{"corrupt zstd", corrupt(zstded(t, valid)), `zstd stream`},
		{"unsupported entry type", tartest.Tar(t, tartest.Entry{Header: tar.Header{Typeflag: 'V', Name: "volume"}}), `layer entry "volume": unsupported entry type 'V'`},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, _ := sandbox(t)
			before := snapshot(t, root)
			rc, _, err := Decompress(strings.NewReader(string(c.data)))
			if err == nil {
				defer rc.Close()
				_, err = Apply(context.Background(), root, rc)
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply error = %v, want ErrInvalid and %q", err, c.want)
			}
			checkCanary(t, root, before)
		})
	}
}

// noise returns n pseudo-random bytes, the same on every run.
func noise(n int) string {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return string(b)
}

// corrupt flips bytes in the middle of a compressed stream.
func corrupt(b []byte) []byte {
	b = append([]byte(nil), b...)
	for i := len(b) / 3; i < len(b)/3+16; i++ {
		b[i] ^= 0x5a
	}
	return b
}

func TestApplySparse(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	const size = 1 << 30
	data := []string{"hello, ", "sparse world"}
	offsets := []int64{4096, size - int64(len(data[1]))}
	n := mustApply(t, root, tartest.Sparse("sparse", size, offsets, data))
	if n != size {
		t.Errorf("size = %d, want %d", n, size)
	}
	name := filepath.Join(root, "sparse")
	st := lstat(t, name)
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Errorf("size %d, %d bytes on disk; want %d, under 1 MiB", st.Size, st.Blocks*512, size)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, off := range offsets {
		buf := make([]byte, len(data[i])+2)
		if _, err := f.ReadAt(buf, off-1); err != nil && off+int64(len(buf))-1 <= size {
			t.Fatal(err)
		}
		if got := string(buf[1 : 1+len(data[i])]); got != data[i] || buf[0] != 0 {
			t.Errorf("at %d: %q, want %q after a zero", off, got, data[i])
		}
	}

	// A plain file of zeros with data between holes.
	root2, _ := sandbox(t)
	zeros := strings.Repeat("\x00", 4<<20)
	mustApply(t, root2, tartest.Tar(t, tartest.File("zeros", zeros+"x"+zeros)))
	name = filepath.Join(root2, "zeros")
	if st := lstat(t, name); st.Size != int64(2*len(zeros)+1) || st.Blocks*512 > 256<<10 {
		t.Errorf("size %d, %d bytes on disk", st.Size, st.Blocks*512)
	}
	if got := readFile(t, name); got != zeros+"x"+zeros {
		t.Error("contents differ")
	}
}

func TestApplyLongNames(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	long := strings.Repeat("n", 255)
	var comps []string
	for i := 0; len(strings.Join(comps, "/")) <= 4200; i++ {
		comps = append(comps, fmt.Sprintf("%03d", i)+strings.Repeat("d", 247))
	}
	deep := strings.Join(comps, "/")
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	data := tartest.Tar(t,
		tartest.File(long, "255"),
		tartest.File(deep+"/"+long, "deep"),
		tartest.Dir(deep).Mode(0o700).Times(mtime, mtime),
		tartest.Symlink(deep+"/link", long),
		tartest.Hardlink("hard", deep+"/"+long),
		tartest.Whiteout(deep+"/gone"),
		tartest.Hardlink(deep+"/hard", long),
	)
	mustApply(t, root, data)

	if got := readFile(t, filepath.Join(root, long)); got != "255" {
		t.Errorf("255-byte name: %q", got)
	}
	fd := openLong(t, root, deep)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFDIR|0o700 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("deep directory: mode %o mtime %d, want 40700 %d", st.Mode, st.Mtim.Sec, mtime.Unix())
	}
	for name, want := range map[string]uint32{long: unix.S_IFREG, "link": unix.S_IFLNK, "gone": unix.S_IFCHR, "hard": unix.S_IFREG} {
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != want {
			t.Errorf("%s in the deep directory: mode %o, %v", name, st.Mode, err)
		}
	}
	unix.Close(fd)
	a, b := lstat(t, filepath.Join(root, "hard")), lstat(t, filepath.Join(root, long))
	if a.Nlink != 2 || b.Nlink != 2 {
		t.Errorf("hard links: nlink %d and %d, want 2", a.Nlink, b.Nlink)
	}

	root2, _ := sandbox(t)
	_, err := apply(t, root2, tartest.Tar(t, tartest.File(deep+"/"+long, "a"), tartest.File(deep+"/"+long, "b")))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), long) {
		t.Errorf("Apply error = %v, want a duplicate naming the long entry", err)
	}
}

// Paths deeper than the walker's fd cache: cached fds are dropped and the
// walk resumes from a kept one.
func TestApplyDeepTree(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	var fs []tartest.Entry
	name := ""
	for i := 0; i < 5*cacheWindow; i++ {
		name = filepath.Join(name, fmt.Sprint(i%10))
		fs = append(fs, tartest.Dir(name).Mode(0o750), tartest.File(name+"/f", fmt.Sprint(i)))
		if i%37 == 0 {
			fs = append(fs, tartest.File(fmt.Sprintf("top%d", i), "top"), tartest.Symlink(name+"/up", strings.Repeat("../", i+5)+"top0"))
		}
	}
	fds := openFds(t)
	mustApply(t, root, tartest.Tar(t, fs...))
	if now := openFds(t); now != fds {
		t.Errorf("open fds: %d before Apply, %d after", fds, now)
	}
	name = ""
	for i := 0; i < 5*cacheWindow; i++ {
		name = filepath.Join(name, fmt.Sprint(i%10))
		fd := openLong(t, root, name+"/f")
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Size != int64(len(fmt.Sprint(i))) {
			t.Fatalf("%s/f: size %d, %v", name, st.Size, err)
		}
		unix.Close(fd)
	}
}

func openFds(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestApplyContext(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, root, strings.NewReader(string(tartest.Tar(t, tartest.File("a", "a")))))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply error = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Errorf("entry applied after cancel: %v", err)
	}
}

func TestApplyNoDir(t *testing.T) {
	_, err := Apply(context.Background(), filepath.Join(t.TempDir(), "missing"), strings.NewReader(""))
	if !os.IsNotExist(err) {
		t.Fatalf("Apply error = %v, want not exist", err)
	}
}
