package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type copyTestEntry struct {
	name, link string
	typ        byte
	body       string
}

func copyTestTar(t *testing.T, entries ...copyTestEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Uid: os.Getuid(), Gid: os.Getgid()}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func copyTestList(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += " -> " + target
		case fi.IsDir():
			rel += "/"
		default:
			b, _ := os.ReadFile(p)
			rel += " " + string(b)
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// Untar makes nothing outside its directory: a name that climbs out, a
// symlink that points out (relative: refused, as Docker; absolute:
// resolved inside), a hard link to outside; and it never replaces a
// directory with a file or the other way round.
func TestUntarStaysInside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "dest")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(parent, "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		what    string
		entries []copyTestEntry
		err     error
		msg     string
	}{
		{"climbing name", []copyTestEntry{{name: "../outside", typ: tar.TypeReg, body: "x"}}, ErrUnsafeArchive, `"../outside" is outside of "` + dir + `"`},
		{"climbing symlink", []copyTestEntry{{name: "l", link: "../outside", typ: tar.TypeSymlink}}, ErrUnsafeArchive, `invalid symlink "` + dir + `/l" -> "../outside"`},
		{"climbing hard link", []copyTestEntry{{name: "h", link: "../outside", typ: tar.TypeLink}}, ErrUnsafeArchive, `invalid hardlink "` + outside + `" -> "../outside"`},
		{"file over a directory", []copyTestEntry{{name: "d/", typ: tar.TypeDir}, {name: "d", typ: tar.TypeReg, body: "x"}}, ErrConflict, `cannot overwrite directory "` + dir + `/d" with non-directory "` + dir + `"`},
		{"directory over a file", []copyTestEntry{{name: "f", typ: tar.TypeReg, body: "x"}, {name: "f/", typ: tar.TypeDir}}, ErrConflict, `cannot overwrite non-directory "` + dir + `/f" with directory "` + dir + `"`},
	} {
		err := Untar(ctx, bytes.NewReader(copyTestTar(t, c.entries...)), dir)
		if !errors.Is(err, c.err) || err.Error() != c.msg {
			t.Errorf("%s: %v, want %q", c.what, err, c.msg)
		}
	}
	// An absolute symlink is written as it is, and resolves inside the
	// directory, as if it were the root: to outside it leads nowhere.
	err := Untar(ctx, bytes.NewReader(copyTestTar(t,
		copyTestEntry{name: "abs", link: parent, typ: tar.TypeSymlink},
		copyTestEntry{name: "abs/outside", typ: tar.TypeReg, body: "through abs"},
	)), dir)
	if err == nil {
		t.Errorf("a file through a symlink to a directory that is not inside: no error")
	}
	err = Untar(ctx, bytes.NewReader(copyTestTar(t,
		copyTestEntry{name: "inner/", typ: tar.TypeDir},
		copyTestEntry{name: "root", link: "/inner", typ: tar.TypeSymlink},
		copyTestEntry{name: "root/x", typ: tar.TypeReg, body: "inside"},
		copyTestEntry{name: "f", typ: tar.TypeReg, body: "new"},
		copyTestEntry{name: "hf", link: "f", typ: tar.TypeLink},
		copyTestEntry{name: "implied/dirs/file", typ: tar.TypeReg, body: "deep"},
	)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatalf("a file outside changed: %q", b)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 2 {
		t.Errorf("outside the directory: %v", entries)
	}
	got := strings.Join(copyTestList(t, dir), "\n")
	for _, want := range []string{"abs -> " + parent + "\n", "\nf new\nhf new\n", "\nimplied/dirs/file deep", "\ninner/x inside\n", "\nroot -> /inner"} {
		if !strings.Contains(got, want) {
			t.Errorf("extracted:\n%s\nwant %q in it", got, want)
		}
	}
}

// TarResource names a copy's entries as Docker does: the file's own name,
// "./…" for a directory's contents, "/…" for the root.
func TestTarResourceNames(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "dir", "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "dir", "sub", "f"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(d, "dir", "g"), []byte("g"), 0o644)
	os.Link(filepath.Join(d, "dir", "g"), filepath.Join(d, "dir", "hg"))
	os.Symlink("g", filepath.Join(d, "dir", "lg"))
	parent, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	sub, err := os.Open(filepath.Join(d, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, c := range []struct {
		dir        *os.File
		base, name string
		want       string
	}{
		{parent, "dir", "dir", "dir/ dir/g dir/hg=>dir/g dir/lg dir/sub/ dir/sub/f"},
		{parent, "dir", "renamed", "renamed/ renamed/g renamed/hg=>renamed/g renamed/lg renamed/sub/ renamed/sub/f"},
		{sub, "", ".", "./ ./g ./hg=>./g ./lg ./sub/ ./sub/f"},
		{sub, "", "/", "/ /g /hg=>/g /lg /sub/ /sub/f"},
		{sub, "g", "g", "g"},
		{sub, "lg", "other", "other"},
	} {
		var b bytes.Buffer
		if err := TarResource(context.Background(), &b, c.dir, c.base, c.name); err != nil {
			t.Fatalf("%s as %s: %v", c.base, c.name, err)
		}
		var names []string
		tr := tar.NewReader(&b)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n := hdr.Name
			if hdr.Typeflag == tar.TypeLink {
				n += "=>" + hdr.Linkname
			}
			names = append(names, n)
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("%q as %q: %s\nwant %s", c.base, c.name, got, c.want)
		}
	}
}
