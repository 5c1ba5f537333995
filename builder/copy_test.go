package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// sparseFile makes a file of size bytes, holes but for data at each offset.
func sparseFile(t *testing.T, p string, size int64, data map[int64]string) {
	t.Helper()
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	for off, s := range data {
		_, err := f.WriteAt([]byte(s), off)
		must(t, err)
	}
	must(t, f.Truncate(size))
}

// copyThrough copies the file src to src.copy with copyFile.
func copyThrough(t *testing.T, src string) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.Create(src + ".copy")
	must(t, err)
	defer out.Close()
	must(t, copyFile(out, in))
}

// A sparse file of the context is copied with its holes: the same bytes,
// no more blocks than its data.
func TestCopyFileSparse(t *testing.T) {
	dir := t.TempDir()
	const size = 4 << 30
	data := map[int64]string{0: "head", 1 << 30: "middle", size - 3: "end"}
	for name, size := range map[string]int64{"sparse": size, "ends-with-hole": size + 1<<20} {
		src := filepath.Join(dir, name)
		sparseFile(t, src, size, data)
		copyThrough(t, src)
		var st unix.Stat_t
		must(t, unix.Stat(src+".copy", &st))
		if st.Size != size || st.Blocks*512 > 1<<20 {
			t.Errorf("%s: copy of %d bytes, %d on disk; want %d, sparse", name, st.Size, st.Blocks*512, size)
		}
		f, err := os.Open(src + ".copy")
		must(t, err)
		for off, s := range data {
			// The data and a byte each side of it, zeros.
			from, to := max(off-1, 0), min(off+int64(len(s))+1, size)
			got := make([]byte, to-from)
			_, err := f.ReadAt(got, from)
			must(t, err)
			want := []byte(s)
			if from < off {
				want = append([]byte{0}, want...)
			}
			if int64(len(want)) < to-from {
				want = append(want, 0)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: at %d: %q, want %q", name, from, got, want)
			}
		}
		f.Close()
	}
	// A file without holes, through the same path.
	src := filepath.Join(dir, "dense")
	must(t, os.WriteFile(src, bytes.Repeat([]byte("dense"), 100000), 0o644))
	copyThrough(t, src)
	if got, _ := os.ReadFile(src + ".copy"); !bytes.Equal(got, bytes.Repeat([]byte("dense"), 100000)) {
		t.Errorf("dense file: copy of %d bytes differs", len(got))
	}
}
