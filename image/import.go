package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cairn-runtime/cairn/rootfs"
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
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (Image, error) {
	if opts.Name != "" {
		if _, err := ParseName(opts.Name); err != nil {
			return Image{}, err
		}
	}
	dec, _, err := rootfs.Decompress(r)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer dec.Close()
	now := time.Now().UTC()
	msg := opts.Message
	if msg == "" {
		msg = "Imported from " + opts.Source
	}
	return s.Derive(ctx, nil, dec, DeriveOptions{
		Name: opts.Name,
		What: "import of " + opts.Source,
		Configure: func(c *Config) error {
			c.Created = &now
			c.History = []ocispec.History{{Created: &now, Comment: msg}}
			if opts.Change != nil {
				return opts.Change(c)
			}
			return nil
		},
	})
}
