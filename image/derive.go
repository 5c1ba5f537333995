package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DeriveOptions say what Derive makes.
type DeriveOptions struct {
	Name string // the new image's name; none leaves it untagged
	// Configure edits the new image's config: the parent's, with the new
	// layer's diff ID added to its rootfs. It adds the history entry.
	Configure func(*Config) error
	What      string // how errors name the layer ("commit of web", "import of x.tar")
	// CacheKey, if set, records the image in the build cache under that key.
	CacheKey digest.Digest
	// Intermediate images are not in the index: only the build cache (or
	// the caller) knows them.
	Intermediate bool
}

// Derive makes an image on top of parent, as commit, build and import do.
// With a layer — an uncompressed tar stream — a layer goes over the
// parent's: stored as it streams in (uncompressed: its digest is its diff
// ID; push compresses it) and unpacked into its snapshot from that same
// stream, so that its bytes are read once. With a nil layer the image has
// the parent's layers only (an "empty_layer" step). A nil parent makes an
// image of its own (FROM scratch, import).
//
// Nothing is visible until the whole layer is in and its snapshot made; on
// any error the store is as it was.
func (s *Store) Derive(ctx context.Context, parent *Image, layer io.Reader, o DeriveOptions) (Image, error) {
	var name string
	if o.Name != "" {
		n, err := ParseName(o.Name)
		if err != nil {
			return Image{}, err
		}
		name = n.String()
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Image{}, err
	}
	defer release()

	// The parent, read under the lease: it cannot go away meanwhile.
	c := Config{}
	c.OS, c.Architecture = "linux", runtime.GOARCH
	c.RootFS.Type = "layers"
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Layers:    []ocispec.Descriptor{},
	}
	var layers []layerSource
	if parent != nil {
		pm, err := s.Manifest(parent.Manifest.Digest)
		if err != nil {
			return Image{}, fmt.Errorf("%w: parent %s: %w", ErrNotFound, ShortID(parent.ID), err)
		}
		if c, _, err = s.Config(*parent); err != nil {
			return Image{}, err
		}
		if len(pm.Layers) != len(c.RootFS.DiffIDs) {
			return Image{}, fmt.Errorf("%w: image %s: config lists %d layers, the manifest %d", ErrInvalid, ShortID(parent.ID), len(c.RootFS.DiffIDs), len(pm.Layers))
		}
		for _, d := range pm.Layers {
			d.MediaType = ociLayerType(d.MediaType)
			d.Annotations, d.URLs = nil, nil
			m.Layers = append(m.Layers, d)
			layers = append(layers, layerSource{digest: d.Digest})
		}
		c.RootFS.DiffIDs = slices.Clone(c.RootFS.DiffIDs)
		c.History = slices.Clone(c.History)
	}

	b := newBatch(s, ctx)
	defer b.cleanup()
	if layer != nil {
		ing, err := b.add(o.What, layer, true)
		if werr := b.wait(); werr != nil {
			return Image{}, werr
		}
		if err != nil {
			return Image{}, err
		}
		if ing.diffID == "" { // no unpacker: the blob is the uncompressed tar
			ing.diffID = ing.digest
		}
		if ing.diffID != ing.digest {
			return Image{}, fmt.Errorf("%w: %s: the layer must be an uncompressed tar", ErrInvalid, o.What)
		}
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, ing.diffID)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ing.digest, Size: ing.size})
		layers = append(layers, layerSource{ing: ing, digest: ing.digest})
	}
	if o.Configure != nil {
		if err := o.Configure(&c); err != nil {
			return Image{}, err
		}
	}
	cb, err := marshalConfig(c)
	if err != nil {
		return Image{}, err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	mb, err := json.Marshal(m)
	if err != nil {
		return Image{}, err
	}
	p := &plan{config: cb, manifest: mb, layers: layers, what: o.What, hidden: o.Intermediate && name == ""}
	if name != "" {
		p.names = []string{name}
	}
	if err := b.verify(p); err != nil {
		return Image{}, err
	}
	out, err := b.commit([]*plan{p})
	if err != nil {
		return Image{}, err
	}
	if o.CacheKey != "" {
		if err := s.cachePut(o.CacheKey, out[0]); err != nil {
			return Image{}, err
		}
	}
	return out[0], nil
}

// ociLayerType is the OCI media type of a layer of another manifest (a
// Docker one), so that a derived image's manifest is OCI throughout.
func ociLayerType(mt string) string {
	switch mt {
	case "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerGzip
	case "application/vnd.docker.image.rootfs.diff.tar":
		return ocispec.MediaTypeImageLayer
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck // as the parent had it
	}
	return mt
}
