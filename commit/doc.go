// Package commit turns a container's writable layer into a new image, as
// `docker commit` does.
//
// A container's changes are its overlay upper directory, and nothing else:
// commit reads that directory alone — never the image below it — and
// writes it once as an OCI layer tar (a deleted file is its whiteout, a
// directory made anew its opaque whiteout; see rootfs.TarOptions.Overlay).
// That one stream is hashed (the digest of the uncompressed tar is both the
// layer's diff ID and its blob's digest: layers are kept uncompressed, and
// compressed when pushed), stored as the layer's blob and unpacked into the
// new layer's snapshot (image.Store.Derive), as it goes.
//
//	thaw, err := freeze()                          // a running container is frozen while it is read
//	res, err := commit.Commit(ctx, images, commit.Source{Upper: upper, Image: img, Config: cfg}, opts)
//
// The new image's config is the container's own (Docker's rule: its
// environment, command and so on, as `run` set them), with the --change
// instructions applied over it, and the image's history with one entry more:
// the container's command, the author and the message. A container with no
// change gives an image with no new layer, its history entry marked
// empty_layer.
//
// Commit does not know containers: the caller (the CLI, the builder) finds
// the container, freezes it and passes what commit reads.
package commit
