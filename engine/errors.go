package engine

import "errors"

// Errors of the engine; callers test them with errors.Is. The stores'
// own sentinels (image.ErrNotFound, runtime.ErrNotFound, runtime.ErrConflict,
// registry.ErrUnauthorized, ...) come through wrapped, as they are.
var (
	// ErrStore: the store under a root cannot be opened.
	ErrStore = errors.New("open store")
	// ErrConfig: the registry configuration cannot be read.
	ErrConfig = errors.New("registry configuration")
	// ErrInvalid: an argument that does not parse (a pull policy, a name).
	ErrInvalid = errors.New("invalid argument")
	// ErrNoSuchObject: inspect found neither a container nor an image.
	ErrNoSuchObject = errors.New("No such object") // Docker's words
)
