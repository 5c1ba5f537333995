package runtime

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/network"
	"github.com/docker/go-connections/nat"
)

// Network modes a container runs with, as Docker names them; any other
// mode names a user network.
const (
	ModeBridge = "bridge"
	ModeHost   = "host"
	ModeNone   = "none"
	// ModeContainer prefixes the container whose network namespace it shares.
	ModeContainer = "container:"
)

// NetworkOptions are the network flags of `run` and `create`.
type NetworkOptions struct {
	Mode       string   // --network: bridge (the default), host, none, container:NAME, or a user network
	Aliases    []string // --network-alias
	IP         string   // --ip
	MAC        string   // --mac-address
	Domainname string   // --domainname
	// Ports are -p's, parsed (see network.ParsePorts); Expose adds
	// --expose's and -p's container ports to the image's exposed ports.
	Ports      []network.PortBinding
	Expose     []string
	PublishAll bool // -P
	DNS        network.DNS
	ExtraHosts []string // --add-host name:ip
}

// networkConfig checks a new container's network options against what
// exists, and sets them in c.
func (s *Store) networkConfig(ctx context.Context, c *Container, o NetworkOptions) error {
	mode := o.Mode
	switch mode {
	case "", "default":
		mode = ModeBridge
	}
	c.Host.NetworkMode = mode
	user := mode != ModeBridge && mode != ModeHost && mode != ModeNone && !strings.HasPrefix(mode, ModeContainer)
	shares := mode == ModeHost || strings.HasPrefix(mode, ModeContainer)
	switch {
	case shares && len(o.Ports) > 0 || shares && o.PublishAll:
		return fmt.Errorf("%w: conflicting options: port publishing and the container type network mode", ErrInvalid)
	case strings.HasPrefix(mode, ModeContainer) && (c.Config.Hostname != "" || o.Domainname != ""):
		return fmt.Errorf("%w: conflicting options: hostname and the network mode", ErrInvalid)
	case strings.HasPrefix(mode, ModeContainer) && (len(o.DNS.Servers) > 0 || len(o.DNS.Search) > 0 || len(o.DNS.Options) > 0 || len(o.ExtraHosts) > 0):
		return fmt.Errorf("%w: conflicting options: dns and the network mode", ErrInvalid)
	case !user && (len(o.Aliases) > 0):
		return fmt.Errorf("%w: network-scoped aliases are only supported for user-defined networks", ErrInvalid)
	case !user && o.IP != "":
		return fmt.Errorf("%w: user specified IP address is supported on user defined networks only", ErrInvalid)
	case (mode == ModeNone || shares) && o.MAC != "":
		return fmt.Errorf("%w: conflicting options: mac-address and the network mode", ErrInvalid)
	}
	if strings.HasPrefix(mode, ModeContainer) {
		other, err := s.Get(ctx, strings.TrimPrefix(mode, ModeContainer))
		if err != nil {
			return err
		}
		c.Host.NetworkMode = ModeContainer + other.ID
		c.Config.Hostname, c.Config.Domainname = other.Config.Hostname, other.Config.Domainname
	}
	if user || mode == ModeBridge {
		n, err := s.nets.Get(mode)
		if err != nil {
			return err
		}
		if o.IP != "" {
			ip, err := netip.ParseAddr(o.IP)
			if err != nil || !ip.Is4() {
				return fmt.Errorf("%w: invalid IPv4 address: %s", ErrInvalid, o.IP)
			}
			if n.Subnet.IsValid() && !n.Subnet.Contains(ip) {
				return fmt.Errorf("%w: address %s is not in the subnet %s of network %s", ErrInvalid, ip, n.Subnet, n.Name)
			}
		}
		c.Networks = map[string]*EndpointSettings{n.Name: {Aliases: o.Aliases, IPv4Address: o.IP, MacAddress: o.MAC}}
		c.Host.NetworkMode = n.Name
	}
	for _, h := range o.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return fmt.Errorf("%w: invalid argument %q for \"--add-host\" flag: bad format for add-host: %q", ErrInvalid, h, h)
		}
		if _, err := netip.ParseAddr(ip); err != nil && ip != "host-gateway" {
			return fmt.Errorf("%w: invalid argument %q for \"--add-host\" flag: invalid IP address in add-host: %q", ErrInvalid, h, ip)
		}
	}
	if o.Domainname != "" {
		c.Config.Domainname = o.Domainname
	}
	c.Host.Dns, c.Host.DnsSearch, c.Host.DnsOptions = o.DNS.Servers, o.DNS.Search, o.DNS.Options
	c.Host.ExtraHosts = o.ExtraHosts
	c.Host.PublishAllPorts = o.PublishAll
	c.Host.PortBindings = nat.PortMap{}
	exposed := maps.Clone(c.Config.ExposedPorts)
	if exposed == nil {
		exposed = map[string]struct{}{}
	}
	for _, e := range o.Expose {
		if strings.Contains(e, ":") {
			return fmt.Errorf("%w: invalid port format for --expose: %s", ErrInvalid, e)
		}
		ports, _, err := network.ParsePorts([]string{e})
		if err != nil {
			return fmt.Errorf("%w: invalid range format for --expose: %s: %w", ErrInvalid, e, err)
		}
		for _, p := range ports {
			exposed[p] = struct{}{}
		}
	}
	for _, p := range o.Ports {
		port := p.Port()
		exposed[port] = struct{}{}
		b := nat.PortBinding{}
		if p.HostIP.IsValid() {
			b.HostIP = p.HostIP.String()
		}
		if p.HostPort != 0 {
			b.HostPort = strconv.Itoa(int(p.HostPort))
		}
		c.Host.PortBindings[nat.Port(port)] = append(c.Host.PortBindings[nat.Port(port)], b)
	}
	if len(exposed) > 0 {
		c.Config.ExposedPorts = exposed
	}
	return nil
}

// portBindings are the ports container c publishes: -p's, and with -P
// every exposed port that -p does not publish, on a port the kernel picks.
func portBindings(c *Container) ([]network.PortBinding, error) {
	out, err := network.BindingsOf(c.Host.PortBindings)
	if err != nil {
		return nil, err
	}
	if c.Host.PublishAllPorts {
		for port := range c.Config.ExposedPorts {
			p := nat.Port(port)
			if _, ok := c.Host.PortBindings[p]; ok || (p.Proto() != "tcp" && p.Proto() != "udp") {
				continue
			}
			start, end, err := p.Range()
			if err != nil {
				continue
			}
			for n := start; n <= end; n++ {
				out = append(out, network.PortBinding{ContainerPort: uint16(n), Proto: p.Proto()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		return out[i].Proto < out[j].Proto
	})
	return out, nil
}

// networkOrder lists c's networks, the first joined first.
func networkOrder(c *Container) []string {
	names := slices.Collect(maps.Keys(c.Networks))
	sort.Slice(names, func(i, j int) bool {
		a, b := c.Networks[names[i]], c.Networks[names[j]]
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return names[i] < names[j]
	})
	return names
}

// ownNetwork reports whether c gets a network namespace that the network
// store sets up (the default bridge or user networks).
func ownNetwork(c *Container) bool {
	m := c.Host.NetworkMode
	return m != ModeHost && m != ModeNone && !strings.HasPrefix(m, ModeContainer) && len(c.Networks) > 0
}

// attachNetwork sets container c's network up before it starts, and says
// which network namespace it joins ("" for one of its own with loopback
// only, or none at all for host) and which files it binds on /etc/hosts,
// /etc/hostname and /etc/resolv.conf.
func (s *Store) attachNetwork(ctx context.Context, c *Container) (att *network.Attachment, netns string, files string, err error) {
	files = s.path(c.ID)
	switch m := c.Host.NetworkMode; {
	case strings.HasPrefix(m, ModeContainer):
		other, err := s.Get(ctx, strings.TrimPrefix(m, ModeContainer))
		if err != nil {
			return nil, "", "", fmt.Errorf("network of container %s: %w", ShortID(strings.TrimPrefix(m, ModeContainer)), err)
		}
		if other.State.Status != Running && other.State.Status != Paused {
			return nil, "", "", fmt.Errorf("%w: cannot join network of a non running container: %s", ErrConflict, other.Name)
		}
		if other.Host.NetworkMode == ModeHost {
			return nil, "host", s.path(other.ID), nil
		}
		netns = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
		if rec, err := s.nets.State(other.ID); err == nil && rec != nil {
			netns = rec.NetNS
		}
		return nil, netns, s.path(other.ID), nil
	case !ownNetwork(c):
		return nil, "", files, nil
	}
	ports, err := portBindings(c)
	if err != nil {
		return nil, "", "", err
	}
	req := network.Request{
		ID: c.ID, Name: c.Name, Hostname: c.Config.Hostname, Domainname: c.Config.Domainname,
		HostsPath: filepath.Join(files, "hosts"), ResolvPath: filepath.Join(files, "resolv.conf"),
		DNS:        network.DNS{Servers: c.Host.Dns, Search: c.Host.DnsSearch, Options: c.Host.DnsOptions},
		ExtraHosts: c.Host.ExtraHosts, Ports: ports,
	}
	for _, name := range networkOrder(c) {
		e := c.Networks[name]
		er := network.EndpointRequest{Network: name, Aliases: e.Aliases, MAC: e.MacAddress}
		if e.IPv4Address != "" {
			if er.IP, err = netip.ParseAddr(e.IPv4Address); err != nil {
				return nil, "", "", fmt.Errorf("%w: --ip %s", ErrInvalid, e.IPv4Address)
			}
		}
		req.Networks = append(req.Networks, er)
	}
	att, err = s.nets.Attach(ctx, req)
	if err != nil {
		return nil, "", "", err
	}
	return att, att.NetNS, files, nil
}

// detachNetwork undoes what the network store set up for container id,
// if anything.
func (s *Store) detachNetwork(ctx context.Context, id string) error {
	if s.nets == nil {
		return nil
	}
	return s.nets.Detach(context.WithoutCancel(ctx), id)
}

// extraHostsFile is /etc/hosts of a container that the network store
// does not write (none, host): localhost, or the host's, and --add-host.
func extraHostsFile(c *Container) string {
	var base []byte
	if c.Host.NetworkMode == ModeHost {
		base, _ = os.ReadFile("/etc/hosts")
	}
	return string(network.HostsFile(base, c.Host.ExtraHosts))
}

// SetNetwork records that container id joins network name with settings
// at its next starts (nil: it no longer does), as `network connect` and
// `disconnect` say.
func (s *Store) SetNetwork(ctx context.Context, id, name string, settings *EndpointSettings) error {
	_, err := s.update(ctx, id, func(c *Container) error {
		if settings == nil {
			delete(c.Networks, name)
			return nil
		}
		if c.Networks == nil {
			c.Networks = map[string]*EndpointSettings{}
		}
		for _, e := range c.Networks {
			settings.Order = max(settings.Order, e.Order+1)
		}
		c.Networks[name] = settings
		return nil
	})
	return err
}
