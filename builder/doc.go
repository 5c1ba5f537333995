// Package builder builds images from Dockerfiles, as Docker's classic builder
// does: one step per instruction, each step an image over the last.
//
// Every step goes through the same paths a user has. RUN starts a container
// of the image so far (runtime) and commits it (commit); COPY, ADD and
// WORKDIR change the files of a scratch overlay over the image so far and
// commit its upper directory the same way; the other instructions change
// the config alone and add an empty_layer history entry (image.Derive with
// no layer). A built image and a committed one are made the same way.
//
// Each step has a key: the image it stands on, the instruction as its
// history says it (build arguments included) and, for COPY and ADD, the
// contents of what it copies. The image a step made is kept in the store's
// build cache under its key (image.Store.CacheGet), so that a later build —
// in any process — that would make the same step reuses it, until a step
// differs; from there on every step runs again.
//
// The builder reads nothing of the calling process's environment: the
// front end resolves the build arguments (ParseBuildArgs) and gives them in
// Options.BuildArgs.
package builder
