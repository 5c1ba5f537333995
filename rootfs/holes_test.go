package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The applier reaches the reader of a sparse entry, and of no other: if a
// Go release renames what holesOf reads, sparse files are applied zero by
// zero again, and this says so.
func TestApplySparseSkipsHoles(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(tartest.Tar(t, tartest.File("plain", "plain"))))
	hdr, err := tr.Next()
	check(t, "Next", err)
	if holesOf(tr) != nil {
		t.Errorf("%s: a sparse reader for a plain file", hdr.Name)
	}
	tr = tar.NewReader(bytes.NewReader(tartest.Sparse("sparse", 1<<40, []int64{7}, []string{"x"})))
	hdr, err = tr.Next()
	check(t, "Next", err)
	if holesOf(tr) == nil {
		t.Fatalf("%s: archive/tar's sparse reader not found (currField %v): sparse files are read whole", hdr.Name, currField)
	}
}

// Sparse entries of every layout, in GNU tar's formats (old GNU, PAX 0.0,
// 0.1, 1.0) and in cairn's own, apply to the same bytes, with holes.
func TestApplySparseLayouts(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresGNUTar(t)
	type chunk struct {
		off  int64
		data string
	}
	const mib = 1 << 20
	zeros := string(make([]byte, 256<<10))
	layouts := map[string]struct {
		size   int64
		chunks []chunk
	}{
		"hole-end":    {64 * mib, []chunk{{0, "head"}}},
		"hole-start":  {64 * mib, []chunk{{64*mib - 3, "end"}}},
		"middle":      {64 * mib, []chunk{{0, "a"}, {8 * mib, "middle"}, {40 * mib, "more"}, {64*mib - 1, "z"}}},
		"only-hole":   {64 * mib, nil},
		"zeros-data":  {64 * mib, []chunk{{4 * mib, "x" + zeros + "y"}}},
		"over-32-bit": {5 << 30, []chunk{{1 << 32, "past 4 GiB"}}},
	}
	src := t.TempDir()
	for name, l := range layouts {
		f, err := os.Create(filepath.Join(src, name))
		check(t, "create", err)
		for _, c := range l.chunks {
			_, err := f.WriteAt([]byte(c.data), c.off)
			check(t, "write", err)
		}
		check(t, "truncate", f.Truncate(l.size))
		f.Close()
	}
	ours := writeTree(t, src, TarOptions{})
	archives := map[string][]byte{"cairn": ours}
	for _, format := range []struct{ name, args string }{
		{"gnu", "--format=gnu"},
		{"pax-0.0", "--format=posix --sparse-version=0.0"},
		{"pax-0.1", "--format=posix --sparse-version=0.1"},
		{"pax-1.0", "--format=posix --sparse-version=1.0"},
	} {
		out, err := exec.Command("sh", "-c", "tar -c --sparse "+format.args+" -f - -C "+src+" .").Output()
		check(t, "GNU tar -c "+format.args, err)
		archives[format.name] = out
	}
	for format, data := range archives {
		root, _ := sandbox(t)
		mustApply(t, root, data)
		for name, l := range layouts {
			p := filepath.Join(root, name)
			st := lstat(t, p)
			if st.Size != l.size || st.Blocks*512 > 2*mib {
				t.Errorf("%s: %s: size %d, %d bytes on disk; want %d, sparse", format, name, st.Size, st.Blocks*512, l.size)
			}
			f, err := os.Open(p)
			check(t, "open", err)
			at := func(off int64) byte { // the byte the file should hold at off
				for _, c := range l.chunks {
					if off >= c.off && off < c.off+int64(len(c.data)) {
						return c.data[off-c.off]
					}
				}
				return 0
			}
			for _, c := range l.chunks {
				// The chunk and a byte each side of it.
				from, to := max(c.off-1, 0), min(c.off+int64(len(c.data))+1, l.size)
				got := make([]byte, to-from)
				_, err := f.ReadAt(got, from)
				check(t, "read", err)
				for i, b := range got {
					if want := at(from + int64(i)); b != want {
						t.Errorf("%s: %s: byte %d is %q, want %q", format, name, from+int64(i), b, want)
						break
					}
				}
			}
			f.Close()
		}
	}
}

// A sparse entry whose data does not match its map is refused, as
// archive/tar refuses it when read: data missing, or data left over.
func TestApplySparseBadData(t *testing.T) {
	testutil.RequiresRoot(t)
	good := tartest.Sparse("s", 1<<30, []int64{4096}, []string{"twelve bytes"})
	for name, data := range map[string][]byte{
		// The map says 13 bytes of data, 12 follow: a truncated entry.
		"missing": bytes.Replace(good, []byte("4096\n12\n"), []byte("4096\n13\n"), 1),
		// The map says 11: a byte of data that no fragment holds.
		"left over": bytes.Replace(good, []byte("4096\n12\n"), []byte("4096\n11\n"), 1),
		// A fragment past the size.
		"past the end": bytes.Replace(good, []byte("4096\n12\n"), []byte("2147483648\n12\n"), 1),
		// The stream cut in the data.
		"cut": good[:len(good)-1024-512+6],
	} {
		root, _ := sandbox(t)
		if _, err := apply(t, root, data); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
