package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/network"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// CreateOptions are what `cairn run` and `cairn create` say of a new container.
type CreateOptions struct {
	Name  string // empty: a generated adjective_surname
	Image string // as the user named it
	// From, if set, is the image itself (the builder's intermediate images
	// have no name to look up); Image then only names it.
	From *image.Image
	// Entrypoint is --entrypoint: nil keeps the image's; a value replaces it
	// and clears the image's CMD; [""] clears both.
	Entrypoint []string
	Args       []string // the words after the image: they replace its CMD
	Env        []string // -e and --env-file: KEY=VALUE (the caller resolves a bare KEY)
	Labels     map[string]string
	WorkingDir string
	User       string
	Hostname   string
	Tty        bool
	OpenStdin  bool
	Volumes    []string // -v as given
	// Host is how it runs: most of `run`'s flags land there as they are,
	// checked by Create (--mount in Host.Mounts, --tmpfs in Host.Tmpfs,
	// --volumes-from in Host.VolumesFrom, the limits, namespaces, devices…).
	Host    HostConfig
	Network NetworkOptions // Mode empty: Host.NetworkMode, else the default bridge
	// AttachStdin, AttachStdout and AttachStderr are the streams `run`
	// attaches (-a), recorded in Config.
	AttachStdin, AttachStdout, AttachStderr bool
	StopSignal                              string // --stop-signal: replaces the image's STOPSIGNAL
	StopTimeout                             *int   // --stop-timeout, in seconds
	// Healthcheck is --health-*: its Test (if any) and its durations and
	// retries (if not zero) replace the image's; Test ["NONE"]
	// (--no-healthcheck) turns the image's off.
	Healthcheck *dockerspec.HealthcheckConfig
}

// DefaultPath is the PATH a container gets when its image sets none, as Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Command returns the process Docker would start for an image config and the
// options of `run`: ENTRYPOINT followed by CMD; the words after the image
// replace CMD; --entrypoint replaces ENTRYPOINT and clears CMD.
func Command(entrypoint, cmd, flagEntrypoint, args []string) (ep, cm []string) {
	ep, cm = entrypoint, cmd
	if flagEntrypoint != nil {
		ep, cm = flagEntrypoint, nil
		if len(flagEntrypoint) == 1 && flagEntrypoint[0] == "" {
			ep = nil
		}
	}
	if len(args) > 0 {
		cm = args
	}
	return ep, cm
}

// Create makes a container: its record, its init layer and its writable layer.
// Nothing runs yet. Everything it is given is checked before anything is
// written, and a failure leaves nothing behind.
func (s *Store) Create(ctx context.Context, o CreateOptions) (*Container, error) {
	name := strings.TrimPrefix(o.Name, "/")
	if name != "" && !validName(name) {
		return nil, fmt.Errorf("%w: Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", ErrInvalid, o.Name)
	}
	if o.Network.Mode == "" {
		o.Network.Mode = o.Host.NetworkMode
	}
	if _, err := capabilities(o.Host); err != nil {
		return nil, err
	}
	if o.Host.PidsLimit < 0 {
		o.Host.PidsLimit = 0 // Docker: -1 is unlimited
	}
	if err := s.checkHost(ctx, &o.Host); err != nil {
		return nil, err
	}
	if o.Hostname != "" && !validHostname(o.Hostname) {
		return nil, fmt.Errorf("%w: invalid hostname format: %s", ErrInvalid, o.Hostname)
	}
	if o.Hostname != "" && o.Host.UTSMode == "host" {
		return nil, fmt.Errorf("%w: Conflicting options: hostname and the UTS mode", ErrInvalid)
	}
	if o.StopSignal != "" {
		if _, err := ParseSignal(o.StopSignal); err != nil {
			return nil, err
		}
	}
	if err := checkHealthcheck(o.Healthcheck); err != nil {
		return nil, err
	}
	// The mounts another container lends (--volumes-from), as they are now.
	var lent []Mount
	for _, ref := range o.Host.VolumesFrom {
		name, mode, _ := strings.Cut(ref, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, fmt.Errorf("%w: invalid mode for --volumes-from %s: %s (ro or rw)", ErrInvalid, ref, mode)
		}
		other, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		lent = append(lent, volumesFrom(other, mode)...)
	}
	env, err := mergeEnv(nil, o.Env)
	if err != nil {
		return nil, err
	}

	// The lease keeps the image from garbage collection until the record exists.
	release, err := s.images.Lease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var img image.Image
	if o.From != nil {
		img = *o.From
	} else if img, err = s.images.Lookup(o.Image); err != nil {
		return nil, err
	}
	ic, _, err := s.images.Config(img)
	if err != nil {
		return nil, err
	}
	// Snapshots an image lacks (one another OCI tool wrote into the layout)
	// are unpacked from its blobs now.
	chains, err := s.images.EnsureSnapshots(ctx, img)
	if err != nil {
		return nil, err
	}
	var chain digest.Digest
	if len(chains) > 0 {
		chain = chains[len(chains)-1]
	}

	id := newID()
	c := &Container{
		ID: id, Created: now(), ImageID: img.ID, Chain: chain,
		Host:  o.Host,
		State: State{Status: Created},
	}
	c.Config.DockerOCIImageConfig = ic.Config
	cfg := &c.Config
	cfg.Image, cfg.Tty, cfg.OpenStdin = o.Image, o.Tty, o.OpenStdin
	cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = o.AttachStdin, o.AttachStdout, o.AttachStderr
	cfg.StdinOnce = o.OpenStdin && o.AttachStdin
	cfg.StopTimeout = o.StopTimeout
	if o.StopSignal != "" {
		cfg.StopSignal = o.StopSignal
	}
	cfg.Healthcheck = mergeHealthcheck(o.Healthcheck, ic.Config.Healthcheck)
	cfg.Entrypoint, cfg.Cmd = Command(ic.Config.Entrypoint, ic.Config.Cmd, o.Entrypoint, o.Args)
	argv := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: no command specified", ErrInvalid)
	}
	c.Path, c.Args = argv[0], argv[1:]
	cfg.Env = imageEnvAfter(env, ic.Config.Env)
	if len(o.Labels) > 0 {
		cfg.Labels = maps.Clone(cfg.Labels)
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, o.Labels)
	}
	if o.WorkingDir != "" {
		if !filepath.IsAbs(o.WorkingDir) {
			return nil, fmt.Errorf("%w: the working directory '%s' is invalid, it needs to be an absolute path", ErrInvalid, o.WorkingDir)
		}
		cfg.WorkingDir = filepath.Clean(o.WorkingDir)
	}
	if o.User != "" {
		cfg.User = o.User
	}
	cfg.Hostname = o.Hostname
	if err := s.networkConfig(ctx, c, o.Network); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(c.Host.Sysctls)) {
		if err := checkSysctl(k, &c.Host); err != nil {
			return nil, err
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = ShortID(id)
		if c.Host.NetworkMode == ModeHost {
			cfg.Hostname, _ = os.Hostname()
		}
	}
	c.Host.Binds = o.Volumes
	if c.Mounts, err = containerMounts(mountSources{binds: o.Volumes, specs: o.Host.Mounts, tmpfs: o.Host.Tmpfs, from: lent, imageVolumes: cfg.Volumes}); err != nil {
		return nil, err
	}

	// Everything is made in a staging directory, then renamed into place under
	// the names lock: a container exists whole, or not at all.
	stage, err := os.MkdirTemp(s.tmp, "container-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage) // harmless after the rename
	if err := s.prepare(stage, c); err != nil {
		return nil, err
	}
	undo, err := s.createVolumes(ctx, c)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			undo()
		}
	}()
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "names.lock"))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	heads, err := s.heads()
	if err != nil {
		return nil, err
	}
	taken := map[string]string{}
	for _, other := range heads {
		taken[other.Name] = other.ID
	}
	if name != "" {
		if other, ok := taken[name]; ok {
			return nil, fmt.Errorf("%w: The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name", ErrConflict, name, other)
		}
	} else {
		for name == "" || taken[name] != "" {
			name = randomName()
			if taken[name] != "" {
				name += "_" + id[:4]
			}
		}
	}
	c.Name = name
	b, err := encode(c)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stage, "container.json"), b, 0o600); err != nil {
		return nil, err
	}
	failpoint.Hit("container-staged")
	if err := os.Rename(stage, s.path(id)); err != nil {
		return nil, err
	}
	failpoint.Hit("container-created")
	// An rmi that looked for the image's users before the record existed
	// may have deleted the image since the lookup: the record goes back to
	// the staging directory, and with it (image.Store.StillListed).
	if o.From == nil {
		if err := s.images.StillListed(ctx, img); err != nil {
			if rerr := os.Rename(s.path(id), stage); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			if errors.Is(err, image.ErrNotFound) {
				err = fmt.Errorf("%w: %s", image.ErrNotFound, o.Image)
			}
			return nil, err
		}
	}
	done = true
	s.emit(c, "create", nil)
	return c, nil
}

// prepare makes a container's directory: the writable layer, the mount
// point of its root, its lock files and the files bound on /etc/hosts,
// /etc/hostname and /etc/resolv.conf.
func (s *Store) prepare(dir string, c *Container) error {
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"lock", "owner.lock"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			return err
		}
	}
	// On a network of the store, Attach writes hosts and resolv.conf anew
	// at every start; with none or host they are written once, here.
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	dns := network.DNS{Servers: c.Host.Dns, Search: c.Host.DnsSearch, Options: c.Host.DnsOptions}
	if c.Host.NetworkMode != ModeHost || len(dns.Servers)+len(dns.Search)+len(dns.Options) > 0 {
		resolv = network.ResolvConf(resolv, dns)
	}
	files := map[string]string{"hostname": c.Config.Hostname + "\n", "hosts": extraHostsFile(c), "resolv.conf": string(resolv)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mergeEnv sets each KEY=VALUE of over in base, replacing a value of the same
// key. A bare KEY is left out: the caller gives it its value from its own
// environment, as Docker's CLI does, or drops it when it has none.
func mergeEnv(base, over []string) ([]string, error) {
	out := slices.Clone(base)
	for _, kv := range over {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("%w: invalid environment variable: %s", ErrInvalid, kv)
		}
		if !ok {
			continue
		}
		i := slices.IndexFunc(out, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k })
		if i >= 0 {
			out[i] = k + "=" + v
		} else {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// imageEnvAfter is a container's environment as Docker makes it: the
// variables given to run, then those of the image that they do not set.
func imageEnvAfter(given, image []string) []string {
	out := slices.Clone(given)
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(given, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k }) {
			out = append(out, kv)
		}
	}
	return out
}

// processEnv is the environment of a container's processes, as Docker makes
// it: PATH, HOSTNAME and (with a terminal) TERM, then the container's own
// variables over them.
func processEnv(c *Container, tty bool, extra []string) []string {
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + c.Config.Hostname}
	if tty {
		env = append(env, "TERM=xterm")
	}
	env, _ = mergeEnv(env, c.Config.Env)
	env, _ = mergeEnv(env, extra)
	return env
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func now() time.Time { return time.Now().UTC() }

// initLayerDirs and initLayerFiles are the init layer: the mount points the
// runtime needs in every container, so that they never show among a
// container's changes (Docker's "-init" layer). It is the same for all, and
// shared: a lower directory, which overlay never writes.
var (
	initLayerDirs  = []string{"etc", "proc", "sys", "dev/pts", "dev/shm"}
	initLayerFiles = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}
)

// makeInitLayer makes the store's init layer if it is missing: aside, then
// renamed into place, so that it is whole or absent.
func (s *Store) makeInitLayer() error {
	if _, err := os.Stat(s.initLayer); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(s.tmp, "init-layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, d := range initLayerDirs {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range initLayerFiles {
		if err := os.WriteFile(filepath.Join(tmp, f), nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.initLayer); err != nil {
		if _, serr := os.Stat(s.initLayer); serr == nil {
			return nil // another process made it meanwhile
		}
		return err
	}
	return nil
}
