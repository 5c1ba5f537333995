package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// compressStore is a store holding one uncompressed layer of n random bytes
// (several of the gzip writer's blocks of 1 MiB when n is big).
func compressStore(t *testing.T, n int) (*Store, ocispec.Descriptor, []byte) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "images"), filepath.Join(dir, "tmp"), filepath.Join(dir, "locks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	rand.Read(b[:n/2]) // half random, half zeros: compressible
	d, err := s.writeBlob(b)
	if err != nil {
		t.Fatal(err)
	}
	return s, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(n)}, b
}

func (s *Store) tmpEntries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// The stream of a compression, read through Read in small pieces or
// through WriteTo, is the blob the store keeps and remembers; it
// decompresses to the layer, and Converted finds it afterwards.
func TestCompressStreamIsTheBlobKept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       rootfs.Compression
		writeTo bool
		decode  func([]byte) ([]byte, error)
	}{
		{"gzip-read", rootfs.Gzip, false, gunzipAll},
		{"gzip-writeto", rootfs.Gzip, true, gunzipAll},
		{"zstd-writeto", rootfs.Zstd, true, unzstdAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, layer, raw := compressStore(t, 3<<20+7)
			if _, ok, err := s.Converted(layer, tc.c); ok || err != nil {
				t.Fatalf("converted before a push: %v %v", ok, err)
			}
			z, err := s.Compress(t.Context(), layer, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if tc.writeTo {
				_, err = z.WriteTo(&out)
			} else {
				_, err = io.CopyBuffer(&out, struct{ io.Reader }{z}, make([]byte, 1000))
			}
			if err != nil {
				t.Fatal(err)
			}
			z.Close()
			d, ok := z.Descriptor()
			if !ok || d.Digest != digest.FromBytes(out.Bytes()) || d.Size != int64(out.Len()) || d.MediaType != LayerMediaType(tc.c) {
				t.Fatalf("descriptor %+v (%v) for %d bytes of digest %s", d, ok, out.Len(), digest.FromBytes(out.Bytes()))
			}
			if z.In() != layer.Size {
				t.Fatalf("read %d bytes of the layer, want %d", z.In(), layer.Size)
			}
			kept, err := os.ReadFile(s.BlobPath(d.Digest))
			if err != nil || !bytes.Equal(kept, out.Bytes()) {
				t.Fatalf("the blob kept is not the stream: %v", err)
			}
			if u, err := tc.decode(out.Bytes()); err != nil || !bytes.Equal(u, raw) {
				t.Fatalf("the stream does not decompress to the layer: %v", err)
			}
			if got, ok, err := s.Converted(layer, tc.c); !ok || err != nil || got.Digest != d.Digest || got.Size != d.Size {
				t.Fatalf("Converted: %+v %v %v, want %+v", got, ok, err, d)
			}
			if n := s.tmpEntries(t); len(n) != 0 {
				t.Fatalf("left in tmp/: %v", n)
			}
			// The same layer compressed again gives the same bytes: a retried
			// upload, or another store, pushes the same digest.
			z2, err := s.Compress(t.Context(), layer, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if _, err := z2.WriteTo(&again); err != nil {
				t.Fatal(err)
			}
			z2.Close()
			if !bytes.Equal(again.Bytes(), out.Bytes()) {
				t.Fatal("a second compression of the layer differs")
			}
		})
	}
}

// A compression closed before its end, or whose context ends, keeps and
// records nothing, and leaves nothing in tmp/.
func TestCompressStoppedKeepsNothing(t *testing.T) {
	for _, how := range []string{"close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			s, layer, _ := compressStore(t, 8<<20)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			z, err := s.Compress(ctx, layer, rootfs.Gzip)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(z, make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
			if how == "cancel" {
				cancel()
				_, err := io.Copy(io.Discard, z)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("read after cancel: %v", err)
				}
			}
			z.Close()
			if d, ok := z.Descriptor(); ok {
				t.Fatalf("a stopped compression describes %+v", d)
			}
			if _, ok, _ := s.Converted(layer, rootfs.Gzip); ok {
				t.Fatal("a stopped compression was recorded")
			}
			if n := s.tmpEntries(t); len(n) != 0 {
				t.Fatalf("left in tmp/: %v", n)
			}
			if _, err := os.Stat(s.conversions); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("conversions/: %v", err)
			}
			blobs, _ := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
			if len(blobs) != 1 {
				t.Fatalf("blobs: %d, want the layer alone", len(blobs))
			}
		})
	}
}

func gunzipAll(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func unzstdAll(b []byte) ([]byte, error) {
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
