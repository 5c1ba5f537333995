package builder

import (
	"context"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/go-digest"
)

// scratch mounts a writable overlay over parent's layers (nothing, for
// nil) in the store's temporary directory, runs change on its root,
// unmounts it, and returns its upper directory — the change, as the kernel
// wrote it — and the function that removes it all. The caller holds a
// lease, which keeps the directory from garbage collection.
func (b *Builder) scratch(ctx context.Context, parent *image.Image, change func(root string) error) (upper string, cleanup func(), err error) {
	dir, err := os.MkdirTemp(b.Tmp, "build-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	upper, work, root, empty := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root"), filepath.Join(dir, "empty")
	for _, d := range []string{upper, work, root, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	layers := snapshot.Layers{Upper: upper, Work: work}
	var chain digest.Digest
	if parent != nil {
		chains, err := b.Images.EnsureSnapshots(ctx, *parent)
		if err != nil {
			return "", nil, err
		}
		if len(chains) > 0 {
			chain = chains[len(chains)-1]
		}
	}
	if chain == "" {
		layers.Top = []string{empty} // overlay needs one lower directory
	}
	m, err := b.Snapshots.Overlay(chain, layers)
	if err != nil {
		return "", nil, err
	}
	if err := m.Mount(root); err != nil {
		return "", nil, err
	}
	cerr := change(root)
	if err := snapshot.Unmount(root); err != nil {
		return "", nil, err
	}
	if cerr != nil {
		return "", nil, cerr
	}
	return upper, cleanup, nil
}
