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

// A layer with an opaque root hides every layer below it (OCI): Lowers and
// Overlay stop at it, and the view shows no file of a hidden layer.
func TestLowersStopAtOpaqueRoot(t *testing.T) {
	s := newStore(t)
	l1 := tartest.Tar(t, tartest.File("one", "1"), tartest.File("shared", "from 1"), tartest.Dir("d"), tartest.File("d/one", "1"))
	l2 := tartest.Tar(t, tartest.File("two", "2"), tartest.Opaque(""), tartest.File("shared", "from 2"), tartest.Dir("d"),
		tartest.Whiteout("d/one"), tartest.Whiteout("one")) // whiteouts of hidden names: no-ops
	l3 := tartest.Tar(t, tartest.File("three", "3"))
	c1 := digest.FromBytes(l1)
	c2 := digest.FromString(c1.String() + " " + digest.FromBytes(l2).String())
	c3 := digest.FromString(c2.String() + " " + digest.FromBytes(l3).String())
	commit(t, s, l1, c1, "")
	commit(t, s, l2, c2, c1)
	commit(t, s, l3, c3, c2)
	for chain, want := range map[digest.Digest]bool{c1: false, c2: true, c3: false} {
		if info, err := s.Stat(chain); err != nil || info.OpaqueRoot != want {
			t.Fatalf("Stat(%s) = %+v, %v; want OpaqueRoot %v", chain, info, err, want)
		}
	}
	lowers, err := s.Lowers(c3)
	if err != nil {
		t.Fatal(err)
	}
	if len(lowers) != 2 || lowers[0].ChainID != c3 || lowers[1].ChainID != c2 {
		t.Fatalf("Lowers = %+v, want the top two", lowers)
	}
	if full, _ := s.Chain(c3); len(full) != 3 {
		t.Fatalf("Chain has %d snapshots, want 3 (the cut is the mount's only)", len(full))
	}
	m, err := s.Overlay(c3, Layers{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "lowerdir=l/" + shortID(c3) + ":l/" + shortID(c2); m.Options[0] != want {
		t.Fatalf("options %q, want %q first", m.Options, want)
	}
	// The view of the whole chain (an overlay), and of the opaque layer
	// alone (a bind mount): layer 1 is nowhere.
	for chain, want := range map[digest.Digest]string{c3: "d shared three two", c2: "d shared two"} {
		err := s.View(context.Background(), chain, func(root string) error {
			if got := names(t, root); got != want {
				return fmt.Errorf("view of %s has %q, want %q", chain, got, want)
			}
			if got := names(t, filepath.Join(root, "d")); got != "" {
				return fmt.Errorf("d has %q, want nothing", got)
			}
			if b, err := os.ReadFile(filepath.Join(root, "shared")); err != nil || string(b) != "from 2" {
				return fmt.Errorf("shared = %q, %v", b, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// names lists the entries of dir, sorted, space-separated.
func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, " ")
}

// List lists exactly the directories named by a chain ID (ids.ID).
func TestListTakesChainIDDirectories(t *testing.T) {
	good := digest.FromString("chain").Encoded()
	s := newStore(t)
	root := s.Root()
	for _, n := range []string{good, strings.ToUpper(good), good[:63], "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, strings.Repeat("a", 64)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != digest.NewDigestFromEncoded(digest.SHA256, good) {
		t.Errorf("List = %v, want only %s", got, good)
	}
}
