package image

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// importN imports n one-file images, named as names says (each name of
// the i-th image, "" for an unnamed one).
func importN(t *testing.T, s *Store, names []string, labels map[string]string) []Image {
	t.Helper()
	var out []Image
	for i, name := range names {
		img, err := s.Import(context.Background(), bytes.NewReader(tarOf(t, "f", string(rune('a'+i)))), ImportOptions{Name: name, Change: func(c *Config) error {
			c.Config.Labels = labels
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

// What a list learns is what a new store, with the same files and a
// process of its own, lists and summarizes too; a blob lost is still an
// error, and a fact about a blob gone is not written again.
func TestFactsAreTheBlobsFacts(t *testing.T) {
	s, u := testStore(t)
	s.KeepFacts(filepath.Join(t.TempDir(), "cache"))
	imgs := importN(t, s, []string{"a:1", "b:1", "", "docker.io/library/c:latest"}, map[string]string{})
	first, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var sums []Summary
	for _, img := range first {
		sum, err := s.Summary(img)
		if err != nil {
			t.Fatal(err)
		}
		c, _, _ := s.Config(img)
		if want := (Summary{Created: c.Created, Labels: c.Config.Labels, DiffIDs: c.RootFS.DiffIDs}); !reflect.DeepEqual(sum, want) {
			t.Fatalf("summary %+v, want %+v", sum, want)
		}
		sums = append(sums, sum)
	}
	if err := s.SaveFacts(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"image-manifests", "image-configs"} {
		if _, err := os.Stat(filepath.Join(s.facts.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// Another process: the facts from the files.
	again, err := Open(s.dir, s.tmp, s.locks, u)
	if err != nil {
		t.Fatal(err)
	}
	again.KeepFacts(s.facts.dir)
	second, err := again.List()
	if err != nil || !reflect.DeepEqual(first, second) {
		t.Fatalf("list from the facts: %v %v, want %v", second, err, first)
	}
	if len(again.facts.manifests.known) != len(imgs) {
		t.Fatalf("%d manifests known from the file, want %d", len(again.facts.manifests.known), len(imgs))
	}
	for i, img := range second {
		if sum, err := again.Summary(img); err != nil || !reflect.DeepEqual(sum, sums[i]) {
			t.Fatalf("summary from the facts %+v %v, want %+v", sum, err, sums[i])
		}
	}
	// A lost manifest is an error still, though its config is known.
	os.Rename(s.BlobPath(imgs[1].Manifest.Digest), s.BlobPath(imgs[1].Manifest.Digest)+".aside")
	if _, err := again.List(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("list with a manifest lost: %v", err)
	}
	os.Rename(s.BlobPath(imgs[1].Manifest.Digest)+".aside", s.BlobPath(imgs[1].Manifest.Digest))
	os.Rename(s.BlobPath(imgs[2].ID), s.BlobPath(imgs[2].ID)+".aside")
	if _, err := again.List(); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Summary(imgs[2]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("summary with a config lost: %v", err)
	}
	// A save drops the facts about what is gone.
	again.facts.configs.learnt = true
	if err := again.SaveFacts(); err != nil {
		t.Fatal(err)
	}
	third := newFacts(s.facts.dir)
	if _, ok := third.configs.get(third.dir, imgs[2].ID); ok {
		t.Fatal("the fact of a config that is gone was saved")
	}
	if _, ok := third.configs.get(third.dir, imgs[0].ID); !ok {
		t.Fatal("the fact of a config that is there was not saved")
	}
}

// A catalog finds what LookupIn finds, whatever the form of the name.
func TestCatalogLookupIsLookupIn(t *testing.T) {
	s, _ := testStore(t)
	importN(t, s, []string{"busybox:latest", "team/app:1", "localhost:5000/x:latest", "docker.io/library/a/b:2", "reg.example/y:3", ""}, nil)
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog(imgs)
	refs := []string{"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest", "docker.io/busybox",
		"team/app:1", "docker.io/team/app:1", "team/app", "localhost:5000/x", "localhost:5000/x:latest",
		"library/a/b:2", "a/b:2", "docker.io/library/a/b:2", "reg.example/y:3", "reg.example/y", "nothing:1", "", "sha256:"}
	for _, img := range imgs {
		refs = append(refs, img.ID.String(), img.ID.Encoded()[:12], "sha256:"+img.ID.Encoded()[:5])
	}
	for _, ref := range refs {
		want, werr := LookupIn(imgs, ref)
		got, gerr := cat.Lookup(ref)
		if !reflect.DeepEqual(got, want) || (werr == nil) != (gerr == nil) {
			t.Errorf("%q: catalog %v %v, LookupIn %v %v", ref, got.Names, gerr, want.Names, werr)
		}
	}
}

// SplitName gives what the parse gives, or nothing.
func TestSplitNameIsTheParse(t *testing.T) {
	for _, full := range []string{"docker.io/library/busybox:latest", "docker.io/team/app:1", "docker.io/library/a/b:2",
		"docker.io/big/img424:1", "localhost:5000/x:latest", "reg.example/y:3", "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64),
		"docker.io/library/x", "docker.io/a.b/c:1", "docker.io/A/b:1", "docker.io/a/b:T_1.x-y"} {
		repo, tag, ok := SplitName(full)
		if !ok {
			continue
		}
		n, err := reference.ParseNormalizedNamed(full)
		if err != nil {
			t.Fatalf("%q splits, but does not parse: %v", full, err)
		}
		nt, tagged := n.(reference.Tagged)
		if !tagged || reference.FamiliarName(n) != repo || nt.Tag() != tag {
			t.Errorf("%q: split %q %q, parse %q %v", full, repo, tag, reference.FamiliarName(n), n)
		}
	}
	if _, _, ok := SplitName("docker.io/library/busybox:latest"); !ok {
		t.Error("the name of busybox does not split")
	}
}
