package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const copyBuffer = 1 << 20

// ingest is one stream on its way into the store, and the one way an image's
// bytes enter it. It has three callers:
//
//   - Load (load.go, archive.go) ingests each layer (or large entry) of a
//     docker-archive or an oci-archive as the tar reader reaches it; several
//     layers unpack at once while the archive is read on.
//   - Derive (derive.go), for commit, build and import, ingests the new
//     layer, an uncompressed tar.
//   - Fetch (fetch.go), for a pull, ingests each layer the registry sends,
//     several at once.
//
// The flow, for one stream:
//
//  1. startIngest opens a temporary blob file in the store's tmp directory.
//     For a layer, when the store has an Unpacker, it also starts a goroutine
//     that unpacks the layer into a pending snapshot, reading the blob file as
//     it grows (follow.go): the stream is read once.
//  2. write copies the stream into the file, hashing it, and closes it: the
//     ingest has its blob's digest and size. wait waits for the unpack, which
//     has found the layer's compression and diff ID (the digest of the
//     uncompressed tar).
//  3. Verify. Load and Derive gather their ingests in a batch and check each
//     plan (an image to add) with verify: the config's diff IDs against the
//     layers; an entry not recognised as a layer while it streamed is read
//     back from its file (unpackLater). Fetch checks each layer's digest and
//     size as the registry sent it, and keepLayer its diff ID.
//  4. Commit, in the order that makes an image visible last: the blobs
//     (renamed into blobs/sha256/), then the snapshots (a pending one
//     committed under its chain ID, a missing one unpacked from its blob:
//     snapshots.go), then the names in index.json. Load and Derive commit
//     their plans at once (batch.commit). Fetch keeps each layer, blob and
//     snapshot, as soon as it is whole and checked (keepLayer), so that a pull
//     cut short and run again fetches only what is missing, and commits its
//     plan (the config, the manifest, the names) once every layer is in.
//
// What is not kept is dropped (drop, batch.cleanup): the temporary blob is
// removed, the pending snapshot discarded. Whatever fails before the names,
// the store holds nothing more than whole, checked content, which Prune
// removes if nothing comes to name it.
type ingest struct {
	s        *Store
	ctx      context.Context
	what     string // how errors name it: an archive entry, "commit of web", a layer
	w        *blobWriter
	g        *growth       // how far w has written, for the unpack; nil if none runs
	unpacked chan struct{} // closed once the unpack is over; nil if none runs
	digest   digest.Digest
	size     int64
	comp     rootfs.Compression
	diffID   digest.Digest // set once the content has been read as a layer
	key      string        // a pending snapshot of it, until used
	done     bool          // its blob moved into the store
	err      error         // of its unpacking
}

// startIngest opens the temporary blob a stream is to be written into. For a
// layer, when the store has an unpacker, it also starts unpacking the layer
// from that file as write fills it, once sem (if not nil), which bounds the
// unpacks running at once, has room.
func (s *Store) startIngest(ctx context.Context, what string, layer bool, sem chan struct{}) (*ingest, error) {
	w, err := s.newBlobWriter()
	if err != nil {
		return nil, err
	}
	ing := &ingest{s: s, ctx: ctx, what: what, w: w}
	if !layer || s.unpacker == nil {
		return ing, nil
	}
	f, err := os.Open(w.f.Name())
	if err != nil {
		w.Abort()
		return nil, err
	}
	ing.g, ing.unpacked = newGrowth(), make(chan struct{})
	go func() {
		defer close(ing.unpacked)
		defer f.Close()
		if sem != nil {
			sem <- struct{}{}
			defer func() { <-sem }()
		}
		ing.err = ing.unpack(&followReader{f: f, g: ing.g})
	}()
	return ing, nil
}

// write copies r into the blob file, hashing it, and closes it. The unpack, if
// one runs, follows it to its end, or to the error that cut it short.
func (ing *ingest) write(r io.Reader, buf []byte) error {
	var dst io.Writer = ing.w
	if ing.g != nil {
		dst = &growingWriter{w: ing.w, g: ing.g}
	}
	_, err := copyCtx(ing.ctx, storeWriter{dst}, r, buf)
	if err == nil {
		if err = ing.w.Close(); err != nil {
			err = &storeError{err}
		}
	}
	if ing.g != nil {
		ing.g.finish(err)
	}
	if err != nil {
		return err
	}
	ing.digest, ing.size = ing.w.Digest(), ing.w.size
	return nil
}

// storeError is a failure to write into the store (a full disk, a
// read-only one), not the stream's: it is no ErrInvalid.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// storeWriter marks the errors of w as the store's.
type storeWriter struct{ w io.Writer }

func (sw storeWriter) Write(p []byte) (int, error) {
	n, err := sw.w.Write(p)
	if err != nil {
		err = &storeError{err}
	}
	return n, err
}

// wait waits for the unpack, if one runs, and returns its error. Once it is
// over, a layer that was not compressed has its digest as its diff ID.
func (ing *ingest) wait() error {
	if ing.unpacked != nil {
		<-ing.unpacked
	}
	if ing.key != "" && ing.diffID == "" {
		ing.diffID = ing.digest
	}
	return ing.err
}

// failed reports, without waiting, whether the unpack has ended in error.
func (ing *ingest) failed() bool {
	select {
	case <-ing.unpacked: // never, when nil
		return ing.err != nil
	default:
		return false
	}
}

// unpack reads a (possibly compressed) layer stream to its end into a pending
// snapshot, recording its compression and, when compressed, its diff ID (an
// uncompressed layer's diff ID is its digest).
func (ing *ingest) unpack(raw io.Reader) error {
	key, comp, diffID, err := ing.s.unpackLayer(ing.ctx, raw)
	if err != nil {
		return err
	}
	ing.key, ing.comp = key, comp
	if diffID != "" {
		ing.diffID = diffID
	}
	return nil
}

// unpackLater reads an ingest back from its temporary file as a layer: an
// archive entry that was not recognised as one while it streamed in.
func (ing *ingest) unpackLater() error {
	f, err := os.Open(ing.w.f.Name())
	if err != nil {
		return err
	}
	defer f.Close()
	if ing.s.unpacker == nil {
		dec, comp, err := rootfs.Decompress(f)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		defer dec.Close()
		ing.comp = comp
		dh := digest.SHA256.Digester()
		if _, err := io.Copy(dh.Hash(), dec); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		ing.diffID = dh.Digest()
		return nil
	}
	if err := ing.unpack(f); err != nil {
		return err
	}
	if ing.diffID == "" {
		ing.diffID = ing.digest
	}
	return nil
}

// commitBlob moves the blob into the store, once.
func (ing *ingest) commitBlob() error {
	if ing.done {
		return nil
	}
	if _, err := ing.w.Commit(); err != nil {
		return err
	}
	ing.done = true
	return nil
}

// takeKey hands the pending snapshot over: it serves one chain only.
func (ing *ingest) takeKey() string {
	key := ing.key
	ing.key = ""
	return key
}

// keepLayer settles a layer that comes on its own (a pulled one), its blob's
// digest and size checked by the caller: once its unpack is over, it checks
// the layer's diff ID against diffID, the config's, and keeps it at once, its
// blob then its snapshot chain (over parent).
func (ing *ingest) keepLayer(diffID, chain, parent digest.Digest) error {
	if err := ing.wait(); err != nil {
		if cerr := ing.ctx.Err(); cerr != nil {
			return cerr
		}
		if !errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return err
	}
	if ing.unpacked != nil && ing.diffID != diffID {
		return fmt.Errorf("%w: the layer's content has diff ID %s, the config says %s", ErrInvalid, ing.diffID, diffID)
	}
	if err := ing.commitBlob(); err != nil {
		return err
	}
	if ing.unpacked == nil {
		return nil
	}
	return ing.s.ensureSnapshot(ing.ctx, chain, parent, diffID, ing.takeKey(), ing.digest)
}

// drop removes, once the unpack is over, what of ing was not kept: the
// temporary blob, the pending snapshot.
func (ing *ingest) drop() {
	if ing.unpacked != nil {
		<-ing.unpacked
	}
	if !ing.done {
		ing.w.Abort()
	}
	if key := ing.takeKey(); key != "" {
		ing.s.unpacker.Discard(key)
	}
}

// batch is the ingests of a Load or a Derive, which it commits together as
// plans, or drops.
type batch struct {
	s   *Store
	ctx context.Context
	all []*ingest
	buf []byte
	sem chan struct{} // bounds the unpacks running at once
}

func newBatch(s *Store, ctx context.Context) *batch {
	return &batch{s: s, ctx: ctx, buf: make([]byte, copyBuffer), sem: make(chan struct{}, runtime.NumCPU()+1)}
}

// add ingests r, which errors call what (`archive entry "x"`, "commit of
// web"). A layer is unpacked on a goroutine
// that reads its blob file as it grows, and add returns once its bytes are
// written: the caller reads on while several layers unpack at once (creating
// files is what loading spends its time on). wait collects the unpacks.
func (b *batch) add(what string, r io.Reader, layer bool) (*ingest, error) {
	ing, err := b.s.startIngest(b.ctx, what, layer, b.sem)
	if err != nil {
		return nil, err
	}
	b.all = append(b.all, ing)
	if err := ing.write(r, b.buf); err != nil {
		var se *storeError
		if b.ctx.Err() != nil {
			return nil, err
		} else if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
	}
	return ing, nil
}

// wait waits for every unpack started and returns the first error, in the
// order of the ingests.
func (b *batch) wait() error {
	for _, ing := range b.all {
		if err := ing.wait(); err != nil {
			var se *storeError
			if errors.As(err, &se) {
				err = se // the blob's write, which cut the unpack short, says where
			}
			return fmt.Errorf("%s: %w", ing.what, err)
		}
	}
	return nil
}

// failed reports whether an unpack has failed already: reading on is wasted.
func (b *batch) failed() bool {
	for _, ing := range b.all {
		if ing.failed() {
			return true
		}
	}
	return false
}

// cleanup drops what of the batch was not kept.
func (b *batch) cleanup() {
	for _, ing := range b.all {
		ing.drop()
	}
}

// plan is an image to add: its blobs, verified, and its names.
type plan struct {
	manifest []byte
	config   []byte
	layers   []layerSource
	diffIDs  []digest.Digest
	names    []string
	what     string // how errors name the image
	hidden   bool   // not in the index: an intermediate image of a build
}

// layerSource is a layer of a plan: an ingest, or a blob the store has.
type layerSource struct {
	ing    *ingest
	digest digest.Digest
}

// verify checks a plan's layers against its config's diff IDs, and makes an OCI
// manifest for it if it has none.
func (b *batch) verify(p *plan) error {
	var c Config
	if err := json.Unmarshal(p.config, &c); err != nil {
		return fmt.Errorf("%w: %s: config: %w", ErrInvalid, p.what, err)
	}
	p.diffIDs = c.RootFS.DiffIDs
	if len(p.diffIDs) != len(p.layers) {
		return fmt.Errorf("%w: %s: config lists %d layers, the manifest %d", ErrInvalid, p.what, len(p.diffIDs), len(p.layers))
	}
	for i, src := range p.layers {
		if src.ing == nil {
			continue // a blob the store has: verified when it came in, unpacked at commit
		}
		if src.ing.diffID == "" {
			// Not unpacked while streaming (not recognised as a layer): do it now.
			if err := src.ing.unpackLater(); err != nil {
				return fmt.Errorf("%s: layer %d: %w", p.what, i+1, err)
			}
		}
		if src.ing.diffID != p.diffIDs[i] {
			return fmt.Errorf("%w: %s: layer %d (%s) has diff ID %s, the config says %s", ErrInvalid, p.what, i+1, src.ing.what, src.ing.diffID, p.diffIDs[i])
		}
	}
	if p.manifest == nil {
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(p.config), Size: int64(len(p.config))},
			Layers:    []ocispec.Descriptor{},
		}
		for _, src := range p.layers {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMediaType(src.ing.comp), Digest: src.ing.digest, Size: src.ing.size})
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		p.manifest = mb
	}
	return nil
}

func layerMediaType(c rootfs.Compression) string {
	switch c {
	case rootfs.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case rootfs.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// commit moves verified plans' blobs into the store, makes the snapshots
// their layers need, and only then names the images.
func (b *batch) commit(plans []*plan) ([]Image, error) {
	var out []Image
	for _, p := range plans {
		for _, src := range p.layers {
			if src.ing != nil {
				if err := src.ing.commitBlob(); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", p.what, src.ing.what, err)
				}
			}
		}
		cd, err := b.s.writeBlob(p.config)
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", p.what, err)
		}
		md, err := b.s.writeBlob(p.manifest)
		if err != nil {
			return nil, fmt.Errorf("%s: manifest: %w", p.what, err)
		}
		if err := b.snapshots(p); err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		mt := ocispec.MediaTypeImageManifest
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(p.manifest, &probe) == nil && probe.MediaType == mediaTypeDockerManifest {
			mt = mediaTypeDockerManifest
		}
		out = append(out, Image{ID: cd, Manifest: ocispec.Descriptor{MediaType: mt, Digest: md, Size: int64(len(p.manifest))}, Names: p.names})
	}
	err := b.s.updateIndex(b.ctx, func(n *names) error {
		for i, img := range out {
			if plans[i].hidden {
				continue
			}
			if len(img.Names) == 0 {
				n.addUnnamed(img.Manifest)
			}
			for _, name := range img.Names {
				n.set(name, img.Manifest)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("naming the images: %w", err)
	}
	return out, nil
}
