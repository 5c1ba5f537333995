// Package rootless lets an unprivileged user run cairn: it finds the user's
// store and runtime directories, reads the user's subordinate ID ranges, and
// puts every cairn process of that user into one user namespace (with a
// mount namespace of its own) held by a pause process, as Podman does, so
// that what one command mounts and starts the next one sees.
//
// The user's first cairn command starts the pause process in a new user and
// mount namespace, maps the namespace's IDs with the setuid newuidmap and
// newgidmap (0 is the user, 1… the subordinate range), and re-executes
// itself with _CAIRN_JOIN set; a C constructor (join.go) then joins both
// namespaces before the Go runtime starts threads, which setns(2) needs.
// Every later command finds the pause process by its pid file and does the
// same. Inside, cairn is root of the namespace: it mounts overlayfs with
// userxattr, makes network namespaces, and runs containers in that same
// user namespace, as rootless Docker does.
//
// The pause process is cairn itself, stopped in the constructor before Go
// starts: it does nothing but hold the namespaces, in a session of its own.
package rootless
