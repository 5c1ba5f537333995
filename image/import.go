package image

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions are the options of Import.
type ImportOptions struct {
	Name    string              // the name to give the image; none leaves it untagged
	Source  string              // where the tarball came from, for the history ("-" for stdin)
	Message string              // the history comment; "Imported from SOURCE" by default
	Change  func(*Config) error // changes to the new image's config (`--change`), if any
}

// Import makes a one-layer image of a rootfs tarball (plain, gzip or zstd), as
// `docker import` does. The layer is stored uncompressed: its digest is its diff ID.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (Loaded, error) {
	var name string
	if opts.Name != "" {
		n, err := ParseName(opts.Name)
		if err != nil {
			return Loaded{}, err
		}
		name = n.String()
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Loaded{}, err
	}
	defer release()

	dec, _, err := rootfs.Decompress(r)
	if err != nil {
		return Loaded{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	defer dec.Close()
	l := newLoader(s, ctx)
	defer l.cleanup()
	ing, err := l.ingest(opts.Source, dec, true)
	if werr := l.wait(); werr != nil {
		return Loaded{}, werr
	}
	if err != nil {
		return Loaded{}, err
	}
	if ing.diffID == "" { // no unpacker: the blob is the uncompressed tar
		ing.diffID = ing.digest
	}

	now := time.Now().UTC()
	msg := opts.Message
	if msg == "" {
		msg = "Imported from " + opts.Source
	}
	c := Config{}
	c.Created = &now
	c.Architecture = runtime.GOARCH
	c.OS = "linux"
	c.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ing.diffID}}
	c.History = []ocispec.History{{Created: &now, Comment: msg}}
	if opts.Change != nil {
		if err := opts.Change(&c); err != nil {
			return Loaded{}, err
		}
	}
	cb, err := marshalConfig(c)
	if err != nil {
		return Loaded{}, err
	}
	p := &plan{config: cb, layers: []layerSource{{ing: ing, digest: ing.digest}}, what: "import"}
	if name != "" {
		p.names = []string{name}
	}
	if err := l.verify(p); err != nil {
		return Loaded{}, err
	}
	out, err := l.commit([]*plan{p})
	if err != nil {
		return Loaded{}, err
	}
	return out[0], nil
}
