package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/internal/names"
)

// Errors of the network store; callers test them with errors.Is.
var (
	ErrNotFound      = errors.New("network not found")
	ErrExists        = errors.New("network already exists")
	ErrInUse         = errors.New("network has active endpoints")
	ErrInvalid       = errors.New("invalid network argument")
	ErrPredefined    = errors.New("pre-defined network")
	ErrPortAllocated = errors.New("port is already allocated") // Docker's words
	ErrNoAddress     = errors.New("no available IPv4 addresses")
	ErrNotConnected  = errors.New("not connected to the network")
)

// Names of the networks every store has, as Docker has them.
const (
	DefaultName = "bridge" // the default bridge: NAT, no name resolution
	HostName    = "host"   // the host's own network namespace
	NoneName    = "none"   // a namespace with loopback only

	defaultBridge = "cairn0"
)

// Network is a network of the store: the default bridge, or a user network
// made by Create. Its JSON is its definition on disk.
type Network struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Driver   string            `json:"driver"` // "bridge"; "host" and "null" for the pseudo-networks
	Bridge   string            `json:"bridge,omitempty"`
	Subnet   netip.Prefix      `json:"subnet,omitzero"`
	Gateway  netip.Addr        `json:"gateway,omitzero"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Options are the driver options it was created with, as given; cairn
	// reads none of them (the front end refuses those it cannot honour).
	Options    map[string]string `json:"options,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Created    time.Time         `json:"created"`
}

// IsDefault reports whether n is the default bridge.
func (n *Network) IsDefault() bool { return n.Name == DefaultName }

// IsBridge reports whether containers on n get an interface of their own
// (the default bridge and user networks; not host or none).
func (n *Network) IsBridge() bool { return n.Driver == "bridge" }

// Store keeps the network definitions of one cairn root, with the
// host-wide state that every root shares (the default bridge, leases,
// records, the lock).
type Store struct {
	root  string // the cairn root, named in records
	defs  string // <root>/networks: user network definitions
	run   string // host-wide state (/run/cairn/network)
	netns string // where named network namespaces are bound (/run/netns)
	// userMode: the store of an unprivileged user (see usermode.go).
	userMode bool
}

// Options open a network store.
type Options struct {
	Root string // the cairn root: definitions go in <root>/networks
	// Run is the host-wide state directory, on a tmpfs: /run/cairn/network.
	Run string
	// NetNS is where network namespaces are bound, as iproute2's
	// `ip netns` keeps them: /run/netns.
	NetNS string
	// UserMode opens the network of an unprivileged user, in its user
	// namespace: the default network is a network namespace per container
	// connected by pasta, whose port forwarder publishes its ports; there
	// are no bridges, no firewall lines and no user networks.
	UserMode bool
}

// Open opens the network store of a cairn root.
func Open(o Options) (*Store, error) {
	s := &Store{root: o.Root, defs: filepath.Join(o.Root, "networks"), run: o.Run, netns: o.NetNS, userMode: o.UserMode}
	if s.netns == "" {
		s.netns = "/run/netns"
	}
	for _, d := range []string{s.defs, filepath.Join(s.run, "containers"), filepath.Join(s.run, "leases")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// lock takes the host-wide network lock: every change of links, rules,
// leases, records and definitions is made under it.
func (s *Store) lock(ctx context.Context) (*lockfile.Lock, error) {
	return lockfile.Exclusive(ctx, filepath.Join(s.run, "lock"))
}

// defaultNetwork is the default bridge; its subnet is the one its bridge
// has, or the first free one of the pool when it has none yet (resolve).
func defaultNetwork() *Network {
	sum := sha256.Sum256([]byte("cairn default bridge"))
	return &Network{Name: DefaultName, ID: hex.EncodeToString(sum[:]), Driver: "bridge", Bridge: defaultBridge}
}

func pseudoNetwork(name string) *Network {
	sum := sha256.Sum256([]byte("cairn " + name))
	driver := name
	if name == NoneName {
		driver = "null"
	}
	return &Network{Name: name, ID: hex.EncodeToString(sum[:]), Driver: driver}
}

// validName is Docker's rule for these names (internal/names).
func validName(n string) bool { return names.Valid(n) }

// CreateOptions are those of `network create`.
type CreateOptions struct {
	Name     string
	Subnet   string // CIDR; empty: the first free /16 of Docker's pools
	Gateway  string // empty: the subnet's first address
	Internal bool   // no route out: no masquerade, nothing forwarded off the bridge
	Labels   map[string]string
	// Options and Attachable are recorded for inspect, as Docker shows them.
	Options    map[string]string
	Attachable bool
}

// Create defines a user network. Its bridge is made when a container
// first joins it.
func (s *Store) Create(ctx context.Context, o CreateOptions) (*Network, error) {
	if s.userMode {
		return nil, errUserMode(o.Name)
	}
	if !validName(o.Name) {
		return nil, fmt.Errorf("%w: invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", ErrInvalid, o.Name)
	}
	switch o.Name {
	case DefaultName, HostName, NoneName:
		return nil, fmt.Errorf("%w: %s is a pre-defined network and cannot be created", ErrPredefined, o.Name)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if _, err := s.get(o.Name); err == nil {
		return nil, fmt.Errorf("%w: network with name %s already exists", ErrExists, o.Name)
	}
	n := &Network{Name: o.Name, ID: newID(), Driver: "bridge", Internal: o.Internal, Labels: o.Labels, Options: o.Options,
		Attachable: o.Attachable, Created: time.Now().UTC()}
	n.Bridge = "cairn-" + n.ID[:8]
	taken, err := s.takenSubnets()
	if err != nil {
		return nil, err
	}
	if o.Subnet != "" {
		p, err := netip.ParsePrefix(o.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%w: invalid subnet %s: want an IPv4 CIDR such as 10.89.0.0/24", ErrInvalid, o.Subnet)
		}
		p = p.Masked()
		if p.Bits() > 30 {
			return nil, fmt.Errorf("%w: subnet %s is too small for a network", ErrInvalid, p)
		}
		for _, t := range taken {
			if t.prefix.Overlaps(p) {
				return nil, fmt.Errorf("%w: subnet %s overlaps %s (%s)", ErrInvalid, p, t.prefix, t.what)
			}
		}
		n.Subnet = p
	} else {
		// The default bridge keeps the first free subnet (Docker's docker0
		// has 172.17.0.0/16) for when it comes up.
		if p, _, ok := bridgeSubnet(defaultBridge); ok {
			taken = append(taken, reserved{p, "the default bridge"})
		} else if p, err := freeSubnet(taken); err == nil {
			taken = append(taken, reserved{p, "the default bridge"})
		}
		if n.Subnet, err = freeSubnet(taken); err != nil {
			return nil, err
		}
	}
	n.Gateway = n.Subnet.Addr().Next()
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil || !n.Subnet.Contains(g) || g == n.Subnet.Addr() {
			return nil, fmt.Errorf("%w: gateway %s is not an address of subnet %s", ErrInvalid, o.Gateway, n.Subnet)
		}
		n.Gateway = g
	}
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.defPath(n.Name), b, 0o600); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Store) defPath(name string) string { return filepath.Join(s.defs, name+".json") }

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Get returns the network ref names: a name, an ID, or a unique ID prefix.
// The default bridge has a subnet while its bridge exists.
func (s *Store) Get(ref string) (*Network, error) {
	n, err := s.get(ref)
	if err == nil && n.IsDefault() {
		if p, gw, ok := bridgeSubnet(n.Bridge); ok {
			n.Subnet, n.Gateway = p, gw
		}
	}
	return n, err
}

func (s *Store) get(ref string) (*Network, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var byPrefix []*Network
	for _, n := range all {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
		if len(ref) >= 1 && strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	return nil, fmt.Errorf("%w: network %s not found", ErrNotFound, ref)
}

// List returns the networks of the store: bridge, host and none, then the
// user networks by name.
func (s *Store) List() ([]*Network, error) {
	out := []*Network{defaultNetwork(), pseudoNetwork(HostName), pseudoNetwork(NoneName)}
	entries, err := os.ReadDir(s.defs)
	if err != nil {
		return nil, err
	}
	var user []*Network
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.defs, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		var n Network
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
		user = append(user, &n)
	}
	sort.Slice(user, func(i, j int) bool { return user[i].Name < user[j].Name })
	return append(out, user...), nil
}

// Remove removes user network ref; one a running container is attached to
// is refused.
func (s *Store) Remove(ctx context.Context, ref string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return s.remove(ref)
}

func (s *Store) remove(ref string) error {
	n, err := s.get(ref)
	if err != nil {
		return err
	}
	switch n.Name {
	case DefaultName, HostName, NoneName:
		return fmt.Errorf("%w: %s is a pre-defined network and cannot be removed", ErrPredefined, n.Name)
	}
	if err := s.takeDown(n); err != nil {
		return err
	}
	failpoint.Hit("network-taken-down")
	return os.Remove(s.defPath(n.Name))
}

// takeDown removes network n's bridge and its firewall lines (and the
// shared chains, when no bridge of cairn's is left), if no container is
// attached to it; the next container on it brings it up again. The caller
// holds the lock.
func (s *Store) takeDown(n *Network) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Endpoint(n.ID) != nil {
			return fmt.Errorf("%w: error while removing network: network %s id %s has active endpoints", ErrInUse, n.Name, n.ID[:12])
		}
	}
	cur, err := save()
	if err != nil {
		return err
	}
	prefixes := []string{netTag(n.ID)}
	var chains []chain
	if !otherBridges(n.Bridge) {
		prefixes = append(prefixes, "cairn:base")
		chains = baseChains
	}
	if err := remove(cur, prefixes, chains).restore(); err != nil {
		return err
	}
	if err := deleteLink(n.Bridge); err != nil {
		return err
	}
	if err := os.Remove(s.upPath(n.Bridge)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// up is the record of a network whose bridge is up: which root defines
// it, so that a bridge whose definition went away with its root is found.
type up struct {
	Root string `json:"root"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Store) upPath(bridge string) string { return filepath.Join(s.run, "bridges", bridge+".json") }

// bringUp makes n's bridge, after recording that it is about to.
func (s *Store) bringUp(n *Network, mtu int) error {
	if err := os.MkdirAll(filepath.Join(s.run, "bridges"), 0o700); err != nil {
		return err
	}
	root := s.root
	if n.IsDefault() {
		root = "" // every root's
	}
	b, err := json.Marshal(up{Root: root, ID: n.ID, Name: n.Name})
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(s.upPath(n.Bridge), b, 0o600); err != nil {
		return err
	}
	return ensureBridge(n, mtu)
}

// orphanBridges are the user networks whose bridge is up but whose
// definition is gone (with its root, say).
func (s *Store) orphanBridges() ([]*Network, error) {
	entries, err := os.ReadDir(filepath.Join(s.run, "bridges"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []*Network
	for _, e := range entries {
		bridge, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.run, "bridges", e.Name()))
		if err != nil {
			continue
		}
		var u up
		if json.Unmarshal(b, &u) != nil || u.Root == "" {
			continue
		}
		def, err := os.ReadFile(filepath.Join(u.Root, "networks", u.Name+".json"))
		var n Network
		if err == nil && json.Unmarshal(def, &n) == nil && n.ID == u.ID {
			continue
		}
		out = append(out, &Network{Name: u.Name, ID: u.ID, Bridge: bridge, Driver: "bridge"})
	}
	return out, nil
}

// Prune removes every user network no running container is attached to,
// takes the default bridge down if no container is on it (the next one
// brings it up again), and sweeps what containers that are gone left
// (Sweep); it returns the names of the networks removed.
func (s *Store) Prune(ctx context.Context) ([]string, error) {
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if err := s.sweep(ctx); err != nil {
		return nil, err
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	if err := s.takeDown(all[0]); err != nil && !errors.Is(err, ErrInUse) {
		return nil, err
	}
	var removed []string
	for _, n := range all[3:] {
		if err := s.remove(n.ID); errors.Is(err, ErrInUse) {
			continue
		} else if err != nil {
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// InUse returns the IDs of the containers attached to network n.
func (s *Store) InUse(n *Network) ([]string, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		if r.Endpoint(n.ID) != nil {
			out = append(out, r.ID)
		}
	}
	return out, nil
}
