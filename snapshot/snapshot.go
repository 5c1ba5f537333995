package snapshot

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/internal/failpoint"
	ids "github.com/cairn-runtime/cairn/internal/names"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a chain ID that has no snapshot.
var ErrNotFound = errors.New("snapshot not found")

// Info describes a committed snapshot.
type Info struct {
	ChainID digest.Digest `json:"chainID"`
	Parent  digest.Digest `json:"parent,omitempty"`
	DiffID  digest.Digest `json:"diffID"`
	Size    int64         `json:"size"` // bytes of regular files in this layer alone
	Created time.Time     `json:"created"`
	// OpaqueRoot is set for a layer with a ".wh..wh..opq" at its root,
	// which in OCI hides every layer below it: a mount of a chain starts
	// at its topmost snapshot with an opaque root (see Lowers).
	OpaqueRoot bool `json:"opaqueRoot,omitempty"`
}

// Store is a directory of snapshots. It is safe for use by many processes at
// once: every change is a rename, and removal (Prune) is left to a caller that
// holds the store-wide exclusive lock.
type Store struct {
	root string
	tmp  string

	mu      sync.Mutex
	pending map[string]unpacked // by key
}

// unpacked is what Unpack learnt of a layer, for its Commit.
type unpacked struct {
	size   int64
	opaque bool // its root is opaque
}

// Open opens (creating if needed) the snapshot store at root; tmp is a directory
// on the same filesystem for work in progress.
func Open(root, tmp string) (*Store, error) {
	for _, d := range []string{root, filepath.Join(root, "l"), tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return &Store{root: root, tmp: tmp, pending: map[string]unpacked{}}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(chainID digest.Digest) string {
	return filepath.Join(s.root, chainID.Encoded())
}

// FS is the directory holding the files of snapshot chainID.
func (s *Store) FS(chainID digest.Digest) string {
	return filepath.Join(s.dir(chainID), "fs")
}

// Exists reports whether chainID has a committed snapshot.
func (s *Store) Exists(chainID digest.Digest) bool {
	if chainID.Validate() != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir(chainID), "meta.json"))
	return err == nil
}

// Stat returns the Info of snapshot chainID.
func (s *Store) Stat(chainID digest.Digest) (Info, error) {
	var info Info
	if err := chainID.Validate(); err != nil {
		return info, fmt.Errorf("snapshot %q: %w", chainID, err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(chainID), "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("snapshot %s: %w", chainID, ErrNotFound)
	} else if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("snapshot %s: meta.json: %w", chainID, err)
	}
	return info, nil
}

// Unpack applies an uncompressed layer tar into a new private directory and
// returns the key under which Commit or Discard take it. The stream is read to
// its end (so that a caller hashing it sees every byte) even when the tar ends early.
func (s *Store) Unpack(ctx context.Context, r io.Reader) (string, error) {
	dir, err := os.MkdirTemp(s.tmp, "snapshot-")
	if err != nil {
		return "", err
	}
	fs := filepath.Join(dir, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	size, err := rootfs.Apply(ctx, fs, r)
	if err == nil {
		_, err = io.Copy(io.Discard, r) // tar padding after the end-of-archive blocks
	}
	var opaque bool
	if err == nil {
		opaque, err = opaqueRoot(fs)
	}
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) {
			err = fmt.Errorf("unpacking into %s: %w", fs, err) // the layer's errors name an entry, not where it went
		}
		return "", err
	}
	key := filepath.Base(dir)
	s.mu.Lock()
	s.pending[key] = unpacked{size: size, opaque: opaque}
	s.mu.Unlock()
	return key, nil
}

// Commit makes the directory unpacked under key the snapshot chainID. When that
// snapshot already exists (another process won the race), the directory is dropped.
func (s *Store) Commit(key string, chainID, parent, diffID digest.Digest) error {
	s.mu.Lock()
	u, ok := s.pending[key]
	delete(s.pending, key)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("commit snapshot %s: no pending unpack %q", chainID, key)
	}
	dir := filepath.Join(s.tmp, key)
	if s.Exists(chainID) {
		return os.RemoveAll(dir)
	}
	info := Info{ChainID: chainID, Parent: parent, DiffID: diffID, Size: u.size, Created: time.Now().UTC(), OpaqueRoot: u.opaque}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o600); err != nil {
		os.RemoveAll(dir)
		return err
	}
	// The link first: a dangling one is harmless, a snapshot without one is not mountable.
	link := filepath.Join(s.root, "l", shortID(chainID))
	target := filepath.Join("..", chainID.Encoded(), "fs")
	if err := os.Symlink(target, link); err != nil && !errors.Is(err, os.ErrExist) {
		os.RemoveAll(dir)
		return err
	}
	failpoint.Hit("snapshot-unpacked")
	if err := os.Rename(dir, s.dir(chainID)); err != nil {
		os.RemoveAll(dir)
		if s.Exists(chainID) { // lost a race with another unpack of the same layer
			return nil
		}
		return fmt.Errorf("commit snapshot %s: %w", chainID, err)
	}
	failpoint.Hit("snapshot-committed")
	return nil
}

// Discard drops the directory unpacked under key.
func (s *Store) Discard(key string) error {
	s.mu.Lock()
	delete(s.pending, key)
	s.mu.Unlock()
	if key == "" || strings.ContainsAny(key, "/") {
		return nil
	}
	return os.RemoveAll(filepath.Join(s.tmp, key))
}

// List returns the chain IDs of all committed snapshots.
func (s *Store) List() ([]digest.Digest, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, e := range entries {
		if e.IsDir() && ids.ID(e.Name()) {
			out = append(out, digest.NewDigestFromEncoded(digest.SHA256, e.Name()))
		}
	}
	return out, nil
}

// Prune removes every snapshot whose chain ID is not in keep, and returns those
// removed. The caller must hold the store-wide exclusive lock, so that no unpack
// is in progress and no reader is using a snapshot it is about to remove.
func (s *Store) Prune(ctx context.Context, keep map[digest.Digest]bool) ([]digest.Digest, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []digest.Digest
	for _, id := range all {
		if keep[id] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if err := s.remove(id.Encoded()); err != nil {
			return removed, fmt.Errorf("snapshot %s: %w", id, err)
		}
		removed = append(removed, id)
	}
	// Links left by a Commit that was killed before its rename.
	links, _ := os.ReadDir(filepath.Join(s.root, "l"))
	for _, l := range links {
		p := filepath.Join(s.root, "l", l.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			os.Remove(p)
		}
	}
	return removed, nil
}

// Chain returns the snapshots of chainID and all its parents, top layer first.
func (s *Store) Chain(chainID digest.Digest) ([]Info, error) {
	var out []Info
	for id := chainID; id != ""; {
		info, err := s.Stat(id)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
		id = info.Parent
		if len(out) > 4096 {
			return nil, fmt.Errorf("snapshot %s: parent chain too long", chainID)
		}
	}
	return out, nil
}

// Lowers returns the snapshots that a mount of chainID stacks, top layer
// first: its chain down to the topmost snapshot whose root is opaque, as
// OCI says (the layers below it are hidden). overlayfs ignores the opaque
// mark of a lower layer's root, so without this cut a mount would show
// them, as Docker's does. Every mount of a chain is described by Overlay,
// which stacks these.
func (s *Store) Lowers(chainID digest.Digest) ([]Info, error) {
	chain, err := s.Chain(chainID)
	if err != nil {
		return nil, err
	}
	for i, info := range chain {
		if info.OpaqueRoot {
			return chain[:i+1], nil
		}
	}
	return chain, nil
}

// opaqueRoot reports whether Apply marked the root of the layer it
// unpacked in dir opaque: the layer has a ".wh..wh..opq" at its root.
func opaqueRoot(dir string) (bool, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return rootfs.IsOpaque(fd), nil
}

var shortEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// shortID names a snapshot in mount options: 16 characters instead of 64 keep
// the lowerdir list of a 200-layer image under one page.
func shortID(chainID digest.Digest) string {
	b := []byte(chainID.Encoded())
	// 10 bytes of the hex digest's value are 80 bits: collisions are not a concern.
	var raw [10]byte
	for i := range raw {
		raw[i] = unhex(b[2*i])<<4 | unhex(b[2*i+1])
	}
	return strings.ToLower(shortEncoding.EncodeToString(raw[:]))
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}
