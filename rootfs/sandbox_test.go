package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sandbox makes a temporary directory T holding root, the directory to
// apply into, and beside it a canary tree that no layer may touch: a
// directory, a secret file, a subdirectory, a symlink, and a file directly
// in T. It returns T/root and T/canary.
func sandbox(t testing.TB) (root, canary string) {
	t.Helper()
	tmp := t.TempDir()
	root, canary = filepath.Join(tmp, "root"), filepath.Join(tmp, "canary")
	for _, d := range []string{root, canary, filepath.Join(canary, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(canary, "secret"):      "canary secret\n",
		filepath.Join(canary, "dir", "file"): "canary file\n",
		filepath.Join(tmp, "beside"):         "beside root\n",
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("secret", filepath.Join(canary, "link")); err != nil {
		t.Fatal(err)
	}
	return root, canary
}

// snapshot describes every file under T but T/root: name, type and mode,
// owner, size, mtime, contents or link target, and xattrs.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	tmp := filepath.Dir(root)
	tree := map[string]string{}
	err := filepath.WalkDir(tmp, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == root {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(name, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%09d nlink=%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" data=%q", b)
		case unix.S_IFLNK:
			target, err := os.Readlink(name)
			if err != nil {
				return err
			}
			desc += " link=" + target
		}
		desc += " xattrs=" + xattrList(t, name)
		tree[name] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func xattrList(t testing.TB, name string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(name, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", name, err)
	}
	var out []string
	for _, x := range strings.Split(string(buf[:n]), "\x00") {
		if x == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, _ := unix.Lgetxattr(name, x, v)
		out = append(out, fmt.Sprintf("%s=%q", x, v[:max(m, 0)]))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// checkCanary fails if the tree beside root differs from before.
func checkCanary(t testing.TB, root string, before map[string]string) {
	t.Helper()
	after := snapshot(t, root)
	if maps.Equal(before, after) {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if before[k] != after[k] {
			t.Errorf("outside root, %s changed:\n  before %s\n  after  %s", k, before[k], after[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok {
			t.Errorf("outside root, %s appeared: %s", k, after[k])
		}
	}
}

func apply(t testing.TB, root string, data []byte) (int64, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(data))
}

func mustApply(t testing.TB, root string, data []byte) int64 {
	t.Helper()
	n, err := apply(t, root, data)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return n
}

func lstat(t testing.TB, name string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openLong opens a path of any length below dir, one component at a time.
func openLong(t testing.TB, dir, name string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strings.Split(name, "/") {
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("open %q in %s: %v", c, name, err)
		}
		fd = next
	}
	return fd
}
