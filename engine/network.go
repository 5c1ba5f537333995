package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-connections/nat"
)

// NetworkInspect is `docker network inspect`'s shape.
type NetworkInspect struct {
	Name       string
	ID         string `json:"Id"`
	Created    time.Time
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       struct {
		Driver  string
		Options map[string]string
		Config  []IPAMConfig
	}
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigFrom struct{ Network string }
	ConfigOnly bool
	Containers map[string]NetworkContainer
	Options    map[string]string
	Labels     map[string]string
}

// IPAMConfig is a subnet of a network's inspect.
type IPAMConfig struct {
	Subnet  string `json:",omitempty"`
	Gateway string `json:",omitempty"`
}

// NetworkContainer is a container attached to a network, in its inspect.
type NetworkContainer struct {
	Name        string
	EndpointID  string
	MacAddress  string
	IPv4Address string
	IPv6Address string
}

// InspectNetwork returns what `docker network inspect` shows of network ref.
func (e *Engine) InspectNetwork(ref string) (*NetworkInspect, error) {
	n, err := e.Networks.Get(ref)
	if err != nil {
		return nil, err
	}
	v := networkInspect(n)
	ids, err := e.Networks.InUse(n)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		r, err := e.Networks.State(id)
		if err != nil || r == nil {
			continue
		}
		ep := r.Endpoint(n.ID)
		if ep == nil {
			continue
		}
		v.Containers[id] = NetworkContainer{Name: r.Name, EndpointID: endpointID(id, n.ID), MacAddress: ep.MAC,
			IPv4Address: fmt.Sprintf("%s/%d", ep.IP, ep.Subnet.Bits()), IPv6Address: ""}
	}
	return v, nil
}

// networkInspect is n's inspect without its containers. A user network's
// Options are those it was made with, as Docker's: docker-compose compares
// them with its file's driver_opts and would have the network recreated
// for any other.
func networkInspect(n *network.Network) *NetworkInspect {
	v := &NetworkInspect{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, Internal: n.Internal,
		Attachable: n.Attachable, Containers: map[string]NetworkContainer{}, Options: maps.Clone(n.Options), Labels: n.Labels}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	v.IPAM.Driver, v.IPAM.Options, v.IPAM.Config = "default", map[string]string{}, []IPAMConfig{}
	if n.IsDefault() {
		v.Options["com.docker.network.bridge.default_bridge"] = "true"
		v.Options["com.docker.network.bridge.name"] = n.Bridge
	}
	if n.IsBridge() && n.Subnet.IsValid() {
		v.IPAM.Config = append(v.IPAM.Config, IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()})
	}
	return v
}

// NetworkFilters are the filters of the networks' list, as Docker's daemon.
var NetworkFilters = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}

// ListNetworks returns the networks that the filters (see NetworkFilters)
// let through, as Docker's list has them: without their containers.
func (e *Engine) ListNetworks(f Filters) ([]*NetworkInspect, error) {
	if err := f.Validate(NetworkFilters...); err != nil {
		return nil, err
	}
	for _, t := range f["type"] {
		if t != "custom" && t != "builtin" {
			return nil, invalidFilter("invalid filter: 'type'='%s'", t)
		}
	}
	dangling, err := f.boolValue("dangling", false)
	if err != nil {
		return nil, err
	}
	list, err := e.Networks.List()
	if err != nil {
		return nil, err
	}
	out := []*NetworkInspect{}
	for _, n := range list {
		builtin := n.IsDefault() || n.Name == network.HostName || n.Name == network.NoneName
		kind := "custom"
		if builtin {
			kind = "builtin"
		}
		if !f.exactMatch("driver", n.Driver) || !f.match("name", n.Name) || !f.match("id", n.ID) ||
			!f.matchKV("label", n.Labels) || !f.exactMatch("scope", "local") || !f.exactMatch("type", kind) {
			continue
		}
		if f.Contains("dangling") {
			ids, err := e.Networks.InUse(n)
			if err != nil {
				return nil, err
			}
			if used := builtin || len(ids) > 0; used == dangling {
				continue
			}
		}
		if n.IsDefault() {
			if n, err = e.Networks.Get(n.ID); err != nil { // with its bridge's subnet
				return nil, err
			}
		}
		out = append(out, networkInspect(n))
	}
	return out, nil
}

func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: invalid IPv4 address: %s", ErrInvalid, s)
	}
	return a, nil
}

// endpointID is Docker's EndpointID of a container's interface on a network.
func endpointID(containerID, netID string) string {
	sum := sha256.Sum256([]byte(containerID + " " + netID))
	return hex.EncodeToString(sum[:])
}

// ConnectOptions are those of `network connect`.
type ConnectOptions struct {
	Aliases []string
	IP      string
}

// Connect connects container ctr to network net: at once if it runs, and
// for every start from now on.
func (e *Engine) Connect(ctx context.Context, net, ctr string, o ConnectOptions) error {
	n, err := e.Networks.Get(net)
	if err != nil {
		return err
	}
	c, err := e.Containers.Get(ctx, ctr)
	if err != nil {
		return err
	}
	if !n.IsBridge() || !ownsNetwork(c) {
		return fmt.Errorf("%w: container %s cannot be connected to network %s: it runs with --network %s", ErrInvalid, c.Name, n.Name, c.Host.NetworkMode)
	}
	if _, ok := c.Networks[n.Name]; ok {
		return fmt.Errorf("%w: endpoint with name %s already exists in network %s", network.ErrExists, c.Name, n.Name)
	}
	if n.IsDefault() && (len(o.Aliases) > 0 || o.IP != "") {
		return fmt.Errorf("%w: network-scoped aliases and addresses are only supported for user-defined networks", ErrInvalid)
	}
	settings := &runtime.EndpointSettings{Aliases: o.Aliases, IPv4Address: o.IP}
	running := c.Live()
	if running {
		er := network.EndpointRequest{Network: n.ID, Aliases: o.Aliases}
		if o.IP != "" {
			if er.IP, err = parseIP(o.IP); err != nil {
				return err
			}
		}
		if _, err := e.Networks.Connect(ctx, c.ID, er); err != nil {
			return err
		}
	}
	if err := e.Containers.SetNetwork(ctx, c.ID, n.Name, settings); err != nil {
		if running {
			e.Networks.Disconnect(context.WithoutCancel(ctx), c.ID, n.ID)
		}
		return err
	}
	e.emitNetwork("connect", n, map[string]string{"container": c.ID})
	return nil
}

// Disconnect disconnects container ctr from network net.
func (e *Engine) Disconnect(ctx context.Context, net, ctr string) error {
	n, err := e.Networks.Get(net)
	if err != nil {
		return err
	}
	c, err := e.Containers.Get(ctx, ctr)
	if err != nil {
		return err
	}
	if _, ok := c.Networks[n.Name]; !ok {
		return fmt.Errorf("%w: container %s is not connected to network %s", network.ErrNotConnected, c.Name, n.Name)
	}
	if c.Live() {
		if err := e.Networks.Disconnect(ctx, c.ID, n.ID); err != nil {
			return err
		}
	}
	if err := e.Containers.SetNetwork(ctx, c.ID, n.Name, nil); err != nil {
		return err
	}
	e.emitNetwork("disconnect", n, map[string]string{"container": c.ID})
	return nil
}

// RemoveNetwork removes network ref, as `docker network rm` does: one that
// a running container is attached to is refused; stopped containers that
// name it are disconnected from it.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	n, err := e.Networks.Get(ref)
	if err != nil {
		return err
	}
	if err := e.Networks.Remove(ctx, n.ID); err != nil {
		return err
	}
	e.emitNetwork("destroy", n, nil)
	return e.forgetNetwork(ctx, n.Name)
}

// PruneNetworks removes the user networks no running container is
// attached to, and returns their names.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	byName := map[string]*network.Network{}
	if list, err := e.Networks.List(); err == nil {
		for _, n := range list {
			byName[n.Name] = n
		}
	}
	removed, err := e.Networks.Prune(ctx)
	for _, name := range removed {
		if n := byName[name]; n != nil {
			e.emitNetwork("destroy", n, nil)
		}
		if ferr := e.forgetNetwork(ctx, name); err == nil {
			err = ferr
		}
	}
	return removed, err
}

// forgetNetwork drops network name from the containers that would join it.
func (e *Engine) forgetNetwork(ctx context.Context, name string) error {
	list, err := e.Containers.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		if _, ok := c.Networks[name]; ok && c.Host.NetworkMode != name {
			if err := e.Containers.SetNetwork(ctx, c.ID, name, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func ownsNetwork(c *runtime.Container) bool {
	m := c.Host.NetworkMode
	return m != runtime.ModeHost && m != runtime.ModeNone && !strings.HasPrefix(m, runtime.ModeContainer)
}

// PortBinding is a published port of a container: its port ("80/tcp"),
// and where on the host.
type PortBinding struct {
	Port   string // "80/tcp"
	HostIP string
	Host   string // "8888"
}

// Ports returns the ports container ref publishes now, as `docker port`
// lists them: by port, each with its host address and port.
func (e *Engine) Ports(ctx context.Context, ref string) ([]PortBinding, error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.PortBindings(c)
}

// PortBindings returns the ports container c publishes now (none unless it
// runs).
func (e *Engine) PortBindings(c *runtime.Container) ([]PortBinding, error) {
	if !c.Live() {
		return nil, nil // a record a killed owner left says nothing of a stopped container
	}
	r, err := e.Networks.State(c.ID)
	if err != nil || r == nil {
		return nil, err
	}
	var out []PortBinding
	for _, p := range r.Ports {
		ip, _, _ := net.SplitHostPort(p.Host()) // "0.0.0.0" for every address
		out = append(out, PortBinding{Port: p.Port(), HostIP: ip, Host: strconv.Itoa(int(p.HostPort))})
	}
	return out, nil
}

// NetworkSettings is the NetworkSettings of a container's inspect, as
// Docker 20.10 shows it: the default bridge's address at its top, every
// network's below.
type NetworkSettings struct {
	Bridge                 string
	SandboxID              string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  nat.PortMap
	SandboxKey             string
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*EndpointInspect
}

// EndpointInspect is one network of a container's NetworkSettings.
type EndpointInspect struct {
	IPAMConfig          *struct{ IPv4Address string } `json:"IPAMConfig"`
	Links               []string
	Aliases             []string
	NetworkID           string
	EndpointID          string
	Gateway             string
	IPAddress           string
	IPPrefixLen         int
	IPv6Gateway         string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	MacAddress          string
	DriverOpts          map[string]string
}

// ContainerNetworkSettings is c's NetworkSettings: what it asked, with what it has
// while it runs.
func (e *Engine) ContainerNetworkSettings(c *runtime.Container) NetworkSettings {
	return e.NetworkSettingsWith(c, e.Networks.Get)
}

// NetworkLookup is a lookup of networks by name that reads each one once:
// for a listing of many containers (see NetworkSettingsWith).
func (e *Engine) NetworkLookup() func(name string) (*network.Network, error) {
	type found struct {
		n   *network.Network
		err error
	}
	seen := map[string]found{}
	return func(name string) (*network.Network, error) {
		f, ok := seen[name]
		if !ok {
			f.n, f.err = e.Networks.Get(name)
			seen[name] = f
		}
		return f.n, f.err
	}
}

// NetworkSettingsWith is ContainerNetworkSettings with the networks found
// through get.
func (e *Engine) NetworkSettingsWith(c *runtime.Container, get func(name string) (*network.Network, error)) NetworkSettings {
	v := NetworkSettings{Ports: nat.PortMap{}, Networks: map[string]*EndpointInspect{}}
	var rec *network.Record
	if c.Live() {
		rec, _ = e.Networks.State(c.ID)
	}
	switch m := c.Host.NetworkMode; {
	case m == runtime.ModeHost || m == runtime.ModeNone:
		n, _ := get(m)
		ep := &EndpointInspect{}
		if n != nil {
			ep.NetworkID = n.ID
		}
		v.Networks[m] = ep
	case strings.HasPrefix(m, runtime.ModeContainer):
	}
	for name, s := range c.Networks {
		ep := &EndpointInspect{Aliases: slices.Clone(s.Aliases)}
		if s.IPv4Address != "" {
			ep.IPAMConfig = &struct{ IPv4Address string }{s.IPv4Address}
		}
		if n, err := get(name); err == nil {
			ep.NetworkID = n.ID
			if !n.IsDefault() {
				// Docker 20.10 lists the short ID among the aliases on user
				// networks, which compose v1 looks for.
				ep.Aliases = append(ep.Aliases, runtime.ShortID(c.ID))
			}
		}
		if rec != nil {
			if re := rec.Endpoint(ep.NetworkID); re != nil {
				ep.EndpointID = endpointID(c.ID, re.NetworkID)
				ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.MacAddress = re.Gateway.String(), re.IP.String(), re.Subnet.Bits(), re.MAC
				if name == network.DefaultName {
					v.EndpointID, v.Gateway, v.IPAddress, v.IPPrefixLen, v.MacAddress = ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen, ep.MacAddress
				}
			}
		}
		if len(ep.Aliases) == 0 {
			ep.Aliases = nil
		}
		v.Networks[name] = ep
	}
	if rec != nil {
		v.SandboxKey = rec.NetNS
		v.SandboxID = endpointID(c.ID, "sandbox")
		for port := range c.Config.ExposedPorts {
			v.Ports[nat.Port(port)] = nil
		}
		for _, p := range rec.Ports {
			ip := "0.0.0.0"
			if p.HostIP.IsValid() {
				ip = p.HostIP.String()
			}
			k := nat.Port(p.Port())
			v.Ports[k] = append(v.Ports[k], nat.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	return v
}

// portsColumn is the PORTS column of `docker ps` for c, which publishes
// bindings: each published port as "0.0.0.0:8888->8080/tcp", each exposed
// one as "9000/tcp".
func portsColumn(c *runtime.Container, bindings []PortBinding) string {
	if !c.Live() {
		return ""
	}
	published := map[string]bool{}
	var out []string
	for _, b := range bindings {
		out = append(out, b.HostIP+":"+b.Host+"->"+b.Port)
		published[b.Port] = true
	}
	for _, port := range slices.Sorted(maps.Keys(c.Config.ExposedPorts)) {
		if !published[port] {
			out = append(out, port)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
