package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Anonymous is the keychain of a client that has no credentials.
var Anonymous authn.Keychain = anonymous{}

type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }

// LoginHost is the registry a `login` SERVER argument names: Docker Hub
// for none, "docker.io" or index.docker.io, else the host without scheme.
func LoginHost(server string) string {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	if host == "" || host == "docker.io" || strings.HasPrefix(host, "index.docker.io") {
		host = name.DefaultRegistry
	}
	return host
}

// Login checks user and password against the registry server, as `docker
// login` does. Keeping them is the caller's: the registry only checks.
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	host := LoginHost(server)
	reg, err := c.registry(host)
	if err != nil {
		return err
	}
	rt, err := c.cfg.transport(reg.RegistryStr())
	if err != nil {
		return err
	}
	auth := &authn.Basic{Username: user, Password: password}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{"registry:catalog:*"})
	if err != nil {
		return loginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return loginError(host, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: login to %s: %s", ErrUnauthorized, host, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: GET /v2/: %s", host, resp.Status)
	}
	return nil
}

func loginError(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w: login to %s: %w", ErrUnauthorized, host, err)
	}
	return fmt.Errorf("login to %s: %w", host, err)
}
