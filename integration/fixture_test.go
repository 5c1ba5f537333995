package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixtures makes the entries of fixture layers (see internal/tartest): PAX
// headers, all dated 2023-11-14 (Unix time 1700000000).
var fixtures = tartest.Context{ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}

// file is a regular file of a fixture layer, mode 0644.
func file(name, body string) tartest.Entry { return fixtures.File(name, body) }

// dir is a directory of a fixture layer, mode 0755.
func dir(name string) tartest.Entry { return fixtures.Dir(name) }

// layerTar declares a layer in code.
func layerTar(t testing.TB, entries ...tartest.Entry) []byte {
	t.Helper()
	return tartest.Tar(t, entries...)
}

// fixtureImage is an image declared in code, for dockerArchive.
type fixtureImage struct {
	Names  []string
	Layers [][]byte // uncompressed layer tars, bottom first
	Cmd    []string
	// The rest of the image's config.
	Entrypoint, Env  []string
	WorkingDir, User string
	StopSignal       string
	Volumes          []string
	Architecture     string // default: this machine's
	Labels           map[string]string
	Created          time.Time // default: 1700000000
}

// config returns the image's config JSON and its digest.
func (f fixtureImage) config() ([]byte, digest.Digest) {
	c := image.Config{}
	created := time.Unix(1700000000, 0).UTC()
	if !f.Created.IsZero() {
		created = f.Created.UTC()
	}
	c.Created = &created
	c.Architecture, c.OS = runtime.GOARCH, "linux"
	if f.Architecture != "" {
		c.Architecture = f.Architecture
	}
	c.Config.Cmd = f.Cmd
	c.Config.Entrypoint, c.Config.Env = f.Entrypoint, f.Env
	c.Config.WorkingDir, c.Config.User, c.Config.StopSignal = f.WorkingDir, f.User, f.StopSignal
	c.Config.Labels = f.Labels
	for _, v := range f.Volumes {
		if c.Config.Volumes == nil {
			c.Config.Volumes = map[string]struct{}{}
		}
		c.Config.Volumes[v] = struct{}{}
	}
	c.RootFS.Type = "layers"
	for i, l := range f.Layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromBytes(l))
		c.History = append(c.History, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("fixture layer %d", i+1)})
	}
	b, _ := json.Marshal(c)
	return b, digest.FromBytes(b)
}

// dockerArchive writes images as `docker save` (legacy format) does.
func dockerArchive(t testing.TB, imgs ...fixtureImage) []byte {
	t.Helper()
	var entries []tartest.Entry
	put := func(name string, b []byte) { entries = append(entries, tartest.Context{}.File(name, string(b))) }
	type item struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []item
	written := map[digest.Digest]string{}
	for _, img := range imgs {
		cfg, cd := img.config()
		it := item{Config: cd.Encoded() + ".json", RepoTags: img.Names}
		for _, l := range img.Layers {
			d := digest.FromBytes(l)
			name, ok := written[d]
			if !ok {
				name = d.Encoded()[:16] + "/layer.tar"
				put(name, l)
				written[d] = name
			}
			it.Layers = append(it.Layers, name)
		}
		put(it.Config, cfg)
		manifest = append(manifest, it)
	}
	mb, _ := json.Marshal(manifest)
	put("manifest.json", mb)
	return tartest.Tar(t, entries...)
}

func writeFile(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// index reads the store's index.json.
func (s *store) index() ocispec.Index {
	s.t.Helper()
	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(s.root, "images", "index.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		s.t.Fatal(err)
	}
	return idx
}

func (s *store) snapshotIDs() []string {
	s.t.Helper()
	entries, _ := os.ReadDir(filepath.Join(s.root, "snapshots"))
	var out []string
	for _, e := range entries {
		if e.Name() != "l" {
			out = append(out, e.Name())
		}
	}
	return out
}

func (s *store) blobCount() int {
	entries, _ := os.ReadDir(filepath.Join(s.root, "images", "blobs", "sha256"))
	return len(entries)
}

// checkConsistent asserts the store's promises: every image in the index has its
// manifest, config and layer blobs, each with the content its digest names, and a
// snapshot for each of its layers. It returns the number of images.
func (s *store) checkConsistent() int {
	s.t.Helper()
	idx := s.index()
	blob := func(d digest.Digest) []byte {
		b, err := os.ReadFile(filepath.Join(s.root, "images", "blobs", "sha256", d.Encoded()))
		if err != nil {
			s.t.Fatalf("index names %s but its blob is missing: %v", d, err)
		}
		if digest.FromBytes(b) != d {
			s.t.Fatalf("blob %s has the wrong content", d)
		}
		return b
	}
	seen := map[digest.Digest]bool{}
	for _, d := range idx.Manifests {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		var m ocispec.Manifest
		if err := json.Unmarshal(blob(d.Digest), &m); err != nil {
			s.t.Fatal(err)
		}
		var c ocispec.Image
		if err := json.Unmarshal(blob(m.Config.Digest), &c); err != nil {
			s.t.Fatal(err)
		}
		for _, l := range m.Layers {
			blob(l.Digest)
		}
		for _, chain := range image.ChainIDs(c.RootFS.DiffIDs) {
			if _, err := os.Stat(filepath.Join(s.root, "snapshots", chain.Encoded(), "meta.json")); err != nil {
				s.t.Fatalf("image %s lacks snapshot %s: %v", m.Config.Digest, chain, err)
			}
		}
	}
	return len(seen)
}

// busyboxLayer is a rootfs tarball of Debian's busybox-static.
func busyboxTar(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(busyboxRootfs(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ = strings.Contains

func busyboxRootfs(t testing.TB) string { return testutil.BusyboxRootfs(t) }
