package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions are the options of a push.
type PushOptions struct {
	// Compression of the layers as the registry gets them: rootfs.Gzip
	// (the default, which every client reads) or rootfs.Zstd.
	Compression rootfs.Compression
	// Progress, if not nil, is told what happens to each layer, from
	// several goroutines.
	Progress func(Event)
}

// Pushed is the result of a push.
type Pushed struct {
	Name   string // the full name pushed
	Digest digest.Digest
	Size   int64 // of the manifest
}

// ErrNoSuchImage: the name to push names no image of the store.
var ErrNoSuchImage = errors.New("An image does not exist locally with the tag") // Docker's words

// Push sends the image named ref (a name as Docker takes it) to its
// registry: the blobs the registry lacks (a layer it has in another
// repository, from which it was pulled, is mounted rather than uploaded),
// then the manifest under ref's tag. A layer the store keeps in another
// compression than asked is converted first, once (image.Store.Compressed).
// A single-platform image is pushed as one manifest, never an index.
func (c *Client) Push(ctx context.Context, ref string, o PushOptions) (Pushed, error) {
	n, err := parse(ref)
	if err != nil {
		return Pushed{}, err
	}
	if _, ok := n.(reference.Digested); ok {
		return Pushed{}, fmt.Errorf("push %s: a digest reference cannot be pushed; push a tag", ref)
	}
	if o.Compression == rootfs.Uncompressed {
		o.Compression = rootfs.Gzip
	}
	img, err := c.images.Lookup(n.String())
	if err != nil {
		return Pushed{}, fmt.Errorf("%w: %s", ErrNoSuchImage, reference.FamiliarString(n))
	}
	release, err := c.images.Lease(ctx)
	if err != nil {
		return Pushed{}, err
	}
	defer release()
	stored, err := c.images.ReadBlob(img.Manifest.Digest)
	if err != nil {
		return Pushed{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(stored, &m); err != nil {
		return Pushed{}, fmt.Errorf("%w: manifest of %s: %w", image.ErrInvalid, n, err)
	}
	cfg, err := c.images.ReadBlob(m.Config.Digest)
	if err != nil {
		return Pushed{}, err
	}
	rref, err := c.remoteRef(n, reference.Domain(n), false)
	if err != nil {
		return Pushed{}, err
	}
	target := rref.Context()
	// Credentials first, so that a push that will be refused does not
	// compress layers for nothing.
	if err := c.checkPush(ctx, rref); err != nil {
		return Pushed{}, err
	}

	// The layers as the registry gets them: as the store has them or as
	// an earlier push converted them; the others are compressed as they
	// are uploaded (pushLayer.Compressed), so that their digests are
	// known only when their upload ends.
	st := &pushState{progress: o.Progress}
	layers := make([]*pushLayer, len(m.Layers))
	for i, l := range m.Layers {
		st.event(Event{Digest: l.Digest, Status: "Preparing"})
		if j := slices.IndexFunc(m.Layers[:i], func(p ocispec.Descriptor) bool { return p.Digest == l.Digest }); j >= 0 {
			layers[i] = layers[j] // one upload for a layer the image has twice
			continue
		}
		pl := &pushLayer{ctx: ctx, s: c.images, src: l, comp: o.Compression, st: st}
		d, ok, err := c.images.Converted(l, o.Compression)
		if err != nil {
			return Pushed{}, err
		}
		if ok {
			pl.d = d
		}
		layers[i] = pl
		st.layers = append(st.layers, pl)
	}
	defer st.close()
	same := true
	for i, l := range layers {
		same = same && l.d.Digest == m.Layers[i].Digest && l.d.MediaType == m.Layers[i].MediaType
	}
	core := &pushCore{m: m, cfg: cfg, layers: layers}
	if same {
		core.raw, core.mt = stored, types.MediaType(img.Manifest.MediaType)
		if core.mt == "" {
			core.mt = types.OCIManifestSchema1 // go-containerregistry's name for OCI's image manifest
		}
	} else {
		core.mt = types.OCIManifestSchema1 // a new manifest, in OCI's form, over the converted layers
	}

	// Layers pulled from another repository of the same registry are mounted from it.
	scopes := []string{target.Scope(transport.PushScope)}
	mountFrom := map[digest.Digest]name.Repository{}
	for _, l := range st.layers {
		src := c.images.Source(l.d.Digest)
		host, repo, ok := strings.Cut(src, "/")
		if l.d.Digest == "" || !ok || host != target.RegistryStr() || repo == target.RepositoryStr() {
			continue
		}
		r, err := name.NewRepository(src, name.StrictValidation)
		if err != nil {
			continue
		}
		mountFrom[l.d.Digest] = r
		scopes = append(scopes, r.Scope(transport.PullScope))
	}
	obs := func(rt http.RoundTripper) http.RoundTripper {
		return &observer{inner: rt, repo: target.RepositoryStr(), st: st}
	}
	tr, err := c.session(ctx, rref, scopes, obs)
	if err != nil {
		return Pushed{}, err
	}
	var vls []v1.Layer
	for _, l := range st.layers {
		vl, _ := partial.CompressedToLayer(l)
		if src, ok := mountFrom[l.d.Digest]; ok {
			vl = &remote.MountableLayer{Layer: vl, Reference: src.Digest(l.d.Digest.String())}
		}
		vls = append(vls, vl)
	}
	pimg, err := partial.CompressedToImage(core)
	if err != nil {
		return Pushed{}, err
	}
	// go-containerregistry uploads the layers whose digest is not known
	// yet first, and the manifest once it is whole.
	err = remote.Write(rref, &layered{Image: pimg, layers: vls},
		remote.WithContext(ctx), remote.WithTransport(tr), remote.WithJobs(jobs))
	if err != nil {
		return Pushed{}, c.classify(target.RegistryStr(), c.authFor(rref), err)
	}
	raw, err := core.RawManifest()
	if err != nil {
		return Pushed{}, err
	}
	for _, l := range st.layers {
		// Where the next push to this registry can mount it from.
		d, _ := l.descriptor()
		c.images.SetSource(d.Digest, target.RegistryStr()+"/"+target.RepositoryStr())
		// The registry had the manifest already, so nothing was asked about it.
		if !st.isFinal(l.src.Digest) {
			st.event(Event{Digest: l.src.Digest, Status: "Layer already exists"})
		}
	}
	return Pushed{Name: n.String(), Digest: digest.FromBytes(raw), Size: int64(len(raw))}, nil
}

// pushState is what the layers of a push share: its events, which name a
// layer by its digest in the store, whatever it is converted to; every
// layer ends as pushed, mounted or already there.
type pushState struct {
	progress func(Event)
	layers   []*pushLayer // each once
	mu       sync.Mutex
	final    map[digest.Digest]bool
}

func (st *pushState) event(e Event) {
	if l := st.layer(e.Digest); l != nil {
		e.Digest = l.src.Digest
	}
	if e.Status == "Pushed" || e.Status == "Layer already exists" || strings.HasPrefix(e.Status, "Mounted from") {
		st.mu.Lock()
		if st.final == nil {
			st.final = map[digest.Digest]bool{}
		}
		st.final[e.Digest] = true
		st.mu.Unlock()
	}
	if st.progress != nil {
		st.progress(e)
	}
}

func (st *pushState) isFinal(d digest.Digest) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.final[d]
}

// pushedAs reports whether a layer is pushed as blob d (a layer whose
// digest is not known yet is not).
func (st *pushState) pushedAs(d string) bool {
	for _, l := range st.layers {
		if pd, ok := l.descriptor(); ok && pd.Digest.String() == d {
			return true
		}
	}
	return false
}

// layer is the layer pushed as d (or kept in the store as d), if any.
func (st *pushState) layer(d digest.Digest) *pushLayer {
	for _, l := range st.layers {
		if pd, ok := l.descriptor(); l.src.Digest == d || ok && pd.Digest == d {
			return l
		}
	}
	return nil
}

// close stops the compressions the push started and did not finish.
func (st *pushState) close() {
	for _, l := range st.layers {
		l.mu.Lock()
		runs := l.runs
		l.mu.Unlock()
		for _, z := range runs {
			z.Close()
		}
	}
}

// pushCore is the image pushed, as go-containerregistry's partial package
// wants it. Its manifest is known once every layer's digest is.
type pushCore struct {
	m      ocispec.Manifest // as stored
	cfg    []byte
	layers []*pushLayer // in the manifest's order
	mt     types.MediaType
	mu     sync.Mutex
	raw    []byte
}

func (p *pushCore) RawConfigFile() ([]byte, error)      { return p.cfg, nil }
func (p *pushCore) MediaType() (types.MediaType, error) { return p.mt, nil }
func (p *pushCore) RawManifest() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.raw != nil {
		return p.raw, nil
	}
	descs := make([]ocispec.Descriptor, len(p.layers))
	for i, l := range p.layers {
		d, ok := l.descriptor()
		if !ok {
			return nil, stream.ErrNotComputed
		}
		descs[i] = d
	}
	nm := ocispec.Manifest{
		Versioned:   p.m.Versioned,
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: p.m.Config.Digest, Size: p.m.Config.Size},
		Layers:      descs,
		Annotations: p.m.Annotations,
	}
	nm.SchemaVersion = 2
	raw, err := json.Marshal(nm)
	if err != nil {
		return nil, err
	}
	p.raw = raw
	return raw, nil
}

func (p *pushCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range p.layers {
		if d, ok := l.descriptor(); ok && d.Digest.String() == h.String() {
			return l, nil
		}
	}
	return nil, fmt.Errorf("push: no layer %s", h)
}

// layered is an image whose layers are the ones given (mountable ones
// among them: partial's layers would hide that).
type layered struct {
	v1.Image
	layers []v1.Layer
}

func (l *layered) Layers() ([]v1.Layer, error) { return l.layers, nil }

// pushLayer is a layer of the image pushed: a blob of the store, read as
// it is uploaded, or, if the store has it in no other compression than
// the one asked for, a compression of it (image.Store.Compress), whose
// digest and size are known once it is whole.
type pushLayer struct {
	ctx  context.Context
	s    *image.Store
	src  ocispec.Descriptor // as the store's manifest has it
	comp rootfs.Compression
	st   *pushState
	mu   sync.Mutex
	d    ocispec.Descriptor   // as pushed; no digest while unknown
	runs []*image.Compressing // the compressions started (a retried upload starts another)
}

// descriptor is the layer as pushed, once its digest is known.
func (l *pushLayer) descriptor() (ocispec.Descriptor, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.d.Digest == "" {
		for _, z := range l.runs {
			if d, ok := z.Descriptor(); ok {
				l.d = d
				break
			}
		}
	}
	return l.d, l.d.Digest != ""
}

func (l *pushLayer) Digest() (v1.Hash, error) {
	d, ok := l.descriptor()
	if !ok {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return v1.NewHash(d.Digest.String())
}

func (l *pushLayer) Size() (int64, error) {
	d, ok := l.descriptor()
	if !ok {
		return 0, stream.ErrNotComputed
	}
	return d.Size, nil
}

func (l *pushLayer) MediaType() (types.MediaType, error) {
	if d, ok := l.descriptor(); ok {
		return types.MediaType(d.MediaType), nil
	}
	return types.MediaType(image.LayerMediaType(l.comp)), nil
}

func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	if d, ok := l.descriptor(); ok {
		f, err := l.s.OpenBlob(d.Digest)
		if err != nil {
			return nil, err
		}
		return &fileBody{f: f, l: l, total: d.Size}, nil
	}
	z, err := l.s.Compress(l.ctx, l.src, l.comp)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	first := len(l.runs) == 0
	l.runs = append(l.runs, z)
	l.mu.Unlock()
	if first {
		l.st.event(Event{Digest: l.src.Digest, Status: "Compressing (" + l.comp.String() + ")"})
	}
	return &streamBody{z: z, l: l}, nil
}

// progress reports n bytes of total sent (or, for a layer compressed as it
// is sent, read from the store), every 256 KiB and at the end.
func (l *pushLayer) progress(last *int64, n, total int64, end bool) {
	if n-*last >= 256<<10 || end {
		*last = n
		l.st.event(Event{Digest: l.src.Digest, Status: "Pushing", Current: n, Total: total})
	}
}

// fileBody is a stored blob as an upload's body.
type fileBody struct {
	f       *os.File
	l       *pushLayer
	n, last int64
	total   int64
}

func (b *fileBody) Read(p []byte) (int, error) {
	n, err := b.f.Read(p)
	b.n += int64(n)
	b.l.progress(&b.last, b.n, b.total, err == io.EOF)
	return n, err
}

func (b *fileBody) Close() error { return b.f.Close() }

// streamBody is a compression as an upload's body. Progress counts the
// layer's bytes read, as Docker's does.
type streamBody struct {
	z    *image.Compressing
	l    *pushLayer
	last int64
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.z.Read(p)
	b.l.progress(&b.last, b.z.In(), b.l.src.Size, err == io.EOF)
	return n, err
}

// WriteTo sends the compressor's blocks whole (net/http copies a body of
// unknown length through WriteTo when it has one).
func (b *streamBody) WriteTo(w io.Writer) (int64, error) {
	n, err := b.z.WriteTo(writerFunc(func(p []byte) (int, error) {
		k, err := w.Write(p)
		b.l.progress(&b.last, b.z.In(), b.l.src.Size, false)
		return k, err
	}))
	if err == nil {
		b.l.progress(&b.last, b.z.In(), b.l.src.Size, true)
	}
	return n, err
}

func (b *streamBody) Close() error { return b.z.Close() }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// observer watches the requests of a push to tell which layers the
// registry had already, which it mounted and which it took.
type observer struct {
	inner http.RoundTripper
	repo  string
	st    *pushState
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	p := req.URL.Path
	prefix := "/v2/" + o.repo + "/blobs/"
	if !strings.HasPrefix(p, prefix) {
		return resp, err
	}
	rest := strings.TrimPrefix(p, prefix)
	q := req.URL.Query()
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && o.st.pushedAs(rest):
		o.st.event(Event{Digest: digest.Digest(rest), Status: "Layer already exists"})
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && o.st.pushedAs(q.Get("mount")):
		o.st.event(Event{Digest: digest.Digest(q.Get("mount")), Status: "Mounted from " + q.Get("from")})
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated && o.st.pushedAs(q.Get("digest")):
		o.st.event(Event{Digest: digest.Digest(q.Get("digest")), Status: "Pushed"})
	}
	return resp, err
}

// checkPush asks the registry for the manifest of ref, with the
// credentials of the push: a refusal comes before any work.
func (c *Client) checkPush(ctx context.Context, ref name.Reference) error {
	host := ref.Context().RegistryStr()
	tr, err := c.session(ctx, ref, []string{ref.Context().Scope(transport.PushScope)}, nil)
	if err != nil {
		return err
	}
	r := ref.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, fmt.Sprintf("%s://%s/v2/%s/manifests/%s", r.Scheme(), host, r.RepositoryStr(), ref.Identifier()), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", strings.Join([]string{string(types.OCIManifestSchema1), string(types.DockerManifestSchema2), string(types.OCIImageIndex), string(types.DockerManifestList)}, ","))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return c.classify(host, c.authFor(ref), err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return c.classify(host, c.authFor(ref), transport.CheckError(resp, http.StatusOK))
	}
	return nil
}
