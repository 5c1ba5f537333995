package fsck

import "context"

// A Problem is one thing a check found wrong.
type Problem struct {
	// Path is the file or directory the problem is in (absolute), or the
	// thing itself where it is not a file (a firewall line, a mount point).
	Path string
	// What says what is wrong, in a user's words.
	What string
	// Harmless marks what the store is sound with: garbage a prune
	// removes (a blob no image names, a snapshot nothing stands on), or a
	// container that runs on after its owner was killed.
	Harmless bool
	// Sweep says that garbage collection (image prune's sweep of blobs,
	// snapshots, tmp/ and the network) mends it; Repair is then nil.
	Sweep bool
	// Repair mends the problem itself. With neither Sweep nor Repair it
	// cannot be mended by cairn, and Fix says what the user can do.
	Repair func(ctx context.Context) error
	// Fix says what --repair does, or, when nothing can, what to do.
	Fix string
}

// Repairable reports whether --repair can mend p.
func (p Problem) Repairable() bool { return p.Sweep || p.Repair != nil }
