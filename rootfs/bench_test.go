package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// benchLayer writes a layer of files spread over 100 directories, totalling
// size bytes of data that compresses about 3:1, as binaries do.
func benchLayer(b testing.TB, files int, size int64) []byte {
	b.Helper()
	all := binaryLike(int(size))
	n := len(all) / files
	var entries []tartest.Entry
	for i := 0; i < files; i++ {
		dir := fmt.Sprintf("usr/lib/d%03d/", i/(files/100))
		if i%(files/100) == 0 {
			entries = append(entries, tartest.Dir(dir))
		}
		entries = append(entries, tartest.File(fmt.Sprintf("%sfile%05d.so", dir, i), string(all[i*n:(i+1)*n])))
	}
	return tartest.Tar(b, entries...)
}

// binaryLike returns n bytes that compress about 3:1 with gzip, as
// executables do: random bytes among words from a small vocabulary.
func binaryLike(n int) []byte {
	rng := rand.NewChaCha8([32]byte{2})
	words := strings.Fields("mov lea call ret push pop jmp cmp test xor add sub runtime.mallocgc " +
		"runtime.memmove fmt.Sprintf strings.Index os.Open syscall.Syscall6 (SB) 0x0 0x8 0x10 rax rbx rcx")
	b := make([]byte, 0, n+64)
	var r [8]byte
	for len(b) < n {
		rng.Read(r[:])
		b = append(b, r[:3]...)
		b = append(b, words[int(r[3])%len(words)]...)
	}
	return b[:n]
}

// BenchmarkApply unpacks 5,000 files, 64 MiB, into a fresh directory.
func BenchmarkApply(b *testing.B) {
	testutil.RequiresRoot(b)
	benchApply(b, benchLayer(b, 5000, 64<<20), 64<<20)
}

// BenchmarkApplyGzip is BenchmarkApply with gzip decompression.
func BenchmarkApplyGzip(b *testing.B) {
	testutil.RequiresRoot(b)
	benchApply(b, gzipped(b, benchLayer(b, 5000, 64<<20)), 64<<20)
}

// BenchmarkApplyZstd is BenchmarkApply with zstd decompression.
func BenchmarkApplyZstd(b *testing.B) {
	testutil.RequiresRoot(b)
	benchApply(b, zstded(b, benchLayer(b, 5000, 64<<20)), 64<<20)
}

func benchApply(b *testing.B, data []byte, size int64) {
	tmp := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rc, _, err := Decompress(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(context.Background(), dir, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
