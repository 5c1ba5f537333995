package image

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layers are kept as they came: uncompressed when loaded, imported,
// committed or built, compressed as the registry had them when pulled. A
// push wants them compressed, in gzip or zstd: Compress (compress.go)
// converts a layer as it is uploaded, keeps the result as a blob of the
// store and remembers it, in <root>/conversions/<blob>.<compression>, so
// that the next push of it does not convert again (Converted). Garbage
// collection keeps a conversion while its layer is kept.

type conversion struct {
	Blob   ocispec.Descriptor `json:"blob"`   // the converted layer
	DiffID digest.Digest      `json:"diffID"` // of both
}

func (s *Store) conversionPath(d digest.Digest, c rootfs.Compression) string {
	return filepath.Join(s.conversions, d.Encoded()+"."+c.String())
}

// Converted returns layer (a layer blob of the store, described as its
// manifest describes it) in compression c, if the store has it so: the
// layer itself when it is in c, or its conversion, recorded by an earlier
// push. If not, ok is false and Compress makes it.
func (s *Store) Converted(layer ocispec.Descriptor, c rootfs.Compression) (_ ocispec.Descriptor, ok bool, err error) {
	if c == rootfs.Uncompressed {
		return ocispec.Descriptor{}, false, errors.New("image: Converted needs gzip or zstd")
	}
	f, err := s.OpenBlob(layer.Digest)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	f.Close()
	if rootfs.DetectCompression(head[:n]) == c {
		// Docker's media type for a gzip layer stays, so that the manifest can stay.
		docker := c == rootfs.Gzip && layer.MediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip"
		if !docker {
			layer.MediaType = layerMediaType(c)
		}
		return layer, true, nil
	}
	if b, err := os.ReadFile(s.conversionPath(layer.Digest, c)); err == nil {
		var conv conversion
		if json.Unmarshal(b, &conv) == nil && s.HasBlob(conv.Blob.Digest) {
			return conv.Blob, true, nil
		}
	}
	return ocispec.Descriptor{}, false, nil
}

// LayerMediaType is OCI's media type of a layer in compression c.
func LayerMediaType(c rootfs.Compression) string { return layerMediaType(c) }

// recordConversion remembers that conv is layer in compression c.
func (s *Store) recordConversion(layer digest.Digest, c rootfs.Compression, conv conversion) error {
	b, _ := json.Marshal(conv)
	if err := os.MkdirAll(s.conversions, 0o700); err != nil {
		return err
	}
	return atomicfile.Replace(s.conversionPath(layer, c), b, 0o600)
}

// markConversions adds to used the conversions of the blobs used, and drops
// the records of conversions whose layer is gone.
func (s *Store) markConversions(used map[digest.Digest]bool) error {
	files, err := os.ReadDir(s.conversions)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(s.conversions, f.Name())
		src, _, _ := strings.Cut(f.Name(), ".")
		if !used[digest.NewDigestFromEncoded(digest.SHA256, src)] {
			os.Remove(p)
			continue
		}
		b, err := os.ReadFile(p)
		var conv conversion
		if err != nil || json.Unmarshal(b, &conv) != nil {
			os.Remove(p)
			continue
		}
		used[conv.Blob.Digest] = true
	}
	return nil
}

// copyCtx copies src to dst until EOF or ctx ends.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Sources records where layers were pulled from (registry/repository), so
// that a push to another repository of the same registry mounts them
// rather than uploads them.
func (s *Store) SetSource(d digest.Digest, repo string) error {
	if err := os.MkdirAll(s.sources, 0o700); err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(s.sources, d.Encoded()), []byte(repo), 0o600)
}

// Source returns the repository a layer was pulled from, if known.
func (s *Store) Source(d digest.Digest) string {
	if d.Validate() != nil {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(s.sources, d.Encoded()))
	return string(b)
}
