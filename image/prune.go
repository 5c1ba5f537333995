package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Prune deletes the blobs no image references and everything left in the
// temporary directory by killed processes. It holds the store's lock exclusively
// (no load, tag or commit is in progress meanwhile) and, while holding it, calls
// keep with the chain IDs of every image's layers, so that the caller can remove
// the snapshots nothing else uses (and unmount what a killed process left
// mounted in the temporary directory), before the temporary directory is emptied.
func (s *Store) Prune(ctx context.Context, keep func(ctx context.Context, chainIDs map[digest.Digest]bool) error) error {
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "gc.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock()

	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	have, err := s.blobs()
	if err != nil {
		return err
	}
	used := map[digest.Digest]bool{}
	chains := map[digest.Digest]bool{}
	for _, d := range idx.Manifests {
		if _, broken := d.Annotations[AnnotationBroken]; broken {
			s.markBrokenBlobs(d, used, chains) // what it still has stays until rmi removes it
			continue
		}
		if err := s.mark(d, have, used, chains); err != nil {
			return fmt.Errorf("%w (`cairn system check --repair` marks a broken image, so that prune can go on)", err)
		}
	}
	cached, err := s.cacheEntries()
	if err != nil {
		return err
	}
	for _, e := range cached {
		if err := s.mark(e.Manifest, have, used, chains); err != nil {
			return err
		}
	}

	if err := s.markConversions(used); err != nil {
		return err
	}
	if srcs, err := os.ReadDir(s.sources); err == nil {
		for _, f := range srcs {
			if !used[digest.NewDigestFromEncoded(digest.SHA256, f.Name())] {
				os.Remove(filepath.Join(s.sources, f.Name()))
			}
		}
	}
	dir := filepath.Join(s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if used[d] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove blob %s: %w", d, err)
		}
	}

	failpoint.Hit("prune-blobs-removed")
	// The other stores first: what they drop goes through tmp/, and they
	// unmount what a killed process left mounted there.
	if keep != nil {
		if err := keep(ctx, chains); err != nil {
			return err
		}
	}
	// Temporary files of rewrites cut short: of index.json and oci-layout,
	// of build cache entries (atomicfile names them ".<name>.tmp-*").
	for _, pattern := range []string{filepath.Join(s.dir, ".*.tmp-*"), filepath.Join(s.cache, ".*")} {
		left, _ := filepath.Glob(pattern)
		for _, f := range left {
			os.Remove(f)
		}
	}
	tmp, err := os.ReadDir(s.tmp)
	if err != nil {
		return err
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
	}
	return nil
}

// mark records d and every blob it references, and the chain IDs of its
// layers; what an image manifest and its config name it takes from the
// facts the lists learnt, when they know them and the blobs are there
// (have: the blobs the store has).
func (s *Store) mark(d ocispec.Descriptor, have blobs, used, chains map[digest.Digest]bool) error {
	if used[d.Digest] {
		return nil
	}
	used[d.Digest] = true
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		b, err := s.ReadBlob(d.Digest)
		if err != nil {
			return err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
		for _, m := range idx.Manifests {
			if s.HasBlob(m.Digest) {
				if err := s.mark(m, have, used, chains); err != nil {
					return err
				}
			}
		}
		return nil
	}
	m, err := s.manifestOf(d.Digest, have)
	if err != nil {
		return err
	}
	used[m.Config] = true
	for _, l := range m.Layers {
		used[l] = true
	}
	c, err := s.summary(Image{ID: m.Config}, have)
	if err != nil {
		return err
	}
	for _, id := range ChainIDs(c.DiffIDs) {
		chains[id] = true
	}
	return nil
}

// markBrokenBlobs marks what broken image d still has: its manifest, config
// and layer blobs, and the chains of its layers, until rmi removes it.
func (s *Store) markBrokenBlobs(d ocispec.Descriptor, used, chains map[digest.Digest]bool) {
	used[d.Digest] = true
	m, err := s.Manifest(d.Digest)
	if err != nil {
		return
	}
	used[m.Config.Digest] = true
	for _, l := range m.Layers {
		used[l.Digest] = true
	}
	if c, _, err := s.Config(Image{ID: m.Config.Digest}); err == nil {
		for _, id := range ChainIDs(c.RootFS.DiffIDs) {
			chains[id] = true
		}
	}
}
