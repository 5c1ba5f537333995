// Package rootfs unpacks layer tar streams into directories, and writes
// directory trees as tar streams: a container's export, a commit's layer.
// It knows nothing of images or containers: it turns one stream into one
// directory, and one directory into one stream.
//
// # Layer streams
//
// A layer is a tar stream in the OCI image-layer format: one entry per file
// (regular files, directories, symlinks, hard links, devices and fifos,
// each with its owner, mode, times and xattrs), plus whiteout entries that
// delete paths of the layers below. An image's filesystem is its layers
// applied in order, bottom first.
//
// # Compression
//
// A layer stream is plain, gzip or zstd. [DetectCompression] tells which
// from its first four bytes, never from a media type or a file name, and
// [Decompress] returns the plain stream. Errors of the compressed data (bad
// checksum, truncation, corrupt blocks) wrap [ErrInvalid].
//
// # Applying a layer
//
// Importing a layer takes two calls:
//
//	rc, _, err := rootfs.Decompress(blob) // gzip, zstd or plain, detected from the bytes
//	if err != nil { ... }
//	defer rc.Close()
//	size, err := rootfs.Apply(ctx, tmpdir, rc) // tmpdir: fresh, empty, owned by the caller
//	if err != nil { os.RemoveAll(tmpdir); ... }
//
// The directory Apply fills is meant to be one overlayfs lowerdir: the
// layers below are not present in it.
//
// Layers come from outside and may be hostile. Apply never creates, changes
// or removes anything outside its directory, whatever names, links or
// whiteouts the stream holds. Names are cleaned within the directory, and
// one that climbs above it is [ErrUnsafe]. A symlink among the parents of a
// name resolves inside the directory, as under chroot. The last component
// of a name is never followed. A corrupt or truncated stream is
// [ErrInvalid]. See [Apply] for the rules.
//
// # Whiteouts
//
// A layer deletes a path of the layers below with a whiteout, and there
// are two kinds. In a tar stream, OCI whiteouts are empty regular files:
// "dir/.wh.name" deletes dir/name, and "dir/.wh..wh..opq" makes dir
// opaque: it keeps dir but hides what the layers below hold in it. On
// disk, overlayfs has its own: a character device 0/0 where the deleted
// file was, and the xattr trusted.overlay.opaque=y on an opaque directory.
//
// Apply turns OCI whiteouts into overlay ones, so that its directory can
// be a lowerdir as it is; other ".wh..wh." names are Docker's markers, and
// skipped. In one layer, a whiteout and a real entry of one name leave the
// real entry. The tar writer goes the other way: with
// [TarOptions.Overlay], the whiteouts of an overlay upper directory
// become OCI whiteouts.
//
// # Writing trees
//
// A [TarWriter] writes the files of a directory tree as tar entries, and
// never follows a symlink nor opens a device while reading them.
// [WriteTree] writes a whole tree in a fixed order, so that the same tree
// gives the same bytes: an export. A commit adds the entries of its
// changes one at a time, and their whiteouts ([TarOptions.Layer]). Files
// with holes become PAX sparse entries.
//
// Overlayfs's own xattrs (trusted.overlay.*, user.overlay.*) never travel
// in a tar entry: the tar writer leaves them out and Apply never sets
// them. The tar writer leaves out the host's SELinux label too.
package rootfs
