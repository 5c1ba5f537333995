// Package registry pulls images from and pushes them to registries that
// speak the OCI distribution API, with go-containerregistry's remote and
// transport packages: token and basic authentication, redirects, retries
// with back-off, chunked uploads and cross-repository mounts are theirs.
// What is cairn's: names, mirrors and insecure registries as Docker has
// them, credentials in Docker's config, the choice of a platform in an
// index, resumed blob downloads, and turning the store's layers into what
// a registry wants (gzip or zstd) once.
//
// Bytes that come in go through image.Store.Fetch, which checks every
// digest and size and makes an image visible only when all of it is in.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// Errors, wrapped with what failed.
var (
	// ErrUnauthorized: the registry refused the credentials, or wants some.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: no such repository, tag, manifest or blob.
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: the registry did not answer.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnsupported: something cairn does not pull (schema 1, a foreign layer, no matching platform).
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalid: a name, platform or mirror that does not parse: the user's mistake.
	ErrInvalid = errors.New("invalid")
)

// Client pulls into and pushes from an image store, with the credentials
// of one keychain.
type Client struct {
	cfg      *Config
	images   *image.Store
	keychain authn.Keychain
}

// jobs is the number of layers moved at once, as in Docker.
const jobs = 3

// retryBackoff spaces the retries of a request that failed with a 5xx
// status or a dropped connection: 1s, 3s, 9s.
var retryBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}

// New returns a client with configuration cfg (nil: the default) for the
// store images. Its credentials come from keychain (nil: none): the
// caller's, which the client never looks for itself — the CLI reads the
// user's Docker config, the API takes those of the request.
func New(cfg *Config, images *image.Store, keychain authn.Keychain) *Client {
	if cfg == nil {
		cfg = &Config{}
	}
	if keychain == nil {
		keychain = Anonymous
	}
	return &Client{cfg: cfg, images: images, keychain: keychain}
}

// Event is what happens to one layer (or blob) of a pull or a push.
type Event = image.LayerEvent

// registry returns host as go-containerregistry names it, insecure (plain
// HTTP allowed) when the configuration says so.
func (c *Client) registry(host string) (name.Registry, error) {
	var opts []name.Option
	if c.cfg.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("%w registry %q: %w", ErrInvalid, host, err)
	}
	return r, nil
}

// endpoint is where a name is fetched from: its own registry, or a mirror.
type endpoint struct {
	ref    name.Reference
	mirror string // the mirror's URL, if it is one
}

// parse parses a user's image reference as Docker does: docker.io and
// latest by default.
func parse(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("%w reference format: %q: %w", ErrInvalid, s, err)
	}
	if _, ok := n.(reference.Digested); ok {
		return n, nil
	}
	return reference.TagNameOnly(n), nil
}

// remoteRef is n on registry host (n's own, or a mirror).
func (c *Client) remoteRef(n reference.Named, host string, insecure bool) (name.Reference, error) {
	s := host + "/" + reference.Path(n)
	if d, ok := n.(reference.Digested); ok {
		s += "@" + d.Digest().String()
	} else if t, ok := n.(reference.Tagged); ok {
		s += ":" + t.Tag()
	}
	opts := []name.Option{name.StrictValidation}
	if insecure || c.cfg.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w reference format: %q: %w", ErrInvalid, n.String(), err)
	}
	return r, nil
}

// endpoints lists where n is pulled from: for Docker Hub's images, the
// mirrors in order, then Docker Hub.
func (c *Client) endpoints(n reference.Named) ([]endpoint, error) {
	var out []endpoint
	if reference.Domain(n) == "docker.io" {
		for _, m := range c.cfg.Mirrors {
			u, err := url.Parse(m)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("%w registry mirror %q: not a URL", ErrInvalid, m)
			}
			r, err := c.remoteRef(n, u.Host, u.Scheme == "http")
			if err != nil {
				return nil, err
			}
			out = append(out, endpoint{ref: r, mirror: m})
		}
	}
	r, err := c.remoteRef(n, reference.Domain(n), false)
	if err != nil {
		return nil, err
	}
	return append(out, endpoint{ref: r}), nil
}

// session is an authenticated transport to ref's registry for scopes: its
// TLS as the configuration says, retries with back-off, Docker's
// credentials. It is a transport.Wrapper, which go-containerregistry uses
// as it is.
func (c *Client) session(ctx context.Context, ref name.Reference, scopes []string, wrap func(http.RoundTripper) http.RoundTripper) (http.RoundTripper, error) {
	reg := ref.Context().Registry
	base, err := c.cfg.transport(reg.RegistryStr())
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		base = wrap(base)
	}
	t := transport.NewRetry(base,
		transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	t = transport.NewUserAgent(t, "cairn")
	auth, err := c.keychain.Resolve(ref.Context())
	if err != nil {
		return nil, err
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, t, scopes)
	if err != nil {
		return nil, c.classify(reg.RegistryStr(), auth, err)
	}
	return tr, nil
}

// retryable: the failures worth trying again, a request's (the bytes of
// a blob are resumed by blobReader).
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Temporary()
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ETIMEDOUT)
}

// classify wraps a failure of a request to host with the package's
// sentinels and what the user can do about it.
func (c *Client) classify(host string, auth authn.Authenticator, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			if auth == authn.Anonymous {
				return fmt.Errorf("%w: %w (no credentials for %s: cairn login %s)", ErrUnauthorized, err, host, host)
			}
			return fmt.Errorf("%w: %w (the credentials for %s were refused)", ErrUnauthorized, err, host)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	// A file of the store that could not be written (a full disk) is no
	// failure of the registry, though a syscall.Errno passes for a net.Error.
	var pe *fs.PathError
	if errors.As(err, &pe) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, host, err)
	}
	return err
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// authFor is the authenticator of ref's registry (for messages).
func (c *Client) authFor(ref name.Reference) authn.Authenticator {
	a, err := c.keychain.Resolve(ref.Context())
	if err != nil {
		return authn.Anonymous
	}
	return a
}

// digestOf parses a go-containerregistry hash as a digest.
func digestOf(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: digest %q: %w", image.ErrInvalid, s, err)
	}
	return d, nil
}
