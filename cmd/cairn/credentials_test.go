package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials live in Docker's config.json: what is there besides them stays.
func TestCredentialsInDockerConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"psFormat": "table {{.ID}}", "auths": {"other.example": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("bob:pw"))+`"}}}`), 0o600)
	if err := storeLogin("127.0.0.1:5000", "alice", "s3:cret"); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(b, &back)
	if back["psFormat"] != "table {{.ID}}" {
		t.Fatalf("other keys must stay: %s", b)
	}
	ref, _ := name.ParseReference("127.0.0.1:5000/team/app:1")
	auth, err := dockerKeychain{}.Resolve(ref.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := auth.Authorization()
	if cfg.Username != "alice" || cfg.Password != "s3:cret" {
		t.Fatalf("resolved %+v", cfg)
	}
	ref, _ = name.ParseReference("nowhere.example/x")
	if auth, _ := (dockerKeychain{}).Resolve(ref.Context()); auth != authn.Anonymous {
		t.Fatalf("no credentials: want anonymous, got %v", auth)
	}
	if had, err := forgetLogin("127.0.0.1:5000"); !had || err != nil {
		t.Fatalf("logout: %v %v", had, err)
	}
	if had, _ := forgetLogin("127.0.0.1:5000"); had {
		t.Fatal("logged out twice")
	}
	b, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	if strings.Contains(string(b), "127.0.0.1:5000") || !strings.Contains(string(b), "other.example") {
		t.Fatalf("after logout: %s", b)
	}
	if authKey("docker.io") != dockerHubKey || authKey("index.docker.io") != dockerHubKey {
		t.Fatal("Docker Hub's key")
	}
}
