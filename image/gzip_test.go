package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// pushGzipOf is what newGzipWriter makes of data written in pieces of piece bytes.
func pushGzipOf(t *testing.T, data []byte, piece int) []byte {
	t.Helper()
	var out bytes.Buffer
	z := newGzipWriter(&out)
	for p := data; len(p) > 0; {
		k := min(piece, len(p))
		if n, err := z.Write(p[:k]); n != k || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		p = p[k:]
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// noise is n random bytes, the same for the same seed.
func noise(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Every stream reads back, with its CRC and size checked, through Go's
// gzip reader and through gzip(1), whatever the sizes of the writes and
// wherever the blocks end, for data deflate shrinks, data it cannot, and
// both within a block.
func TestGzipWriterRoundTrip(t *testing.T) {
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 3*gzipBlock/44)
	mixed := append(noise(2, gzipBlock/2), text[:gzipBlock]...)
	mixed = append(mixed, noise(3, 2*gzipBlock+7)...)
	for _, tc := range []struct {
		name  string
		data  []byte
		piece int
	}{
		{"empty", nil, 1},
		{"small", []byte("hello"), 1},
		{"one block", noise(1, gzipBlock), 4096},
		{"random", noise(4, 3*gzipBlock+12345), 100000},
		{"text", text, 65536},
		{"mixed", mixed, 3 * gzipBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := pushGzipOf(t, tc.data, tc.piece)
			zr, err := gzip.NewReader(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("Go's gzip reader: %v", err)
			}
			if !bytes.Equal(back, tc.data) {
				t.Fatalf("Go's gzip reader gives %d bytes back, not the %d written", len(back), len(tc.data))
			}
			if _, err := exec.LookPath("gzip"); err != nil {
				t.Skip("no gzip(1) to check the stream with")
			}
			cmd := exec.Command("gzip", "-dc")
			cmd.Stdin = bytes.NewReader(out)
			back, err = cmd.Output()
			if err != nil || !bytes.Equal(back, tc.data) {
				t.Fatalf("gzip -dc: %v, %d bytes back of %d", err, len(back), len(tc.data))
			}
		})
	}
}

// A block deflate shrinks by less than 1/64 is stored: its bytes are in
// the stream as they are, zeros too. One it shrinks by more is deflated,
// and so is one it shrinks a lot.
func TestGzipWriterStoresWhatDeflateCannotShrink(t *testing.T) {
	// Each block random but for a run of zeros of share percent of it.
	blocks := func(seed uint64, share int) []byte {
		var b []byte
		for i := 0; i < 3; i++ {
			block := noise(seed+uint64(i), gzipBlock)
			clear(block[:gzipBlock*share/100])
			b = append(b, block...)
		}
		return b
	}
	for _, tc := range []struct {
		share  int
		stored bool
	}{{0, true}, {1, true}, {5, false}, {60, false}} {
		t.Run(fmt.Sprintf("%d%% zeros", tc.share), func(t *testing.T) {
			data := blocks(uint64(10*tc.share), tc.share)
			out := pushGzipOf(t, data, 1<<16)
			// 4 KiB of the second block where its zeros end, verbatim:
			// deflate stores a window of random bytes itself, never zeros.
			at := gzipBlock + max(gzipBlock*tc.share/100, 2048)
			sample := data[at-2048 : at+2048]
			if got := bytes.Contains(out, sample); got != tc.stored {
				t.Errorf("stored = %v, want %v (%d bytes of %d)", got, tc.stored, len(out), len(data))
			}
			if tc.stored && len(out) > len(data)+len(data)/1000 {
				t.Errorf("stored blocks take %d bytes for %d", len(out), len(data))
			}
			if !tc.stored && len(out) > len(data)-len(data)*tc.share/200 {
				t.Errorf("deflated to %d bytes of %d: it should gain at least half the zeros", len(out), len(data))
			}
		})
	}
}

// A block is not deflated whole only when its bytes are near uniform and
// its first 64 KiB do not deflate either: random bytes, not random bytes
// that repeat, not text, not random bytes after zeros.
func TestIncompressible(t *testing.T) {
	repeated := bytes.Repeat(noise(5, 16<<10), gzipBlock/(16<<10))
	zeros := noise(6, gzipBlock)
	clear(zeros[:4096])
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), gzipBlock/44)
	for _, tc := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"random", noise(4, gzipBlock), true},
		{"random, short", noise(4, gzipProbe), false},
		{"random, repeated", repeated, false},
		{"random after zeros", zeros, false},
		{"text", text, false},
	} {
		if got := incompressible(tc.p, nil); got != tc.want {
			t.Errorf("%s: incompressible = %v, want %v (entropy %.3f bits a byte)", tc.name, got, tc.want, entropy(tc.p))
		}
	}
	// Repeats are found, through the stream.
	if out := pushGzipOf(t, append(repeated, repeated...), 1<<16); len(out) > len(repeated)/4 {
		t.Errorf("random bytes that repeat deflated to %d bytes of %d", len(out), 2*len(repeated))
	}
}

// randomFiles is a tar of random files of about 21 KiB each, as the
// benchmarks' 1 GiB image has them, of about n bytes.
func randomFiles(n int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; b.Len() < n; i++ {
		size := 1024 + rng.IntN(40<<10)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d/f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
		tw.Write(noise(uint64(i), size))
	}
	tw.Close()
	return b.Bytes()
}

// BenchmarkGzipWriter compresses text, random bytes, and random files in a
// tar (the tar's headers and padding are what deflate can shrink).
func BenchmarkGzipWriter(b *testing.B) {
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 16*gzipBlock/44)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"random", noise(1, 16*gzipBlock)}, {"random-files", randomFiles(16 * gzipBlock)}, {"text", text}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			for i := 0; i < b.N; i++ {
				z := newGzipWriter(io.Discard)
				z.Write(tc.data)
				if err := z.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The same layer makes the same stream, however it is written.
func TestGzipWriterIsDeterministic(t *testing.T) {
	data := append(noise(7, 2*gzipBlock), bytes.Repeat([]byte("abc"), gzipBlock)...)
	if !bytes.Equal(pushGzipOf(t, data, 1000), pushGzipOf(t, data, 3*gzipBlock)) {
		t.Fatal("two streams of the same data differ")
	}
}

type failingWriter struct{ left int }

var errFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, errFull
	}
	f.left -= len(p)
	return len(p), nil
}

// An error of the writer beneath comes back from Write or Close, and the
// writer's goroutines end.
func TestGzipWriterReturnsTheWritersError(t *testing.T) {
	before := runtime.NumGoroutine()
	z := newGzipWriter(&failingWriter{left: gzipBlock})
	data := noise(9, 8*gzipBlock)
	var werr error
	for p := data; len(p) > 0 && werr == nil; p = p[min(len(p), 1<<16):] {
		_, werr = z.Write(p[:min(len(p), 1<<16)])
	}
	cerr := z.Close()
	if !errors.Is(cerr, errFull) || werr != nil && !errors.Is(werr, errFull) {
		t.Fatalf("Write: %v, Close: %v, want %v", werr, cerr, errFull)
	}
	if _, err := z.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left after Close, %d before", n, before)
	}
}
