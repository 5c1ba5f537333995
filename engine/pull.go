package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/registry"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
)

// PullPolicy says when run, create and build pull an image: Docker's
// --pull always, missing (the default) or never.
type PullPolicy string

// Pull policies.
const (
	PullAlways  PullPolicy = "always"
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
)

// ParsePullPolicy parses --pull's value.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullAlways, PullMissing, PullNever:
		return p, nil
	case "":
		return PullMissing, nil
	}
	return "", fmt.Errorf("%w: invalid pull option: %q: must be one of \"always\", \"missing\" or \"never\"", ErrInvalid, s)
}

// PullOptions are those of a pull.
type PullOptions struct {
	Platform string // os/arch[/variant]; empty: this machine's
	// Keychain holds the caller's credentials (nil: none).
	Keychain authn.Keychain
	// Report, if not nil, is told how the pull goes.
	Report PullReporter
	// InLease says the caller holds a lease of the image store (a build
	// does): a failed pull then leaves what it fetched for the next prune,
	// which would otherwise wait for the caller's own lease.
	InLease bool
}

// PullReporter is told how a pull goes, in the order Docker's pull tells
// it: its target, then what happens to each layer (from several
// goroutines at once), then its result.
type PullReporter interface {
	Start(what, path string) // "latest: Pulling from library/busybox"
	Layer(registry.Event)
	Done(registry.Pulled, error)
}

// PullTarget is what Docker's pull names in its first line ("latest:
// Pulling from library/busybox"): the tag or digest, and the repository's
// path.
func PullTarget(ref string) (what, path string, err error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", fmt.Errorf("%w: invalid reference format: %q", ErrInvalid, ref)
	}
	what = "latest"
	if d, ok := n.(reference.Digested); ok {
		what = d.Digest().String()
	} else if t, ok := n.(reference.Tagged); ok {
		what = t.Tag()
	}
	return what, reference.Path(n), nil
}

// Pull fetches ref into the store. A pull that fails leaves nothing behind
// (unless o.InLease); one that is interrupted keeps the layers it
// completed, for the next try.
func (e *Engine) Pull(ctx context.Context, ref string, o PullOptions) (p registry.Pulled, err error) {
	what, path, err := PullTarget(ref)
	if err != nil {
		return registry.Pulled{}, err
	}
	ro := registry.PullOptions{Platform: o.Platform}
	if o.Report != nil {
		o.Report.Start(what, path)
		ro.Progress = o.Report.Layer
		defer func() { o.Report.Done(p, err) }()
	}
	c, err := e.Registry(o.Keychain)
	if err != nil {
		return registry.Pulled{}, err
	}
	p, err = c.Pull(ctx, ref, ro)
	if err != nil {
		if !o.InLease && ctx.Err() == nil {
			e.Prune(context.WithoutCancel(ctx)) // best effort: what this pull left
		}
		if errors.Is(err, registry.ErrInvalid) {
			return registry.Pulled{}, err
		}
		return registry.Pulled{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	e.emitPull(ref)
	return p, nil
}

// EnsureImage makes sure the store has image ref, as policy says: always
// pulls it, missing pulls it if the store lacks it (telling missing first,
// if not nil), never only looks.
func (e *Engine) EnsureImage(ctx context.Context, ref string, policy PullPolicy, o PullOptions, missing func(ref string)) error {
	if policy == "" {
		policy = PullMissing
	}
	_, err := e.Images.Lookup(ref)
	absent := errors.Is(err, image.ErrNotFound)
	if err != nil && !absent {
		return err
	}
	if policy == PullNever || policy == PullMissing && !absent {
		return nil
	}
	if absent && missing != nil {
		missing(ref)
	}
	_, err = e.Pull(ctx, ref, o)
	return err
}

// ParseCompression parses the compression a push asks for: gzip or zstd.
func ParseCompression(s string) (rootfs.Compression, error) {
	switch s {
	case "gzip", "":
		return rootfs.Gzip, nil
	case "zstd":
		return rootfs.Zstd, nil
	}
	return 0, fmt.Errorf("%w: invalid compression %q: gzip or zstd", ErrInvalid, s)
}

// PushOptions are those of a push.
type PushOptions = registry.PushOptions

// Push sends image ref to its registry, with the credentials of keychain.
func (e *Engine) Push(ctx context.Context, ref string, keychain authn.Keychain, o PushOptions) (registry.Pushed, error) {
	c, err := e.Registry(keychain)
	if err != nil {
		return registry.Pushed{}, err
	}
	p, err := c.Push(ctx, ref, o)
	if err == nil {
		e.emitPush(ref)
	}
	if err != nil && !errors.Is(err, registry.ErrNoSuchImage) {
		return p, fmt.Errorf("push %s: %w", ref, err)
	}
	return p, err
}

// Login checks user and password against the registry server (with the
// registry configuration at configPath), as `docker login` does, and
// returns the registry's host. Keeping the credentials is the caller's.
// It needs no store.
func Login(ctx context.Context, configPath, server, user, password string) (host string, err error) {
	cfg, err := registry.LoadConfig(configPath)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	host = registry.LoginHost(server)
	return host, registry.New(cfg, nil, nil).Login(ctx, host, user, password)
}

// Pulled is what a pull fetched (see registry.Pulled), for the front ends
// that report it.
type Pulled = registry.Pulled

// The registry's errors, as Pull, Push and CheckLogin return them wrapped,
// for front ends that tell them apart (the API's statuses).
var (
	ErrRegistryNotFound     = registry.ErrNotFound
	ErrRegistryUnauthorized = registry.ErrUnauthorized
	ErrRegistryInvalid      = registry.ErrInvalid
	ErrNoSuchLocalImage     = registry.ErrNoSuchImage
)

// CheckLogin is Login with the store's registry configuration, for a
// front end that has an engine (the API): it checks user and password
// against server and returns the registry's host. It keeps nothing.
func (e *Engine) CheckLogin(ctx context.Context, server, user, password string) (host string, err error) {
	c, err := e.Registry(nil)
	if err != nil {
		return "", err
	}
	host = registry.LoginHost(server)
	return host, c.Login(ctx, host, user, password)
}

// PullSummary is what a pull says when it has ended, as dockerd words
// it: the digest, then whether it brought anything new.
func PullSummary(p registry.Pulled) []string {
	status := "Status: Downloaded newer image for "
	if p.UpToDate {
		status = "Status: Image is up to date for "
	}
	return []string{"Digest: " + p.Digest.String(), status + image.FamiliarName(p.Name)}
}
