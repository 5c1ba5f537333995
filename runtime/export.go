package runtime

import (
	"context"
	"errors"
	"io"

	"github.com/cairn-runtime/cairn/rootfs"
)

// Export writes the filesystem container ref sees — its image, its init
// layer and its changes, without the volumes and files mounted into it — as
// one tar stream, as `docker export` does. A running container is read as it
// is, live; a stopped one through a read-only overlay of its layers.
func (s *Store) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.Live() {
		err := rootfs.WriteTree(ctx, w, s.RootFS(c.ID), rootfs.TarOptions{})
		if errors.Is(err, rootfs.ErrChanged) {
			// A running container changes its files: the tar holds them as they
			// were read, whole, which is what docker export gives too.
			return nil
		}
		return err
	}
	// The owner lock keeps it from starting meanwhile: its upper directory
	// is a lower one here.
	owner, err := s.waitOwner(ctx, c.ID)
	if err != nil {
		return err
	}
	defer owner.Unlock()
	return s.view(ctx, c, []string{s.Upper(c.ID), s.initLayer}, func(root string) error {
		return rootfs.WriteTree(ctx, w, root, rootfs.TarOptions{})
	})
}

// view mounts c's image with the directories top over it, read-only, calls
// fn with it, and unmounts; a lease keeps a prune from taking the view for
// a killed process's meanwhile.
func (s *Store) view(ctx context.Context, c *Container, top []string, fn func(root string) error) error {
	release, err := s.images.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.snaps.ViewOf(ctx, c.Chain, top, fn)
}
