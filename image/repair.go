package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The repairs of `system check --repair` that are the image store's. Each
// takes the locks it needs; none removes a blob.

func (s *Store) writeLayout() error {
	b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	return atomicfile.WriteFile(filepath.Join(s.dir, ocispec.ImageLayoutFile), b, 0o644)
}

// markBroken marks every descriptor of manifest d broken (AnnotationBroken),
// keeping its names.
func (s *Store) markBroken(ctx context.Context, d digest.Digest, reason string) error {
	return s.updateIndex(ctx, func(n *names) error {
		for i, m := range n.idx.Manifests {
			if m.Digest != d {
				continue
			}
			a := map[string]string{AnnotationBroken: reason}
			if name := nameOf(m); name != "" {
				a[ocispec.AnnotationRefName] = name
			}
			n.idx.Manifests[i].Annotations = a
			n.changed = true
		}
		return nil
	})
}

// dropName removes name from the index; the image stays unnamed if it had
// no other name.
func (s *Store) dropName(ctx context.Context, name string, d ocispec.Descriptor) error {
	return s.updateIndex(ctx, func(n *names) error {
		if old, ok := n.remove(name); ok {
			n.addUnnamed(old)
		}
		return nil
	})
}

// rebuildIndex keeps an index.json that cannot be read as
// index.json.corrupt and writes one that lists every image manifest among
// the blobs, unnamed (a manifest another manifest's index lists is listed
// too: the platform it is for is in the store).
func (s *Store) rebuildIndex(ctx context.Context) error {
	l, err := s.indexLock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	p := filepath.Join(s.dir, ocispec.ImageIndexFile)
	if _, err := s.readIndex(); err == nil {
		return nil // mended meanwhile
	}
	dir := filepath.Join(s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	idx := ocispec.Index{}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		b, err := s.ReadBlob(d)
		if err != nil || len(b) > 4<<20 {
			continue
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil || m.Config.Digest == "" || m.SchemaVersion != 2 {
			continue
		}
		if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != mediaTypeDockerManifest {
			continue
		}
		if _, _, err := s.Config(Image{ID: m.Config.Digest}); err != nil {
			continue
		}
		mt := ocispec.MediaTypeImageManifest
		if m.MediaType == mediaTypeDockerManifest {
			mt = mediaTypeDockerManifest
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))})
	}
	if err := os.Rename(p, p+".corrupt"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keep the unreadable index aside: %w", err)
	}
	return s.writeIndex(idx)
}
