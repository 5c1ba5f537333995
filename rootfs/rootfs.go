// Package rootfs reads and unpacks layer tar streams, and writes directory
// trees as tar streams: a container's export, a commit's layer (see TarWriter).
//
// A layer is a tar stream, possibly compressed, in the OCI image-layer format:
// regular files, directories, links and devices, plus whiteout entries that
// delete paths of the layers below. The package knows nothing of images or
// containers; it turns one stream into one directory.
//
// Importing a layer takes two calls:
//
//	rc, _, err := rootfs.Decompress(blob) // gzip, zstd or plain, detected from the bytes
//	if err != nil { ... }
//	defer rc.Close()
//	size, err := rootfs.Apply(ctx, tmpdir, rc) // tmpdir: fresh, empty, owned by the caller
//	if err != nil { os.RemoveAll(tmpdir); ... }
//
// The directory Apply fills is meant to be one overlayfs lowerdir: parent
// layers are not present in it, and OCI whiteouts become overlay whiteouts
// (character devices 0/0 and the trusted.overlay.opaque attribute).
//
// Layers come from outside and may be hostile. Apply never creates, changes
// or removes anything outside its directory, whatever names, links or
// whiteouts the stream holds; see [Apply] for the rules.
package rootfs

import "errors"

// Errors returned by this package, wrapped with the offending entry's name.
// Test for them with [errors.Is].
var (
	// ErrUnsafe reports an entry that tries to reach outside the layer
	// directory or to replace it, or a whiteout that cannot be expressed.
	ErrUnsafe = errors.New("rootfs: unsafe entry")

	// ErrInvalid reports a corrupt, truncated or inconsistent layer: a bad
	// tar header, data shorter than announced, a corrupt compressed stream,
	// a duplicate entry, a hard link to a missing target.
	ErrInvalid = errors.New("rootfs: invalid layer")
)
