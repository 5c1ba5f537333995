package engine

import (
	"context"

	"github.com/cairn-runtime/cairn/builder"
	"github.com/cairn-runtime/cairn/image"
)

// BuildOptions are those of `docker build`: the builder's, and how FROM
// images the store lacks are pulled.
type BuildOptions struct {
	builder.Options
	PullOptions PullOptions
}

// Build builds the image o describes (see builder.Builder). FROM images the
// store lacks are pulled, every one with o.Pull; progress goes to o.Out.
func (e *Engine) Build(ctx context.Context, o BuildOptions) (image.Image, error) {
	po := o.PullOptions
	po.InLease = true // the build holds a lease of the store
	b := &builder.Builder{
		Images: e.Images, Containers: e.Containers, Snapshots: e.Snapshots, Tmp: e.Tmp(),
		Pull: func(ctx context.Context, ref string) error {
			_, err := e.Pull(ctx, ref, po)
			return err
		},
	}
	return b.Build(ctx, o.Options)
}
