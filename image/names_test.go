package image

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func desc(s string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 1}
}

func count(n *names, d digest.Digest) (named, unnamed int) {
	for _, m := range n.idx.Manifests {
		if m.Digest == d {
			if nameOf(m) == "" {
				unnamed++
			} else {
				named++
			}
		}
	}
	return
}

func TestNamesMoveLeavesDangling(t *testing.T) {
	n := &names{}
	a, b := desc("a"), desc("b")
	n.set("docker.io/library/x:latest", a)
	n.set("docker.io/library/y:latest", a)
	n.set("docker.io/library/x:latest", b)
	if nm, un := count(n, a.Digest); nm != 1 || un != 0 {
		t.Fatalf("a: %d named, %d unnamed; want 1, 0 (it keeps y)", nm, un)
	}
	n.set("docker.io/library/y:latest", b)
	if nm, un := count(n, a.Digest); nm != 0 || un != 1 {
		t.Fatalf("a: %d named, %d unnamed; want dangling", nm, un)
	}
	n.set("docker.io/library/z:latest", a)
	if nm, un := count(n, a.Digest); nm != 1 || un != 0 {
		t.Fatalf("a named again: %d named, %d unnamed", nm, un)
	}
	n.addUnnamed(b)
	if nm, un := count(n, b.Digest); nm != 2 || un != 0 {
		t.Fatalf("addUnnamed of a named image: %d named, %d unnamed", nm, un)
	}
	n.removeAll(b.Digest)
	if nm, un := count(n, b.Digest); nm+un != 0 {
		t.Fatal("removeAll left descriptors")
	}
}

func TestLookupOrder(t *testing.T) {
	id1 := digest.FromString("one")
	id2 := digest.FromString("two")
	imgs := []Image{
		{ID: id1, Manifest: desc("m1"), Names: []string{"docker.io/library/busybox:latest"}},
		{ID: id2, Manifest: desc("m2"), Names: []string{"docker.io/library/" + id1.Encoded()[:6] + ":latest"}},
	}
	// A name wins over an ID prefix it also is.
	if img, err := LookupIn(imgs, id1.Encoded()[:6]); err != nil || img.ID != id2 {
		t.Fatalf("lookup by a name that looks like an ID: %v %v", img.ID, err)
	}
	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox", id1.String(), id1.Encoded()[:12], "busybox@" + desc("m1").Digest.String()} {
		if img, err := LookupIn(imgs, ref); err != nil || img.ID != id1 {
			t.Fatalf("lookup %q = %v, %v", ref, img.ID, err)
		}
	}
	for _, ref := range []string{"nosuch", "busybox:1", "0000000000"} {
		if _, err := LookupIn(imgs, ref); err == nil {
			t.Fatalf("lookup %q found an image", ref)
		}
	}
}
