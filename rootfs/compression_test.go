package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDetectCompression(t *testing.T) {
	for _, c := range []struct {
		head []byte
		want Compression
	}{
		{nil, Uncompressed},
		{[]byte{0x1f}, Uncompressed},
		{[]byte{0x1f, 0x8b}, Gzip},
		{[]byte{0x1f, 0x8b, 0x08, 0x00}, Gzip},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{[]byte{0x28, 0xb5, 0x2f}, Uncompressed},
		{[]byte{0x5a, 0x2a, 0x4d, 0x18}, Zstd}, // skippable frame
		{[]byte("usr/"), Uncompressed},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, Uncompressed}, // xz is not a layer compression here
	} {
		if got := DetectCompression(c.head); got != c.want {
			t.Errorf("DetectCompression(% x) = %v, want %v", c.head, got, c.want)
		}
	}
	for c, want := range map[Compression]string{Uncompressed: "uncompressed", Gzip: "gzip", Zstd: "zstd", 7: "Compression(7)"} {
		if c.String() != want {
			t.Errorf("String() = %q, want %q", c.String(), want)
		}
	}
}

func TestDecompress(t *testing.T) {
	plain := tartest.Tar(t, tartest.File("etc/hostname", "cairn\n"), tartest.Dir("usr"))
	for _, c := range []struct {
		data []byte
		want Compression
	}{
		{plain, Uncompressed},
		{gzipped(t, plain), Gzip},
		{zstded(t, plain), Zstd},
		{append(gzipped(t, plain[:100]), gzipped(t, plain[100:])...), Gzip}, // multistream
		{[]byte{}, Uncompressed},
		{[]byte{1}, Uncompressed},
	} {
		rc, got, err := Decompress(bytes.NewReader(c.data))
		if err != nil {
			t.Fatalf("Decompress(%v): %v", c.want, err)
		}
		out, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %v: %v", c.want, err)
		}
		rc.Close()
		want := plain
		if len(c.data) < 2 {
			want = c.data
		}
		if got != c.want || !bytes.Equal(out, want) {
			t.Errorf("Decompress: %v and %d bytes, want %v and %d bytes", got, len(out), c.want, len(want))
		}
	}
}

// Errors of the source pass through untouched; errors of the data are ErrInvalid.
func TestDecompressErrors(t *testing.T) {
	boom := errors.New("network down")
	data := gzipped(t, bytes.Repeat([]byte("layer"), 100000))
	rc, _, err := Decompress(io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotestErr{boom}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Errorf("source error: %v, want %v alone", err, boom)
	}

	_, _, err = Decompress(strings.NewReader("\x1f\x8b\x07garbage"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "gzip stream") {
		t.Errorf("bad gzip header: %v, want ErrInvalid", err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

// BenchmarkDecompressGzip reads a gzip layer of small incompressible files
// (as BenchmarkPushPullVsSkopeo's: the tar headers between them make the
// compressor code their bytes as Huffman literals, the slowest to inflate)
// through Decompress, from a plain io.Reader as a pull's layer is read,
// against klauspost's gzip reader on the same bytes in memory, the fastest
// it reads them. It reports the peer's time over Decompress's (gzip-x):
// Decompress runs inflate on a goroutine of its own, which costs a copy,
// but must not lose flate's fast path (a *bufio.Reader).
func BenchmarkDecompressGzip(b *testing.B) {
	rng := rand.NewChaCha8([32]byte{1})
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for i := 0; layer.Len() < 64<<20; i++ {
		data := make([]byte, 1024+i*7919%(40<<10))
		rng.Read(data)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	data := layer.Bytes()
	z := gzipped(b, data)
	b.SetBytes(int64(len(data)))
	var ours, peer time.Duration
	for b.Loop() {
		start := time.Now()
		rc, _, err := Decompress(struct{ io.Reader }{bytes.NewReader(z)})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(data)) {
			b.Fatalf("Decompress: %d bytes, %v", n, err)
		}
		rc.Close()
		ours += time.Since(start)
		start = time.Now()
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, zr); err != nil || n != int64(len(data)) {
			b.Fatalf("gzip: %d bytes, %v", n, err)
		}
		peer += time.Since(start)
	}
	b.ReportMetric(peer.Seconds()/ours.Seconds(), "gzip-x")
}
