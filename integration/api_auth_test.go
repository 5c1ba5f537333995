package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// docker login through cairn's socket checks the credentials against the
// registry and keeps nothing; push and pull then carry the client's
// credentials in each request, never the service's own: a service whose
// user has them still refuses a client that sent none.
func TestAPIImageAuth(t *testing.T) {
	srv := testutil.StartRegistry(t, testutil.RegistryOptions{User: "alice", Password: "s3cret"})
	svcConfig := t.TempDir()
	auth := `{"auths":{"` + srv.Addr + `":{"auth":"YWxpY2U6czNjcmV0"}}}` // alice:s3cret
	os.WriteFile(filepath.Join(svcConfig, "config.json"), []byte(auth), 0o600)
	s := registryStore(t, "", svcConfig)
	s.busybox()
	repo := srv.Addr + "/team/app"
	s.ok("tag", "busybox", repo+":1")
	sock, _ := s.apiService("0")
	other := newStore(t)
	sock2, _ := other.apiService("0")
	for _, bin := range dockerClients(t) {
		d := newDockerc(t, bin, sock)
		if _, stderr, code := d.run(nil, "push", repo+":1"); code != 1 || !strings.Contains(stderr, "unauthorized") {
			t.Errorf("%s push without credentials: exit %d, %q", bin, code, stderr)
		}
		if _, stderr, code := d.run([]byte("wrong\n"), "login", "-u", "alice", "--password-stdin", srv.Addr); code != 1 || !strings.Contains(stderr, "unauthorized") {
			t.Errorf("%s login with a wrong password: exit %d, %q", bin, code, stderr)
		}
		if out, stderr, code := d.run([]byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", srv.Addr); code != 0 || !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("%s login: exit %d, %q %q", bin, code, out, stderr)
		}
		if out := d.ok("push", repo+":1"); !strings.Contains(out, "1: digest: sha256:") {
			t.Errorf("%s push: %q", bin, out)
		}
		d2 := &dockerc{t: t, bin: bin, sock: sock2, config: d.config}
		if out := d2.ok("pull", repo+":1"); !strings.Contains(out, "Digest: sha256:") {
			t.Errorf("%s pull with credentials: %q", bin, out)
		}
		other.ok("rmi", repo+":1")
		anonymous := newDockerc(t, bin, sock2)
		if _, stderr, code := anonymous.run(nil, "pull", repo+":1"); code != 1 || !strings.Contains(stderr, "unauthorized") {
			t.Errorf("%s pull without credentials: exit %d, %q", bin, code, stderr)
		}
	}
	resp, err := unixClient(sock).Post("http://cairn/v1.41/auth", "application/json",
		strings.NewReader(`{"username":"alice","password":"s3cret","serveraddress":"`+srv.Addr+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `{"Status":"Login Succeeded","IdentityToken":""}`+"\n" {
		t.Errorf("POST /auth: %d %s", resp.StatusCode, b)
	}
	if b, _ := os.ReadFile(filepath.Join(svcConfig, "config.json")); string(b) != auth {
		t.Errorf("the service's Docker config changed: %s", b)
	}
	other.checkConsistent()
}
