package image

import (
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Load reads a docker-archive (as `docker save` writes it, in its legacy or its
// OCI form) or an oci-archive from r, in one pass: each layer is stored and
// unpacked as it streams by. Nothing becomes visible before the whole archive
// has been read and every digest verified; on any error the store is as it was.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) {
	release, err := s.Lease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	l := newLoader(s, ctx)
	defer l.cleanup()
	err = l.read(r)
	if werr := l.wait(); werr != nil {
		return nil, werr // a layer's own error says more than the archive's
	}
	if err != nil {
		return nil, err
	}
	var plans []*plan
	switch {
	case l.has("manifest.json"):
		plans, err = l.dockerPlans()
	case l.has(ocispec.ImageIndexFile):
		plans, err = l.ociPlans()
	default:
		return nil, fmt.Errorf("%w: archive has neither manifest.json (docker-archive) nor index.json (oci-archive)", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%w: archive holds no image", ErrInvalid)
	}
	return l.commit(plans)
}
