package registry_test

// Pushes of layers the store keeps uncompressed, which are compressed as
// they are uploaded (image.Store.Compress), against the in-memory registry
// of memory_test.go.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-runtime/cairn/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// conversions lists the store's conversion records.
func (s *store) conversions(t *testing.T) []string {
	t.Helper()
	n, err := filepath.Glob(filepath.Join(s.dir, "conversions", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pulledUncompressed is a store holding, as reg's team/raw:1, an image of
// uncompressed layers: one of size bytes (random: several of the gzip writer's blocks
// of 1 MiB when big), one small, and the first again (a layer an image has
// twice is uploaded once).
func pulledUncompressed(t *testing.T, reg *memRegistry, size int) (*store, *registry.Client, [][]byte) {
	t.Helper()
	big, small := layerTar(t, "big", size), layerTar(t, "small", 100)
	tars := [][]byte{big, small, big}
	reg.put(t, "team/raw:1", uncompressedImage(t, tars...))
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(testContext(t), reg.Host+"/team/raw:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	return s, c, tars
}

// checkPushed checks that repo:1 of reg is the image of tars, each layer
// gzip, whole (its bytes have its digest and size) and the blob the store
// kept as the layer's conversion.
func checkPushed(t *testing.T, reg *memRegistry, s *store, repo string, tars [][]byte) {
	t.Helper()
	_, m := reg.remoteManifest(t, repo+":1")
	if len(m.Layers) != len(tars) {
		t.Fatalf("%s: layers %v", repo, m.Layers)
	}
	for i, l := range m.Layers {
		b := reg.rawBlob(t, repo, l.Digest)
		if digest.FromBytes(b) != l.Digest || int64(len(b)) != l.Size || l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Fatalf("layer %d as the registry has it: %d bytes of digest %s; the manifest says %+v", i, len(b), digest.FromBytes(b), l)
		}
		if u, err := gunzip(b); err != nil || !bytes.Equal(u, tars[i]) {
			t.Fatalf("layer %d does not decompress to the store's layer: %v", i, err)
		}
		if !bytes.Equal(s.blob(t, l.Digest), b) {
			t.Fatalf("layer %d: the store does not keep what it uploaded", i)
		}
	}
}

// A cold push compresses each layer as it uploads it: the bytes uploaded
// are the blob the store keeps and remembers, the manifest comes after
// its layers, and the progress counts the layer's uncompressed bytes.
func TestMemoryPushCompressesAsItUploads(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	s, c, tars := pulledUncompressed(t, reg, 3<<20+5)
	target := reg.Host + "/team/gz:1"
	if _, err := s.Tag(ctx, reg.Host+"/team/raw:1", target); err != nil {
		t.Fatal(err)
	}
	reg.reset()
	var ev events
	if _, err := c.Push(ctx, target, registry.PushOptions{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	log := reg.requests(nil)
	checkPushed(t, reg, s, "team/gz", tars)
	if n := s.conversions(t); len(n) != 2 {
		t.Fatalf("want a conversion for each of the 2 layers, got %v", n)
	}
	s.noTemporaries(t)

	manifest := slices.IndexFunc(log, func(q request) bool { return q.Method == http.MethodPut && strings.Contains(q.Path, "/manifests/") })
	if manifest < 0 {
		t.Fatalf("no manifest pushed: %v", log)
	}
	uploads := 0
	for i, q := range log {
		if q.Method == http.MethodPut && q.Query.Get("digest") != "" {
			uploads++
			if i > manifest {
				t.Fatalf("a blob was uploaded after the manifest: %v", log)
			}
		}
	}
	if uploads != 2 { // the two layers (the registry has the config, from team/raw)
		t.Fatalf("want 2 blob uploads, got %d: %v", uploads, log)
	}

	_, _, layers := digests(t, uncompressedImage(t, tars...))
	for i, l := range layers[:2] {
		st := ev.statuses(l)
		if !slices.Equal(st, []string{"Preparing", "Compressing (gzip)", "Pushed"}) && !slices.Equal(st, []string{"Preparing", "Preparing", "Compressing (gzip)", "Pushed"}) {
			t.Errorf("layer %d: events %v", i, st)
		}
		var last registry.Event
		for _, e := range ev.all {
			if e.Digest == l && e.Status == "Pushing" {
				last = e
			}
		}
		if last.Total != int64(len(tars[i])) || last.Current != last.Total {
			t.Errorf("layer %d: last progress %d of %d, want %d of it", i, last.Current, last.Total, len(tars[i]))
		}
	}
}

// dropUploads makes the registry drop the connection of each PATCH of a
// blob of repo after taking 256 KiB of it, the first n of them (all if n
// is negative). It returns the count of those dropped.
func dropUploads(reg *memRegistry, repo string, n int) func() int {
	var mu sync.Mutex
	dropped := 0
	reg.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodPatch || !strings.HasPrefix(r.URL.Path, "/v2/"+repo+"/blobs/uploads/") {
			return false
		}
		mu.Lock()
		drop := n < 0 || dropped < n
		if drop {
			dropped++
		}
		mu.Unlock()
		if !drop {
			return false
		}
		io.CopyN(io.Discard, r.Body, 256<<10)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	return func() int { mu.Lock(); defer mu.Unlock(); return dropped }
}

// A push whose uploads are cut midway every time fails and leaves no
// compressed blob half-made, and none recorded but whole: the big layer
// has no conversion, the small one (whose upload may end before the cut)
// at most one that decompresses to it. The next push compresses again and
// is whole, and the one after reuses what it kept.
func TestMemoryPushCutMidwayKeepsNothing(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	// Bigger than what the sockets between them hold, so that the cut is
	// before the end of the layer's compression.
	s, c, tars := pulledUncompressed(t, reg, 32<<20)
	target := reg.Host + "/team/cut:1"
	if _, err := s.Tag(ctx, reg.Host+"/team/raw:1", target); err != nil {
		t.Fatal(err)
	}
	dropped := dropUploads(reg, "team/cut", -1)
	if _, err := c.Push(ctx, target, registry.PushOptions{}); err == nil {
		t.Fatal("a push whose every upload is cut succeeded")
	}
	if dropped() < 2 {
		t.Fatalf("only %d uploads were tried", dropped())
	}
	if r := s.Check(false); len(r.Problems) != 0 {
		t.Fatalf("the store after a failed push: %+v", r.Problems)
	}
	s.noTemporaries(t)
	_, _, layers := digests(t, uncompressedImage(t, tars...))
	for _, p := range s.conversions(t) {
		var conv struct{ Blob ocispec.Descriptor }
		b, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(b, &conv) != nil {
			t.Fatalf("conversion %s: %v %s", p, err, b)
		}
		if !strings.HasPrefix(filepath.Base(p), layers[1].Encoded()+".") {
			t.Fatalf("a conversion of a layer whose upload was cut: %s", p)
		}
		if u, err := gunzip(s.blob(t, conv.Blob.Digest)); err != nil || !bytes.Equal(u, tars[1]) {
			t.Fatalf("conversion %s names a blob that is not its layer: %v", p, err)
		}
	}

	reg.setHook(nil)
	if _, err := c.Push(ctx, target, registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	checkPushed(t, reg, s, "team/cut", tars)
	var ev events
	reg.reset()
	if _, err := c.Push(ctx, target, registry.PushOptions{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	if ev.any("Compressing") || len(reg.requests(isUpload)) != 0 {
		t.Fatalf("a third push compressed or uploaded again: %v", reg.requests(isUpload))
	}
}

// An upload cut once is tried again, from a new compression of the layer
// (the bytes sent are gone): the push succeeds, whole, and the store keeps
// one blob of each compressed layer and nothing half-made.
func TestMemoryPushRetriesACutUpload(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	s, c, tars := pulledUncompressed(t, reg, 3<<20+5)
	target := reg.Host + "/team/retry:1"
	if _, err := s.Tag(ctx, reg.Host+"/team/raw:1", target); err != nil {
		t.Fatal(err)
	}
	blobs := len(s.blobs(t))
	dropped := dropUploads(reg, "team/retry", 2)
	if _, err := c.Push(ctx, target, registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if dropped() != 2 {
		t.Fatalf("%d uploads cut, want 2", dropped())
	}
	reg.setHook(nil)
	checkPushed(t, reg, s, "team/retry", tars)
	if got := len(s.blobs(t)); got != blobs+2 {
		t.Fatalf("the store has %d blobs, want %d and the 2 compressed layers", got, blobs)
	}
	if n := s.conversions(t); len(n) != 2 {
		t.Fatalf("conversions %v", n)
	}
	s.noTemporaries(t)
	if _, err := os.Stat(filepath.Join(s.dir, "sources")); err != nil {
		t.Fatalf("the pushed layers' repository is not recorded: %v", err)
	}
}
