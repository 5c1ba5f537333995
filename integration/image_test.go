package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/opencontainers/go-digest"
)

// The seed of the foundation: import a busybox rootfs in each compression, list,
// inspect and show the history of it.
func TestImportListInspectHistory(t *testing.T) {
	s := newStore(t)
	plain := busyboxTar(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	zst := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	if out, err := exec.Command("zstd", "-q", "-o", zst, busyboxRootfs(t)).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}

	id := strings.TrimSpace(s.ok("import", busyboxRootfs(t), "busybox"))
	if digest.Digest(id).Validate() != nil {
		t.Fatalf("import printed %q, want an image ID", id)
	}
	id2 := strings.TrimSpace(s.ok("import", writeFile(t, gz.Bytes()), "localhost:5000/team/bb:gz"))
	id3 := strings.TrimSpace(s.ok("import", zst, "bb:zst"))

	// The same tar in three compressions is one layer, one snapshot.
	if n := len(s.snapshotIDs()); n != 1 {
		t.Fatalf("three imports of one rootfs made %d snapshots, want 1", n)
	}
	var diffIDs []string
	for _, ref := range []string{"busybox", id2, "bb:zst"} {
		var v []struct {
			Id, Os, Architecture string
			RepoTags             []string
			Size                 int64
			RootFS               struct{ Layers []string }
		}
		if err := json.Unmarshal([]byte(s.ok("image", "inspect", ref)), &v); err != nil || len(v) != 1 {
			t.Fatalf("inspect %s: %v %v", ref, v, err)
		}
		if v[0].Os != "linux" || v[0].Size < 500_000 || len(v[0].RootFS.Layers) != 1 {
			t.Fatalf("inspect %s: %+v", ref, v[0])
		}
		diffIDs = append(diffIDs, v[0].RootFS.Layers[0])
	}
	if diffIDs[0] != diffIDs[1] || diffIDs[1] != diffIDs[2] {
		t.Fatalf("diff IDs differ across compressions: %v", diffIDs)
	}
	if want := digest.FromBytes(plain).String(); diffIDs[0] != want {
		t.Fatalf("diff ID %s, want the digest of the uncompressed tar %s", diffIDs[0], want)
	}

	out := s.ok("images")
	for _, want := range []string{"REPOSITORY", "busybox", "latest", "localhost:5000/team/bb", "gz", "bb ", "zst", id[7:19]} {
		if !strings.Contains(out, want) {
			t.Fatalf("images lacks %q:\n%s", want, out)
		}
	}
	q := strings.Fields(s.ok("images", "-q", "--no-trunc"))
	if len(q) != 3 || !contains(q, id) || !contains(q, id2) || !contains(q, id3) {
		t.Fatalf("images -q --no-trunc = %v", q)
	}
	f := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox")
	if strings.TrimSpace(f) != "busybox:latest" {
		t.Fatalf("images --format with a filter = %q", f)
	}
	if got := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}} {{index .RepoTags 0}}", "busybox:latest")); got != id+" busybox:latest" {
		t.Fatalf("inspect --format = %q", got)
	}
	h := s.ok("history", "busybox")
	if !strings.Contains(h, "Imported from "+busyboxRootfs(t)) || !strings.Contains(h, id[7:19]) || !strings.Contains(h, "CREATED BY") {
		t.Fatalf("history:\n%s", h)
	}

	// The layout is a valid OCI layout that other tools read as it is.
	layout := filepath.Join(s.root, "images")
	if out, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+layout+":docker.io/library/busybox:latest").CombinedOutput(); err != nil || !strings.Contains(string(out), "application/vnd.oci.image.manifest.v1+json") {
		t.Fatalf("skopeo inspect of the store: %v\n%s", err, out)
	}
	if out, err := exec.Command("umoci", "ls", "--layout", layout).CombinedOutput(); err != nil || !strings.Contains(string(out), "docker.io/library/bb:zst") {
		t.Fatalf("umoci ls of the store: %v\n%s", err, out)
	}
	s.checkConsistent()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Two images over one base share its snapshot; rmi removes only what no image uses.
func TestSharedSnapshotsAndRmi(t *testing.T) {
	s := newStore(t)
	base := layerTar(t, dir("etc/"), file("etc/base", "base"), file("etc/common", "v1"))
	a := fixtureImage{Names: []string{"app-a:1"}, Layers: [][]byte{base, layerTar(t, file("a", "A"))}}
	b := fixtureImage{Names: []string{"app-b:1"}, Layers: [][]byte{base, layerTar(t, file("b", "B"))}}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, a)))
	s.ok("load", "-i", writeFile(t, dockerArchive(t, b)))
	if n := len(s.snapshotIDs()); n != 3 {
		t.Fatalf("two two-layer images over one base: %d snapshots, want 3", n)
	}
	baseChain := digest.FromBytes(base).Encoded()
	fi, err := os.Stat(filepath.Join(s.root, "snapshots", baseChain, "fs", "etc", "base"))
	if err != nil {
		t.Fatal(err)
	}
	_ = fi

	// Untag vs delete, as Docker.
	s.ok("tag", "app-a:1", "app-a:2")
	if out := s.ok("rmi", "app-a:1"); strings.TrimSpace(out) != "Untagged: app-a:1" {
		t.Fatalf("rmi of one of two tags: %q", out)
	}
	s.ok("tag", "app-a:2", "other/repo:x")
	_, cd := a.config()
	s.fails(1, "image is referenced in multiple repositories", "rmi", cd.Encoded()[:12])
	out := s.ok("rmi", "-f", cd.Encoded()[:12])
	for _, want := range []string{"Untagged: app-a:2", "Untagged: other/repo:x", "Deleted: " + cd.String()} {
		if !strings.Contains(out, want) {
			t.Fatalf("rmi -f by ID: %q lacks %q", out, want)
		}
	}
	if ids := s.snapshotIDs(); len(ids) != 2 || !contains(ids, baseChain) {
		t.Fatalf("after rmi of one image: snapshots %v, want the base and b's top", ids)
	}
	s.checkConsistent()
	s.ok("rmi", "app-b:1")
	if ids := s.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("after rmi of every image: snapshots %v", ids)
	}
	if n := s.blobCount(); n != 0 {
		t.Fatalf("after rmi of every image: %d blobs left", n)
	}
	s.fails(1, "No such image: app-b:1", "rmi", "app-b:1")
	s.fails(1, "No such image: nosuch", "image", "inspect", "nosuch")
	s.fails(125, "flag provided but not defined", "images", "--bogus")
}

// A tag moved to another image leaves the old one dangling, as Docker does.
func TestTagMovesAndDangling(t *testing.T) {
	s := newStore(t)
	one := fixtureImage{Names: []string{"x:latest"}, Layers: [][]byte{layerTar(t, file("one", "1"))}}
	two := fixtureImage{Names: []string{"x:latest"}, Layers: [][]byte{layerTar(t, file("two", "2"))}}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, one)))
	s.ok("load", "-i", writeFile(t, dockerArchive(t, two)))
	rows := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
	if !strings.Contains(rows, "x:latest") || !strings.Contains(rows, "<none>:<none>") {
		t.Fatalf("after a tag moved, images =\n%s", rows)
	}
	_, oneID := one.config()
	s.ok("rmi", oneID.Encoded())
	if n := s.checkConsistent(); n != 1 {
		t.Fatalf("%d images left, want 1", n)
	}
	s.fails(1, "refusing to create a tag with a digest reference", "tag", "x", "y@sha256:"+strings.Repeat("a", 64))
	s.fails(1, "invalid reference format", "tag", "x", "UPPER:case")
}

// cairn save writes an archive that cairn loads back to the same image.
func TestSaveLoadRoundTrip(t *testing.T) {
	s := newStore(t)
	img := fixtureImage{Names: []string{"round:trip"}, Layers: [][]byte{
		layerTar(t, dir("d/"), file("d/f", "hello")),
		layerTar(t, file(".wh.d", "")),
	}, Cmd: []string{"/bin/sh"}}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, img)))
	out := filepath.Join(t.TempDir(), "out.tar")
	s.ok("save", "-o", out, "round:trip")

	s2 := newStore(t)
	if got := s2.ok("load", "-i", out); strings.TrimSpace(got) != "Loaded image: round:trip" {
		t.Fatalf("load of a saved archive: %q", got)
	}
	_, id := img.config()
	if got := strings.TrimSpace(s2.ok("images", "-q", "--no-trunc")); got != id.String() {
		t.Fatalf("reloaded ID %s, want %s", got, id)
	}
	// The archive is an OCI layout too.
	ociDir := filepath.Join(t.TempDir(), "oci")
	os.MkdirAll(ociDir, 0o755)
	if o, err := exec.Command("tar", "-C", ociDir, "-xf", out).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, o)
	}
	if o, err := exec.Command("skopeo", "inspect", "--config", "oci:"+ociDir+":trip").CombinedOutput(); err != nil || !strings.Contains(string(o), "/bin/sh") {
		t.Fatalf("skopeo inspect of the saved archive: %v\n%s", err, o)
	}
	// Saved to stdout, as an oci-archive loaded from stdin.
	r := s.run(nil, "save", "round")
	if r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	s3 := newStore(t)
	if got := s3.run([]byte(r.Stdout), "load"); got.Code != 0 || !strings.Contains(got.Stdout, "round:trip") {
		t.Fatalf("load from stdin: %+v", got)
	}
	_ = image.ShortID
}
