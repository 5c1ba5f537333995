package registry_test

// Pulls and pushes against go-containerregistry's in-memory registry on a
// loopback port (plain HTTP, as cairn takes loopback registries to be
// insecure): no root, no Docker, no network. The store is opened without
// an unpacker, so layers are stored but not unpacked. The root-only
// end-to-end tests of the CLI against a real registry are in
// integration/registry_test.go.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/registry"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testTimeout bounds each test's pulls and pushes.
const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ---- the registry ----

// memRegistry is go-containerregistry's in-memory registry behind a
// handler that logs every request and lets a test answer some itself.
type memRegistry struct {
	Host  string // 127.0.0.1:PORT
	URL   string // http://127.0.0.1:PORT
	inner http.Handler
	mu    sync.Mutex
	log   []*request
	hook  func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

// request is a logged request, with the status it was answered (set before
// the client can see the answer).
type request struct {
	Method, Path, Range string
	Query               url.Values
	Status              int
}

func (q *request) String() string {
	s := q.Method + " " + q.Path
	if len(q.Query) > 0 {
		s += "?" + q.Query.Encode()
	}
	if q.Range != "" {
		s += " Range:" + q.Range
	}
	return fmt.Sprintf("%s → %d", s, q.Status)
}

func newMemRegistry(t *testing.T, opts ...ggcr.Option) *memRegistry {
	t.Helper()
	r := &memRegistry{inner: ggcr.New(append(opts, ggcr.Logger(log.New(io.Discard, "", 0)))...)}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *memRegistry) serve(w http.ResponseWriter, req *http.Request) {
	e := &request{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Range: req.Header.Get("Range")}
	r.mu.Lock()
	r.log = append(r.log, e)
	hook := r.hook
	r.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w, r: r, e: e}
	if hook != nil && hook(sw, req, r.inner) {
		return
	}
	r.inner.ServeHTTP(sw, req)
}

type statusWriter struct {
	http.ResponseWriter
	r *memRegistry
	e *request
}

func (w *statusWriter) WriteHeader(code int) {
	w.r.mu.Lock()
	if w.e.Status == 0 {
		w.e.Status = code
	}
	w.r.mu.Unlock()
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	if w.e.Status == 0 {
		w.e.Status = http.StatusOK
	}
	w.r.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setHook sets the hook and forgets the requests logged so far.
func (r *memRegistry) setHook(h func(w http.ResponseWriter, req *http.Request, next http.Handler) bool) {
	r.mu.Lock()
	r.hook = h
	r.log = nil
	r.mu.Unlock()
}

func (r *memRegistry) reset() { r.mu.Lock(); r.log = nil; r.mu.Unlock() }

// requests are the logged requests for which keep is true (all, if nil).
func (r *memRegistry) requests(keep func(*request) bool) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []request
	for _, e := range r.log {
		if keep == nil || keep(e) {
			out = append(out, *e)
		}
	}
	return out
}

func blobGets(d digest.Digest) func(*request) bool {
	return func(q *request) bool {
		return q.Method == http.MethodGet && strings.HasSuffix(q.Path, "/blobs/"+d.String())
	}
}

func isBlobRequest(q *request) bool { return strings.Contains(q.Path, "/blobs/") }

// isUpload: a request that sends a blob's bytes (or finishes sending them).
func isUpload(q *request) bool {
	return strings.Contains(q.Path, "/blobs/uploads/") && (q.Method == http.MethodPatch || q.Method == http.MethodPut ||
		q.Method == http.MethodPost && q.Query.Get("digest") != "")
}

// uploaded lists the digests of the blobs uploaded (PUT …/uploads/…?digest=).
func (r *memRegistry) uploaded() []string {
	var out []string
	for _, q := range r.requests(isUpload) {
		if d := q.Query.Get("digest"); d != "" {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func (r *memRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// put writes img (an image or an index) to repo:tag of the registry,
// straight, and forgets the requests that took.
func (r *memRegistry) put(t *testing.T, repoTag string, x any, opts ...remote.Option) {
	t.Helper()
	ref := r.ref(t, repoTag)
	var err error
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(ref, x, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, x, opts...)
	default:
		t.Fatalf("put %T", x)
	}
	if err != nil {
		t.Fatalf("put %s: %v", ref, err)
	}
	r.reset()
}

// rawBlob reads a blob of repo straight from the registry.
func (r *memRegistry) rawBlob(t *testing.T, repo string, d digest.Digest) []byte {
	t.Helper()
	resp, err := http.Get(r.URL + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s of %s: %s %v", d, repo, resp.Status, err)
	}
	r.reset()
	return b
}

// remoteManifest reads the manifest of repo:tag straight from the registry.
func (r *memRegistry) remoteManifest(t *testing.T, repoTag string, opts ...remote.Option) (*remote.Descriptor, ocispec.Manifest) {
	t.Helper()
	desc, err := remote.Get(r.ref(t, repoTag), opts...)
	if err != nil {
		t.Fatalf("get %s: %v", repoTag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	r.reset()
	return desc, m
}

// modifyResponse serves req with next, then changes the body with change.
func modifyResponse(w http.ResponseWriter, req *http.Request, next http.Handler, change func([]byte) []byte) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, req)
	b := change(rec.Body.Bytes())
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(rec.Code)
	w.Write(b)
}

// scopedBlobs is a blob handler that keeps each repository's blobs apart
// (the default one shares them all), so that a push to another repository
// must upload or mount.
type scopedBlobs struct {
	mu sync.Mutex
	m  map[string][]byte // repository@digest
}

// key: go-containerregistry's registry names the repository of an upload's
// final PUT <repo>/blobs (it cuts /v2/<repo>/blobs/uploads/<id> one element short).
func (b *scopedBlobs) key(repo string, h v1.Hash) string {
	return strings.TrimSuffix(repo, "/blobs") + "@" + h.String()
}

func (b *scopedBlobs) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[b.key(repo, h)]
	if !ok {
		return 0, ggcr.ErrNotFound
	}
	return int64(len(v)), nil
}

func (b *scopedBlobs) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[b.key(repo, h)]
	if !ok {
		return nil, ggcr.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

func (b *scopedBlobs) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	v, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[b.key(repo, h)] = v
	return nil
}

// mountHook answers a cross-repository mount (POST
// /v2/<to>/blobs/uploads/?mount=<digest>&from=<from>), which
// go-containerregistry's registry does not know, when from has the blob.
func (b *scopedBlobs) mountHook(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	q := r.URL.Query()
	mount, from := q.Get("mount"), q.Get("from")
	if r.Method != http.MethodPost || mount == "" || from == "" || !strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
		return false
	}
	to := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/uploads/")
	b.mu.Lock()
	v, ok := b.m[from+"@"+mount]
	if ok {
		b.m[to+"@"+mount] = v
	}
	b.mu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Location", "/v2/"+to+"/blobs/"+mount)
	w.Header().Set("Docker-Content-Digest", mount)
	w.WriteHeader(http.StatusCreated)
	return true
}

// ---- the store ----

type store struct {
	*image.Store
	dir, root, tmp string
}

func newStore(t *testing.T) *store {
	t.Helper()
	dir := t.TempDir()
	s := &store{dir: dir, root: filepath.Join(dir, "images"), tmp: filepath.Join(dir, "tmp")}
	var err error
	s.Store, err = image.Open(s.root, s.tmp, filepath.Join(dir, "locks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// names reads index.json: each name's manifest; unnamed entries under "".
func (s *store) names(t *testing.T) map[string]digest.Digest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	out := map[string]digest.Digest{}
	for _, m := range idx.Manifests {
		out[m.Annotations[ocispec.AnnotationRefName]] = m.Digest
	}
	return out
}

// blobs lists the blobs of the store, each checked against its digest.
func (s *store) blobs(t *testing.T) map[digest.Digest]bool {
	t.Helper()
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[digest.Digest]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if got := digest.FromBytes(b); got != d {
			t.Fatalf("blob %s holds bytes of digest %s", d, got)
		}
		out[d] = true
	}
	return out
}

func (s *store) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	b, err := os.ReadFile(s.BlobPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fingerprint is every file of the store (but the lock files) with the
// digest of its content: what "the store is unchanged" compares.
func (s *store) fingerprint(t *testing.T) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		if d.IsDir() {
			if rel == "locks" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", rel, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func (s *store) unchanged(t *testing.T, before, what string) {
	t.Helper()
	if got := s.fingerprint(t); got != before {
		t.Fatalf("%s changed the store:\nbefore:\n%s\nafter:\n%s", what, before, got)
	}
}

// noTemporaries: nothing half-made is left in the temporary directory.
func (s *store) noTemporaries(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		t.Fatalf("temporary files left: %v", n)
	}
}

// hasImage checks that the store names img as name, with all its blobs.
func (s *store) hasImage(t *testing.T, name string, img v1.Image) {
	t.Helper()
	md, cfg, layers := digests(t, img)
	if got := s.names(t)[name]; got != md {
		t.Fatalf("index.json: %s names %q, want %s (names: %v)", name, got, md, s.names(t))
	}
	blobs := s.blobs(t)
	for _, d := range append([]digest.Digest{md, cfg}, layers...) {
		if !blobs[d] {
			t.Fatalf("blob %s of %s missing", d, name)
		}
	}
	got, err := s.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != cfg || got.Manifest.Digest != md {
		t.Fatalf("lookup %s: %+v, want ID %s manifest %s", name, got, cfg, md)
	}
	s.noTemporaries(t)
}

// ---- images ----

// hashDigest is a go-containerregistry hash as a digest (the images are
// the test's own: an error is a bug of the test).
func hashDigest(h v1.Hash, err error) digest.Digest {
	if err != nil {
		panic(err)
	}
	return digest.Digest(h.String())
}

// digests: img's manifest, config and layers.
func digests(t *testing.T, img v1.Image) (md, cfg digest.Digest, layers []digest.Digest) {
	t.Helper()
	md = hashDigest(img.Digest())
	cfg = hashDigest(img.ConfigName())
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		layers = append(layers, hashDigest(l.Digest()))
	}
	return md, cfg, layers
}

// randomImage is a Docker image of n gzip layers of random content, for
// platform (os/arch[/variant]; empty: none in its config).
func randomImage(t *testing.T, n int64, size int64, platform string) v1.Image {
	t.Helper()
	img, err := random.Image(size, n)
	if err != nil {
		t.Fatal(err)
	}
	if platform != "" {
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func appendLayer(t *testing.T, base v1.Image, l v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerTar is an uncompressed layer: one file of random bytes.
func layerTar(t *testing.T, path string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// uncompressedImage is an OCI image whose layers are uncompressed tars.
func uncompressedImage(t *testing.T, tars ...[]byte) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, b := range tars {
		img = appendLayer(t, img, static.NewLayer(b, types.OCIUncompressedLayer))
	}
	return img
}

// events collects the progress events of a pull or a push.
type events struct {
	mu  sync.Mutex
	all []registry.Event
}

func (e *events) add(ev registry.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

// statuses are the statuses of layer d, in order.
func (e *events) statuses(d digest.Digest) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Digest == d && ev.Status != "Downloading" && ev.Status != "Pushing" {
			out = append(out, ev.Status)
		}
	}
	return out
}

func (e *events) any(status string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if strings.HasPrefix(ev.Status, status) {
			return true
		}
	}
	return false
}

// keychain gives the credentials of each registry host.
type keychain map[string]authn.Authenticator

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

// ---- pulls ----

// A pull by tag stores the manifest, config and layers the registry has,
// each under its digest, and names the image; a pull by digest names it by
// the digest, and fetches no blob the store has.
func TestMemoryPullByTagAndDigest(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	img := randomImage(t, 3, 16<<10, "")
	reg.put(t, "team/app:1", img)
	md, cfg, layers := digests(t, img)

	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	var ev events
	p, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	tagName := reg.Host + "/team/app:1"
	if p.Name != tagName || p.Digest != md || p.Image.ID != cfg || p.Image.Manifest.Digest != md || p.UpToDate || p.Mirror != "" {
		t.Fatalf("pulled %+v; want name %s, digest %s, ID %s", p, tagName, md, cfg)
	}
	s.hasImage(t, tagName, img)
	if got := s.names(t); len(got) != 1 {
		t.Fatalf("index.json names %v, want only %s", got, tagName)
	}
	if got := s.blobs(t); len(got) != 2+len(layers) {
		t.Fatalf("the store has %d blobs, want the manifest, the config and %d layers", len(got), len(layers))
	}
	if !bytes.Equal(s.blob(t, md), func() []byte { b, _ := img.RawManifest(); return b }()) {
		t.Fatal("the manifest must be stored as the registry served it")
	}
	for _, l := range layers {
		if st := ev.statuses(l); !slices.Equal(st, []string{"Pulling fs layer", "Download complete", "Pull complete"}) {
			t.Errorf("events of layer %s: %v", l, st)
		}
		if n := len(reg.requests(blobGets(l))); n != 1 {
			t.Errorf("layer %s fetched %d times", l, n)
		}
	}

	// By digest, into the same store: a second name, nothing fetched again.
	reg.reset()
	digestName := reg.Host + "/team/app@" + md.String()
	p, err = c.Pull(ctx, digestName, registry.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != digestName || p.Digest != md || !p.UpToDate {
		t.Fatalf("pulled by digest %+v", p)
	}
	if got := reg.requests(isBlobRequest); len(got) != 0 {
		t.Fatalf("a pull by digest of blobs the store has fetched: %v", got)
	}
	if got := s.names(t); len(got) != 2 || got[tagName] != md || got[digestName] != md {
		t.Fatalf("index.json: %v", got)
	}

	// By digest, into an empty store.
	s2 := newStore(t)
	if _, err := registry.New(nil, s2.Store, nil).Pull(ctx, digestName, registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	s2.hasImage(t, digestName, img)
	if got := s2.names(t); len(got) != 1 {
		t.Fatalf("a pull by digest names the image by its digest only: %v", got)
	}
	if _, err := s2.Lookup(tagName); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("a pull by digest must not give the tag: %v", err)
	}

	// localhost is a loopback registry too: plain HTTP, and its name kept.
	_, port, _ := net.SplitHostPort(reg.Host)
	s3 := newStore(t)
	local := "localhost:" + port + "/team/app:1"
	if _, err := registry.New(nil, s3.Store, nil).Pull(ctx, local, registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	s3.hasImage(t, local, img)
}

// From an index, a pull takes the entry of the platform asked (the
// machine's by default) and only its blobs; a platform the index lacks is
// an error that names it and what there is.
func TestMemoryPullPicksPlatformFromIndex(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	platforms := []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}
	if machine := "linux/" + runtime.GOARCH; runtime.GOARCH != "arm" && !slices.Contains(platforms, machine) {
		platforms = append(platforms, machine)
	}
	imgs := map[string]v1.Image{}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		imgs[p] = randomImage(t, 2, 4<<10, p)
		pl, _ := v1.ParsePlatform(p)
		adds = append(adds, mutate.IndexAddendum{Add: imgs[p], Descriptor: v1.Descriptor{Platform: pl}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	reg.put(t, "team/multi:1", idx)
	indexDigest := hashDigest(idx.Digest())
	tagName := reg.Host + "/team/multi:1"

	machine := "linux/" + runtime.GOARCH
	if runtime.GOARCH == "arm" {
		machine = "linux/arm/v7"
	}
	for _, tc := range []struct{ ask, want string }{
		{"", machine},
		{"linux/arm64", "linux/arm64"},
		{"linux/amd64", "linux/amd64"},
		{"linux/arm", "linux/arm/v7"}, // no variant asked: the first arm
		{"linux/arm/v7", "linux/arm/v7"},
	} {
		sub := strings.ReplaceAll(tc.ask, "/", "-")
		if tc.ask == "" {
			sub = "machine"
		}
		t.Run(sub, func(t *testing.T) {
			s := newStore(t)
			reg.reset()
			p, err := registry.New(nil, s.Store, nil).Pull(ctx, tagName, registry.PullOptions{Platform: tc.ask})
			if err != nil {
				t.Fatal(err)
			}
			want := imgs[tc.want]
			md, cfg, layers := digests(t, want)
			if p.Digest != indexDigest || p.Image.Manifest.Digest != md || p.Image.ID != cfg {
				t.Fatalf("pulled %+v; want the index's digest %s and %s's manifest %s", p, indexDigest, tc.want, md)
			}
			s.hasImage(t, tagName, want)
			if got := s.blobs(t); len(got) != 2+len(layers) {
				t.Fatalf("the store has %d blobs, want %s's %d only", len(got), tc.want, 2+len(layers))
			}
			for _, q := range reg.requests(isBlobRequest) {
				d := digest.Digest(q.Path[strings.LastIndex(q.Path, "/")+1:])
				if d != cfg && !slices.Contains(layers, d) {
					t.Fatalf("fetched a blob of another platform: %s", q.String())
				}
			}
		})
	}

	t.Run("none-matches", func(t *testing.T) {
		s := newStore(t)
		before := s.fingerprint(t)
		_, err := registry.New(nil, s.Store, nil).Pull(ctx, tagName, registry.PullOptions{Platform: "linux/s390x"})
		if !errors.Is(err, registry.ErrUnsupported) || !strings.Contains(err.Error(), "linux/s390x") || !strings.Contains(err.Error(), "linux/arm64") {
			t.Fatalf("want ErrUnsupported naming linux/s390x and what the index has, got %v", err)
		}
		s.unchanged(t, before, "a pull for a platform the index lacks")
		if _, err := registry.New(nil, s.Store, nil).Pull(ctx, tagName, registry.PullOptions{Platform: "linux"}); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("a platform without an architecture: want ErrInvalid, got %v", err)
		}
	})

	t.Run("single-platform-mismatch", func(t *testing.T) {
		reg.put(t, "team/single:1", randomImage(t, 1, 1<<10, "linux/amd64"))
		s := newStore(t)
		before := s.fingerprint(t)
		_, err := registry.New(nil, s.Store, nil).Pull(ctx, reg.Host+"/team/single:1", registry.PullOptions{Platform: "linux/arm64"})
		if !errors.Is(err, registry.ErrUnsupported) || !strings.Contains(err.Error(), "linux/arm64") || !strings.Contains(err.Error(), "linux/amd64") {
			t.Fatalf("an image for linux/amd64 pulled for linux/arm64: %v", err)
		}
		s.unchanged(t, before, "a pull of an image for another platform")
	})
}

// A second pull of what the store has asks only for the manifest; a pull
// of an image that shares layers with one the store has fetches only the
// new blobs.
func TestMemorySecondPullFetchesNothing(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	base := randomImage(t, 3, 8<<10, "")
	reg.put(t, "team/app:1", base)
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	tagName := reg.Host + "/team/app:1"
	if _, err := c.Pull(ctx, tagName, registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	names, blobs := s.names(t), s.blobs(t)

	reg.reset()
	var ev events
	p, err := c.Pull(ctx, tagName, registry.PullOptions{Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	if !p.UpToDate {
		t.Fatalf("the second pull must be up to date: %+v", p)
	}
	if got := reg.requests(isBlobRequest); len(got) != 0 {
		t.Fatalf("the second pull fetched blobs: %v", got)
	}
	for _, q := range reg.requests(nil) {
		if q.Path != "/v2/" && q.Path != "/v2/team/app/manifests/1" {
			t.Fatalf("the second pull asked for more than the manifest: %v", reg.requests(nil))
		}
	}
	_, _, layers := digests(t, base)
	for _, l := range layers {
		if st := ev.statuses(l); !slices.Equal(st, []string{"Already exists"}) {
			t.Errorf("events of layer %s: %v", l, st)
		}
	}
	if got := s.names(t); len(got) != len(names) || got[tagName] != names[tagName] {
		t.Fatalf("index.json changed: %v, was %v", got, names)
	}
	if got := s.blobs(t); len(got) != len(blobs) {
		t.Fatalf("blobs changed: %d, were %d", len(got), len(blobs))
	}

	// An image of the same layers and one more.
	l, err := random.Layer(8<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	derived := appendLayer(t, base, l)
	reg.put(t, "team/app:2", derived)
	if _, err := c.Pull(ctx, reg.Host+"/team/app:2", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	_, cfg, _ := digests(t, derived)
	newLayer := hashDigest(l.Digest())
	var got []string
	for _, q := range reg.requests(isBlobRequest) {
		got = append(got, q.Method+" "+q.Path)
	}
	want := []string{"GET /v2/team/app/blobs/" + cfg.String(), "GET /v2/team/app/blobs/" + newLayer.String()}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("a pull of a derived image must fetch its config and its new layer only:\n got %v\nwant %v", got, want)
	}
	s.hasImage(t, reg.Host+"/team/app:2", derived)
	s.hasImage(t, tagName, base)
}

// A blob download cut short resumes where it was: with a range request,
// or, from a registry that ignores ranges, by skipping what it has. When
// the registry refuses the range, the pull fails and leaves nothing: no
// name, no blob of the image, no temporary file.
func TestMemoryPullResumesDroppedDownload(t *testing.T) {
	for _, mode := range []string{"range", "ignored", "refused"} {
		t.Run(mode, func(t *testing.T) {
			ctx := testContext(t)
			reg := newMemRegistry(t)
			img := randomImage(t, 2, 256<<10, "")
			reg.put(t, "team/app:1", img)
			_, _, layers := digests(t, img)
			big := layers[1]
			full := reg.rawBlob(t, "team/app", big)
			half := len(full) / 2
			var mu sync.Mutex
			cut := false
			reg.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+big.String()) {
					return false
				}
				mu.Lock()
				first := !cut
				cut = true
				mu.Unlock()
				var from int
				_, rangeErr := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &from)
				switch {
				case first: // half the bytes, then the connection drops
					w.Header().Set("Content-Length", fmt.Sprint(len(full)))
					w.WriteHeader(http.StatusOK)
					w.Write(full[:half])
					rc := http.NewResponseController(w)
					rc.Flush()
					if conn, _, err := rc.Hijack(); err == nil {
						conn.Close()
					}
				case mode == "refused":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
					io.WriteString(w, `{"errors":[{"code":"RANGE_INVALID","message":"no ranges here"}]}`)
				case mode == "ignored" || rangeErr != nil || from > len(full):
					w.Header().Set("Content-Length", fmt.Sprint(len(full)))
					w.WriteHeader(http.StatusOK)
					w.Write(full)
				default:
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(full)-1, len(full)))
					w.Header().Set("Content-Length", fmt.Sprint(len(full)-from))
					w.WriteHeader(http.StatusPartialContent)
					w.Write(full[from:])
				}
				return true
			})
			s := newStore(t)
			_, err := registry.New(nil, s.Store, nil).Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{})
			gets := reg.requests(blobGets(big))
			var from int
			if len(gets) != 2 || gets[0].Range != "" {
				t.Fatalf("want one full GET of the layer, then one range request: %v", gets)
			}
			if _, serr := fmt.Sscanf(gets[1].Range, "bytes=%d-", &from); serr != nil || from <= 0 || from > half {
				t.Fatalf("the second GET must ask from where the first stopped (byte %d at most): %v", half, gets[1])
			}
			if mode == "refused" {
				if err == nil {
					t.Fatal("a pull whose resume was refused succeeded")
				}
				t.Logf("refused resume: %v", err)
				if s.HasBlob(big) {
					t.Fatal("the layer cut short is in the store")
				}
				if got := s.names(t); len(got) != 0 {
					t.Fatalf("a failed pull named: %v", got)
				}
				s.noTemporaries(t)
				// The other layer may be kept (a pull run again fetches
				// only what it lacks), nothing else.
				if got := s.blobs(t); len(got) > 1 || len(got) == 1 && !got[layers[0]] {
					t.Fatalf("a failed pull left blobs %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.hasImage(t, reg.Host+"/team/app:1", img)
		})
	}
}

// ---- pushes ----

// A pulled image pushed to another repository of the same registry, which
// has its blobs already: nothing is uploaded but the manifest, and the
// manifest is the one pulled.
func TestMemoryPushToAnotherRepositoryUploadsNothing(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t) // one blob store for all repositories
	img := randomImage(t, 3, 8<<10, "")
	reg.put(t, "team/app:1", img)
	md, _, layers := digests(t, img)
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	target := reg.Host + "/team/copy:1"
	if _, err := s.Tag(ctx, reg.Host+"/team/app:1", target); err != nil {
		t.Fatal(err)
	}
	reg.reset()
	var ev events
	p, err := c.Push(ctx, target, registry.PushOptions{Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	if p.Name != target || p.Digest != md || p.Size != int64(len(raw)) {
		t.Fatalf("pushed %+v, want %s %s %d", p, target, md, len(raw))
	}
	if got := reg.requests(isUpload); len(got) != 0 {
		t.Fatalf("blobs uploaded: %v", got)
	}
	puts := reg.requests(func(q *request) bool { return q.Method == http.MethodPut })
	if len(puts) != 1 || puts[0].Path != "/v2/team/copy/manifests/1" || puts[0].Status != http.StatusCreated {
		t.Fatalf("want one PUT, of the manifest: %v", puts)
	}
	for _, l := range layers {
		st := ev.statuses(l)
		if len(st) == 0 || st[len(st)-1] != "Layer already exists" {
			t.Errorf("events of layer %s: %v", l, st)
		}
	}
	desc, _ := reg.remoteManifest(t, "team/copy:1")
	if digest.Digest(desc.Digest.String()) != md {
		t.Fatalf("the registry has %s under team/copy:1, want %s", desc.Digest, md)
	}
}

// Against a registry that keeps each repository's blobs apart, a pulled
// image pushed to another repository has its layers mounted from the one
// it was pulled from: only its config is uploaded.
func TestMemoryPushMountsLayersFromTheirSource(t *testing.T) {
	ctx := testContext(t)
	blobs := &scopedBlobs{m: map[string][]byte{}}
	reg := newMemRegistry(t, ggcr.WithBlobHandler(blobs))
	img := randomImage(t, 3, 8<<10, "")
	reg.put(t, "team/app:1", img)
	md, cfg, layers := digests(t, img)
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	target := reg.Host + "/team/other:1"
	if _, err := s.Tag(ctx, reg.Host+"/team/app:1", target); err != nil {
		t.Fatal(err)
	}
	reg.setHook(blobs.mountHook)
	var ev events
	p, err := c.Push(ctx, target, registry.PushOptions{Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != md {
		t.Fatalf("pushed %s, want %s", p.Digest, md)
	}
	if got := reg.uploaded(); !slices.Equal(got, []string{cfg.String()}) {
		t.Fatalf("uploaded %v, want the config %s only: %v", got, cfg, reg.requests(isUpload))
	}
	for _, l := range layers {
		mounts := reg.requests(func(q *request) bool {
			return q.Method == http.MethodPost && q.Query.Get("mount") == l.String() && q.Query.Get("from") == "team/app"
		})
		if len(mounts) != 1 || mounts[0].Status != http.StatusCreated {
			t.Errorf("layer %s: want one mount from team/app, got %v", l, mounts)
		}
		if st := ev.statuses(l); !slices.Contains(st, "Mounted from team/app") {
			t.Errorf("events of layer %s: %v", l, st)
		}
	}
	// What is there is whole: every blob under team/other, with its digest.
	desc, m := reg.remoteManifest(t, "team/other:1")
	if digest.Digest(desc.Digest.String()) != md {
		t.Fatalf("team/other:1 is %s, want %s", desc.Digest, md)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if b := reg.rawBlob(t, "team/other", d.Digest); digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s of team/other: %d bytes of digest %s", d.Digest, len(b), digest.FromBytes(b))
		}
	}
}

// A layer the store keeps uncompressed is pushed compressed: gzip by
// default, zstd when asked, once (a repeated push converts and uploads
// nothing and pushes the same digest); the image ID stays.
func TestMemoryPushCompressesUncompressedLayers(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	tars := [][]byte{layerTar(t, "a", 64<<10), layerTar(t, "b", 8<<10)}
	img := uncompressedImage(t, tars...)
	reg.put(t, "team/raw:1", img)
	md, cfg, layers := digests(t, img)
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	src := reg.Host + "/team/raw:1"
	if _, err := c.Pull(ctx, src, registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if !bytes.Equal(s.blob(t, l), tars[i]) {
			t.Fatalf("layer %d must be stored uncompressed, as pulled", i)
		}
	}

	for _, tc := range []struct {
		repo      string
		comp      rootfs.Compression
		mediaType string
		magic     []byte
		decode    func([]byte) ([]byte, error)
	}{
		{"team/gz", rootfs.Uncompressed /* the default: gzip */, ocispec.MediaTypeImageLayerGzip, []byte{0x1f, 0x8b}, gunzip},
		{"team/zst", rootfs.Zstd, ocispec.MediaTypeImageLayerZstd, []byte{0x28, 0xb5, 0x2f, 0xfd}, unzstd},
	} {
		t.Run(tc.comp.String(), func(t *testing.T) {
			target := reg.Host + "/" + tc.repo + ":1"
			if _, err := s.Tag(ctx, src, target); err != nil {
				t.Fatal(err)
			}
			reg.reset()
			var ev events
			p, err := c.Push(ctx, target, registry.PushOptions{Compression: tc.comp, Progress: ev.add})
			if err != nil {
				t.Fatal(err)
			}
			uploaded := reg.uploaded()
			if p.Digest == md {
				t.Fatal("a push of converted layers needs a new manifest")
			}
			if !ev.any("Compressing") {
				t.Fatal("the first push must convert")
			}
			desc, m := reg.remoteManifest(t, tc.repo+":1")
			if digest.Digest(desc.Digest.String()) != p.Digest || desc.MediaType != types.OCIManifestSchema1 || int64(len(desc.Manifest)) != p.Size {
				t.Fatalf("the registry has %s (%s, %d bytes), the push said %+v", desc.Digest, desc.MediaType, len(desc.Manifest), p)
			}
			if m.Config.Digest != cfg {
				t.Fatalf("the config (the image ID) must stay: %s, was %s", m.Config.Digest, cfg)
			}
			if len(m.Layers) != len(tars) {
				t.Fatalf("layers %v", m.Layers)
			}
			var want []string
			for i, l := range m.Layers {
				if l.MediaType != tc.mediaType {
					t.Fatalf("layer %d has media type %s, want %s", i, l.MediaType, tc.mediaType)
				}
				b := reg.rawBlob(t, tc.repo, l.Digest)
				if !bytes.HasPrefix(b, tc.magic) || digest.FromBytes(b) != l.Digest || int64(len(b)) != l.Size {
					t.Fatalf("layer %d as the registry has it: %d bytes starting %x, digest %s; manifest says %d bytes of %s", i, len(b), b[:4], digest.FromBytes(b), l.Size, l.Digest)
				}
				u, err := tc.decode(b)
				if err != nil || !bytes.Equal(u, tars[i]) {
					t.Fatalf("layer %d does not decompress to what was pulled: %v", i, err)
				}
				want = append(want, l.Digest.String())
			}
			sort.Strings(want)
			// The config was in the registry already (team/raw has it).
			if got := uploaded; !slices.Equal(got, want) {
				t.Fatalf("uploaded %v, want the converted layers %v", got, want)
			}

			// Again: the same manifest, nothing converted or uploaded.
			reg.reset()
			var ev2 events
			again, err := c.Push(ctx, target, registry.PushOptions{Compression: tc.comp, Progress: ev2.add})
			if err != nil {
				t.Fatal(err)
			}
			if again.Digest != p.Digest {
				t.Fatalf("a repeated push changed the digest: %s, was %s", again.Digest, p.Digest)
			}
			if ev2.any("Compressing") {
				t.Fatal("a repeated push must not convert again")
			}
			if got := reg.requests(func(q *request) bool {
				return q.Method == http.MethodPut || q.Method == http.MethodPatch || q.Method == http.MethodPost
			}); len(got) != 0 {
				t.Fatalf("a repeated push uploaded: %v", got)
			}
			for _, l := range layers {
				if st := ev2.statuses(l); len(st) == 0 || st[len(st)-1] != "Layer already exists" {
					t.Errorf("events of layer %s (named by its digest in the store): %v", l, st)
				}
			}
			// The store's image is as it was: uncompressed, same manifest.
			if got := s.names(t)[target]; got != md {
				t.Fatalf("the push renamed the store's image: %s names %s, want %s", target, got, md)
			}
			s.noTemporaries(t)
		})
	}
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func unzstd(b []byte) ([]byte, error) {
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// ---- errors ----

// An unknown tag or repository is ErrNotFound, and leaves the store as it
// was; so do a push of an image the store lacks and of a digest.
func TestMemoryNotFound(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	img := randomImage(t, 1, 1<<10, "")
	reg.put(t, "team/app:1", img)
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	before := s.fingerprint(t)
	for _, ref := range []string{reg.Host + "/team/app:nosuch", reg.Host + "/team/nosuch:1",
		reg.Host + "/team/app@sha256:" + strings.Repeat("0", 64)} {
		_, err := c.Pull(ctx, ref, registry.PullOptions{})
		if !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "manifest for "+ref+" not found") {
			t.Errorf("pull %s: want ErrNotFound naming it, got %v", ref, err)
		}
		s.unchanged(t, before, "pull "+ref)
	}
	if _, err := c.Pull(ctx, reg.Host+"/Team/App:1", registry.PullOptions{}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("an uppercase name: want ErrInvalid, got %v", err)
	}
	reg.reset()
	if _, err := c.Push(ctx, reg.Host+"/team/nosuch:1", registry.PushOptions{}); !errors.Is(err, registry.ErrNoSuchImage) {
		t.Errorf("push of an image the store lacks: want ErrNoSuchImage, got %v", err)
	}
	md, _, _ := digests(t, img)
	if _, err := c.Push(ctx, reg.Host+"/team/app@"+md.String(), registry.PushOptions{}); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("push of a digest reference: %v", err)
	}
	if got := reg.requests(nil); len(got) != 0 {
		t.Errorf("refused pushes asked the registry: %v", got)
	}
	s.unchanged(t, before, "the refused pushes")
}

// Bytes changed on the way are refused with image.ErrInvalid, and the
// store stays as it was: a layer, a config, a manifest pulled by digest.
func TestMemoryPullTampered(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	img := randomImage(t, 1, 32<<10, "")
	reg.put(t, "team/app:1", img)
	md, cfg, layers := digests(t, img)
	other := randomImage(t, 1, 1<<10, "")
	reg.put(t, "team/other:1", other)

	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(ctx, reg.Host+"/team/other:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0xff; return b }
	for _, tc := range []struct {
		what, ref string
		match     func(*http.Request) bool
		change    func([]byte) []byte
		mention   string
	}{
		{"layer", "team/app:1", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/blobs/"+layers[0].String()) }, flip, layers[0].String()},
		{"config", "team/app:1", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/blobs/"+cfg.String()) }, flip, cfg.String()},
		{"manifest", "team/app@" + md.String(), func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") },
			func(b []byte) []byte { return append(bytes.Clone(b), ' ') }, md.String()},
	} {
		t.Run(tc.what, func(t *testing.T) {
			before := s.fingerprint(t)
			reg.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !tc.match(r) {
					return false
				}
				modifyResponse(w, r, next, tc.change)
				return true
			})
			defer reg.setHook(nil)
			_, err := c.Pull(ctx, reg.Host+"/"+tc.ref, registry.PullOptions{})
			if err == nil {
				t.Fatal("a tampered pull succeeded")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("the error must name %s: %v", tc.mention, err)
			}
			switch {
			case errors.Is(err, image.ErrInvalid):
			case tc.what == "manifest" && strings.Contains(err.Error(), "does not match"):
				// go-containerregistry's own check, whose error cairn
				// passes on as it is, without image.ErrInvalid.
				t.Logf("a tampered manifest is refused, but not as image.ErrInvalid: %v", err)
			default:
				t.Errorf("tampered %s: want image.ErrInvalid, got %v", tc.what, err)
			}
			s.unchanged(t, before, "a tampered "+tc.what)
			s.noTemporaries(t)
			if s.HasBlob(layers[0]) {
				t.Fatal("the tampered layer is in the store")
			}
		})
	}
	// Untampered, it comes.
	if _, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	s.hasImage(t, reg.Host+"/team/app:1", img)
	s.hasImage(t, reg.Host+"/team/other:1", other)
}

// A registry that demands basic authentication: without credentials, or
// with wrong ones, ErrUnauthorized (saying which), the store unchanged;
// with the right ones pull, push and login work.
func TestMemoryBasicAuth(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	img := randomImage(t, 2, 4<<10, "")
	reg.put(t, "team/app:1", img)
	reg.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "s3cret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="cairn-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	ref := reg.Host + "/team/app:1"
	s := newStore(t)
	before := s.fingerprint(t)

	_, err := registry.New(nil, s.Store, nil).Pull(ctx, ref, registry.PullOptions{})
	if !errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "cairn login "+reg.Host) {
		t.Fatalf("anonymous: want ErrUnauthorized telling to log in, got %v", err)
	}
	s.unchanged(t, before, "an anonymous pull")
	wrong := registry.New(nil, s.Store, keychain{reg.Host: &authn.Basic{Username: "alice", Password: "nope"}})
	_, err = wrong.Pull(ctx, ref, registry.PullOptions{})
	if !errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong password: want ErrUnauthorized saying they were refused, got %v", err)
	}
	s.unchanged(t, before, "a pull with the wrong password")
	if err := wrong.Login(ctx, reg.URL, "alice", "nope"); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("login with the wrong password: %v", err)
	}

	// Someone else's credentials do not go to this registry.
	elsewhere := registry.New(nil, s.Store, keychain{"registry.example": &authn.Basic{Username: "alice", Password: "s3cret"}})
	if _, err := elsewhere.Pull(ctx, ref, registry.PullOptions{}); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("the credentials of another registry: %v", err)
	}

	right := registry.New(nil, s.Store, keychain{reg.Host: &authn.Basic{Username: "alice", Password: "s3cret"}})
	if err := right.Login(ctx, reg.URL, "alice", "s3cret"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := right.Pull(ctx, ref, registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	s.hasImage(t, ref, img)

	target := reg.Host + "/team/pushed:1"
	if _, err := s.Tag(ctx, ref, target); err != nil {
		t.Fatal(err)
	}
	afterTag := s.fingerprint(t)
	reg.reset()
	if _, err := wrong.Push(ctx, target, registry.PushOptions{}); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("push with the wrong password: %v", err)
	}
	if got := reg.requests(func(q *request) bool { return q.Method != http.MethodGet && q.Method != http.MethodHead }); len(got) != 0 {
		t.Fatalf("a refused push sent: %v", got)
	}
	s.unchanged(t, afterTag, "a refused push")
	p, err := right.Push(ctx, target, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := reg.remoteManifest(t, "team/pushed:1", remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	if digest.Digest(desc.Digest.String()) != p.Digest {
		t.Fatalf("the registry has %s, the push said %s", desc.Digest, p.Digest)
	}
}

// A 5xx answer is retried (after the back-off's first second) and the pull
// succeeds.
func TestMemoryPullRetries5xx(t *testing.T) {
	ctx := testContext(t)
	reg := newMemRegistry(t)
	img := randomImage(t, 2, 4<<10, "")
	reg.put(t, "team/app:1", img)
	_, _, layers := digests(t, img)
	var mu sync.Mutex
	failed := map[string]bool{}
	reg.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		var code int
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v2/team/app/manifests/1":
			code = http.StatusServiceUnavailable
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layers[1].String()):
			code = http.StatusBadGateway
		default:
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if failed[r.URL.Path] {
			return false
		}
		failed[r.URL.Path] = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`)
		return true
	})
	s := newStore(t)
	start := time.Now()
	if _, err := registry.New(nil, s.Store, nil).Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pulled in %v", time.Since(start))
	s.hasImage(t, reg.Host+"/team/app:1", img)
	manifests := reg.requests(func(q *request) bool { return q.Method == http.MethodGet && q.Path == "/v2/team/app/manifests/1" })
	if len(manifests) != 2 || manifests[0].Status != http.StatusServiceUnavailable || manifests[1].Status != http.StatusOK {
		t.Fatalf("the manifest: want a 503 then a 200, got %v", manifests)
	}
	gets := reg.requests(blobGets(layers[1]))
	if len(gets) != 2 || gets[0].Status != http.StatusBadGateway || gets[1].Status != http.StatusOK {
		t.Fatalf("the layer: want a 502 then a 200, got %v", gets)
	}
}

// A registry that does not answer is ErrUnreachable, naming it, for a pull
// and a push, soon; the store stays as it was.
func TestMemoryRegistryDown(t *testing.T) {
	ctx := testContext(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()

	reg := newMemRegistry(t)
	reg.put(t, "team/app:1", randomImage(t, 1, 1<<10, ""))
	s := newStore(t)
	c := registry.New(nil, s.Store, nil)
	if _, err := c.Pull(ctx, reg.Host+"/team/app:1", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(ctx, reg.Host+"/team/app:1", down+"/team/app:1"); err != nil {
		t.Fatal(err)
	}
	before := s.fingerprint(t)
	start := time.Now()
	_, err = c.Pull(ctx, down+"/team/app:1", registry.PullOptions{})
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), down) {
		t.Fatalf("pull: want ErrUnreachable naming %s, got %v", down, err)
	}
	_, err = c.Push(ctx, down+"/team/app:1", registry.PushOptions{})
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), down) {
		t.Fatalf("push: want ErrUnreachable naming %s, got %v", down, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a refused connection took %v to report", d)
	}
	s.unchanged(t, before, "a registry down")
}

// Docker Hub's names go to the mirrors in order: one down and one without
// the image are passed over, the image comes from the next, under Docker
// Hub's name. Names of other registries never go to a mirror.
func TestMemoryPullThroughMirrors(t *testing.T) {
	ctx := testContext(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	empty := newMemRegistry(t)
	good := newMemRegistry(t)
	img := randomImage(t, 2, 4<<10, "")
	good.put(t, "library/busybox:1", img)
	cfg := &registry.Config{Mirrors: []string{"http://" + down, empty.URL, good.URL}}
	s := newStore(t)
	c := registry.New(cfg, s.Store, nil)
	p, err := c.Pull(ctx, "busybox:1", registry.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Mirror != good.URL || p.Name != "docker.io/library/busybox:1" {
		t.Fatalf("pulled %+v, want docker.io/library/busybox:1 through %s", p, good.URL)
	}
	s.hasImage(t, "docker.io/library/busybox:1", img)
	if got := empty.requests(func(q *request) bool { return strings.Contains(q.Path, "/library/busybox/manifests/1") }); len(got) == 0 {
		t.Fatal("the second mirror was not asked")
	}

	other := newMemRegistry(t)
	other.put(t, "library/busybox:2", randomImage(t, 1, 1<<10, ""))
	empty.reset()
	good.reset()
	if _, err := c.Pull(ctx, other.Host+"/library/busybox:2", registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := append(empty.requests(nil), good.requests(nil)...); len(got) != 0 {
		t.Fatalf("a name of another registry went to the mirrors: %v", got)
	}
	if _, err := registry.New(&registry.Config{Mirrors: []string{"mirror.example"}}, s.Store, nil).Pull(ctx, "busybox:1", registry.PullOptions{}); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("a mirror that is not a URL: want ErrInvalid, got %v", err)
	}
}
