package engine

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Docker's path helpers of a copy, as its archive package has them.
func TestCopyPathHelpers(t *testing.T) {
	for _, c := range []struct{ cleaned, original, want string }{
		{"/a/b", "a/b/", "/a/b/"},
		{"/a/b", "a/b/.", "/a/b/."},
		{"/a/b", "a/b", "/a/b"},
		{"/", "/.", "/."},
		{"/", "/", "/"},
		{"/a", "/a/b/..", "/a"},
	} {
		if got := preserveTrailingDotOrSeparator(c.cleaned, c.original); got != c.want {
			t.Errorf("preserveTrailingDotOrSeparator(%q, %q) = %q, want %q", c.cleaned, c.original, got, c.want)
		}
	}
	for _, c := range []struct{ in, dir, base string }{
		{"/a/b", "/a", "b"},
		{"/a/b/", "/a", "b"},
		{"/a/b/.", "/a/b", "."},
		{"/", "/", "/"},
		{"b", ".", "b"},
	} {
		if dir, base := splitPathDirEntry(c.in); dir != c.dir || base != c.base {
			t.Errorf("splitPathDirEntry(%q) = %q, %q; want %q, %q", c.in, dir, base, c.dir, c.base)
		}
	}
	for _, c := range []struct{ p, resolved, want, rebase string }{
		{"/d/link", "/d/target", "/d/target", "link"},
		{"/d/link/", "/d/target", "/d/target/", "link"},
		{"/d/link/.", "/d/target", "/d/target/.", ""},
		{"/d/same", "/x/same", "/x/same", ""},
	} {
		if got, rebase := getRebaseName(c.p, c.resolved); got != c.want || rebase != c.rebase {
			t.Errorf("getRebaseName(%q, %q) = %q, %q; want %q, %q", c.p, c.resolved, got, rebase, c.want, c.rebase)
		}
	}
	for p, want := range map[string]bool{"/a/": true, "/a/.": true, "/a": false, ".": true, "a.": false} {
		if assertsDirectory(p) != want {
			t.Errorf("assertsDirectory(%q) = %v", p, !want)
		}
	}
}

func copyTestTar(t *testing.T, names ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag = tar.TypeDir
		}
		if strings.Contains(n, "=>") {
			name, target, _ := strings.Cut(n, "=>")
			hdr.Name, hdr.Linkname, hdr.Typeflag = name, target, tar.TypeLink
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func copyTestNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		n := hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			n += "=>" + hdr.Linkname
		}
		out = append(out, n)
	}
}

// Where a copy's tar is extracted, and under which names, for each kind
// of source and destination: Docker's PrepareArchiveCopy.
func TestPrepareArchiveCopy(t *testing.T) {
	file := copyInfo{Path: "/src/f", Exists: true}
	dir := copyInfo{Path: "/src/d", Exists: true, IsDir: true}
	for _, c := range []struct {
		what     string
		src, dst copyInfo
		names    []string
		dir      string
		want     []string
		err      error
	}{
		{"file into a directory", file, copyInfo{Path: "/dst", Exists: true, IsDir: true}, []string{"f"}, "/dst", []string{"f"}, nil},
		{"file over a file", file, copyInfo{Path: "/dst/g", Exists: true}, []string{"f"}, "/dst", []string{"g"}, nil},
		{"file to a new name", file, copyInfo{Path: "/dst/new"}, []string{"f"}, "/dst", []string{"new"}, nil},
		{"file to a missing directory", file, copyInfo{Path: "/dst/new/"}, []string{"f"}, "", nil, ErrCopyNoSuchDirectory},
		{"directory over a file", dir, copyInfo{Path: "/dst/g", Exists: true}, []string{"d/"}, "", nil, ErrCopyDirectoryToFile},
		{"directory to a new name", dir, copyInfo{Path: "/dst/new"}, []string{"d/", "d/a", "d/b=>d/a"}, "/dst", []string{"new/", "new/a", "new/b=>new/a"}, nil},
		{"directory contents to a new name", copyInfo{Path: "/src/d/.", Exists: true, IsDir: true}, copyInfo{Path: "/dst/new"}, []string{"./", "./a"}, "/dst", []string{"new/", "new/a"}, nil},
		{"followed symlink to a new name", copyInfo{Path: "/src/target", Exists: true, RebaseName: "link"}, copyInfo{Path: "/dst/new"}, []string{"link"}, "/dst", []string{"new"}, nil},
		{"the root to a new name", copyInfo{Path: "/", Exists: true, IsDir: true}, copyInfo{Path: "/dst/new"}, []string{"/", "/bin/"}, "/dst", []string{"new/", "new/bin/"}, nil},
	} {
		dir, rc, err := prepareArchiveCopy(bytes.NewReader(copyTestTar(t, c.names...)), c.src, c.dst)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: error %v, want %v", c.what, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		got := copyTestNames(t, rc)
		rc.Close()
		if dir != c.dir || strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: into %q as %q; want %q as %q", c.what, dir, got, c.dir, c.want)
		}
	}
}

// What the host destination of a copy out is: a symlink followed, a
// missing one's parent checked; a device refused.
func TestCopyHostDestination(t *testing.T) {
	d := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(d, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(d, "file"), nil, 0o644))
	must(os.Symlink("dir", filepath.Join(d, "todir")))
	must(os.Symlink("missing", filepath.Join(d, "dangling")))
	for name, want := range map[string]copyInfo{
		"dir":      {Path: filepath.Join(d, "dir"), Exists: true, IsDir: true},
		"todir":    {Path: filepath.Join(d, "dir"), Exists: true, IsDir: true},
		"dangling": {Path: filepath.Join(d, "missing")},
		"new":      {Path: filepath.Join(d, "new")},
		"file":     {Path: filepath.Join(d, "file"), Exists: true},
	} {
		got, err := copyInfoDestinationPath(filepath.Join(d, name))
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}
	if _, err := copyInfoDestinationPath(filepath.Join(d, "file", "x")); err == nil {
		t.Errorf("a destination below a file: no error")
	}
	if err := validateOutputPath(filepath.Join(d, "nodir", "x")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("validateOutputPath of a missing parent: %v", err)
	}
	if err := validateOutputPath("/dev/null"); err == nil || err.Error() != `invalid output path: "/dev/null" must be a directory or a regular file: got a device` {
		t.Errorf("validateOutputPath(/dev/null): %v", err)
	}
}
