package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

// overlayUpper makes a real overlay mount over a lower directory that
// prepare fills, runs change in the merged view, unmounts, and returns the
// upper directory: the changes as the kernel wrote them.
func overlayUpper(t *testing.T, prepare, change func(dir string)) string {
	t.Helper()
	testutil.RequiresRoot(t) // to mount overlayfs
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prepare(lower)
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=off,metacopy=off,index=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	func() {
		defer unix.Unmount(merged, 0)
		change(merged)
	}()
	return upper
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// An overlay upper directory becomes the OCI layer of its changes: a deleted
// file is one whiteout (however many, all the kernel's whiteouts are one
// inode), a directory removed and made again is the directory and its opaque
// whiteout, and overlay's own xattrs stay out.
func TestWriteTreeOverlayUpper(t *testing.T) {
	upper := overlayUpper(t, func(lower string) {
		must(t, os.MkdirAll(filepath.Join(lower, "etc/sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(lower, "etc/group"), []byte("g"), 0o644))
		must(t, os.WriteFile(filepath.Join(lower, "etc/passwd"), []byte("p"), 0o644))
		must(t, os.WriteFile(filepath.Join(lower, "etc/sub/old"), []byte("o"), 0o644))
		must(t, os.MkdirAll(filepath.Join(lower, "gone/deep"), 0o755))
	}, func(m string) {
		must(t, os.Remove(filepath.Join(m, "etc/group")))
		must(t, os.Remove(filepath.Join(m, "etc/passwd")))
		must(t, os.RemoveAll(filepath.Join(m, "etc/sub")))
		must(t, os.Mkdir(filepath.Join(m, "etc/sub"), 0o700))
		must(t, os.WriteFile(filepath.Join(m, "etc/sub/new"), []byte("n"), 0o644))
		must(t, os.RemoveAll(filepath.Join(m, "gone")))
		must(t, os.WriteFile(filepath.Join(m, "added"), []byte("a"), 0o600))
		must(t, unix.Setxattr(filepath.Join(m, "added"), "user.kept", []byte("v"), 0))
	})
	var buf bytes.Buffer
	must(t, WriteTree(context.Background(), &buf, upper, TarOptions{Layer: true, Overlay: true}))
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, h.Name)
		for k := range h.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("%s carries %s", h.Name, k)
			}
		}
		switch h.Name {
		case "added":
			if h.PAXRecords["SCHILY.xattr.user.kept"] != "v" || h.Mode != 0o600 {
				t.Errorf("added: %+v", h)
			}
		case "etc/sub/":
			if h.Mode != 0o700 {
				t.Errorf("etc/sub/ mode %o", h.Mode)
			}
		}
		if strings.Contains(h.Name, ".wh.") && (h.Typeflag != tar.TypeReg || h.Size != 0 || h.Uid != 0 || !h.ModTime.Equal(time.Unix(0, 0))) {
			t.Errorf("whiteout %s: %+v", h.Name, h)
		}
	}
	want := []string{"added", "etc/", "etc/.wh.group", "etc/.wh.passwd", "etc/sub/", "etc/sub/.wh..wh..opq", "etc/sub/new", ".wh.gone"}
	slices.Sort(want)
	got := slices.Clone(names)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("layer entries %q\nwant %q", names, want)
	}
	// The opaque whiteout follows its directory.
	if i := slices.Index(names, "etc/sub/"); i < 0 || names[i+1] != "etc/sub/.wh..wh..opq" {
		t.Fatalf("opaque whiteout not right after its directory: %q", names)
	}
}

// A file named .wh.* cannot be in a layer: the commit is refused, naming it.
func TestWriteTreeOverlayRefusesWhiteoutNames(t *testing.T) {
	upper := overlayUpper(t, func(string) {}, func(m string) {
		must(t, os.MkdirAll(filepath.Join(m, "d"), 0o755))
		must(t, os.WriteFile(filepath.Join(m, "d", ".wh.trick"), nil, 0o644))
	})
	err := WriteTree(context.Background(), io.Discard, upper, TarOptions{Layer: true, Overlay: true})
	if !errors.Is(err, ErrUnrepresentable) || !strings.Contains(err.Error(), "d/.wh.trick") {
		t.Fatalf("got %v, want ErrUnrepresentable naming d/.wh.trick", err)
	}
}

// MaxTime clamps the times of newer files, and only those.
func TestWriteTreeMaxTime(t *testing.T) {
	dir := t.TempDir()
	old, clamp := time.Unix(1_000_000_000, 0), time.Unix(1_500_000_000, 0)
	must(t, os.WriteFile(filepath.Join(dir, "old"), []byte("o"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "new"), []byte("n"), 0o644))
	must(t, os.Chtimes(filepath.Join(dir, "old"), old, old))
	var buf bytes.Buffer
	must(t, WriteTree(context.Background(), &buf, dir, TarOptions{MaxTime: clamp}))
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		want := clamp
		if h.Name == "old" {
			want = old
		}
		if !h.ModTime.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, want)
		}
	}
}
