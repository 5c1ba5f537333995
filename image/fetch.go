package image

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Remote is an image to fetch into the store: a pull.
type Remote struct {
	Manifest []byte // as the registry served it (its digest is the image's manifest digest)
	Config   []byte
	// Open returns the bytes of a layer of the manifest, as the manifest
	// describes them (compressed or not). Fetch checks their digest and size.
	Open func(ctx context.Context, layer ocispec.Descriptor) (io.ReadCloser, error)
	Name string // the name to give it; a digest reference names the image by that digest
	Jobs int    // layers fetched at once; 0: 3
	// Progress, if not nil, is told what happens to each layer. It is
	// called from several goroutines.
	Progress func(LayerEvent)
}

// LayerEvent is what happened to a layer of a Fetch.
type LayerEvent struct {
	Digest  digest.Digest
	Status  string // "Pulling fs layer", "Already exists", "Downloading", "Download complete", "Pull complete"
	Current int64  // bytes so far, while downloading
	Total   int64
}

// Fetch puts a remote image into the store, as a pull does: its layers are
// downloaded at once (Jobs of them), each stored as it comes (compressed as
// it is) and unpacked into its snapshot from the same stream; a layer whose
// blob the store has is not fetched again. Every digest and
// size is checked. A layer is kept as soon as it is whole and checked, so
// that a pull cut short and run again fetches only what is missing; the
// image becomes visible (named) only once all of it is in.
func (s *Store) Fetch(ctx context.Context, r Remote) (Image, error) {
	p := &plan{manifest: r.Manifest, config: r.Config, what: r.Name}
	if r.Name != "" {
		n, err := parseAnyName(r.Name)
		if err != nil {
			return Image{}, err
		}
		p.names = []string{n}
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Image{}, err
	}
	defer release()
	var m ocispec.Manifest
	if err := json.Unmarshal(r.Manifest, &m); err != nil {
		return Image{}, fmt.Errorf("%w: manifest: %w", ErrInvalid, err)
	}
	if got := digest.FromBytes(r.Config); got != m.Config.Digest || int64(len(r.Config)) != m.Config.Size {
		return Image{}, fmt.Errorf("%w: config has digest %s, the manifest says %s", ErrInvalid, got, m.Config.Digest)
	}
	for _, d := range m.Layers {
		p.layers = append(p.layers, layerSource{digest: d.Digest})
	}
	// As a load's: the config against the layers, then (commit) the
	// snapshots a layer still lacks, the blobs and the names.
	b := newBatch(s, ctx)
	if err := b.verify(p); err != nil {
		return Image{}, err
	}
	chains := ChainIDs(p.diffIDs)
	event := func(e LayerEvent) {
		if r.Progress != nil {
			r.Progress(e)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cmp.Or(r.Jobs, 3))
	// Every layer is announced before any is fetched. A layer whose blob
	// the store has is not fetched: commit unpacks it from there if its
	// snapshot is missing (a pull killed between the two, say).
	present := make([]bool, len(m.Layers))
	for i, d := range m.Layers {
		present[i] = s.HasBlob(d.Digest)
		if present[i] {
			event(LayerEvent{Digest: d.Digest, Status: "Already exists"})
		} else {
			event(LayerEvent{Digest: d.Digest, Status: "Pulling fs layer", Total: d.Size})
		}
	}
	for i, d := range m.Layers {
		if present[i] {
			continue
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		g.Go(func() error {
			if err := s.fetchLayer(gctx, r.Open, d, p.diffIDs[i], chains[i], parent, event); err != nil {
				return fmt.Errorf("layer %s (%s): %w", d.Digest, units.HumanSize(float64(d.Size)), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Image{}, err
	}
	out, err := b.commit([]*plan{p})
	if err != nil {
		return Image{}, err
	}
	return out[0], nil
}

// fetchLayer downloads one layer through an ingest, which stores it as it
// comes and unpacks it from the same bytes; it checks that the registry sent
// what the manifest says, and has the ingest check the layer's diff ID and
// keep it, blob and snapshot, at once.
func (s *Store) fetchLayer(ctx context.Context, open func(context.Context, ocispec.Descriptor) (io.ReadCloser, error), desc ocispec.Descriptor, diffID, chain, parent digest.Digest, event func(LayerEvent)) error {
	rc, err := open(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	ing, err := s.startIngest(ctx, desc.Digest.String(), true, nil)
	if err != nil {
		return err
	}
	defer ing.drop() // what was not kept
	if err := ing.write(&fetchReader{r: rc, desc: desc, event: event}, make([]byte, copyBuffer)); err != nil {
		return err
	}
	if ing.digest != desc.Digest || ing.size != desc.Size {
		return fmt.Errorf("%w: the registry sent %d bytes of digest %s, the manifest says %d bytes of %s", ErrInvalid, ing.size, ing.digest, desc.Size, desc.Digest)
	}
	// Its last byte is in, checked: the unpack, which follows the blob
	// file, may be behind still; keepLayer waits for it.
	event(LayerEvent{Digest: desc.Digest, Status: "Download complete", Current: ing.size, Total: ing.size})
	if err := ing.keepLayer(diffID, chain, parent); err != nil {
		return err
	}
	event(LayerEvent{Digest: desc.Digest, Status: "Pull complete"})
	return nil
}

// fetchReader reads a layer's bytes as the registry sends them, refusing more
// than the manifest says, and tells how far it is.
type fetchReader struct {
	r     io.Reader
	desc  ocispec.Descriptor
	event func(LayerEvent)
	n     int64
}

func (f *fetchReader) Read(p []byte) (int, error) {
	k, err := f.r.Read(p)
	if f.n+int64(k) > f.desc.Size {
		return 0, fmt.Errorf("%w: the registry sent more than the %d bytes the manifest says", ErrInvalid, f.desc.Size)
	}
	f.n += int64(k)
	if k > 0 {
		f.event(LayerEvent{Digest: f.desc.Digest, Status: "Downloading", Current: f.n, Total: f.desc.Size})
	}
	return k, err
}
