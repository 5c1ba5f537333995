package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Remote is an image to fetch into the store: a pull.
type Remote struct {
	Manifest []byte // as the registry served it (its digest is the image's manifest digest)
	Config   []byte
	Layers   []RemoteLayer // in the manifest's order
	Name     string        // the name to give it; a digest reference names the image by that digest
	Jobs     int           // layers fetched at once; 0: 3
	// Progress, if not nil, is told what happens to each layer. It is
	// called from several goroutines.
	Progress func(LayerEvent)
}

// RemoteLayer is a layer to fetch.
type RemoteLayer struct {
	Desc ocispec.Descriptor
	// Open returns the layer's bytes, as the manifest describes them
	// (compressed or not). Fetch checks their digest and size.
	Open func(ctx context.Context) (io.ReadCloser, error)
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
// blob and snapshot the store has is not fetched again. Every digest and
// size is checked. A layer is kept as soon as it is whole and checked, so
// that a pull cut short and run again fetches only what is missing; the
// image becomes visible (named) only once all of it is in.
func (s *Store) Fetch(ctx context.Context, r Remote) (Loaded, error) {
	var name string
	if r.Name != "" {
		n, err := parseAnyName(r.Name)
		if err != nil {
			return Loaded{}, err
		}
		name = n
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Loaded{}, err
	}
	defer release()
	var m ocispec.Manifest
	if err := json.Unmarshal(r.Manifest, &m); err != nil {
		return Loaded{}, fmt.Errorf("%w: manifest: %v", ErrInvalid, err)
	}
	if got := digest.FromBytes(r.Config); got != m.Config.Digest || int64(len(r.Config)) != m.Config.Size {
		return Loaded{}, fmt.Errorf("%w: config has digest %s, the manifest says %s", ErrInvalid, got, m.Config.Digest)
	}
	var c Config
	if err := json.Unmarshal(r.Config, &c); err != nil {
		return Loaded{}, fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) || len(r.Layers) != len(m.Layers) {
		return Loaded{}, fmt.Errorf("%w: config lists %d layers, the manifest %d", ErrInvalid, len(c.RootFS.DiffIDs), len(m.Layers))
	}
	chains := ChainIDs(c.RootFS.DiffIDs)
	jobs := r.Jobs
	if jobs <= 0 {
		jobs = 3
	}
	event := func(e LayerEvent) {
		if r.Progress != nil {
			r.Progress(e)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(r.Layers))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, layer := range r.Layers {
		if layer.Desc.Digest != m.Layers[i].Digest {
			return Loaded{}, fmt.Errorf("%w: layer %d is not the manifest's", ErrInvalid, i+1)
		}
		if s.HasBlob(layer.Desc.Digest) && (s.unpacker == nil || s.unpacker.Exists(chains[i])) {
			event(LayerEvent{Digest: layer.Desc.Digest, Status: "Already exists"})
			continue
		}
		event(LayerEvent{Digest: layer.Desc.Digest, Status: "Pulling fs layer", Total: layer.Desc.Size})
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			var parent digest.Digest
			if i > 0 {
				parent = chains[i-1]
			}
			if err := s.fetchLayer(ctx, layer, c.RootFS.DiffIDs[i], chains[i], parent, event); err != nil {
				errs[i] = fmt.Errorf("layer %s: %w", layer.Desc.Digest, err)
				cancel() // the others stop: the pull has failed
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return Loaded{}, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return Loaded{}, err
		}
	}
	// Layers whose blob was there without its snapshot.
	if s.unpacker != nil {
		err := s.ensureSnapshots(ctx, c.RootFS.DiffIDs, func(int) (string, error) { return "", nil }, func(i int) digest.Digest { return m.Layers[i].Digest })
		if err != nil {
			return Loaded{}, err
		}
	}
	cd, err := s.writeBlob(r.Config)
	if err != nil {
		return Loaded{}, err
	}
	md, err := s.writeBlob(r.Manifest)
	if err != nil {
		return Loaded{}, err
	}
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	img := Image{ID: cd, Manifest: ocispec.Descriptor{MediaType: mt, Digest: md, Size: int64(len(r.Manifest))}}
	err = s.updateIndex(ctx, func(n *names) error {
		if name == "" {
			if !n.has(md) {
				n.addUnnamed(img.Manifest)
			}
			return nil
		}
		n.set(name, img.Manifest)
		img.Names = []string{name}
		return nil
	})
	return Loaded{img}, err
}

// fetchLayer downloads one layer into a blob while it is unpacked into its
// snapshot, checks both, and keeps both.
func (s *Store) fetchLayer(ctx context.Context, l RemoteLayer, diffID, chain, parent digest.Digest, event func(LayerEvent)) error {
	rc, err := l.Open(ctx)
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
			raw := &followReader{f: f, g: g}
			dec, comp, err := rootfs.Decompress(raw)
			if err != nil {
				unpackErr = err
				return
			}
			defer dec.Close()
			dh := digest.SHA256.Digester()
			var src io.Reader = dec
			if comp != rootfs.Uncompressed {
				src = io.TeeReader(dec, dh.Hash())
			}
			key, unpackErr = s.unpacker.Unpack(ctx, src)
			if unpackErr != nil {
				return
			}
			if comp == rootfs.Uncompressed {
				gotDiffID = diffID // checked as the blob's digest, below
				if l.Desc.Digest != diffID {
					gotDiffID = l.Desc.Digest
				}
				return
			}
			// whatever follows the compressed stream
			if _, err := io.Copy(io.Discard, raw); err != nil {
				unpackErr = err
				return
			}
			gotDiffID = dh.Digest()
		}()
	} else {
		close(done)
	}
	buf := make([]byte, copyBuffer)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			g.finish(err)
			<-done
			return err
		}
		k, rerr := rc.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				g.finish(err)
				<-done
				return err
			}
			g.advance(k)
			n += int64(k)
			if n > l.Desc.Size {
				g.finish(ErrInvalid)
				<-done
				return fmt.Errorf("%w: the registry sent more than the %d bytes the manifest says", ErrInvalid, l.Desc.Size)
			}
			event(LayerEvent{Digest: l.Desc.Digest, Status: "Downloading", Current: n, Total: l.Desc.Size})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			g.finish(rerr)
			<-done
			return rerr
		}
	}
	err = w.Close()
	g.finish(err)
	<-done
	if err != nil {
		return err
	}
	if got := w.Digest(); got != l.Desc.Digest || n != l.Desc.Size {
		return fmt.Errorf("%w: the registry sent %d bytes of digest %s, the manifest says %d bytes of %s", ErrInvalid, n, got, l.Desc.Size, l.Desc.Digest)
	}
	event(LayerEvent{Digest: l.Desc.Digest, Status: "Download complete", Current: n, Total: n})
	if unpackErr != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalid, unpackErr)
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
	event(LayerEvent{Digest: l.Desc.Digest, Status: "Pull complete"})
	return nil
}
