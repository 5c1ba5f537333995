package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
)

func TestPullRef(t *testing.T) {
	for _, c := range []struct{ from, tag, want string }{
		{"busybox", "latest", "docker.io/library/busybox:latest"},
		{"127.0.0.1:5000/team/bb", "1", "127.0.0.1:5000/team/bb:1"},
		{"busybox:1", "", "docker.io/library/busybox:1"},
		{"busybox:1", "2", "docker.io/library/busybox:2"},
		{"busybox", "sha256:" + string(make64('a')), "docker.io/library/busybox@sha256:" + string(make64('a'))},
	} {
		got, err := pullRef(c.from, c.tag)
		if err != nil || got != c.want {
			t.Errorf("pullRef(%q, %q) = %q, %v; want %q", c.from, c.tag, got, err, c.want)
		}
	}
	for _, c := range []struct {
		from, tag string
		status    int
	}{{"", "latest", 400}, {"Not A Name", "1", 400}, {"busybox", "bad tag", 400}, {"busybox", "", 501}} {
		if _, err := pullRef(c.from, c.tag); statusOf(err) != c.status {
			t.Errorf("pullRef(%q, %q): %v (status %d), want %d", c.from, c.tag, err, statusOf(err), c.status)
		}
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

// resolve is what keychain k gives registry host.
func resolve(t *testing.T, k authn.Keychain, host string) authn.AuthConfig {
	t.Helper()
	if k == nil {
		return authn.AuthConfig{}
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

// X-Registry-Auth's credentials go to the registry of the image, and
// nowhere else; a header that does not decode is none.
func TestAuthHeader(t *testing.T) {
	enc, _ := authconfig.Encode(registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "127.0.0.1:5000"})
	r := httptest.NewRequest("POST", "/images/create", nil)
	r.Header.Set(registry.AuthHeader, enc)
	k := authHeader(r, "127.0.0.1:5000/team/app:1")
	if c := resolve(t, k, "127.0.0.1:5000"); c.Username != "alice" || c.Password != "s3cret" {
		t.Errorf("credentials for the image's registry: %+v", c)
	}
	if c := resolve(t, k, "index.docker.io"); c.Username != "" {
		t.Errorf("credentials sent to another registry: %+v", c)
	}
	hub := authHeader(r, "busybox")
	if c := resolve(t, hub, "127.0.0.1:5000"); c.Username != "" {
		t.Errorf("a Docker Hub image's credentials went to 127.0.0.1:5000: %+v", c)
	}
	if c := resolve(t, hub, "index.docker.io"); c.Username != "alice" {
		t.Errorf("Docker Hub's credentials: %+v", c)
	}
	r.Header.Set(registry.AuthHeader, "%%%not base64")
	if k := authHeader(r, "busybox"); k != nil {
		t.Errorf("an undecodable header gave credentials: %v", k)
	}
	// The standard alphabet, as some older clients send it.
	r.Header.Set(registry.AuthHeader, base64.StdEncoding.EncodeToString([]byte(`{"username":"bob","password":"pw?>"}`)))
	if c := resolve(t, authHeader(r, "busybox"), "index.docker.io"); c.Username != "bob" {
		t.Errorf("standard base64: %+v", c)
	}
}

func TestRegistryConfigHeader(t *testing.T) {
	r := httptest.NewRequest("POST", "/build", nil)
	r.Header.Set("X-Registry-Config", base64.URLEncoding.EncodeToString([]byte(
		`{"https://index.docker.io/v1/":{"username":"hub","password":"a"},"127.0.0.1:5000":{"username":"local","password":"b"}}`)))
	k := registryConfigHeader(r)
	if c := resolve(t, k, "index.docker.io"); c.Username != "hub" {
		t.Errorf("Docker Hub: %+v", c)
	}
	if c := resolve(t, k, "127.0.0.1:5000"); c.Username != "local" {
		t.Errorf("127.0.0.1:5000: %+v", c)
	}
	if c := resolve(t, k, "127.0.0.1:5001"); c.Username != "" {
		t.Errorf("a registry without credentials got some: %+v", c)
	}
}

// A commit's body config becomes the instructions that set it, which
// apply as Docker merges: escapes kept, nothing expanded.
func TestConfigInstructions(t *testing.T) {
	ins, err := configInstructions(&container.Config{
		Env: []string{"A=b$c", `Q=say "hi" \ there`}, Cmd: []string{"sh", "-c", "echo $A"}, Entrypoint: []string{"/bin/env"},
		Labels: map[string]string{"k": `v "q"`, "x.y": "$HOME"}, User: "nobody", WorkingDir: "/srv dir", Volumes: map[string]struct{}{"/data": {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	apply, err := engine.ConfigChanges(ins)
	if err != nil {
		t.Fatalf("%q: %v", ins, err)
	}
	var c image.Config
	c.Config.Env = []string{"PATH=/bin", "A=old"}
	c.Config.Cmd = []string{"old"}
	c.Config.Labels = map[string]string{"keep": "1"}
	// Twice: an instruction applied again must not expand what it kept.
	for range 2 {
		if err := apply(&c); err != nil {
			t.Fatal(err)
		}
	}
	cfg := c.Config
	if len(cfg.Env) != 3 || cfg.Env[0] != "PATH=/bin" || cfg.Env[1] != "A=b$c" || cfg.Env[2] != `Q=say "hi" \ there` {
		t.Errorf("Env %q", cfg.Env)
	}
	if len(cfg.Cmd) != 3 || cfg.Cmd[2] != "echo $A" || len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != "/bin/env" {
		t.Errorf("Cmd %q Entrypoint %q", cfg.Cmd, cfg.Entrypoint)
	}
	if cfg.Labels["k"] != `v "q"` || cfg.Labels["x.y"] != "$HOME" || cfg.Labels["keep"] != "1" {
		t.Errorf("Labels %q", cfg.Labels)
	}
	if cfg.User != "nobody" || cfg.WorkingDir != "/srv dir" {
		t.Errorf("User %q WorkingDir %q", cfg.User, cfg.WorkingDir)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", cfg.Volumes)
	}
	for _, bad := range []*container.Config{
		{Env: []string{"NOVALUE"}}, {Env: []string{"A=line\nbreak"}}, {Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}},
		{Volumes: map[string]struct{}{"/$x": {}}},
	} {
		if _, err := configInstructions(bad); statusOf(err) != http.StatusBadRequest {
			t.Errorf("%+v: %v (status %d), want 400", bad, err, statusOf(err))
		}
	}
}

func TestProgressBar(t *testing.T) {
	if got := progressBar(50, 100); got != "[=========================>                        ]      50B/100B" {
		t.Errorf("half: %q", got)
	}
	if got := progressBar(100, 100); got != "[==================================================]     100B/100B" {
		t.Errorf("whole: %q", got)
	}
}
