package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/go-connections/nat"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PortBinding is a published port: HostIP:HostPort on the host to
// ContainerPort in the container, for Proto ("tcp" or "udp").
type PortBinding struct {
	HostIP        netip.Addr `json:"hostIP,omitzero"` // zero: every address of the host
	HostPort      uint16     `json:"hostPort"`        // 0 (before Attach): one the kernel picks
	ContainerPort uint16     `json:"containerPort"`
	Proto         string     `json:"proto"`
}

// Port is "8080/tcp", as Docker names a container's port.
func (p PortBinding) Port() string { return fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto) }

// Host is "0.0.0.0:8888", as `docker port` prints it.
func (p PortBinding) Host() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}

// ParsePorts parses what `-p` takes ([IP:][HOST:]CONTAINER[/PROTO], with
// ranges) into the ports it exposes and the bindings it asks for, as
// Docker's CLI does (go-connections' nat). A host port range must be as
// long as the container's, or a single port for a range of one.
func ParsePorts(specs []string) (exposed []string, bindings []PortBinding, err error) {
	ports, bmap, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for p := range ports {
		exposed = append(exposed, string(p))
	}
	sort.Strings(exposed)
	if bindings, err = BindingsOf(bmap); err != nil {
		return nil, nil, err
	}
	return exposed, bindings, nil
}

// BindingsOf are the bindings of a port map in Docker's shape (-p parsed,
// or the API's HostConfig.PortBindings), ordered by port: tcp and udp,
// IPv4, one host port each ("" or 0: one the kernel picks).
func BindingsOf(m nat.PortMap) ([]PortBinding, error) {
	var bindings []PortBinding
	for p, bs := range m {
		proto := p.Proto()
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("%w: protocol %s of port %s: cairn publishes tcp and udp", ErrInvalid, proto, p)
		}
		start, end, err := p.Range()
		if err != nil || start != end || start < 1 || start > 65535 {
			return nil, fmt.Errorf("%w: invalid container port %q", ErrInvalid, p)
		}
		for _, b := range bs {
			pb := PortBinding{ContainerPort: uint16(start), Proto: proto}
			if b.HostIP != "" {
				if pb.HostIP, err = netip.ParseAddr(strings.Trim(b.HostIP, "[]")); err != nil {
					return nil, fmt.Errorf("%w: invalid host IP %q of port %s", ErrInvalid, b.HostIP, p)
				}
				if !pb.HostIP.Is4() {
					return nil, fmt.Errorf("%w: host IP %s of port %s: cairn publishes IPv4 ports", ErrInvalid, pb.HostIP, p)
				}
			}
			if b.HostPort != "" {
				n, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("%w: invalid host port %q of port %s", ErrInvalid, b.HostPort, p)
				}
				pb.HostPort = uint16(n)
			}
			bindings = append(bindings, pb)
		}
	}
	sort.Slice(bindings, func(i, j int) bool {
		a, b := bindings[i], bindings[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		return a.Proto < b.Proto
	})
	return bindings, nil
}

// reserve binds each host port — without listening — so that nothing else
// on the host takes it while the container has it, and so that a port
// something else holds is refused before the container starts. A binding of
// port 0 gets the port the kernel chose. The caller keeps the sockets open
// for as long as the container runs.
func reserve(ports []PortBinding) ([]*os.File, error) {
	var held []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range held {
			f.Close()
		}
		return nil, err
	}
	for i := range ports {
		p := &ports[i]
		typ := unix.SOCK_STREAM
		if p.Proto == "udp" {
			typ = unix.SOCK_DGRAM
		}
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		f := os.NewFile(uintptr(fd), "port "+p.Host())
		sa := &unix.SockaddrInet4{Port: int(p.HostPort)}
		if p.HostIP.IsValid() {
			sa.Addr = p.HostIP.As4()
		}
		if err := unix.Bind(fd, sa); err != nil {
			f.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return fail(fmt.Errorf("%w: Bind for %s failed: port is already allocated", ErrPortAllocated, p.Host()))
			}
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				return fail(fmt.Errorf("%w: Bind for %s failed: the host has no such address", ErrInvalid, p.Host()))
			}
			return fail(fmt.Errorf("bind %s: %w", p.Host(), err))
		}
		if p.HostPort == 0 {
			got, err := unix.Getsockname(fd)
			if err != nil {
				f.Close()
				return fail(err)
			}
			p.HostPort = uint16(got.(*unix.SockaddrInet4).Port)
		}
		held = append(held, f)
	}
	return held, nil
}

// conflicts reports a binding of ports that another container's record
// holds already (one whose owner's sockets are gone, say).
func conflicts(ports []PortBinding, others []*Record) error {
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		for _, r := range others {
			for _, q := range r.Ports {
				if q.Proto == p.Proto && q.HostPort == p.HostPort && overlapping(p.HostIP, q.HostIP) {
					return fmt.Errorf("%w: Bind for %s failed: port is already allocated", ErrPortAllocated, p.Host())
				}
			}
		}
	}
	return nil
}

func overlapping(a, b netip.Addr) bool {
	any := func(x netip.Addr) bool { return !x.IsValid() || x.IsUnspecified() }
	return any(a) || any(b) || a == b
}

// flushConntrack drops the connection-tracking entries of the UDP ports
// published, so that an entry made for a container that is gone does not
// send its traffic on to where it no longer is (or to a new one of the
// same port before the entry ages out).
func flushConntrack(ports []PortBinding) {
	for _, p := range ports {
		if p.Proto != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		if f.AddProtocol(unix.IPPROTO_UDP) != nil || f.AddPort(netlink.ConntrackOrigDstPort, p.HostPort) != nil {
			continue
		}
		netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f) // best effort
	}
}
