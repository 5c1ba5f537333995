package image

import (
	"context"
	_ "crypto/sha256" // the digests of every blob
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Errors of the image store; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("No such image") // Docker's words, which scripts match
	ErrInvalid  = errors.New("invalid image")
	ErrConflict = errors.New("conflict")
)

// Unpacker makes a layer usable once its bytes are in: the snapshot store.
// Unpack reads an uncompressed layer tar to its end into a pending, invisible
// snapshot; Commit makes it the snapshot chainID, Discard drops it.
type Unpacker interface {
	Exists(chainID digest.Digest) bool
	Unpack(ctx context.Context, r io.Reader) (key string, err error)
	Commit(key string, chainID, parent, diffID digest.Digest) error
	Discard(key string) error
}

// Store is an image store.
type Store struct {
	dir   string // the OCI layout
	cache string // the build cache, beside it (see cache.go)
	// conversions and sources: compressed forms of layers, and where
	// layers were pulled from (see convert.go)
	conversions, sources string
	tmp                  string // temporary files, on the same filesystem
	locks                string
	unpacker             Unpacker
	facts                *facts // what lists learnt (see facts.go)
}

// Open opens the image store under root (creating it if needed); tmp and locks
// are directories on the same filesystem shared with the other stores. u may be
// nil, in which case layers are stored but not unpacked.
func Open(root, tmp, locks string, u Unpacker) (*Store, error) {
	s := &Store{
		dir: root, cache: filepath.Join(filepath.Dir(root), "build-cache"),
		conversions: filepath.Join(filepath.Dir(root), "conversions"), sources: filepath.Join(filepath.Dir(root), "sources"),
		tmp: tmp, locks: locks, unpacker: u, facts: newFacts(""),
	}
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), tmp, locks} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(root, ocispec.ImageLayoutFile)); errors.Is(err, os.ErrNotExist) {
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := atomicfile.WriteFile(filepath.Join(root, ocispec.ImageLayoutFile), b, 0o644); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(root, ocispec.ImageIndexFile)); errors.Is(err, os.ErrNotExist) && !s.hasBlobs() {
		// A new store. One with blobs but no index lost it: an empty one
		// would make every image garbage; readIndex says what to do.
		if err := s.writeIndex(ocispec.Index{}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir is the OCI layout's directory.
func (s *Store) Dir() string { return s.dir }

// Lease holds the store's shared lock until release is called: blobs written
// and references added meanwhile are safe from a concurrent Prune.
func (s *Store) Lease(ctx context.Context) (release func(), err error) {
	l, err := lockfile.Shared(ctx, filepath.Join(s.locks, "gc.lock"))
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

// BlobPath is the file of blob d.
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// HasBlob reports whether blob d is in the store.
func (s *Store) HasBlob(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.BlobPath(d))
	return err == nil
}

// ReadBlob returns the content of a small blob (a manifest or a config), verified.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	b, err := os.ReadFile(s.BlobPath(d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s: content has digest %s: %w", d, got, ErrInvalid)
	}
	return b, nil
}

// OpenBlob opens blob d for reading.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	return os.Open(s.BlobPath(d))
}

// blobWriter streams bytes into a temporary file while hashing them.
type blobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	size int64
}

func (s *Store) newBlobWriter() (*blobWriter, error) {
	f, err := os.CreateTemp(s.tmp, "blob-")
	if err != nil {
		return nil, err
	}
	return &blobWriter{s: s, f: f, h: digest.SHA256.Hash()}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

func (w *blobWriter) Digest() digest.Digest {
	return digest.NewDigest(digest.SHA256, w.h)
}

// Close finishes writing; the blob stays in its temporary file until Commit.
func (w *blobWriter) Close() error {
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return err
	}
	failpoint.Hit("blob-synced")
	return w.f.Close()
}

// Commit moves the written blob into the store under its digest.
func (w *blobWriter) Commit() (digest.Digest, error) {
	d := w.Digest()
	if w.s.HasBlob(d) {
		return d, os.Remove(w.f.Name())
	}
	if err := os.Chmod(w.f.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(w.f.Name(), w.s.BlobPath(d)); err != nil {
		return "", err
	}
	failpoint.Hit("blob-renamed")
	return d, nil
}

// Abort drops the temporary file.
func (w *blobWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// writeBlob stores small content (a manifest, a config) and returns its digest.
func (s *Store) writeBlob(b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if s.HasBlob(d) {
		return d, nil
	}
	w, err := s.newBlobWriter()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return "", err
	}
	if err := w.Close(); err != nil {
		w.Abort()
		return "", err
	}
	return w.Commit()
}

func (s *Store) readIndex() (ocispec.Index, error) {
	var idx ocispec.Index
	p := filepath.Join(s.dir, ocispec.ImageIndexFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return idx, fmt.Errorf("%w: %s is missing: `cairn system check --repair` lists the images it finds again", ErrInvalid, p)
	} else if err != nil {
		return idx, err
	}
	return parseIndex(p, b)
}

// parseIndex parses b, the content of the index at p.
func parseIndex(p string, b []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("%w: %s: %w: `cairn system check --repair` lists the images it finds again", ErrInvalid, p, err)
	}
	return idx, nil
}

// hasBlobs reports whether the store holds any blob.
func (s *Store) hasBlobs() bool {
	d, err := os.Open(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) > 0
}

func (s *Store) writeIndex(idx ocispec.Index) error {
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, ocispec.ImageIndexFile), b, 0o644); err != nil {
		return err
	}
	s.rememberIndex(b, idx)
	s.SaveFacts() // best effort: the next list reads the JSON
	return nil
}

// updateIndex runs fn on the index under the index lock and writes the result.
func (s *Store) updateIndex(ctx context.Context, fn func(*names) error) error {
	l, err := s.indexLock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	n := &names{idx: idx}
	if err := fn(n); err != nil {
		return err
	}
	if !n.changed {
		return nil
	}
	failpoint.Hit("index-rewrite")
	return s.writeIndex(n.idx)
}

func (s *Store) indexLock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Exclusive(ctx, filepath.Join(s.locks, "index.lock"))
}
