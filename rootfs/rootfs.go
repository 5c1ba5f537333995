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
