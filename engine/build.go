package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/builder"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
)

// BuildOptions are those of `docker build`: the builder's, and how FROM
// images the store lacks are pulled.
type BuildOptions struct {
	builder.Options
	PullOptions PullOptions
}

// The builder's errors and the failure of a RUN step (see builder), for
// the front ends that tell them apart.
var (
	ErrDockerfile   = builder.ErrDockerfile
	ErrBuildContext = builder.ErrContext
)

// RunError is a RUN step that exited non-zero (builder.RunError).
type RunError = builder.RunError

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

// BuildArchive is Build of a context sent as a tar stream (plain, gzip or
// zstd), as the Engine API gets one. The stream, at most limit bytes once
// uncompressed (limit 0: no bound), is unpacked by rootfs.Apply (nothing lands outside the
// directory) into a directory of tmp/ that goes when the build ends; a
// lease of the store, held meanwhile, keeps a prune from sweeping it.
// o.Dockerfile is a path inside the context ("Dockerfile" if empty),
// resolved within it: a symlink that climbs out of it is refused.
func (e *Engine) BuildArchive(ctx context.Context, r io.Reader, limit int64, o BuildOptions) (image.Image, error) {
	release, err := e.Images.Lease(ctx)
	if err != nil {
		return image.Image{}, err
	}
	defer release()
	dir, err := os.MkdirTemp(e.Tmp(), "build-context-")
	if err != nil {
		return image.Image{}, err
	}
	defer os.RemoveAll(dir)
	ctxDir := filepath.Join(dir, "context")
	if err := os.Mkdir(ctxDir, 0o700); err != nil {
		return image.Image{}, err
	}
	dec, _, err := rootfs.Decompress(r)
	if err != nil {
		return image.Image{}, fmt.Errorf("%w: %w", ErrBuildContext, err)
	}
	defer dec.Close()
	var tr io.Reader = dec
	if limit > 0 {
		tr = &boundedReader{r: dec, left: limit}
	}
	if _, err := rootfs.Apply(ctx, ctxDir, tr); err != nil {
		if ctx.Err() != nil {
			return image.Image{}, ctx.Err()
		}
		return image.Image{}, fmt.Errorf("%w: %w", ErrBuildContext, err)
	}
	name := o.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	// The Dockerfile is read within the context, then kept beside it: the
	// builder reads it by path.
	df, err := readInRoot(ctxDir, name)
	if err != nil {
		return image.Image{}, fmt.Errorf("%w: Cannot locate specified Dockerfile: %s", ErrDockerfile, name)
	}
	dfPath := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(dfPath, df, 0o600); err != nil {
		return image.Image{}, err
	}
	o.Context, o.Dockerfile = ctxDir, dfPath
	return e.Build(ctx, o)
}

// maxDockerfile bounds the Dockerfile read into memory.
const maxDockerfile = 16 << 20

func readInRoot(root, name string) ([]byte, error) {
	f, err := os.OpenInRoot(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, maxDockerfile))
}

// boundedReader fails once more than left bytes were read.
type boundedReader struct {
	r    io.Reader
	left int64
}

var errContextTooLarge = errors.New("the build context is larger than the service takes")

func (b *boundedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte past the bound tells a stream too long from one that ends there
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errContextTooLarge
	}
	return n, err
}
