package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// layer is a layer of regular files, undated.
func layer(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var entries []tartest.Entry
	for name, body := range files {
		entries = append(entries, tartest.Context{}.File(name, body))
	}
	return tartest.Tar(t, entries...)
}

func newStore(t *testing.T) *Store {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "snapshots"), filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commit(t *testing.T, s *Store, tarball []byte, chain, parent digest.Digest) {
	t.Helper()
	key, err := s.Unpack(context.Background(), bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(key, chain, parent, digest.FromBytes(tarball)); err != nil {
		t.Fatal(err)
	}
}

// Two unpacks of one layer racing to commit leave one snapshot and no leftovers.
func TestCommitTwiceKeepsOne(t *testing.T) {
	s := newStore(t)
	l := layer(t, map[string]string{"a": "1"})
	chain := digest.FromBytes(l)
	k1, err := s.Unpack(context.Background(), bytes.NewReader(l))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.Unpack(context.Background(), bytes.NewReader(l))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(k1, chain, "", chain); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(k2, chain, "", chain); err != nil {
		t.Fatal(err)
	}
	ids, _ := s.List()
	if len(ids) != 1 || ids[0] != chain {
		t.Fatalf("List = %v", ids)
	}
	if left, _ := os.ReadDir(s.tmp); len(left) != 0 {
		t.Fatalf("%d leftovers in tmp", len(left))
	}
	info, err := s.Stat(chain)
	if err != nil || info.Size != 1 || info.DiffID != chain {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if _, err := s.Stat(digest.FromString("nope")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Stat of a missing snapshot: %v", err)
	}
}

// Prune removes what keep does not list, with its link.
func TestPrune(t *testing.T) {
	s := newStore(t)
	a, b := layer(t, map[string]string{"a": "1"}), layer(t, map[string]string{"b": "2"})
	ca, cb := digest.FromBytes(a), digest.FromBytes(b)
	commit(t, s, a, ca, "")
	commit(t, s, b, cb, "")
	removed, err := s.Prune(context.Background(), map[digest.Digest]bool{ca: true})
	if err != nil || len(removed) != 1 || removed[0] != cb {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	if s.Exists(cb) || !s.Exists(ca) {
		t.Fatal("wrong snapshot removed")
	}
	links, _ := os.ReadDir(filepath.Join(s.root, "l"))
	if len(links) != 1 {
		t.Fatalf("%d links left, want 1", len(links))
	}
}

// The mount options of a deep stack stay under one page, and the view merges it.
func TestOverlayOfDeepStack(t *testing.T) {
	s := newStore(t)
	var parent digest.Digest
	for i := 0; i < 200; i++ {
		l := layer(t, map[string]string{fmt.Sprintf("f%03d", i): fmt.Sprint(i)})
		chain := digest.FromBytes(l)
		if parent != "" {
			chain = digest.FromString(parent.String() + " " + digest.FromBytes(l).String())
		}
		commit(t, s, l, chain, parent)
		parent = chain
	}
	m, err := s.Overlay(parent, Layers{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(m.Options, ",")); n >= os.Getpagesize() {
		t.Fatalf("options are %d bytes", n)
	}
	err = s.View(context.Background(), parent, func(root string) error {
		entries, err := os.ReadDir(root)
		if err != nil {
			return err
		}
		if len(entries) != 200 {
			return fmt.Errorf("view has %d entries, want 200", len(entries))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A single layer is a read-only bind mount.
	first, _ := s.Chain(parent)
	bottom := first[len(first)-1].ChainID
	err = s.View(context.Background(), bottom, func(root string) error {
		if err := os.WriteFile(filepath.Join(root, "x"), nil, 0o644); err == nil {
			return fmt.Errorf("a read-only view was writable")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
