package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkFixture is the store every corruption starts from: busybox, an image
// "app" committed from container "c" (stopped, on app's parent), and what
// the cases need to know of them.
type checkFixture struct {
	busyboxID, appID string // image IDs
	container        string // full ID of c
	appManifest      digest.Digest
	appTopLayer      ocispec.Descriptor
	appTopChain      digest.Digest
}

func newCheckFixture(t *testing.T, s *store) *checkFixture {
	t.Helper()
	s.busybox()
	s.ok("run", "--network", "none", "--name", "c", "busybox", "sh", "-c", "echo app > /app; mkdir /data; echo d > /data/d")
	s.ok("commit", "c", "app")
	f := &checkFixture{
		busyboxID: strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", "busybox")),
		appID:     strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", "app")),
		container: strings.TrimSpace(s.ok("inspect", "--format", "{{.Id}}", "c")),
	}
	for _, d := range s.index().Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == "docker.io/library/app:latest" {
			f.appManifest = d.Digest
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(s.blob(f.appManifest), &m); err != nil {
		t.Fatal(err)
	}
	f.appTopLayer = m.Layers[len(m.Layers)-1]
	var c ocispec.Image
	if err := json.Unmarshal(s.blob(m.Config.Digest), &c); err != nil {
		t.Fatal(err)
	}
	chains := image.ChainIDs(c.RootFS.DiffIDs)
	f.appTopChain = chains[len(chains)-1]
	return f
}

func (s *store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "images", "blobs", "sha256", d.Encoded())
}

func (s *store) blob(d digest.Digest) []byte {
	s.t.Helper()
	b, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *store) snapshotDir(chain digest.Digest) string {
	return filepath.Join(s.root, "snapshots", chain.Encoded())
}

// runDir is the store's run directory, /run/cairn/<hash> (engine.RunDir).
func (s *store) runDir() string { return runDirOf(s.root) }

func writeOrFail(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A corruption is one way a store goes wrong, what `system check` must say
// of it, and what must hold after `system check --repair`.
type corruption struct {
	name string
	// do corrupts the store and returns the path the report must name and
	// words of what it must say.
	do func(t *testing.T, s *store, f *checkFixture) (path, what string)
	// harmless: the store is sound with it (exit 0), though it is reported.
	harmless bool
	// quickMisses: --quick does not see it (the content of a blob).
	quickMisses bool
	// unrepairable: --repair cannot mend it; mend then does what the
	// report says to do, and the store must be sound after.
	unrepairable bool
	mend         func(t *testing.T, s *store, f *checkFixture)
	// after checks what the repair left, beyond soundness.
	after func(t *testing.T, s *store, f *checkFixture)
}

// brokenApp checks that app, marked broken, is listed, refuses to run, and
// that rmi removes it without harming busybox.
func brokenApp(t *testing.T, s *store, f *checkFixture) {
	if out := s.ok("images", "--format", "{{.Repository}}"); !strings.Contains(out, "app") {
		t.Fatalf("the broken image is not listed:\n%s", out)
	}
	s.fails(125, "broken", "run", "--rm", "--network", "none", "app", "true")
	s.ok("rm", "c") // it stands on busybox; app's removal must not need it gone
	s.ok("rmi", "app")
}

var corruptions = []corruption{
	{name: "index.json is not JSON", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "images", "index.json")
		writeOrFail(t, p, `{"manifests": [`)
		return p, "cannot be read"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		// The names are lost, the images are not: both are there, unnamed.
		ids := s.ok("images", "-q", "--no-trunc")
		if !strings.Contains(ids, f.busyboxID) || !strings.Contains(ids, f.appID) {
			t.Fatalf("after the index was rebuilt, images lists %q", ids)
		}
		if _, err := os.Stat(filepath.Join(s.root, "images", "index.json.corrupt")); err != nil {
			t.Fatalf("the unreadable index was not kept aside: %v", err)
		}
		s.ok("tag", f.appID, "app")
	}},
	{name: "index.json is missing", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "images", "index.json")
		os.Remove(p)
		// Every command says so, and says what to do.
		s.fails(1, "system check --repair", "images")
		return p, "it is missing"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if ids := s.ok("images", "-q", "--no-trunc"); !strings.Contains(ids, f.appID) {
			t.Fatalf("images lists %q", ids)
		}
	}},
	{name: "a name that is no reference", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "images", "index.json")
		b, _ := os.ReadFile(p)
		writeOrFail(t, p, strings.Replace(string(b), "docker.io/library/app:latest", "docker.io/library/App:latest", 1))
		return p, `"docker.io/library/App:latest" is not a valid reference`
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if ids := s.ok("images", "-q", "--no-trunc"); !strings.Contains(ids, f.appID) {
			t.Fatalf("the image lost with its bad name: %q", ids)
		}
	}},
	{name: "oci-layout is not JSON", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "images", "oci-layout")
		writeOrFail(t, p, "{")
		return p, "the OCI layout file"
	}},
	{name: "a manifest blob is missing", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.Remove(s.blobPath(f.appManifest))
		return s.blobPath(f.appManifest), "the blob is missing"
	}, after: brokenApp},
	{name: "a manifest blob has another size", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		writeOrFail(t, s.blobPath(f.appManifest), `{"schemaVersion":2}`)
		return s.blobPath(f.appManifest), "its descriptor says"
	}, after: brokenApp},
	{name: "a config blob is missing", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		d := digest.Digest(f.appID)
		os.Remove(s.blobPath(d))
		return s.blobPath(f.appManifest), "config " + f.appID + ": the blob is missing"
	}, after: brokenApp},
	{name: "a layer blob is missing", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.Remove(s.blobPath(f.appTopLayer.Digest))
		return s.blobPath(f.appManifest), "layer 2 (" + f.appTopLayer.Digest.String() + "): the blob is missing"
	}, after: brokenApp},
	{name: "a layer blob is cut short", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.Truncate(s.blobPath(f.appTopLayer.Digest), f.appTopLayer.Size/2)
		return s.blobPath(f.appManifest), "its descriptor says"
	}, after: brokenApp},
	{name: "a layer blob has a byte changed", quickMisses: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		b := s.blob(f.appTopLayer.Digest)
		b[len(b)/3] ^= 0xff
		writeOrFail(t, s.blobPath(f.appTopLayer.Digest), string(b))
		return s.blobPath(f.appManifest), "does not match its digest"
	}, after: brokenApp},
	{name: "a snapshot without meta.json", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.Remove(filepath.Join(s.snapshotDir(f.appTopChain), "meta.json"))
		return s.snapshotDir(f.appTopChain), "meta.json is missing"
	}, after: appRuns},
	{name: "a snapshot without its files", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.RemoveAll(filepath.Join(s.snapshotDir(f.appTopChain), "fs"))
		return s.snapshotDir(f.appTopChain), "its files (fs/) are missing"
	}, after: appRuns},
	{name: "a snapshot that says it is another", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.snapshotDir(f.appTopChain), "meta.json")
		b, _ := os.ReadFile(p)
		writeOrFail(t, p, strings.Replace(string(b), f.appTopChain.Encoded(), strings.Repeat("0", 64), 1))
		return s.snapshotDir(f.appTopChain), "meta.json says it is snapshot sha256:0000"
	}, after: appRuns},
	{name: "a snapshot an image needs is gone", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		os.RemoveAll(s.snapshotDir(f.appTopChain))
		return s.snapshotDir(f.appTopChain), "image app:latest lacks the snapshot"
	}, after: appRuns},
	{name: "a blob and a layer half-written in tmp/", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		writeOrFail(t, filepath.Join(s.root, "tmp", "blob-123", ""), "half")
		writeOrFail(t, filepath.Join(s.root, "tmp", "snapshot-456", "fs", "etc", "passwd"), "half")
		return filepath.Join(s.root, "tmp", "snapshot-456"), "a half-unpacked layer"
	}, after: emptyTmp},
	{name: "a view left mounted in tmp/", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "tmp", "view-789")
		os.MkdirAll(p, 0o700)
		if err := syscall.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Unmount(p, syscall.MNT_DETACH) })
		return p, "a view of a container"
	}, after: emptyTmp},
	{name: "a temporary file of an index rewrite", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "images", ".index.json.tmp-42")
		writeOrFail(t, p, "{")
		return p, "a rewrite of the index cut short"
	}},
	{name: "a blob no image names", harmless: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		body := "nothing names me"
		p := s.blobPath(digest.FromString(body))
		writeOrFail(t, p, body)
		return p, "a blob no image names (16 bytes)"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if _, err := os.Stat(s.blobPath(digest.FromString("nothing names me"))); err == nil {
			t.Fatal("the unused blob is still there")
		}
	}},
	{name: "a snapshot no image uses", harmless: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		// app's top layer, once app is gone but its snapshot is not.
		s.ok("rm", "c")
		s.ok("rmi", "app")
		os.MkdirAll(filepath.Join(s.snapshotDir(f.appTopChain), "fs"), 0o755)
		writeOrFail(t, filepath.Join(s.snapshotDir(f.appTopChain), "meta.json"), `{"chainID":"`+f.appTopChain.String()+`","diffID":"`+f.appTopChain.String()+`","size":3}`)
		return s.snapshotDir(f.appTopChain), "a snapshot no image or container uses"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if _, err := os.Stat(s.snapshotDir(f.appTopChain)); err == nil {
			t.Fatal("the unused snapshot is still there")
		}
	}},
	{name: "a build cache entry whose image is gone", harmless: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "build-cache", strings.Repeat("ab", 32))
		writeOrFail(t, p, `{"manifest":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("cd", 32)+`","size":10},"config":"sha256:`+strings.Repeat("ef", 32)+`"}`)
		return p, "a build cache entry whose image is gone"
	}},
	{name: "a container record that is not JSON", unrepairable: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "containers", f.container, "container.json")
		writeOrFail(t, p, "{")
		return p, "the record of container " + f.container[:12] + " cannot be read"
	}, mend: func(t *testing.T, s *store, f *checkFixture) {
		os.RemoveAll(filepath.Join(s.root, "containers", f.container))
	}},
	{name: "a container whose image and snapshots are gone", unrepairable: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		// c stands on busybox; make it stand on a chain nothing has.
		p := filepath.Join(s.root, "containers", f.container, "container.json")
		b, _ := os.ReadFile(p)
		var rec map[string]any
		json.Unmarshal(b, &rec)
		rec["Chain"] = "sha256:" + strings.Repeat("1", 64)
		rec["Image"] = "sha256:" + strings.Repeat("2", 64)
		nb, _ := json.Marshal(rec)
		writeOrFail(t, p, string(nb))
		return s.snapshotDir(digest.Digest("sha256:" + strings.Repeat("1", 64))), "a layer of it is missing"
	}, mend: func(t *testing.T, s *store, f *checkFixture) {
		s.ok("rm", "-f", "c") // what the report says
	}},
	{name: "a container recorded running without owner or process", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "containers", f.container, "container.json")
		b, _ := os.ReadFile(p)
		var rec map[string]any
		json.Unmarshal(b, &rec)
		st := rec["State"].(map[string]any)
		st["Status"], st["Running"], st["Pid"] = "running", true, 999999
		nb, _ := json.Marshal(rec)
		writeOrFail(t, p, string(nb))
		return p, "is recorded as running, but its owner and processes are gone"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if st := strings.TrimSpace(s.ok("inspect", "--format", "{{.State.Status}}", "c")); st != "exited" {
			t.Fatalf("state %q after the repair, want exited", st)
		}
	}},
	{name: "a container's writable layer is gone", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "containers", f.container, "upper")
		os.RemoveAll(p)
		return p, "its writable layer's upper directory is missing"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		s.ok("start", "-a", "c")
	}},
	{name: "a stopped container's root still mounted", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "containers", f.container, "rootfs")
		if err := syscall.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Unmount(p, syscall.MNT_DETACH) })
		return filepath.Join(s.root, "containers", f.container), "is exited but holds a mount at " + p
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if tr := s.traces(); len(tr) > 0 {
			t.Fatalf("left: %v", tr)
		}
	}},
	{name: "libcontainer state of a container that is gone", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.runDir(), "libcontainer", strings.Repeat("3", 64))
		os.MkdirAll(p, 0o700)
		return p, "libcontainer state of a container that is gone"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		if _, err := os.Stat(filepath.Join(s.runDir(), "libcontainer", strings.Repeat("3", 64))); err == nil {
			t.Fatal("the state is still there")
		}
	}},
	{name: "the lock files of a container removed meanwhile", harmless: true, do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "containers", strings.Repeat("4", 64))
		writeOrFail(t, filepath.Join(p, "lock"), "")
		return p, "the lock files of a container removed meanwhile"
	}},
	{name: "a volume half-made", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		p := filepath.Join(s.root, "volumes", ".new-99")
		os.MkdirAll(filepath.Join(p, "_data"), 0o755)
		return p, "a volume half-made"
	}},
	{name: "a network record and lease of a container that is gone", do: func(t *testing.T, s *store, f *checkFixture) (string, string) {
		id := strings.Repeat("5", 64)
		rec := "/run/cairn/network/containers/" + id + ".json"
		writeOrFail(t, rec, `{"ID":"`+id+`","Root":"`+s.root+`"}`)
		lease := "/run/cairn/network/leases/" + strings.Repeat("6", 64) + "/203.0.113.77"
		writeOrFail(t, lease, id)
		t.Cleanup(func() { os.Remove(rec); os.Remove(lease); os.Remove(filepath.Dir(lease)) })
		return rec, "the network record of container " + id[:12] + ", which is gone"
	}, after: func(t *testing.T, s *store, f *checkFixture) {
		for _, p := range []string{"/run/cairn/network/containers/" + strings.Repeat("5", 64) + ".json", "/run/cairn/network/leases/" + strings.Repeat("6", 64) + "/203.0.113.77"} {
			if _, err := os.Stat(p); err == nil {
				t.Fatalf("%s is still there", p)
			}
		}
	}},
}

func appRuns(t *testing.T, s *store, f *checkFixture) {
	if out := s.ok("run", "--rm", "--network", "none", "app", "cat", "/app", "/data/d"); out != "app\nd\n" {
		t.Fatalf("app after the repair: %q", out)
	}
	s.ok("start", "-a", "c")
}

func emptyTmp(t *testing.T, s *store, f *checkFixture) {
	if left, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(left) > 0 {
		t.Fatalf("tmp/ holds %d entries after the repair", len(left))
	}
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("left: %v", tr)
	}
}

// `cairn system check` finds each corruption, names its path, exits 1
// unless it is harmless; --repair mends it (or says it cannot, and what to
// do) without harming what else the store holds; the check is sound after.
func TestSystemCheckCorruptions(t *testing.T) {
	detected := 0
	for _, c := range corruptions {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			s := newStore(t)
			f := newCheckFixture(t, s)
			if r := s.run(nil, "system", "check"); r.Code != 0 {
				t.Fatalf("the fixture is not sound: %s%s", r.Stdout, r.Stderr)
			}
			path, what := c.do(t, s, f)
			wantCode := 1
			if c.harmless {
				wantCode = 0
			}
			r := s.run(nil, "system", "check")
			if r.Code != wantCode || !strings.Contains(r.Stdout, path) || !strings.Contains(r.Stdout, what) {
				t.Fatalf("system check: exit %d (want %d), want %q and %q in\n%s%s", r.Code, wantCode, path, what, r.Stdout, r.Stderr)
			}
			detected++
			q := s.run(nil, "system", "check", "--quick")
			if c.quickMisses != !strings.Contains(q.Stdout, what) {
				t.Fatalf("system check --quick (quickMisses %v): exit %d\n%s", c.quickMisses, q.Code, q.Stdout)
			}
			r = s.run(nil, "system", "check", "--repair")
			switch {
			case c.unrepairable:
				if r.Code != 1 || !strings.Contains(r.Stdout, "cannot be repaired by cairn") {
					t.Fatalf("system check --repair of what it cannot mend: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
				}
				c.mend(t, s, f)
			case r.Code != 0:
				t.Fatalf("system check --repair: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			if r := s.run(nil, "system", "check"); r.Code != 0 || !strings.Contains(r.Stdout, "is sound") {
				t.Fatalf("after the repair: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			if c.after != nil {
				c.after(t, s, f)
			}
			// What the corruption did not touch is whole: busybox runs.
			if out := s.ok("run", "--rm", "--network", "none", f.busyboxID, "echo", "ok"); out != "ok\n" {
				t.Fatalf("busybox after the repair: %q", out)
			}
		})
	}
	t.Logf("store corruptions detected: %d/%d", detected, len(corruptions))
}
