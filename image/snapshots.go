package image

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
)

// A layer's snapshot (the Unpacker's) is made from the layer's bytes as they
// stream in when it can be (ingest.go), and from its blob in the store when
// it was not: a layer stored by another OCI tool, a layer in several images,
// a pull killed between a blob and its snapshot. Either way it is committed
// under its chain ID once its blob is in the store, before any name points at it.

// unpackLayer reads a layer stream, compressed or not, to its end (what
// follows the compressed stream included) into a pending snapshot. diffID
// is the digest of the uncompressed tar when the stream was compressed;
// empty when it was not, the stream's own digest being its diff ID.
func (s *Store) unpackLayer(ctx context.Context, raw io.Reader) (key string, comp rootfs.Compression, diffID digest.Digest, err error) {
	dec, comp, err := rootfs.Decompress(raw)
	if err != nil {
		return "", 0, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer dec.Close()
	var src io.Reader = dec
	dh := digest.SHA256.Digester()
	if comp != rootfs.Uncompressed {
		src = io.TeeReader(dec, dh.Hash())
	}
	if key, err = s.unpacker.Unpack(ctx, src); err != nil {
		return "", 0, "", err
	}
	if comp == rootfs.Uncompressed {
		return key, comp, "", nil
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		s.unpacker.Discard(key)
		return "", 0, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return key, comp, dh.Digest(), nil
}

// snapshots makes sure every layer of p has its snapshot, taking those its
// ingests unpacked as they streamed in.
func (b *batch) snapshots(p *plan) error {
	if b.s.unpacker == nil {
		return nil
	}
	return b.s.ensureSnapshots(b.ctx, p.diffIDs, func(i int) (string, error) {
		if ing := p.layers[i].ing; ing != nil {
			return ing.takeKey(), nil
		}
		return "", nil
	}, func(i int) digest.Digest { return p.layers[i].digest })
}

// ensureSnapshots commits or unpacks the snapshot of each layer of a stack that
// has none. pending may offer an already unpacked layer; blob names the layer's
// blob in the store, from which it is unpacked otherwise.
func (s *Store) ensureSnapshots(ctx context.Context, diffIDs []digest.Digest, pending func(int) (string, error), blob func(int) digest.Digest) error {
	chains := ChainIDs(diffIDs)
	for i, chain := range chains {
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		key, err := pending(i)
		if err != nil {
			return err
		}
		if err := s.ensureSnapshot(ctx, chain, parent, diffIDs[i], key, blob(i)); err != nil {
			return err
		}
	}
	return nil
}

// ensureSnapshot makes the snapshot chain (over parent) of a layer of diff ID
// diffID, unless it exists: from key, the layer already unpacked into a pending
// snapshot, if not empty (dropped if the snapshot exists); otherwise unpacked
// from the layer's blob, and checked.
func (s *Store) ensureSnapshot(ctx context.Context, chain, parent, diffID digest.Digest, key string, blob digest.Digest) error {
	if s.unpacker.Exists(chain) {
		if key != "" {
			s.unpacker.Discard(key)
		}
		return nil
	}
	if key == "" {
		var got digest.Digest
		var err error
		if key, got, err = s.unpackBlob(ctx, blob); err != nil {
			return err
		}
		if got != diffID {
			s.unpacker.Discard(key)
			return fmt.Errorf("%w: layer %s has diff ID %s, the config says %s", ErrInvalid, blob, got, diffID)
		}
	}
	return s.unpacker.Commit(key, chain, parent, diffID)
}

// unpackBlob unpacks a stored layer blob into a pending snapshot.
func (s *Store) unpackBlob(ctx context.Context, d digest.Digest) (string, digest.Digest, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	key, _, diffID, err := s.unpackLayer(ctx, f)
	if err != nil {
		return "", "", fmt.Errorf("layer %s: %w", d, err)
	}
	return key, cmp.Or(diffID, d), nil
}

// EnsureSnapshots unpacks any layer of img whose snapshot is missing (an image
// another OCI tool wrote into the layout, say) and returns the chain IDs.
func (s *Store) EnsureSnapshots(ctx context.Context, img Image) ([]digest.Digest, error) {
	m, err := s.Manifest(img.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	c, _, err := s.Config(img)
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(c.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%w: image %s: config lists %d layers, the manifest %d", ErrInvalid, ShortID(img.ID), len(c.RootFS.DiffIDs), len(m.Layers))
	}
	if s.unpacker != nil {
		release, err := s.Lease(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		err = s.ensureSnapshots(ctx, c.RootFS.DiffIDs, func(int) (string, error) { return "", nil },
			func(i int) digest.Digest { return m.Layers[i].Digest })
		if err != nil {
			return nil, err
		}
	}
	return ChainIDs(c.RootFS.DiffIDs), nil
}
