package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// uniqueRepo is a repository of registry reg that no other test (or run) uses.
func uniqueRepo(t testing.TB, reg string) string {
	n := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	return fmt.Sprintf("%s/cairn-test/%s-%d", reg, strings.Trim(n, "-"), time.Now().UnixNano())
}

// registryStore is a store whose cairn has its own registry configuration
// (config, a path; it need not exist) and Docker credentials (dockerConfig,
// a directory; empty: a new one).
func registryStore(t testing.TB, config, dockerConfig string) *store {
	s := newStore(t)
	if config == "" {
		config = filepath.Join(t.TempDir(), "no-config.json")
	}
	if dockerConfig == "" {
		dockerConfig = t.TempDir()
	}
	s.env = []string{"CAIRN_CONFIG=" + config, "DOCKER_CONFIG=" + dockerConfig}
	return s
}

func randomBytes(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// layeredImage loads into s an image of three layers, busybox then two of
// sizes big and small (random, so that compression does not shrink them),
// under name.
func (s *store) layeredImage(name string, big, small int) fixtureImage {
	s.t.Helper()
	img := fixtureImage{
		Names: []string{name},
		Layers: [][]byte{
			busyboxTar(s.t),
			layerTar(s.t, dir("data/"), file("data/big", randomBytes(s.t, big))),
			layerTar(s.t, dir("data/"), file("data/small", randomBytes(s.t, small)), file("etc/motd", "layered "+name+"\n")),
		},
		Cmd: []string{"cat", "/etc/motd"},
	}
	s.ok("load", "-i", writeFile(s.t, dockerArchive(s.t, img)))
	return img
}

// derivedImage loads into s an image of base's layers and one more, with
// the file /derived.
func (s *store) derivedImage(base fixtureImage, name string) {
	s.t.Helper()
	derived := base
	derived.Names = []string{name}
	derived.Layers = append(append([][]byte{}, base.Layers...), layerTar(s.t, file("derived", "yes")))
	s.ok("load", "-i", writeFile(s.t, dockerArchive(s.t, derived)))
}

// remoteManifest fetches the manifest of repo:ref (repo with its registry)
// straight from the registry.
func remoteManifest(t testing.TB, repo, ref string) (ocispec.Manifest, string, digest.Digest, int64) {
	t.Helper()
	host, path, _ := strings.Cut(repo, "/")
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+path+"/manifests/"+ref, nil)
	req.Header.Set("Accept", strings.Join([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	var m ocispec.Manifest
	json.Unmarshal(b, &m)
	return m, resp.Header.Get("Content-Type"), digest.FromBytes(b), int64(len(b))
}

func remoteBlob(t testing.TB, repo string, d digest.Digest) []byte {
	t.Helper()
	host, path, _ := strings.Cut(repo, "/")
	resp, err := http.Get("http://" + host + "/v2/" + path + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s: %s", d, resp.Status)
	}
	return b
}

// proxy is a reverse proxy to a registry, on loopback, that logs the
// requests it passes and lets a test change what goes through.
type proxy struct {
	Addr string
	mu   sync.Mutex
	log  []string
	// hook, if set, may answer a request itself (it returns true then).
	hook func(w http.ResponseWriter, r *http.Request) bool
	// modify, if set, may change a response of the registry.
	modify func(r *http.Request, resp *http.Response)
}

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	u, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	p := &proxy{}
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		m := p.modify
		p.mu.Unlock()
		if m != nil {
			m(resp.Request, resp)
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		entry := r.Method + " " + r.URL.RequestURI()
		if rg := r.Header.Get("Range"); rg != "" {
			entry += " Range:" + rg
		}
		p.log = append(p.log, entry)
		h := p.hook
		p.mu.Unlock()
		if h != nil && h(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *proxy) set(hook func(http.ResponseWriter, *http.Request) bool, modify func(*http.Request, *http.Response)) {
	p.mu.Lock()
	p.hook, p.modify = hook, modify
	p.log = nil
	p.mu.Unlock()
}

// requests are the logged requests that contain all of words.
func (p *proxy) requests(words ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
next:
	for _, e := range p.log {
		for _, w := range words {
			if !strings.Contains(e, w) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// What cairn pushes, Docker pulls and runs; what Docker pushes, cairn pulls
// and runs; the image keeps its ID both ways, and a pull by digest works.
func TestRegistryRoundTripWithDocker(t *testing.T) {
	reg := testutil.Registry(t)
	docker := testutil.Docker(t)
	s := registryStore(t, "", "")
	s.busybox()
	repo := uniqueRepo(t, reg)
	s.ok("run", "--name", "c1", "busybox", "sh", "-c", "echo made by cairn > /etc/motd && rm /bin/ls")
	s.ok("commit", "-c", `CMD ["cat", "/etc/motd"]`, "c1", repo+":1")
	s.ok("rm", "c1")
	out := s.ok("push", repo+":1")
	for _, want := range []string{"The push refers to repository [" + repo + "]", ": Pushed\n", "1: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("push output lacks %q:\n%s", want, out)
		}
	}
	defer docker.RunErr("rmi", "-f", repo+":1", repo+"-docker:1", repo+"-docker-base")
	docker.Run(t, "pull", repo+":1")
	if got := docker.Run(t, "run", "--rm", "--network", "none", repo+":1"); got != "made by cairn\n" {
		t.Fatalf("docker run of what cairn pushed: %q", got)
	}
	if _, _, err := docker.RunErr("run", "--rm", "--network", "none", repo+":1", "test", "-e", "/bin/ls"); err == nil {
		t.Fatal("/bin/ls was deleted in cairn (a whiteout) but Docker sees it")
	}
	cairnID := strings.TrimSpace(s.ok("image", "inspect", "-f", "{{.Id}}", repo+":1"))
	if got := strings.TrimSpace(docker.Run(t, "image", "inspect", "-f", "{{.Id}}", repo+":1")); got != cairnID {
		t.Fatalf("image ID: cairn %s, docker %s", cairnID, got)
	}

	// The other way.
	docker.Run(t, "import", busyboxRootfs(t), repo+"-docker-base")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+repo+"-docker-base\nRUN echo from docker > /x && rm /bin/ls\nCMD [\"cat\", \"/x\"]\n"), 0o644)
	docker.Run(t, "build", "--network", "none", "-q", "-t", repo+"-docker:1", ctxDir)
	pushOut := docker.Run(t, "push", repo+"-docker:1")
	s2 := registryStore(t, "", "")
	out = s2.ok("pull", repo+"-docker:1")
	if !strings.Contains(out, "Status: Downloaded newer image for "+repo+"-docker:1") || strings.Count(out, "Pull complete") != 2 {
		t.Fatalf("pull output:\n%s", out)
	}
	if got := s2.ok("run", "--rm", repo+"-docker:1"); got != "from docker\n" {
		t.Fatalf("cairn run of what docker pushed: %q", got)
	}
	if r := s2.run(nil, "run", "--rm", repo+"-docker:1", "test", "-e", "/bin/ls"); r.Code != 1 {
		t.Fatalf("Docker's whiteout of /bin/ls: %+v", r)
	}
	dockerID := strings.TrimSpace(docker.Run(t, "image", "inspect", "-f", "{{.Id}}", repo+"-docker:1"))
	if got := strings.TrimSpace(s2.ok("image", "inspect", "-f", "{{.Id}}", repo+"-docker:1")); got != dockerID {
		t.Fatalf("image ID: docker %s, cairn %s", dockerID, got)
	}
	s2.checkConsistent()

	// By digest: the one docker push printed.
	m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(pushOut)
	if m == nil {
		t.Fatalf("docker push printed no digest:\n%s", pushOut)
	}
	s3 := registryStore(t, "", "")
	out = s3.ok("pull", repo+"-docker@"+m[1])
	if !strings.Contains(out, "Digest: "+m[1]) {
		t.Fatalf("pull by digest:\n%s", out)
	}
	if got := s3.ok("run", "--rm", repo+"-docker@"+m[1]); got != "from docker\n" {
		t.Fatalf("run by digest: %q", got)
	}
	if got := s3.ok("images", "--format", "{{.Repository}} {{.Tag}}"); got != repo+"-docker <none>\n" {
		t.Fatalf("an image pulled by digest has no tag: %q", got)
	}
	s3.fails(1, "not found", "pull", repo+"-docker@sha256:"+strings.Repeat("0", 64))
}

// A layer the store has is not fetched again; a second pull of an image
// that is all there asks the registry for its manifest only.
func TestPullSkipsLayersItHas(t *testing.T) {
	reg := testutil.Registry(t)
	p := newProxy(t, reg)
	repo := uniqueRepo(t, p.Addr)
	src := registryStore(t, "", "")
	base := src.layeredImage(repo+":base", 1<<20, 1<<10)
	src.derivedImage(base, repo+":derived")
	src.ok("push", repo+":base")
	src.ok("push", repo+":derived")

	s := registryStore(t, "", "")
	out := s.ok("pull", repo+":base")
	if strings.Count(out, "Pull complete") != 3 {
		t.Fatalf("first pull:\n%s", out)
	}
	out = s.ok("pull", repo+":derived")
	if strings.Count(out, "Already exists") != 3 || strings.Count(out, "Pull complete") != 1 {
		t.Fatalf("the three layers it has must not be pulled again:\n%s", out)
	}
	p.set(nil, nil)
	out = s.ok("pull", repo+":derived")
	if strings.Count(out, "Already exists") != 4 || strings.Contains(out, "Pull complete") || !strings.Contains(out, "Status: Image is up to date for "+repo+":derived") {
		t.Fatalf("second pull:\n%s", out)
	}
	if blobs := p.requests("/blobs/"); len(blobs) != 0 {
		t.Fatalf("a pull of an image that is all there fetched blobs: %v", blobs)
	}
	if got := s.ok("run", "--rm", repo+":derived", "cat", "/derived"); got != "yes" {
		t.Fatalf("run: %q", got)
	}
	if n := s.checkConsistent(); n != 2 {
		t.Fatalf("%d images", n)
	}
}

// A push uploads only the blobs the registry lacks, and mounts a layer that
// another repository of the registry has (the one it was pulled from).
func TestPushUploadsOnlyMissingBlobs(t *testing.T) {
	reg := testutil.Registry(t)
	p := newProxy(t, reg)
	repo := uniqueRepo(t, p.Addr)
	s := registryStore(t, "", "")
	base := s.layeredImage(repo+":base", 1<<20, 1<<10)
	s.ok("push", repo+":base")
	s.derivedImage(base, repo+":derived")

	p.set(nil, nil)
	out := s.ok("push", repo+":derived")
	if n := strings.Count(out, ": Layer already exists"); n != 3 || strings.Count(out, ": Pushed") != 1 {
		t.Fatalf("push of one new layer over three the registry has:\n%s", out)
	}
	// A blob's upload ends with a PUT: the new layer and the new config.
	if puts := p.requests("PUT", "/blobs/uploads/"); len(puts) != 2 {
		t.Fatalf("want 2 blob uploads (the new layer, the config), got %d:\n%s", len(puts), strings.Join(puts, "\n"))
	}

	// Pulled from repo, pushed to another repository: mounted, not uploaded.
	s2 := registryStore(t, "", "")
	s2.ok("pull", repo+":derived")
	s2.ok("tag", repo+":derived", repo+"-other:1")
	p.set(nil, nil)
	out = s2.ok("push", repo+"-other:1")
	if n := strings.Count(out, ": Mounted from "+strings.TrimPrefix(repo, p.Addr+"/")); n != 4 {
		t.Fatalf("want 4 layers mounted:\n%s\n%s", out, strings.Join(p.requests(), "\n"))
	}
	if patches := p.requests("PATCH"); len(patches) != 1 {
		t.Fatalf("only the config may be uploaded:\n%s", strings.Join(patches, "\n"))
	}
	// Nothing new: the manifest is there, nothing is uploaded.
	p.set(nil, nil)
	out = s2.ok("push", repo+"-other:1")
	if strings.Count(out, "Layer already exists") != 4 || len(p.requests("PATCH")) != 0 {
		t.Fatalf("second push:\n%s", out)
	}
}

// Layers are pushed as gzip by default and as zstd when asked; a layer is
// compressed once, and the next push reuses it. Both pull back and run.
func TestPushCompression(t *testing.T) {
	reg := testutil.Registry(t)
	repo := uniqueRepo(t, reg)
	s := registryStore(t, "", "")
	img := s.layeredImage(repo+":1", 1<<20, 1<<10)
	s.ok("tag", repo+":1", repo+":zstd")
	s.ok("tag", repo+":1", repo+":zstd-again")
	check := func(tag, mediaType string, magic []byte) {
		t.Helper()
		m, ct, _, _ := remoteManifest(t, repo, tag)
		if ct != ocispec.MediaTypeImageManifest || len(m.Layers) != 3 {
			t.Fatalf("%s: manifest %s %+v", tag, ct, m)
		}
		for _, l := range m.Layers {
			if l.MediaType != mediaType {
				t.Fatalf("%s: layer media type %s, want %s", tag, l.MediaType, mediaType)
			}
			if b := remoteBlob(t, repo, l.Digest); !bytes.HasPrefix(b, magic) || digest.FromBytes(b) != l.Digest {
				t.Fatalf("%s: layer %s is not %s (starts %x)", tag, l.Digest, mediaType, b[:4])
			}
		}
	}
	out := s.ok("push", repo+":1")
	if strings.Count(out, "Compressing (gzip)") != 3 {
		t.Fatalf("gzip push:\n%s", out)
	}
	check("1", ocispec.MediaTypeImageLayerGzip, []byte{0x1f, 0x8b})
	out = s.ok("push", "--compression", "zstd", repo+":zstd")
	if strings.Count(out, "Compressing (zstd)") != 3 {
		t.Fatalf("zstd push:\n%s", out)
	}
	check("zstd", "application/vnd.oci.image.layer.v1.tar+zstd", []byte{0x28, 0xb5, 0x2f, 0xfd})
	out = s.ok("push", "--compression", "zstd", repo+":zstd-again")
	if strings.Contains(out, "Compressing") || strings.Count(out, "Layer already exists") != 3 {
		t.Fatalf("the zstd layers are remembered, not made again:\n%s", out)
	}
	s.fails(125, `invalid compression "xz"`, "push", "--compression", "xz", repo+":1")
	for _, tag := range []string{"1", "zstd"} {
		s2 := registryStore(t, "", "")
		s2.ok("pull", repo+":"+tag)
		if got := s2.ok("run", "--rm", repo+":"+tag); got != "layered "+img.Names[0]+"\n" {
			t.Fatalf("%s: run %q", tag, got)
		}
		id1 := s.ok("image", "inspect", "-f", "{{.Id}}", repo+":1")
		if id2 := s2.ok("image", "inspect", "-f", "{{.Id}}", repo+":"+tag); id1 != id2 {
			t.Fatalf("%s: the config must not change: %s %s", tag, id1, id2)
		}
	}
	// rmi and prune drop the conversions with their layer.
	if n, _ := filepath.Glob(filepath.Join(s.root, "conversions", "*")); len(n) != 6 {
		t.Fatalf("want 3 gzip and 3 zstd conversions, got %v", n)
	}
	s.ok("rmi", repo+":1", repo+":zstd", repo+":zstd-again")
	if n, _ := filepath.Glob(filepath.Join(s.root, "conversions", "*")); len(n) != 0 {
		t.Fatalf("conversions outlive their layers: %v", n)
	}
	if s.blobCount() != 0 {
		t.Fatalf("%d blobs left", s.blobCount())
	}
}

// A multi-platform image: the pull picks this machine's platform, or the one
// --platform names; pushing what was pulled pushes one manifest, not an index.
func TestPullPicksPlatformFromIndex(t *testing.T) {
	reg := testutil.Registry(t)
	repo := uniqueRepo(t, reg)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	src := registryStore(t, "", "")
	for _, arch := range []string{runtime.GOARCH, other} {
		src.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{
			Names: []string{repo + ":" + arch}, Architecture: arch,
			Layers: [][]byte{busyboxTar(t), layerTar(t, file("arch", arch))},
			Cmd:    []string{"cat", "/arch"},
		})))
		src.ok("push", repo+":"+arch)
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, arch := range []string{other, runtime.GOARCH} {
		_, ct, d, size := remoteManifest(t, repo, arch)
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ct, Digest: d, Size: size, Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
	}
	body, _ := json.Marshal(idx)
	host, path, _ := strings.Cut(repo, "/")
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+path+"/manifests/multi", bytes.NewReader(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT index: %v %v", resp, err)
	}
	resp.Body.Close()

	s := registryStore(t, "", "")
	out := s.ok("pull", repo+":multi")
	if !strings.Contains(out, "Digest: "+digest.FromBytes(body).String()) {
		t.Fatalf("the digest of a pull by tag of an index is the index's:\n%s", out)
	}
	if got := s.ok("run", "--rm", repo+":multi"); got != runtime.GOARCH {
		t.Fatalf("this machine's platform: %q", got)
	}
	s2 := registryStore(t, "", "")
	s2.ok("pull", "--platform", "linux/"+other, repo+":multi")
	if got := strings.TrimSpace(s2.ok("image", "inspect", "-f", "{{.Architecture}}", repo+":multi")); got != other {
		t.Fatalf("--platform linux/%s pulled %s", other, got)
	}
	s2.viewImage(repo+":multi", func(root string) {
		if b, _ := os.ReadFile(filepath.Join(root, "arch")); string(b) != other {
			t.Fatalf("/arch: %q", b)
		}
	})
	fp := s2.fingerprint()
	s2.fails(1, "no matching manifest for linux/s390x in the manifest list entries", "pull", "--platform", "linux/s390x", repo+":multi")
	s2.fails(1, "is for linux/"+runtime.GOARCH+", not linux/"+other, "pull", "--platform", "linux/"+other, repo+":"+runtime.GOARCH)
	s2.fails(125, "invalid platform", "pull", "--platform", "linux", repo+":multi")
	if s2.fingerprint() != fp {
		t.Fatal("a refused pull changed the store")
	}
	s2.ok("tag", repo+":multi", repo+":single")
	s2.ok("push", repo+":single")
	if _, ct, _, _ := remoteManifest(t, repo, "single"); ct == ocispec.MediaTypeImageIndex || strings.Contains(ct, "list") {
		t.Fatalf("a single-platform image is pushed as %s", ct)
	}
}

// Login and logout keep credentials in Docker's config.json, which Docker
// reads and writes too; a registry with basic auth refuses what has none
// or wrong ones, with a message that says so and nothing stored.
func TestRegistryAuthAndLogin(t *testing.T) {
	srv := testutil.StartRegistry(t, testutil.RegistryOptions{User: "alice", Password: "s3cret"})
	dockerCfg := t.TempDir()
	cfgFile := filepath.Join(dockerCfg, "config.json")
	os.WriteFile(cfgFile, []byte(`{"psFormat": "table {{.ID}}"}`), 0o600)
	s := registryStore(t, "", dockerCfg)
	s.busybox()
	repo := srv.Addr + "/team/app"
	s.ok("tag", "busybox", repo+":1")
	fp := s.fingerprint()
	s.fails(1, "cairn login "+srv.Addr, "push", repo+":1")
	r := s.run([]byte("wrong\n"), "login", "-u", "alice", "--password-stdin", srv.Addr)
	if r.Code != 1 || !strings.Contains(r.Stderr, "unauthorized") {
		t.Fatalf("login with a wrong password: %+v", r)
	}
	if b, _ := os.ReadFile(cfgFile); strings.Contains(string(b), srv.Addr) {
		t.Fatalf("refused credentials were kept: %s", b)
	}
	if s.fingerprint() != fp {
		t.Fatal("a refused push changed the store")
	}
	r = s.run([]byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", srv.Addr)
	if r.Code != 0 || r.Stdout != "Login Succeeded\n" {
		t.Fatalf("login: %+v", r)
	}
	var doc struct {
		PsFormat string `json:"psFormat"`
		Auths    map[string]struct{ Auth string }
	}
	b, _ := os.ReadFile(cfgFile)
	json.Unmarshal(b, &doc)
	if doc.PsFormat != "table {{.ID}}" || doc.Auths[srv.Addr].Auth != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Fatalf("config.json after login: %s", b)
	}
	s.ok("push", repo+":1")
	s2 := registryStore(t, "", dockerCfg)
	s2.ok("pull", repo+":1")
	if got := s2.ok("run", "--rm", repo+":1", "echo", "ok"); got != "ok\n" {
		t.Fatalf("run: %q", got)
	}
	if got := s.ok("logout", srv.Addr); got != "Removing login credentials for "+srv.Addr+"\n" {
		t.Fatalf("logout: %q", got)
	}
	if got := s.ok("logout", srv.Addr); got != "Not logged in to "+srv.Addr+"\n" {
		t.Fatalf("second logout: %q", got)
	}
	s3 := registryStore(t, "", dockerCfg)
	s3.ok("images") // the store exists
	fp = s3.fingerprint()
	s3.fails(1, "unauthorized", "pull", repo+":1")
	if s3.fingerprint() != fp {
		t.Fatal("a refused pull changed the store")
	}
	s3.fails(125, "Cannot perform an interactive login from a non TTY device", "login", srv.Addr)

	// Docker's login, cairn's pull.
	docker := testutil.Docker(t)
	if _, stderr, err := docker.RunErrIn([]byte("s3cret\n"), "--config", dockerCfg, "login", "-u", "alice", "--password-stdin", srv.Addr); err != nil {
		t.Fatalf("docker login: %v %s", err, stderr)
	}
	s3.ok("pull", repo+":1")
	s3.checkConsistent()
}

// A registry served over TLS (its own CA) is pulled from and pushed to
// over HTTPS: it speaks nothing else.
func TestRegistryTLS(t *testing.T) {
	srv := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true})
	s := registryStore(t, "", "")
	s.busybox()
	repo := srv.Addr + "/team/tls"
	s.ok("tag", "busybox", repo+":1")
	s.ok("push", repo+":1")
	// certs.d beside the configuration holds its CA, as Docker's /etc/docker/certs.d.
	cfgDir := t.TempDir()
	os.MkdirAll(filepath.Join(cfgDir, "certs.d", srv.Addr), 0o755)
	os.WriteFile(filepath.Join(cfgDir, "certs.d", srv.Addr, "ca.crt"), srv.CA, 0o644)
	s2 := registryStore(t, filepath.Join(cfgDir, "config.json"), "")
	s2.ok("pull", repo+":1")
	if got := s2.ok("run", "--rm", repo+":1", "echo", "tls"); got != "tls\n" {
		t.Fatalf("run: %q", got)
	}
}

// Errors a registry gives, or a registry that lies: each a clear message,
// and the store as it was.
func TestRegistryErrorsLeaveStoreUnchanged(t *testing.T) {
	reg := testutil.Registry(t)
	p := newProxy(t, reg)
	repo := uniqueRepo(t, p.Addr)
	src := registryStore(t, "", "")
	src.layeredImage(repo+":1", 512<<10, 1<<10)
	src.ok("push", repo+":1")
	m, _, md, _ := remoteManifest(t, strings.Replace(repo, p.Addr, reg, 1), "1")

	s := registryStore(t, "", "")
	s.busybox()
	fp := s.fingerprint()
	same := func(what string) {
		t.Helper()
		if got := s.fingerprint(); got != fp {
			t.Fatalf("%s changed the store:\nbefore %s\nafter  %s", what, fp, got)
		}
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	s.fails(1, "registry unreachable: "+down, "pull", down+"/team/app:1")
	same("registry down")
	s.fails(1, "not found", "pull", repo+"-nosuch:1")
	same("unknown repository")
	s.fails(1, "manifest for "+repo+":nosuchtag not found", "pull", repo+":nosuchtag")
	same("unknown tag")
	s.fails(125, "invalid reference format", "pull", "Team/App")
	s.fails(1, "An image does not exist locally with the tag: "+repo+":nosuch", "push", repo+":nosuch")

	// The last layer's bytes are changed on the way.
	bad := m.Layers[2].Digest
	p.set(nil, func(r *http.Request, resp *http.Response) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) {
			b, _ := io.ReadAll(resp.Body)
			b[len(b)/2] ^= 0xff
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
	})
	r := s.fails(1, bad.String(), "pull", repo+":1")
	if !strings.Contains(r.Stderr, "digest") {
		t.Fatalf("the message must say the digest is wrong: %s", r.Stderr)
	}
	same("a tampered layer")
	// The manifest's bytes are changed on the way, on a pull by digest.
	p.set(nil, func(r *http.Request, resp *http.Response) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			b, _ := io.ReadAll(resp.Body)
			b = append(b, ' ')
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
			resp.Header.Del("Docker-Content-Digest")
		}
	})
	s.fails(1, "does not match", "pull", repo+"@"+md.String())
	same("a tampered manifest")
	p.set(nil, nil)
	s.ok("pull", repo+"@"+md.String())
	s.checkConsistent()
}

// A pull killed with SIGKILL leaves nothing visible; run again, it fetches
// only the layers it did not have. A dropped connection is resumed where it
// was, and a 503 is retried.
func TestPullKilledThenResumed(t *testing.T) {
	reg := testutil.Registry(t)
	p := newProxy(t, reg)
	repo := uniqueRepo(t, p.Addr)
	src := registryStore(t, "", "")
	src.layeredImage(repo+":1", 4<<20, 4<<20)
	src.ok("push", repo+":1")
	m, _, _, _ := remoteManifest(t, strings.Replace(repo, p.Addr, reg, 1), "1")
	slow := m.Layers[2].Digest

	s := registryStore(t, "", "")
	// The last layer comes slowly: 32 KiB every 20 ms.
	p.set(nil, func(r *http.Request, resp *http.Response) {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+slow.String()) {
			resp.Body = &slowReader{r: resp.Body}
		}
	})
	bg := s.start("pull", repo+":1")
	has := func(d digest.Digest) bool {
		_, err := os.Stat(filepath.Join(s.root, "images", "blobs", "sha256", d.Encoded()))
		return err == nil
	}
	waitFor(t, 60*time.Second, "the first two layers stored", func() bool { return has(m.Layers[0].Digest) && has(m.Layers[1].Digest) })
	if has(slow) {
		t.Fatal("the slow layer is already in")
	}
	bg.cmd.Process.Signal(syscall.SIGKILL)
	bg.wait(t, 10*time.Second)
	if got := s.ok("images", "-q"); got != "" {
		t.Fatalf("a killed pull left an image: %q", got)
	}
	s.checkConsistent()

	// Run again: the first GET of the slow layer is cut after 1 MiB, and
	// the first GET of the manifest answers 503.
	var mu sync.Mutex
	cut, refused := false, false
	p.set(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(r.URL.Path, "/manifests/") && !refused {
			refused = true
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`, http.StatusServiceUnavailable)
			return true
		}
		if strings.HasSuffix(r.URL.Path, "/blobs/"+slow.String()) && !cut {
			cut = true
			b := remoteBlob(t, strings.Replace(repo, p.Addr, reg, 1), slow)
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(http.StatusOK)
			w.Write(b[:1<<20])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		}
		return false
	}, nil)
	out := s.ok("pull", repo+":1")
	for _, l := range m.Layers[:2] {
		if !strings.Contains(out, l.Digest.Encoded()[:12]+": Already exists") {
			t.Fatalf("layer %s was stored before the kill but pulled again:\n%s", l.Digest, out)
		}
		if got := p.requests("/blobs/" + l.Digest.String()); len(got) != 0 {
			t.Fatalf("layer %s fetched again: %v", l.Digest, got)
		}
	}
	if got := p.requests("/blobs/"+slow.String(), "Range:bytes="); len(got) != 1 {
		t.Fatalf("the dropped download must resume with a range request: %v", p.requests("/blobs/"))
	}
	if got := p.requests("/manifests/"); len(got) < 2 {
		t.Fatalf("the 503 must be retried: %v", got)
	}
	if got := s.ok("run", "--rm", repo+":1"); got != "layered "+repo+":1\n" {
		t.Fatalf("run: %q", got)
	}
	s.checkConsistent()
}

type slowReader struct{ r io.ReadCloser }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	return s.r.Read(p)
}
func (s *slowReader) Close() error { return s.r.Close() }

// Docker Hub's names go to the mirrors first; a mirror that fails is passed over.
func TestPullThroughMirror(t *testing.T) {
	reg := testutil.Registry(t)
	name := fmt.Sprintf("cairn-mirror-test-%d", time.Now().UnixNano())
	src := registryStore(t, "", "")
	src.layeredImage(reg+"/library/"+name+":1", 64<<10, 1<<10)
	src.ok("push", reg+"/library/"+name+":1")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{"registry-mirrors": ["http://`+down+`", "http://`+reg+`"]}`), 0o644)
	s := registryStore(t, cfg, "")
	out := s.ok("pull", name+":1")
	if !strings.Contains(out, "Pulled through the mirror http://"+reg) || !strings.Contains(out, "1: Pulling from library/"+name) {
		t.Fatalf("pull:\n%s", out)
	}
	if got := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); got != name+":1\n" {
		t.Fatalf("the image is Docker Hub's, by name: %q", got)
	}
	if got := s.ok("run", "--rm", "docker.io/library/"+name+":1"); got != "layered "+reg+"/library/"+name+":1\n" {
		t.Fatalf("run: %q", got)
	}
	os.WriteFile(cfg, []byte(`{"registry-mirrors": ["`+reg+`"]}`), 0o644)
	s.fails(125, `registry mirror "`+reg+`": must begin with http:// or https://`, "pull", name+":1")
	os.WriteFile(cfg, []byte(`{"registry-mirrors": `), 0o644)
	s.fails(125, cfg, "pull", name+":1")
}

// run, create and build pull an image they do not have, as Docker does.
func TestRunAndBuildPullMissingImages(t *testing.T) {
	reg := testutil.Registry(t)
	repo := uniqueRepo(t, reg)
	src := registryStore(t, "", "")
	src.layeredImage(repo+":1", 64<<10, 1<<10)
	src.ok("push", repo+":1")

	s := registryStore(t, "", "")
	s.fails(125, "No such image", "run", "--rm", "--pull=never", repo+":1")
	r := s.run(nil, "run", "--rm", repo+":1")
	if r.Code != 0 || r.Stdout != "layered "+repo+":1\n" || !strings.Contains(r.Stderr, "Unable to find image '"+repo+":1' locally") {
		t.Fatalf("run of an image not there: %+v", r)
	}
	s.fails(125, `invalid pull option: "sometimes"`, "run", "--rm", "--pull=sometimes", repo+":1")

	b := registryStore(t, "", "")
	ctx := buildContext(t, map[string]string{"Dockerfile": "FROM " + repo + ":1\nRUN cat /etc/motd > /copy\n"})
	out := b.ok("build", "-t", "built", ctx)
	if !strings.Contains(out, "1: Pulling from") {
		t.Fatalf("build:\n%s", out)
	}
	if got := b.ok("run", "--rm", "built", "cat", "/copy"); got != "layered "+repo+":1\n" {
		t.Fatalf("run: %q", got)
	}
}
