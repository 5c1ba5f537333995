package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions are the options of a pull.
type PullOptions struct {
	// Platform is os/arch[/variant]; empty: the machine's.
	Platform string
	// Progress, if not nil, is told what happens to each layer, from
	// several goroutines.
	Progress func(Event)
}

// Pulled is the result of a pull.
type Pulled struct {
	Image    image.Image
	Name     string        // the full name it has in the store
	Digest   digest.Digest // of the manifest pulled (of the index, when it was one)
	UpToDate bool          // the name already named this image
	Mirror   string        // the mirror it came from, if one
}

// maxConfig bounds the size of an image config or manifest read into memory.
const maxConfig = 32 << 20

// Platform parses os/arch[/variant]; empty is the machine's platform.
func Platform(s string) (v1.Platform, error) {
	if s == "" {
		p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
		if runtime.GOARCH == "arm" {
			p.Variant = "v7"
		}
		return p, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("%w platform %q: want os/arch[/variant]", ErrInvalid, s)
	}
	return *p, nil
}

// Pull fetches ref (a name as Docker takes it) into the store.
func (c *Client) Pull(ctx context.Context, ref string, o PullOptions) (Pulled, error) {
	n, err := parse(ref)
	if err != nil {
		return Pulled{}, err
	}
	plat, err := Platform(o.Platform)
	if err != nil {
		return Pulled{}, err
	}
	eps, err := c.endpoints(n)
	if err != nil {
		return Pulled{}, err
	}
	var mirrorErrs []string
	for _, ep := range eps {
		p, err := c.pullFrom(ctx, ep.ref, n, plat, o)
		if err == nil {
			p.Mirror = ep.mirror
			return p, nil
		}
		if ep.mirror == "" || ctx.Err() != nil {
			if len(mirrorErrs) > 0 {
				err = fmt.Errorf("%w (and from the mirrors: %s)", err, strings.Join(mirrorErrs, "; "))
			}
			return Pulled{}, err
		}
		// As Docker: a mirror that fails is passed over.
		mirrorErrs = append(mirrorErrs, fmt.Sprintf("%s: %v", ep.mirror, err))
	}
	panic("unreachable")
}

func (c *Client) pullFrom(ctx context.Context, ref name.Reference, n reference.Named, plat v1.Platform, o PullOptions) (Pulled, error) {
	host := ref.Context().RegistryStr()
	tr, err := c.session(ctx, ref, []string{ref.Context().Scope(transport.PullScope)}, nil)
	if err != nil {
		return Pulled{}, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithPlatform(plat)}
	// The manifest: go-containerregistry checks that its bytes have the
	// digest asked for, when a digest is asked for.
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		err = c.classify(host, c.authFor(ref), err)
		if errors.Is(err, ErrNotFound) {
			return Pulled{}, fmt.Errorf("manifest for %s not found: %w", n.String(), err)
		}
		return Pulled{}, err
	}
	top, err := digestOf(desc.Digest.String())
	if err != nil {
		return Pulled{}, err
	}
	if d, ok := n.(reference.Digested); ok && d.Digest() != top {
		return Pulled{}, fmt.Errorf("%w: manifest of %s has digest %s", image.ErrInvalid, n, top)
	}
	raw := desc.Manifest
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := pickPlatform(raw, plat, n)
		if err != nil {
			return Pulled{}, err
		}
		cref := ref.Context().Digest(child.String())
		cd, err := remote.Get(cref, opts...)
		if err != nil {
			return Pulled{}, c.classify(host, c.authFor(ref), err)
		}
		if !cd.MediaType.IsImage() {
			return Pulled{}, fmt.Errorf("%w: %s: the index's entry for %s is a %s", ErrUnsupported, n, plat, cd.MediaType)
		}
		raw = cd.Manifest
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return Pulled{}, fmt.Errorf("%w: %s: Docker image manifests of schema 1 (deprecated since 2017); push it again with a recent Docker", ErrUnsupported, n)
	default:
		if !desc.MediaType.IsImage() {
			return Pulled{}, fmt.Errorf("%w: %s is not an image (media type %q)", ErrUnsupported, n, desc.MediaType)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return Pulled{}, fmt.Errorf("%w: manifest of %s: %w", image.ErrInvalid, n, err)
	}
	if m.Config.Size > maxConfig {
		return Pulled{}, fmt.Errorf("%w: %s: config of %d bytes", image.ErrInvalid, n, m.Config.Size)
	}
	blobs := &blobs{client: &http.Client{Transport: tr}, ref: ref}
	var cfg []byte
	if c.images.HasBlob(m.Config.Digest) {
		cfg, err = c.images.ReadBlob(m.Config.Digest)
	} else {
		cfg, err = blobs.read(ctx, m.Config)
	}
	if err != nil {
		return Pulled{}, c.classify(host, c.authFor(ref), err)
	}
	if o.Platform != "" {
		var p struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		}
		json.Unmarshal(cfg, &p)
		have := v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		if !have.Satisfies(plat) {
			return Pulled{}, fmt.Errorf("%w: image %s is for %s, not %s", ErrUnsupported, n, have, plat)
		}
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || strings.Contains(l.MediaType, "foreign") || strings.Contains(l.MediaType, "nondistributable") {
			return Pulled{}, fmt.Errorf("%w: %s: layer %s is not distributable (%s)", ErrUnsupported, n, l.Digest, l.MediaType)
		}
	}
	localName := n.String()
	var before digest.Digest
	if img, err := c.images.Lookup(localName); err == nil {
		before = img.Manifest.Digest
	}
	img, err := c.images.Fetch(ctx, image.Remote{
		Manifest: raw, Config: cfg, Open: blobs.open, Name: localName, Jobs: jobs, Progress: o.Progress,
	})
	if err != nil {
		return Pulled{}, c.classify(host, c.authFor(ref), err)
	}
	// Where the layers came from, for a push that can mount them.
	src := ref.Context().RegistryStr() + "/" + ref.Context().RepositoryStr()
	for _, l := range m.Layers {
		c.images.SetSource(l.Digest, src) // best effort: a mount is an optimisation
	}
	return Pulled{Image: img, Name: localName, Digest: top, UpToDate: before == img.Manifest.Digest}, nil
}

// pickPlatform chooses the entry of an index for plat, as Docker does:
// the first that satisfies it.
func pickPlatform(raw []byte, plat v1.Platform, n reference.Named) (v1.Hash, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return v1.Hash{}, fmt.Errorf("%w: index of %s: %w", image.ErrInvalid, n, err)
	}
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.Satisfies(plat) && m.MediaType.IsImage() {
			return m.Digest, nil
		}
		have = append(have, m.Platform.String())
	}
	return v1.Hash{}, fmt.Errorf("%w: no matching manifest for %s in the manifest list entries of %s (it has: %s)", ErrUnsupported, plat, n, strings.Join(have, ", "))
}

// blobs fetches the blobs of one repository.
type blobs struct {
	client *http.Client
	ref    name.Reference
}

func (b *blobs) url(d digest.Digest) string {
	r := b.ref.Context()
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.Scheme(), r.RegistryStr(), r.RepositoryStr(), d)
}

// read reads a small blob whole, and checks it.
func (b *blobs) read(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	rc, err := b.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, d.Size))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(data) != d.Digest {
		return nil, fmt.Errorf("%w: blob %s: its bytes have another digest", image.ErrInvalid, d.Digest)
	}
	return data, nil
}

// open starts the download of a blob. The reader resumes where it was (an
// HTTP range request) when the connection drops; it does not check the
// digest, which its consumer does.
func (b *blobs) open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	r := &blobReader{ctx: ctx, b: b, d: d}
	if err := r.connect(); err != nil {
		return nil, err
	}
	return r, nil
}

// blobReader reads a blob, reconnecting when the connection is lost.
type blobReader struct {
	ctx   context.Context
	b     *blobs
	d     ocispec.Descriptor
	body  io.ReadCloser
	off   int64
	tries int
}

const maxResumes = 5

func (r *blobReader) connect() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.b.url(r.d.Digest), nil)
	if err != nil {
		return err
	}
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
	}
	resp, err := r.b.client.Do(req)
	if err != nil {
		return err
	}
	switch {
	case r.off > 0 && resp.StatusCode == http.StatusPartialContent:
	case resp.StatusCode == http.StatusOK:
		if r.off > 0 { // the server ignored the range: skip what we have
			if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
				resp.Body.Close()
				return err
			}
		}
	default:
		err := transport.CheckError(resp, http.StatusOK)
		resp.Body.Close()
		return fmt.Errorf("blob %s: %w", r.d.Digest, err)
	}
	r.body = resp.Body
	return nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.connect(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if err == io.EOF && r.off < r.d.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		// The connection failed.
		if r.ctx.Err() != nil || r.tries >= maxResumes {
			return n, err
		}
		r.drop()
		if n > 0 {
			return n, nil // reconnect at the next Read
		}
		select {
		case <-time.After(time.Duration(r.tries) * 500 * time.Millisecond):
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *blobReader) drop() {
	r.body.Close()
	r.body = nil
	r.tries++
}

func (r *blobReader) Close() error {
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}
