package image

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

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
	l := newLoader(s, ctx)
	if err := l.verify(p); err != nil {
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
				return fmt.Errorf("layer %s: %w", d.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Image{}, err
	}
	out, err := l.commit([]*plan{p})
	if err != nil {
		return Image{}, err
	}
	return out[0], nil
}

// fetchLayer downloads one layer into a blob while it is unpacked into its
// snapshot, checks both, and keeps both.
func (s *Store) fetchLayer(ctx context.Context, open func(context.Context, ocispec.Descriptor) (io.ReadCloser, error), desc ocispec.Descriptor, diffID, chain, parent digest.Digest, event func(LayerEvent)) error {
	rc, err := open(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := s.newBlobWriter()
	if err != nil {
		return err
	}
	// The snapshot is unpacked from the blob file as it grows.
	var key string
	committed := false
	defer func() {
		if !committed {
			w.Abort()
			if key != "" {
				s.unpacker.Discard(key)
			}
		}
	}()
	var unpackErr error
	var gotDiffID digest.Digest
	g := newGrowth()
	done := make(chan struct{})
	if s.unpacker != nil {
		f, err := os.Open(w.f.Name())
		if err != nil {
			return err
		}
		go func() {
			defer close(done)
			defer f.Close()
			key, _, gotDiffID, unpackErr = s.unpackLayer(ctx, &followReader{f: f, g: g})
			gotDiffID = cmp.Or(gotDiffID, desc.Digest) // uncompressed: its digest, checked below
		}()
	} else {
		close(done)
	}
	cw := &fetchWriter{w: growingWriter{w: w, g: g}, desc: desc, event: event}
	_, err = copyCtx(ctx, cw, rc, make([]byte, copyBuffer))
	if err == nil {
		err = w.Close()
	}
	g.finish(err)
	<-done
	if err != nil {
		return err
	}
	if got := w.Digest(); got != desc.Digest || cw.n != desc.Size {
		return fmt.Errorf("%w: the registry sent %d bytes of digest %s, the manifest says %d bytes of %s", ErrInvalid, cw.n, got, desc.Size, desc.Digest)
	}
	event(LayerEvent{Digest: desc.Digest, Status: "Download complete", Current: cw.n, Total: cw.n})
	if unpackErr != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !errors.Is(unpackErr, ErrInvalid) {
			unpackErr = fmt.Errorf("%w: %w", ErrInvalid, unpackErr)
		}
		return unpackErr
	}
	if s.unpacker != nil && gotDiffID != diffID {
		return fmt.Errorf("%w: the layer's content has diff ID %s, the config says %s", ErrInvalid, gotDiffID, diffID)
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	committed = true
	if s.unpacker != nil {
		if err := s.unpacker.Commit(key, chain, parent, diffID); err != nil {
			s.unpacker.Discard(key)
			return err
		}
	}
	event(LayerEvent{Digest: desc.Digest, Status: "Pull complete"})
	return nil
}

// fetchWriter writes a layer's bytes as they come, refusing more than the
// manifest says, and tells how far it is.
type fetchWriter struct {
	w     growingWriter
	desc  ocispec.Descriptor
	event func(LayerEvent)
	n     int64
}

func (f *fetchWriter) Write(p []byte) (int, error) {
	if f.n+int64(len(p)) > f.desc.Size {
		return 0, fmt.Errorf("%w: the registry sent more than the %d bytes the manifest says", ErrInvalid, f.desc.Size)
	}
	k, err := f.w.Write(p)
	f.n += int64(k)
	f.event(LayerEvent{Digest: f.desc.Digest, Status: "Downloading", Current: f.n, Total: f.desc.Size})
	return k, err
}
