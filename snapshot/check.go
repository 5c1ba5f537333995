package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/internal/failpoint"
	ids "github.com/cairn-runtime/cairn/internal/names"

	"github.com/cairn-runtime/cairn/internal/fsck"
	"github.com/opencontainers/go-digest"
)

// Check verifies the snapshots: each directory of the store is a chain ID
// holding fs/ and a meta.json that says it is that chain, whose parent
// exists; those keep does not name are unused. A snapshot half-made in
// place cannot be mended from itself: its repair removes it, and the caller
// unpacks it again from the image's blobs. The caller holds the store-wide
// lock exclusively.
func (s *Store) Check(keep map[digest.Digest]bool) []fsck.Problem {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return []fsck.Problem{{Path: s.root, What: fmt.Sprintf("the snapshots cannot be listed: %v", err), Fix: "check the directory's permissions"}}
	}
	var out []fsck.Problem
	for _, e := range entries {
		if e.Name() == "l" {
			continue
		}
		p := filepath.Join(s.root, e.Name())
		id := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		remove := func(ctx context.Context) error { return s.remove(e.Name()) }
		if !e.IsDir() || id.Validate() != nil {
			out = append(out, fsck.Problem{Path: p, What: "an entry among the snapshots that is not a snapshot", Repair: remove, Fix: "remove it"})
			continue
		}
		if what := s.broken(id); what != "" {
			fix := "remove it"
			if keep[id] {
				fix = "remove it, then unpack the layer again from its image's blob"
			}
			out = append(out, fsck.Problem{Path: p, What: "snapshot " + id.String() + ": " + what, Repair: remove, Fix: fix})
			continue
		}
		if !keep[id] {
			what := "a snapshot no image or container uses"
			if info, err := s.Stat(id); err == nil {
				what = fmt.Sprintf("a snapshot no image or container uses (%d bytes)", info.Size)
			}
			out = append(out, fsck.Problem{Path: p, What: what, Harmless: true, Sweep: true, Fix: "remove it"})
		}
	}
	links, _ := os.ReadDir(filepath.Join(s.root, "l"))
	for _, l := range links {
		p := filepath.Join(s.root, "l", l.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			out = append(out, fsck.Problem{Path: p, What: "a short name of a snapshot that is gone", Harmless: true, Sweep: true, Fix: "remove it"})
		}
	}
	return out
}

// broken says what is wrong with snapshot id's directory, or "".
func (s *Store) broken(id digest.Digest) string {
	b, err := os.ReadFile(filepath.Join(s.dir(id), "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "meta.json is missing: the snapshot was made in place, or half removed"
	} else if err != nil {
		return err.Error()
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Sprintf("meta.json is not JSON: %v", err)
	}
	if info.ChainID != id {
		return fmt.Sprintf("meta.json says it is snapshot %s", info.ChainID)
	}
	if st, err := os.Lstat(s.FS(id)); err != nil || !st.IsDir() {
		return "its files (fs/) are missing"
	}
	if info.Parent != "" && !s.Exists(info.Parent) {
		return "its parent " + info.Parent.String() + " is missing"
	}
	return ""
}

// remove takes the entry name of the store out of sight first (a rename
// into tmp/, so that it is gone at once), then deletes it.
func (s *Store) remove(name string) error {
	trash, err := os.MkdirTemp(s.tmp, "trash-")
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(s.root, name), filepath.Join(trash, "s")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", filepath.Join(s.root, name), err)
	}
	failpoint.Hit("snapshot-trashed")
	if ids.ID(name) {
		os.Remove(filepath.Join(s.root, "l", shortID(digest.NewDigestFromEncoded(digest.SHA256, name))))
	}
	return os.RemoveAll(trash)
}
