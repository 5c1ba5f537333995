// Package image is cairn's image store: an OCI image layout on disk that other
// OCI tools (umoci, skopeo) read as it is.
//
// The layout lives in <root>/images: content-addressed blobs under
// blobs/sha256/, and index.json, whose manifest descriptors name the images
// through the org.opencontainers.image.ref.name annotation, holding the full
// normalized reference ("docker.io/library/busybox:latest"). An image that has
// lost every name (Docker's dangling "<none>" image) keeps one descriptor with no
// annotation. An image's ID is the digest of its config, as in Docker.
//
// Several cairn processes use one store at once, with no daemon:
//   - A blob is written to a temporary file, its digest verified, then renamed into
//     place: a blob under its name is always whole.
//   - index.json is rewritten atomically under an exclusive flock (locks/index.lock).
//   - Every operation that adds blobs or references holds a shared "lease"
//     (locks/gc.lock); Prune, which deletes what nothing references, holds it
//     exclusively, so it never removes the blobs of a load still in progress, and
//     everything it finds in the temporary directory is left over from a killed process.
//
// Layers are made usable by an Unpacker (the snapshot store), called while their
// bytes stream in, so that a layer is read once.
//
// An image's bytes enter the store by one path, ingest (ingest.go), whoever
// brings them: Load (an archive's entries), Derive (the new layer of a commit,
// a build step or an import) and Fetch (a pulled layer). It writes a stream
// into a temporary blob while hashing it, unpacks a layer into a pending
// snapshot from that same file as it grows, checks what came against what the
// image says, and keeps blobs, then snapshots, then names: an image is
// visible last.
package image
