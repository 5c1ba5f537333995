package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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
	// Events name a layer by its digest in the store, whatever it is
	// converted to; every layer ends as pushed, mounted or already there.
	var mu sync.Mutex
	orig := map[digest.Digest]digest.Digest{}
	final := map[digest.Digest]bool{}
	event := func(e Event) {
		mu.Lock()
		if d, ok := orig[e.Digest]; ok {
			e.Digest = d
		}
		fin := e.Status == "Pushed" || e.Status == "Layer already exists" || strings.HasPrefix(e.Status, "Mounted from")
		if fin {
			final[e.Digest] = true
		}
		mu.Unlock()
		if o.Progress != nil {
			o.Progress(e)
		}
	}
	rref, err := c.remoteRef(n, reference.Domain(n), false)
	if err != nil {
		return Pushed{}, err
	}
	target := rref.Context()
	// Credentials first, so that a push that will be refused does not
	// convert layers for nothing.
	if err := c.checkPush(ctx, rref); err != nil {
		return Pushed{}, err
	}

	// The layers as the registry gets them: converted where need be, at
	// most Jobs at once.
	layers := make([]ocispec.Descriptor, len(m.Layers))
	for _, l := range m.Layers {
		event(Event{Digest: l.Digest, Status: "Preparing"})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, l := range m.Layers {
		g.Go(func() error {
			d, err := c.images.Compressed(gctx, l, o.Compression, func() {
				event(Event{Digest: l.Digest, Status: "Compressing (" + o.Compression.String() + ")"})
			})
			if err != nil {
				return err
			}
			layers[i] = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Pushed{}, err
	}
	for i := range layers {
		orig[layers[i].Digest] = m.Layers[i].Digest
	}
	raw, mt := stored, types.MediaType(img.Manifest.MediaType)
	if mt == "" {
		mt = types.OCIManifestSchema1 // go-containerregistry's name for OCI's image manifest
	}
	same := true
	for i := range layers {
		same = same && layers[i].Digest == m.Layers[i].Digest && layers[i].MediaType == m.Layers[i].MediaType
	}
	if !same {
		// A new manifest, in OCI's form, over the converted layers.
		nm := ocispec.Manifest{
			Versioned:   m.Versioned,
			MediaType:   ocispec.MediaTypeImageManifest,
			Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: m.Config.Digest, Size: m.Config.Size},
			Layers:      layers,
			Annotations: m.Annotations,
		}
		nm.SchemaVersion = 2
		if raw, err = json.Marshal(nm); err != nil {
			return Pushed{}, err
		}
		mt = types.OCIManifestSchema1
	}

	// Layers pulled from another repository of the same registry are mounted from it.
	scopes := []string{target.Scope(transport.PushScope)}
	mountFrom := map[digest.Digest]name.Repository{}
	for _, l := range layers {
		src := c.images.Source(l.Digest)
		host, repo, ok := strings.Cut(src, "/")
		if !ok || host != target.RegistryStr() || repo == target.RepositoryStr() {
			continue
		}
		r, err := name.NewRepository(src, name.StrictValidation)
		if err != nil {
			continue
		}
		mountFrom[l.Digest] = r
		scopes = append(scopes, r.Scope(transport.PullScope))
	}
	want := map[string]bool{}
	for _, l := range layers {
		want[l.Digest.String()] = true
	}
	obs := func(rt http.RoundTripper) http.RoundTripper {
		return &observer{inner: rt, repo: target.RepositoryStr(), want: want, event: event}
	}
	tr, err := c.session(ctx, rref, scopes, obs)
	if err != nil {
		return Pushed{}, err
	}
	core := &pushCore{raw: raw, mt: mt, cfg: cfg, layers: map[v1.Hash]*pushLayer{}}
	var vls []v1.Layer
	for _, l := range layers {
		h, err := v1.NewHash(l.Digest.String())
		if err != nil {
			return Pushed{}, err
		}
		pl := &pushLayer{s: c.images, d: l, event: event}
		core.layers[h] = pl
		vl, _ := partial.CompressedToLayer(pl)
		if src, ok := mountFrom[l.Digest]; ok {
			vl = &remote.MountableLayer{Layer: vl, Reference: src.Digest(l.Digest.String())}
		}
		vls = append(vls, vl)
	}
	pimg, err := partial.CompressedToImage(core)
	if err != nil {
		return Pushed{}, err
	}
	err = remote.Write(rref, &layered{Image: pimg, layers: vls},
		remote.WithContext(ctx), remote.WithTransport(tr), remote.WithJobs(jobs))
	if err != nil {
		return Pushed{}, c.classify(target.RegistryStr(), c.authFor(rref), err)
	}
	for _, l := range layers {
		// Where the next push to this registry can mount it from.
		c.images.SetSource(l.Digest, target.RegistryStr()+"/"+target.RepositoryStr())
	}
	for _, l := range m.Layers {
		// The registry had the manifest already, so nothing was asked about it.
		mu.Lock()
		done := final[l.Digest]
		mu.Unlock()
		if !done {
			event(Event{Digest: l.Digest, Status: "Layer already exists"})
		}
	}
	return Pushed{Name: n.String(), Digest: digest.FromBytes(raw), Size: int64(len(raw))}, nil
}

// pushCore is the image pushed, as go-containerregistry's partial package
// wants it.
type pushCore struct {
	raw, cfg []byte
	mt       types.MediaType
	layers   map[v1.Hash]*pushLayer
}

func (p *pushCore) RawConfigFile() ([]byte, error)      { return p.cfg, nil }
func (p *pushCore) MediaType() (types.MediaType, error) { return p.mt, nil }
func (p *pushCore) RawManifest() ([]byte, error)        { return p.raw, nil }
func (p *pushCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := p.layers[h]; ok {
		return l, nil
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

// pushLayer is a layer blob of the store, read as it is uploaded.
type pushLayer struct {
	s     *image.Store
	d     ocispec.Descriptor
	event func(Event)
}

func (l *pushLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.d.Digest.String()) }
func (l *pushLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *pushLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.d.MediaType), nil }
func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.s.OpenBlob(l.d.Digest)
	if err != nil {
		return nil, err
	}
	return &counting{ReadCloser: f, l: l}, nil
}

// counting reports the bytes of a layer read for its upload.
type counting struct {
	io.ReadCloser
	l    *pushLayer
	n    int64
	last int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 256<<10 || err == io.EOF {
		c.last = c.n
		c.l.event(Event{Digest: c.l.d.Digest, Status: "Pushing", Current: c.n, Total: c.l.d.Size})
	}
	return n, err
}

// observer watches the requests of a push to tell which layers the
// registry had already, which it mounted and which it took.
type observer struct {
	inner http.RoundTripper
	repo  string
	want  map[string]bool
	event func(Event)
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
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && o.want[rest]:
		o.event(Event{Digest: digest.Digest(rest), Status: "Layer already exists"})
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && o.want[q.Get("mount")]:
		o.event(Event{Digest: digest.Digest(q.Get("mount")), Status: "Mounted from " + q.Get("from")})
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated && o.want[q.Get("digest")]:
		o.event(Event{Digest: digest.Digest(q.Get("digest")), Status: "Pushed"})
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
