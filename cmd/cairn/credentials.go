package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials are the user's, kept as Docker keeps them, in
// ~/.docker/config.json (or $DOCKER_CONFIG/config.json), under "auths":
// what `docker login` writes, cairn reads, and the other way round. They
// belong to the calling process, so the CLI reads them and hands the
// registry client a keychain; no library looks for them.

// dockerHubKey is the key Docker's config uses for Docker Hub.
const dockerHubKey = "https://index.docker.io/v1/"

func dockerConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// authKey is the key of a registry in the config's "auths".
func authKey(host string) string {
	switch host {
	case name.DefaultRegistry, "docker.io", "registry-1.docker.io", "":
		return dockerHubKey
	}
	return host
}

// readDockerConfig reads the config as a generic document, so that a
// rewrite keeps what cairn does not know.
func readDockerConfig() (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(dockerConfigPath())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]json.RawMessage{}, nil
	} else if err != nil {
		return nil, err
	}
	doc := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", dockerConfigPath(), err)
	}
	return doc, nil
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func auths(doc map[string]json.RawMessage) (map[string]authEntry, error) {
	out := map[string]authEntry{}
	if raw, ok := doc["auths"]; ok {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("%s: auths: %w", dockerConfigPath(), err)
		}
	}
	return out, nil
}

func writeAuths(doc map[string]json.RawMessage, a map[string]authEntry) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	doc["auths"] = raw
	b, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	p := dockerConfigPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'), 0o600)
}

// storeLogin keeps user and password for host, as `docker login` does.
func storeLogin(host, user, password string) error {
	doc, err := readDockerConfig()
	if err != nil {
		return err
	}
	a, err := auths(doc)
	if err != nil {
		return err
	}
	a[authKey(host)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return writeAuths(doc, a)
}

// forgetLogin removes the credentials of host; it reports whether there were any.
func forgetLogin(host string) (bool, error) {
	doc, err := readDockerConfig()
	if err != nil {
		return false, err
	}
	a, err := auths(doc)
	if err != nil {
		return false, err
	}
	k := authKey(host)
	if _, ok := a[k]; !ok {
		return false, nil
	}
	delete(a, k)
	return true, writeAuths(doc, a)
}

// dockerKeychain finds a registry's credentials in the user's Docker
// config, falling back on go-containerregistry's own reading of it (which
// knows credential helpers).
type dockerKeychain struct{}

func (dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	doc, err := readDockerConfig()
	if err != nil {
		return nil, err
	}
	a, err := auths(doc)
	if err != nil {
		return nil, err
	}
	if e, ok := a[authKey(r.RegistryStr())]; ok {
		if e.IdentityToken != "" {
			return authn.FromConfig(authn.AuthConfig{IdentityToken: e.IdentityToken}), nil
		}
		dec, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return nil, fmt.Errorf("%s: credentials of %s: %w", dockerConfigPath(), r.RegistryStr(), err)
		}
		user, pass, _ := strings.Cut(string(dec), ":")
		return &authn.Basic{Username: user, Password: pass}, nil
	}
	return authn.DefaultKeychain.Resolve(r)
}
