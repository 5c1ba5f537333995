package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// Address management is cairn's own, as Podman's is: a network's subnet
// comes from Docker's default pools, free of the host's routes and of the
// other networks; a container's address is a lease, a file
// /run/cairn/network/leases/<network-id>/<ip> holding the container's ID,
// made with O_EXCL under the network lock. Leases live under /run: a
// reboot leaves none.

// pools are Docker's default address pools: 172.17.0.0/16 to
// 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20.
func pools() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// taken is a subnet already in use, and by what.
type reserved struct {
	prefix netip.Prefix
	what   string
}

// takenSubnets are the host's IPv4 routes and addresses, the subnets of
// this store's user networks, and those of the networks that containers
// are attached to (from any store).
func (s *Store) takenSubnets() ([]reserved, error) {
	var out []reserved
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route overlaps everything
		}
		if p, ok := prefixOf(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
			out = append(out, reserved{p, "a route of the host"})
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IPNet != nil {
			if p, ok := prefixOf(a.IP, a.Mask); ok {
				out = append(out, reserved{p.Masked(), "an address of the host"})
			}
		}
	}
	nets, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Subnet.IsValid() {
			out = append(out, reserved{n.Subnet, "network " + n.Name})
		}
	}
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		for _, e := range r.Endpoints {
			out = append(out, reserved{e.Subnet, "network " + e.NetworkName})
		}
	}
	return out, nil
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones := 0
	for _, b := range mask {
		for ; b&0x80 != 0; b <<= 1 {
			ones++
		}
	}
	return netip.PrefixFrom(a, ones), a.Is4()
}

// freeSubnet is the first subnet of the pools that nothing overlaps.
func freeSubnet(used []reserved) (netip.Prefix, error) {
	for _, p := range pools() {
		free := true
		for _, t := range used {
			if t.prefix.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: all of the default address pools are in use (give --subnet)", ErrNoAddress)
}

func (s *Store) leaseDir(netID string) string { return filepath.Join(s.run, "leases", netID) }

// lease takes an address of n for container id: want if it is valid, else
// the first free one after the gateway.
func (s *Store) lease(n *Network, id string, want netip.Addr) (netip.Addr, error) {
	dir := s.leaseDir(n.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return netip.Addr{}, err
	}
	take := func(a netip.Addr) (bool, error) {
		f, err := os.OpenFile(filepath.Join(dir, a.String()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		_, err = f.WriteString(id)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err == nil, err
	}
	if want.IsValid() {
		if !n.Subnet.Contains(want) || want == n.Gateway || want == n.Subnet.Addr() || want == broadcast(n.Subnet) {
			return netip.Addr{}, fmt.Errorf("%w: address %s is not free for a container of network %s (%s)", ErrInvalid, want, n.Name, n.Subnet)
		}
		ok, err := take(want)
		if err != nil {
			return netip.Addr{}, err
		}
		if !ok {
			return netip.Addr{}, fmt.Errorf("%w: address %s of network %s is in use", ErrInvalid, want, n.Name)
		}
		return want, nil
	}
	last := broadcast(n.Subnet)
	for a := n.Subnet.Addr().Next(); a.IsValid() && a.Less(last); a = a.Next() {
		if a == n.Gateway {
			continue
		}
		ok, err := take(a)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: network %s (%s) is full", ErrNoAddress, n.Name, n.Subnet)
}

// release gives back the lease of a on network netID, if container id holds it.
func (s *Store) release(netID string, a netip.Addr, id string) error {
	p := filepath.Join(s.leaseDir(netID), a.String())
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != id {
		return nil // another container's, since
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Remove(s.leaseDir(netID)) // the last one: the directory goes too
	return nil
}

// releaseAll gives back every lease container id holds, on any network.
func (s *Store) releaseAll(id string) error {
	dirs, err := os.ReadDir(filepath.Join(s.run, "leases"))
	if err != nil {
		return nil
	}
	for _, d := range dirs {
		ips, _ := os.ReadDir(filepath.Join(s.run, "leases", d.Name()))
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip.Name()); err == nil {
				if err := s.release(d.Name(), a, id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// macFor is Docker's MAC address of a container's address: 02:42 and the
// four bytes of the IPv4 address.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
