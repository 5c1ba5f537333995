package api

// Credentials come with each request, as dockerd takes them: the
// X-Registry-Auth header of a pull or a push, X-Registry-Config of a
// build, the body of POST /auth. The service never reads credential files
// of its own, nor keeps what it was sent.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// registryKey is the one spelling of a registry: a host[:port], with Docker
// Hub's several names ("https://index.docker.io/v1/", "docker.io",
// index.docker.io, registry-1.docker.io) as "docker.io".
func registryKey(server string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

// keychain holds the credentials a request sent, by registry.
type keychain map[string]authn.AuthConfig

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[registryKey(r.RegistryStr())]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

func authnConfig(a registry.AuthConfig) authn.AuthConfig {
	return authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

// decodeBase64JSON decodes the JSON of a credentials header: base64url, as
// Docker's clients send it, or the standard alphabet some older ones use.
func decodeBase64JSON(s string, v any) error {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(s); err != nil {
			return err
		}
	}
	return json.Unmarshal(b, v)
}

// authHeader is the keychain of a pull's or a push's X-Registry-Auth: its
// credentials for the registry of ref alone. A header that does not decode
// is no credentials, as dockerd takes it.
func authHeader(r *http.Request, ref string) authn.Keychain {
	h := r.Header.Get(registry.AuthHeader)
	if h == "" {
		return nil
	}
	a, err := authconfig.Decode(h)
	if err != nil {
		a = &registry.AuthConfig{}
		if decodeBase64JSON(h, a) != nil {
			return nil
		}
	}
	if *a == (registry.AuthConfig{}) {
		return nil
	}
	host := "docker.io"
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		host = reference.Domain(n)
	}
	return keychain{registryKey(host): authnConfig(*a)}
}

// registryConfigHeader is the keychain of a build's X-Registry-Config:
// credentials by registry, for the images its FROM lines pull.
func registryConfigHeader(r *http.Request) authn.Keychain {
	h := r.Header.Get("X-Registry-Config")
	if h == "" {
		return nil
	}
	var all map[string]registry.AuthConfig
	if decodeBase64JSON(h, &all) != nil {
		return nil
	}
	k := keychain{}
	for server, a := range all {
		if a != (registry.AuthConfig{}) {
			k[registryKey(server)] = authnConfig(a)
		}
	}
	return k
}

// loginStatus is POST /auth's answer, with Docker 20.10's fields (an empty
// IdentityToken included).
type loginStatus struct {
	Status        string
	IdentityToken string
}

// auth is POST /auth: the credentials are checked against the registry
// (with the service's mirrors and insecure registries), and not kept.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var a registry.AuthConfig
	if err := decodeJSON(r, &a); err != nil {
		return err
	}
	if a.Username == "" && a.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
			a.Username, a.Password, _ = strings.Cut(string(b), ":")
		}
	}
	if a.Username == "" || a.Password == "" {
		return badRequest("Error: Non-null Username and Password Required")
	}
	_, err := s.e.CheckLogin(r.Context(), a.ServerAddress, a.Username, a.Password)
	switch {
	case errors.Is(err, engine.ErrRegistryUnauthorized):
		return &apiError{status: http.StatusUnauthorized, err: err}
	case errors.Is(err, engine.ErrRegistryInvalid):
		return &apiError{status: http.StatusBadRequest, err: err}
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, loginStatus{Status: "Login Succeeded"})
}
