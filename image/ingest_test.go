package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeUnpacker reads a layer to its end and remembers what was committed.
type fakeUnpacker struct {
	mu        sync.Mutex
	n         int
	pending   map[string]bool
	committed map[digest.Digest]digest.Digest // chain ID → diff ID
	gate      chan struct{}                   // if not nil, an unpack ends once it is closed
}

func newFakeUnpacker() *fakeUnpacker {
	return &fakeUnpacker{pending: map[string]bool{}, committed: map[digest.Digest]digest.Digest{}}
}

func (u *fakeUnpacker) Exists(chain digest.Digest) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.committed[chain]
	return ok
}

func (u *fakeUnpacker) Unpack(ctx context.Context, r io.Reader) (string, error) {
	tr := tar.NewReader(r)
	for {
		if _, err := tr.Next(); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	if u.gate != nil {
		select {
		case <-u.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	key := fmt.Sprint("k", u.n)
	u.pending[key] = true
	return key, nil
}

func (u *fakeUnpacker) Commit(key string, chain, parent, diffID digest.Digest) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.pending[key] {
		return fmt.Errorf("no pending %q", key)
	}
	delete(u.pending, key)
	u.committed[chain] = diffID
	return nil
}

func (u *fakeUnpacker) Discard(key string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.pending, key)
	return nil
}

func testStore(t *testing.T) (*Store, *fakeUnpacker) {
	t.Helper()
	dir := t.TempDir()
	u := newFakeUnpacker()
	s, err := Open(filepath.Join(dir, "images"), filepath.Join(dir, "tmp"), filepath.Join(dir, "locks"), u)
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

func tarOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	return b.Bytes()
}

func gzipOf(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// remote is a two-layer image, the first gzip, the second plain.
func remote(t *testing.T) (Remote, [][]byte) {
	t.Helper()
	l1, l2 := tarOf(t, "a", strings.Repeat("a", 3<<20)), tarOf(t, "b", "b")
	blobs := [][]byte{gzipOf(l1), l2}
	var c Config
	c.OS, c.Architecture, c.RootFS.Type = "linux", "amd64", "layers"
	c.RootFS.DiffIDs = []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)}
	cb, _ := json.Marshal(c)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))},
		Layers: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blobs[0]), Size: int64(len(blobs[0]))},
			{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blobs[1]), Size: int64(len(blobs[1]))},
		},
	}
	mb, _ := json.Marshal(m)
	return Remote{Manifest: mb, Config: cb, Name: "example.com/x:1"}, blobs
}

// serve opens the layers from blobs, counting what is opened.
func serve(m []byte, blobs [][]byte, opened *[]digest.Digest, mu *sync.Mutex) func(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	var man ocispec.Manifest
	json.Unmarshal(m, &man)
	return func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		mu.Lock()
		*opened = append(*opened, d.Digest)
		mu.Unlock()
		for i, l := range man.Layers {
			if l.Digest == d.Digest {
				return io.NopCloser(bytes.NewReader(blobs[i])), nil
			}
		}
		return nil, errors.New("no such layer")
	}
}

func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestFetchKeepsWhatIsWholeAndNamesLast(t *testing.T) {
	s, u := testStore(t)
	r, blobs := remote(t)
	var man ocispec.Manifest
	json.Unmarshal(r.Manifest, &man)
	var mu sync.Mutex
	var opened []digest.Digest

	// The second layer tampered with: the first is kept, the second not,
	// nothing named. One layer at a time: the first is whole before the
	// second fails (which cancels the layers still coming).
	bad := [][]byte{blobs[0], append([]byte{}, blobs[1]...)}
	bad[1][0] ^= 1
	r.Open, r.Jobs = serve(r.Manifest, bad, &opened, &mu), 1
	_, err := s.Fetch(context.Background(), r)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), man.Layers[1].Digest.String()) {
		t.Fatalf("tampered layer: %v", err)
	}
	if !s.HasBlob(man.Layers[0].Digest) || s.HasBlob(man.Layers[1].Digest) {
		t.Fatalf("blobs kept: %v %v", s.HasBlob(man.Layers[0].Digest), s.HasBlob(man.Layers[1].Digest))
	}
	var c Config
	json.Unmarshal(r.Config, &c)
	chains := ChainIDs(c.RootFS.DiffIDs)
	if !u.Exists(chains[0]) || u.Exists(chains[1]) || len(u.pending) != 0 {
		t.Fatalf("snapshots: %v, pending %v", u.committed, u.pending)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("named before it is whole: %v", imgs)
	}
	if left := tmpFiles(t, s); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}

	// Too many bytes.
	long := [][]byte{blobs[0], append(append([]byte{}, blobs[1]...), 0)}
	r.Open = serve(r.Manifest, long, &opened, &mu)
	if _, err := s.Fetch(context.Background(), r); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("long layer: %v", err)
	}

	// Run again: only the missing layer is fetched.
	opened = nil
	r.Open, r.Jobs = serve(r.Manifest, blobs, &opened, &mu), 0
	var events []string
	r.Progress = func(e LayerEvent) {
		mu.Lock()
		events = append(events, e.Status)
		mu.Unlock()
	}
	img, err := s.Fetch(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(opened) != 1 || opened[0] != man.Layers[1].Digest {
		t.Fatalf("opened %v", opened)
	}
	if !u.Exists(chains[1]) || u.committed[chains[1]] != c.RootFS.DiffIDs[1] || len(u.pending) != 0 {
		t.Fatalf("snapshots: %v, pending %v", u.committed, u.pending)
	}
	if got, err := s.Lookup("example.com/x:1"); err != nil || got.ID != img.ID {
		t.Fatalf("lookup: %v %v", got, err)
	}
	joined := strings.Join(events, ",")
	if !strings.Contains(joined, "Already exists") || !strings.Contains(joined, "Download complete") || !strings.HasSuffix(joined, "Pull complete") {
		t.Fatalf("events %s", joined)
	}
}

func TestFetchCancelled(t *testing.T) {
	s, u := testStore(t)
	r, blobs := remote(t)
	ctx, cancel := context.WithCancel(context.Background())
	r.Open = func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		i := 0
		if d.Size == int64(len(blobs[1])) {
			i = 1
		}
		return io.NopCloser(io.MultiReader(bytes.NewReader(blobs[i][:len(blobs[i])/2]), readerFunc(func([]byte) (int, error) {
			cancel()
			return 0, nil
		}), bytes.NewReader(blobs[i][len(blobs[i])/2:]))), nil
	}
	if _, err := s.Fetch(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if len(u.pending) != 0 || len(tmpFiles(t, s)) != 0 {
		t.Fatalf("left: pending %v, tmp %v", u.pending, tmpFiles(t, s))
	}
}

// A layer is "Download complete" once its last byte is in and checked,
// while its unpack may still be behind: the unpack here waits for that
// event to end.
func TestFetchDownloadCompleteBeforeUnpacked(t *testing.T) {
	s, u := testStore(t)
	u.gate = make(chan struct{})
	r, blobs := remote(t)
	var mu sync.Mutex
	var opened []digest.Digest
	r.Open, r.Jobs = serve(r.Manifest, blobs, &opened, &mu), 1
	var events []string
	r.Progress = func(e LayerEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e.Status)
		if e.Status == "Download complete" {
			select {
			case <-u.gate:
			default:
				close(u.gate)
			}
		}
	}
	// The deadline only ends a Fetch that would wait for ever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Fetch(ctx, r); err != nil {
		t.Fatalf("the unpack waited for a Download complete that waited for the unpack: %v (events %v)", err, events)
	}
}

// A layer whose bytes are those of the manifest but whose content is not
// what the config says is refused, named, and nothing of it is kept: no
// blob, no snapshot, no name.
func TestFetchRefusesWrongDiffID(t *testing.T) {
	s, u := testStore(t)
	r, blobs := remote(t)
	var c Config
	json.Unmarshal(r.Config, &c)
	c.RootFS.DiffIDs[0] = digest.FromString("another layer")
	r.Config, _ = json.Marshal(c)
	var man ocispec.Manifest
	json.Unmarshal(r.Manifest, &man)
	man.Config.Digest, man.Config.Size = digest.FromBytes(r.Config), int64(len(r.Config))
	r.Manifest, _ = json.Marshal(man)
	var mu sync.Mutex
	var opened []digest.Digest
	r.Open, r.Jobs = serve(r.Manifest, blobs, &opened, &mu), 1
	_, err := s.Fetch(context.Background(), r)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), man.Layers[0].Digest.String()) || !strings.Contains(err.Error(), "diff ID") {
		t.Fatalf("want ErrInvalid naming layer %s and its diff ID: %v", man.Layers[0].Digest, err)
	}
	if s.HasBlob(man.Layers[0].Digest) || len(u.committed) != 0 || len(u.pending) != 0 || len(tmpFiles(t, s)) != 0 {
		t.Fatalf("kept: blob %v, snapshots %v, pending %v, tmp %v", s.HasBlob(man.Layers[0].Digest), u.committed, u.pending, tmpFiles(t, s))
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("named: %v", imgs)
	}
}

// A connection that dies in the middle of a layer (the registry client's
// resumes used up) fails the pull and leaves the store as it was; the pull
// run again gets the whole image.
func TestFetchConnectionDiesMidLayer(t *testing.T) {
	s, u := testStore(t)
	r, blobs := remote(t)
	r.Jobs = 1
	r.Open = func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		i := 0
		if d.Size == int64(len(blobs[1])) {
			i = 1
		}
		cut := blobs[i][:len(blobs[i])/2]
		return io.NopCloser(io.MultiReader(bytes.NewReader(cut), readerFunc(func([]byte) (int, error) {
			return 0, io.ErrUnexpectedEOF
		}))), nil
	}
	_, err := s.Fetch(context.Background(), r)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a layer cut short: %v", err)
	}
	if blobsIn(t, s) != 0 || len(u.committed) != 0 || len(u.pending) != 0 || len(tmpFiles(t, s)) != 0 {
		t.Fatalf("kept: %d blobs, snapshots %v, pending %v, tmp %v", blobsIn(t, s), u.committed, u.pending, tmpFiles(t, s))
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("named: %v", imgs)
	}
	var mu sync.Mutex
	var opened []digest.Digest
	r.Open, r.Jobs = serve(r.Manifest, blobs, &opened, &mu), 0
	img, err := s.Fetch(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	json.Unmarshal(r.Config, &c)
	for i, chain := range ChainIDs(c.RootFS.DiffIDs) {
		if u.committed[chain] != c.RootFS.DiffIDs[i] {
			t.Fatalf("snapshot of layer %d: %v", i+1, u.committed)
		}
	}
	if got, err := s.Lookup("example.com/x:1"); err != nil || got.ID != img.ID {
		t.Fatalf("lookup: %v %v", got, err)
	}
}

// blobsIn counts the blobs of s.
func blobsIn(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return len(ents)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestLoadAndDeriveIngest(t *testing.T) {
	s, u := testStore(t)
	l1 := tarOf(t, "a", strings.Repeat("a", 2<<20))
	var c Config
	c.OS, c.Architecture, c.RootFS.Type = "linux", "amd64", "layers"
	c.RootFS.DiffIDs = []digest.Digest{digest.FromBytes(l1)}
	cb, _ := json.Marshal(c)
	var a bytes.Buffer
	tw := tar.NewWriter(&a)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("cfg.json", cb)
	add("l1/layer.tar", gzipOf(l1))
	add("manifest.json", []byte(`[{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["l1/layer.tar"]}]`))
	tw.Close()
	imgs, err := s.Load(context.Background(), bytes.NewReader(a.Bytes()))
	if err != nil || len(imgs) != 1 {
		t.Fatalf("load: %v %v", imgs, err)
	}
	img, err := s.Derive(context.Background(), &imgs[0], bytes.NewReader(tarOf(t, "b", "b")), DeriveOptions{Name: "x:2", What: "commit of x"})
	if err != nil {
		t.Fatal(err)
	}
	chains, err := s.EnsureSnapshots(context.Background(), img)
	if err != nil || len(chains) != 2 || !u.Exists(chains[0]) || !u.Exists(chains[1]) || len(u.pending) != 0 {
		t.Fatalf("snapshots %v %v: %v, pending %v", chains, err, u.committed, u.pending)
	}
	if left := tmpFiles(t, s); len(left) != 0 {
		t.Fatalf("left in tmp: %v", left)
	}
	// A compressed layer is no layer of Derive's; nothing is kept.
	before := len(u.committed)
	if _, err := s.Derive(context.Background(), &img, bytes.NewReader(gzipOf(tarOf(t, "c", "c"))), DeriveOptions{What: "commit of y"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compressed derive: %v", err)
	}
	if len(u.committed) != before || len(u.pending) != 0 || len(tmpFiles(t, s)) != 0 {
		t.Fatalf("kept: %v, pending %v, tmp %v", u.committed, u.pending, tmpFiles(t, s))
	}
}
