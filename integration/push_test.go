package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A push compresses the layers it uploads as it uploads them. One whose
// uploads are all cut midway fails and leaves no compressed layer
// half-made or recorded but whole (system check says so); the next push
// compresses again and what it pushed is whole: every layer's bytes have
// its digest and decompress to the image's diff IDs, skopeo copies it
// (checking every digest) and Docker pulls and runs it. A push after that
// reuses the layers it kept.
func TestPushCutMidwayThenWhole(t *testing.T) {
	reg := testutil.Registry(t)
	docker := testutil.Docker(t)
	testutil.RequiresTool(t, "skopeo")
	p := newProxy(t, reg)
	repo := uniqueRepo(t, p.Addr)
	s := registryStore(t, "", "")
	// 24 MiB of random bytes: more than the sockets between cairn and the
	// registry hold, so that the cut comes before the layer is compressed.
	img := s.layeredImage(repo+":1", 24<<20, 1<<10)

	var mu sync.Mutex
	cut := 0
	p.set(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		mu.Lock()
		cut++
		mu.Unlock()
		io.CopyN(io.Discard, r.Body, 1<<20)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return true
	}, nil)
	if r := s.run(nil, "push", repo+":1"); r.Code == 0 {
		t.Fatalf("a push whose uploads are cut succeeded:\n%s", r.Stdout)
	}
	mu.Lock()
	if cut < 3 {
		t.Fatalf("%d uploads were cut, want every layer's", cut)
	}
	mu.Unlock()
	s.ok("system", "check")
	s.checkConsistent()
	bigLayer := digest.FromBytes(img.Layers[1])
	if _, err := os.Stat(filepath.Join(s.root, "conversions", bigLayer.Encoded()+".gzip")); err == nil {
		t.Fatal("the layer whose upload was cut has a conversion")
	}

	// The small layers' compressions may have ended before the cut: those
	// are kept, whole, and uploaded from the store.
	p.set(nil, nil)
	out := s.ok("push", repo+":1")
	if !strings.Contains(out, bigLayer.Encoded()[:12]+": Compressing (gzip)") || strings.Count(out, ": Pushed") != 3 {
		t.Fatalf("push after the cut:\n%s", out)
	}
	m, _, md, _ := remoteManifest(t, repo, "1")
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(remoteBlob(t, repo, m.Config.Digest), &cfg); err != nil || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("config: %v %+v", err, cfg)
	}
	for i, l := range m.Layers {
		b := remoteBlob(t, repo, l.Digest)
		if l.MediaType != ocispec.MediaTypeImageLayerGzip || digest.FromBytes(b) != l.Digest || int64(len(b)) != l.Size {
			t.Fatalf("layer %d: %d bytes of digest %s, the manifest says %+v", i, len(b), digest.FromBytes(b), l)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		h := digest.SHA256.Digester()
		if _, err := io.Copy(h.Hash(), zr); err != nil || h.Digest() != cfg.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d decompresses to %s (%v), its diff ID is %s", i, h.Digest(), err, cfg.RootFS.DiffIDs[i])
		}
	}
	direct := strings.Replace(repo, p.Addr, reg, 1)
	oci := t.TempDir()
	if out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+direct+":1", "oci:"+oci+":1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy of what cairn pushed: %v\n%s", err, out)
	}
	defer docker.RunErr("rmi", "-f", direct+":1")
	docker.Run(t, "pull", direct+":1")
	if got := docker.Run(t, "run", "--rm", "--network", "none", direct+":1"); got != "layered "+img.Names[0]+"\n" {
		t.Fatalf("docker run of what cairn pushed: %q", got)
	}

	// Warm: the layers are remembered; the same manifest, nothing compressed.
	s.ok("tag", repo+":1", repo+":2")
	out = s.ok("push", repo+":2")
	if strings.Contains(out, "Compressing") || strings.Count(out, "Layer already exists") != 3 {
		t.Fatalf("warm push:\n%s", out)
	}
	if _, _, md2, _ := remoteManifest(t, repo, "2"); md2 != md {
		t.Fatalf("the warm push pushed manifest %s, the cold one %s", md2, md)
	}
}
