// Package snapshot keeps unpacked image layers as overlay lower directories.
//
// A snapshot is one layer's files, unpacked once into its own directory and named
// by the layer's chain ID (the OCI digest that identifies a layer together with
// every layer below it). Snapshots are immutable and shared: every image, and every
// container, whose layer chain passes through a chain ID uses the same directory.
//
// Importing a layer:
//
//	key, err := s.Unpack(ctx, tarStream)        // into a private temporary directory
//	err = s.Commit(key, chainID, parent, diffID) // renamed into place, or dropped if it exists
//
// A snapshot becomes visible only by the rename in Commit, so a process killed
// half-way leaves nothing that later commands would trust: its temporary directory
// is swept by the next Prune.
//
// Using an image's layers: Lowers(chainID) lists the snapshots a mount stacks, from
// the top layer down to the topmost whose root is opaque (a root ".wh..wh..opq"
// hides every layer below, as OCI says), and Overlay describes the overlay mount
// over them; Mount.Mount
// performs it, keeping the mount options under the kernel's one-page limit by
// naming each lower directory through a short link relative to the store.
//
// On disk, under the store root:
//
//	<chain-hex>/fs/        the layer's files, with overlay whiteouts
//	<chain-hex>/meta.json  Info
//	l/<short>              symlink to ../<chain-hex>/fs, used in mount options
package snapshot
