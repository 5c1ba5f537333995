package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// view mounts a fixture image's snapshots read-only (as a container's lowers are)
// and calls fn with the merged tree.
func (s *store) view(img fixtureImage, fn func(root string)) {
	s.t.Helper()
	var diffIDs []digest.Digest
	for _, l := range img.Layers {
		diffIDs = append(diffIDs, digest.FromBytes(l))
	}
	s.viewLayers(diffIDs, fn)
}

// viewImage mounts a stored image's layers read-only and calls fn with the merged tree.
func (s *store) viewImage(ref string, fn func(root string)) {
	s.t.Helper()
	var v []struct {
		RootFS struct{ Layers []digest.Digest }
	}
	if err := json.Unmarshal([]byte(s.ok("image", "inspect", ref)), &v); err != nil || len(v) != 1 {
		s.t.Fatalf("inspect %s: %v", ref, err)
	}
	s.viewLayers(v[0].RootFS.Layers, fn)
}

func (s *store) viewLayers(diffIDs []digest.Digest, fn func(root string)) {
	s.t.Helper()
	snaps, err := snapshot.Open(filepath.Join(s.root, "snapshots"), filepath.Join(s.root, "tmp"))
	if err != nil {
		s.t.Fatal(err)
	}
	chains := image.ChainIDs(diffIDs)
	err = snaps.View(context.Background(), chains[len(chains)-1], func(root string) error {
		fn(root)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// OCI whiteouts become overlay whiteouts: the merged view shows what OCI says.
func TestWhiteoutsMergeAsOCISays(t *testing.T) {
	s := newStore(t)
	img := fixtureImage{Names: []string{"wh"}, Layers: [][]byte{
		layerTar(t, dir("a/"), file("a/x", "x"), file("a/y", "y"), file("keep", "k"), file("gone", "g"), dir("d/"), file("d/f", "f")),
		layerTar(t, file(".wh.gone", ""), dir("a/"), file("a/.wh..wh..opq", ""), file("a/z", "z"), file("d/.wh.f", "")),
	}}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, img)))
	top := image.ChainIDs([]digest.Digest{digest.FromBytes(img.Layers[0]), digest.FromBytes(img.Layers[1])})[1]
	fs := filepath.Join(s.root, "snapshots", top.Encoded(), "fs")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(fs, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout of gone is not a 0/0 char device: %v %o %d", err, st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(fs, "a"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("a is not opaque: %v %q", err, buf[:n])
	}
	s.view(img, func(root string) {
		got := strings.Join(listTree(t, root), " ")
		if want := "a a/z d keep"; got != want {
			t.Fatalf("merged view = %q, want %q", got, want)
		}
	})
}

// An image of a hundred layers loads and mounts: the lowerdir option stays
// under the kernel's one-page limit.
func TestHundredLayers(t *testing.T) {
	s := newStore(t)
	img := fixtureImage{Names: []string{"tall:100"}}
	for i := 0; i < 120; i++ {
		img.Layers = append(img.Layers, layerTar(t, file(fmt.Sprintf("layer-%03d", i), fmt.Sprint(i))))
	}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, img)))
	if n := len(s.snapshotIDs()); n != 120 {
		t.Fatalf("%d snapshots, want 120", n)
	}
	s.view(img, func(root string) {
		if n := len(listTree(t, root)); n != 120 {
			t.Fatalf("merged view of 120 layers has %d files", n)
		}
		b, err := os.ReadFile(filepath.Join(root, "layer-119"))
		if err != nil || string(b) != "119" {
			t.Fatalf("top layer's file: %q %v", b, err)
		}
	})
}
