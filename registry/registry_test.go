package registry

import (
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json"))
	if err != nil || len(c.Mirrors) != 0 || len(c.Insecure) != 0 {
		t.Fatalf("a missing file is the default configuration: %+v %v", c, err)
	}
	c, err = LoadConfig(writeConfig(t, `{"registry-mirrors": ["https://mirror.example:5000"], "insecure-registries": ["10.0.0.0/8", "myreg:5000", "plain.example"], "debug": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Mirrors, ",") != "https://mirror.example:5000" || len(c.Insecure) != 3 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"registry-mirrors": "https://x"}`, "config.json"},
		{`{"registry-mirrors": ["mirror.example"]}`, `registry mirror "mirror.example": must begin with http:// or https://`},
		{`{`, "config.json"},
	} {
		if _, err := LoadConfig(writeConfig(t, bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: want an error with %q, got %v", bad.body, bad.want, err)
		}
	}
}

func TestInsecureAsDocker(t *testing.T) {
	c := &Config{Insecure: []string{"10.0.0.0/8", "myreg:5000", "plain.example"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.8.0.1": true, "[::1]:5000": true, "localhost:5000": true, // loopback, always
		"10.1.2.3:5000": true, "myreg:5000": true, "plain.example": true, "plain.example:443": true,
		"myreg:5001": false, "11.0.0.1": false, "registry-1.docker.io": false, "ghcr.io": false,
	} {
		if got := c.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
}

// A registry's CA in certs.d/<host>/ is what its certificate is checked
// against; without it the certificate is refused.
func TestCertsDirCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	c, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		rt, err := c.transportFor(host, false)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without its CA the registry's certificate must be refused, got %v", err)
	}
	caDir := filepath.Join(dir, "certs.d", host)
	os.MkdirAll(caDir, 0o755)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	os.WriteFile(filepath.Join(caDir, "ca.crt"), pemBytes, 0o644)
	if err := get(); err != nil {
		t.Fatalf("with certs.d/%s/ca.crt: %v", host, err)
	}
	os.WriteFile(filepath.Join(caDir, "bad.crt"), []byte("not a certificate"), 0o644)
	if err := get(); err == nil || !strings.Contains(err.Error(), "bad.crt") {
		t.Fatalf("a broken .crt must be named: %v", err)
	}
}

func TestEndpointsUseMirrorsForDockerHubOnly(t *testing.T) {
	c := New(&Config{Mirrors: []string{"http://127.0.0.1:5001", "https://mirror.example"}}, nil, nil)
	n, _ := parse("busybox")
	eps, err := c.endpoints(n)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ep := range eps {
		got = append(got, ep.ref.Context().Registry.Scheme()+"://"+ep.ref.Name())
	}
	want := "http://127.0.0.1:5001/library/busybox:latest https://mirror.example/library/busybox:latest https://index.docker.io/library/busybox:latest"
	if strings.Join(got, " ") != want {
		t.Fatalf("endpoints of busybox:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	n, _ = parse("127.0.0.1:5000/team/app@sha256:" + strings.Repeat("a", 64))
	eps, _ = c.endpoints(n)
	if len(eps) != 1 || eps[0].ref.Name() != "127.0.0.1:5000/team/app@sha256:"+strings.Repeat("a", 64) {
		t.Fatalf("a name on another registry has no mirror: %+v", eps)
	}
	if _, err := parse("Team/App"); err == nil || !strings.Contains(err.Error(), "invalid reference format") {
		t.Fatalf("uppercase: %v", err)
	}
	if n, _ := parse("team/app"); reference.FamiliarString(n) != "team/app:latest" {
		t.Fatalf("latest by default: %s", n)
	}
}

func TestClassify(t *testing.T) {
	c := New(nil, nil, nil)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, derr := (&http.Client{}).Get("http://" + addr + "/v2/")
	if err := c.classify(addr, authn.Anonymous, derr); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("a refused connection: %v", err)
	}
	e401 := &transport.Error{StatusCode: http.StatusUnauthorized, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode, Message: "authentication required"}}}
	if err := c.classify(addr, authn.Anonymous, e401); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "cairn login "+addr) {
		t.Fatalf("401 without credentials: %v", err)
	}
	if err := c.classify(addr, &authn.Basic{Username: "u", Password: "p"}, e401); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "were refused") {
		t.Fatalf("401 with credentials: %v", err)
	}
	e404 := &transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}
	if err := c.classify(addr, authn.Anonymous, e404); !errors.Is(err, ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
	if _, err := Platform("linux"); err == nil {
		t.Fatal("a platform needs os/arch")
	}
	if p, err := Platform("linux/arm/v7"); err != nil || p.Variant != "v7" || p.Architecture != "arm" {
		t.Fatalf("%+v %v", p, err)
	}
}
