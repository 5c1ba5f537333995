package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The build cache maps the key of a build step — what the step did, over
// which parent, seeing which build arguments and file contents — to the
// image the step made, so that a later build, in this process or another,
// reuses it. Each entry is a file, <root>/build-cache/<key>, replaced
// atomically: two builds at once may both make a step, and either entry is
// right. Garbage collection keeps what the entries name. An image that only
// the cache names is not listed among the images (Docker's intermediate
// images) and has no name.

type cacheEntry struct {
	Manifest ocispec.Descriptor `json:"manifest"`
	Config   digest.Digest      `json:"config"`
}

func (s *Store) cachePath(key digest.Digest) string {
	return filepath.Join(s.cache, key.Encoded())
}

// CacheGet returns the image a build step of key made, if the cache has it
// and the store still has the image's manifest and config.
func (s *Store) CacheGet(key digest.Digest) (Image, bool) {
	if key.Validate() != nil {
		return Image{}, false
	}
	b, err := os.ReadFile(s.cachePath(key))
	if err != nil {
		return Image{}, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || !s.HasBlob(e.Manifest.Digest) || !s.HasBlob(e.Config) {
		return Image{}, false
	}
	return Image{ID: e.Config, Manifest: e.Manifest}, true
}

// cachePut records img as what the step of key made. The caller holds a lease.
func (s *Store) cachePut(key digest.Digest, img Image) error {
	b, err := json.Marshal(cacheEntry{Manifest: img.Manifest, Config: img.ID})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.cache, 0o700); err != nil {
		return err
	}
	return atomicfile.Replace(s.cachePath(key), b, 0o600)
}

// cacheEntries reads the build cache, for garbage collection. Entries that
// do not parse, or name a manifest that is gone, are dropped.
func (s *Store) cacheEntries() ([]cacheEntry, error) {
	files, err := os.ReadDir(s.cache)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []cacheEntry
	for _, f := range files {
		if strings.HasPrefix(f.Name(), ".") {
			continue // a temporary file of cachePut, never an entry
		}
		p := filepath.Join(s.cache, f.Name())
		b, err := os.ReadFile(p)
		var e cacheEntry
		if err != nil || json.Unmarshal(b, &e) != nil || !s.HasBlob(e.Manifest.Digest) {
			os.Remove(p)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// CachePrune empties the build cache (`cairn builder prune`); the caller
// runs Prune after, which removes what only the cache kept.
func (s *Store) CachePrune(ctx context.Context) (int, error) {
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "gc.lock"))
	if err != nil {
		return 0, err
	}
	defer l.Unlock()
	files, err := os.ReadDir(s.cache)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if err := os.Remove(filepath.Join(s.cache, f.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("build cache: %w", err)
		}
		n++
	}
	return n, nil
}
