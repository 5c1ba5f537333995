package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/cairn-runtime/cairn/events"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/registry"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Options open an engine.
type Options struct {
	// Root is the store's root directory (/var/lib/cairn by default).
	Root string
	// Run is where runtime state lives, which must not outlive a reboot;
	// empty: the root's directory under RunBase (RunDir for root's).
	Run string
	// RegistryConfig is the path of the registry configuration: mirrors
	// and insecure registries, with the meaning of Docker's daemon.json
	// (see registry.LoadConfig). It is read when a registry is first used.
	RegistryConfig string
	// NetworkRun is the host-wide state of the network (leases, records,
	// its lock), shared by every root; empty: RunBase/network.
	NetworkRun string
	// Monitor returns the command that re-executes cairn as the monitor of
	// a detached container (see runtime.Store.StartDetached).
	Monitor func(id string) *exec.Cmd
	// Rootless opens the store of an unprivileged user from inside that
	// user's namespace (package rootless): its containers get a user-mode
	// network (pasta) instead of bridges, and limits this host cannot
	// delegate to the user are refused.
	Rootless bool
	// RunBase is the directory under which runtime state lives when Run
	// and NetworkRun are empty: /run/cairn, or the user's runtime
	// directory.
	RunBase string
}

// Engine is cairn's stores under one root and what is done across them.
// It holds no state of its own beyond handles on the stores: every method
// works through their files and locks, so that any number of processes
// (CLIs, an API service) share one root.
type Engine struct {
	Root       string
	Images     *image.Store
	Snapshots  *snapshot.Store
	Containers *runtime.Store
	Networks   *network.Store
	// Events is the store's event journal (events.log under the root),
	// which every cairn process on the store appends to.
	Events *events.Journal

	rootless       bool
	registryConfig string
	registryOnce   sync.Once
	registry       *registry.Config
	registryErr    error
}

// runBase is where runtime state lives by default: on /run, a tmpfs, so
// that nothing of it outlives a reboot.
const runBase = "/run/cairn"

// RunDir is where the runtime state of the store at root lives by default:
// one directory per store root under /run/cairn.
func RunDir(root string) string { return runDirIn(runBase, root) }

func runDirIn(base, root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(base, hex.EncodeToString(sum[:8]))
}

// Open opens (creating them if needed) the stores under o.Root.
func Open(o Options) (*Engine, error) {
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Engine, error) {
		return nil, fmt.Errorf("%w %s: %w", ErrStore, root, err)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fail(err)
	}
	tmp := filepath.Join(root, "tmp")
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"), tmp)
	if err != nil {
		return fail(err)
	}
	imgs, err := image.Open(filepath.Join(root, "images"), tmp, filepath.Join(root, "locks"), snaps)
	if err != nil {
		return fail(err)
	}
	base := o.RunBase
	if base == "" {
		base = runBase
	}
	run := o.Run
	if run == "" {
		run = runDirIn(base, root)
	}
	imgs.KeepFacts(filepath.Join(run, "cache")) // docs/on-disk.md
	netRun := o.NetworkRun
	if netRun == "" {
		netRun = filepath.Join(base, "network")
	}
	netOpts := network.Options{Root: root, Run: netRun}
	if o.Rootless {
		// Named network namespaces live in the user's runtime directory,
		// bound in the user's mount namespace.
		netOpts.NetNS, netOpts.UserMode = filepath.Join(base, "netns"), true
	}
	nets, err := network.Open(netOpts)
	if err != nil {
		return fail(err)
	}
	journal := events.Open(filepath.Join(root, "events.log"), 0)
	ctrs, err := runtime.Open(runtime.Options{
		Root: root, Run: run, Tmp: tmp, Images: imgs, Snapshots: snaps, Networks: nets, Monitor: o.Monitor, Events: journal,
	})
	if err != nil {
		return fail(err)
	}
	return &Engine{Root: root, Images: imgs, Snapshots: snaps, Containers: ctrs, Networks: nets, Events: journal, registryConfig: o.RegistryConfig, rootless: o.Rootless}, nil
}

// Tmp is the root's directory for work in progress.
func (e *Engine) Tmp() string { return filepath.Join(e.Root, "tmp") }

// Registry returns a registry client of the store with the credentials of
// keychain (nil: none).
func (e *Engine) Registry(keychain authn.Keychain) (*registry.Client, error) {
	e.registryOnce.Do(func() {
		if e.registryConfig == "" {
			e.registry = &registry.Config{}
			return
		}
		e.registry, e.registryErr = registry.LoadConfig(e.registryConfig)
		if e.registryErr != nil {
			e.registryErr = fmt.Errorf("%w: %w", ErrConfig, e.registryErr)
		}
	})
	if e.registryErr != nil {
		return nil, e.registryErr
	}
	return registry.New(e.registry, e.Images, keychain), nil
}

// Prune removes the blobs and snapshots that no image, no build cache entry
// and no container uses any more, and what killed processes left in tmp/.
// It holds the image store's lock exclusively meanwhile: no load, pull or
// commit is under way.
func (e *Engine) Prune(ctx context.Context) error {
	_, err := e.sweep(ctx)
	return err
}
