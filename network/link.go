package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The links: a network namespace per container, bound on a file as
// iproute2's `ip netns add` binds them (so `ip netns` lists them); a bridge
// per network; a veth pair per container and network. All through netlink,
// in this process.

// newNetNS makes the network namespace bound on path, with its loopback up;
// shared, it first makes path's directory a mount point with shared
// propagation (sharedMountDir).
func newNetNS(path string, shared bool) error {
	dir := filepath.Dir(path)
	if !shared {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	} else if err := sharedMountDir(dir); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// A thread of its own, never given back to the scheduler: its
		// namespace changes.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare the network namespace: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind the network namespace on %s: %w", path, err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return err
	}
	return nil
}

// sharedMountDir makes dir a mount point of its own with shared
// propagation, as iproute2 makes /run/netns, so that the namespaces bound
// in it unbind everywhere at once.
func sharedMountDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == unix.EINVAL {
		// Not a mount point yet.
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", dir, err)
		}
		err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

// deleteNetNS unbinds and removes the namespace file at path, if it is there.
func deleteNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unbind network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ensureBridge makes n's bridge with its gateway address if it is missing,
// and brings it up.
func ensureBridge(n *Network, mtu int) error {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: mtu, TxQLen: -1}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if link, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address %s on bridge %s: %w", addr.IPNet, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", n.Bridge, err)
	}
	// Published ports reach containers from the host's own 127.0.0.1.
	return writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1")
}

// deleteLink removes link name if it exists.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// bridgeSubnet returns the IPv4 subnet of an existing bridge, if it has one.
func bridgeSubnet(name string) (netip.Prefix, netip.Addr, bool) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, false
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return netip.Prefix{}, netip.Addr{}, false
	}
	p, ok := prefixOf(addrs[0].IP, addrs[0].Mask)
	if !ok {
		return netip.Prefix{}, netip.Addr{}, false
	}
	return p.Masked(), p.Addr(), true
}

// addVeth makes the veth pair of endpoint e: its host end in the bridge, up;
// its other end in the namespace at nsPath, renamed e.IfName, with its
// address, MAC and (for the first interface) the default route.
func addVeth(nsPath string, e *Endpoint, mtu int, defaultRoute bool) error {
	br, err := netlink.LinkByName(e.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", e.Bridge, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	peer := "p" + e.HostVeth[1:] // a temporary name, unique like the host end's
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: e.HostVeth, MTU: mtu, MasterIndex: br.Attrs().Index, TxQLen: -1},
		PeerName:  peer, PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", e.HostVeth, err)
	}
	host, err := netlink.LinkByName(e.HostVeth)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", e.HostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring %s up: %w", e.HostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	in, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("veth end %s in the container: %w", peer, err)
	}
	if err := h.LinkSetName(in, e.IfName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", peer, e.IfName, err)
	}
	if mac, err := net.ParseMAC(e.MAC); err == nil {
		if err := h.LinkSetHardwareAddr(in, mac); err != nil {
			return fmt.Errorf("MAC address of %s: %w", e.IfName, err)
		}
	}
	if err := h.AddrAdd(in, &netlink.Addr{IPNet: ipNet(e.IP, e.Subnet.Bits())}); err != nil {
		return fmt.Errorf("address %s on %s: %w", e.IP, e.IfName, err)
	}
	if err := h.LinkSetUp(in); err != nil {
		return fmt.Errorf("bring %s up: %w", e.IfName, err)
	}
	if defaultRoute && !e.Internal {
		gw := net.IP(e.Gateway.AsSlice())
		if err := h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route via %s: %w", e.Gateway, err)
		}
	}
	return nil
}

// deleteVethIn removes interface name from the namespace at nsPath (its
// host end goes with it), if both are there.
func deleteVethIn(nsPath, name string) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil // the namespace is gone, and its interfaces with it
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return nil
	}
	return h.LinkDel(link)
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

// hostMTU is the MTU of the interface of the host's default route, at most
// 1500: containers then never send more than the way out takes.
func hostMTU() int {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 1500
	}
	for _, r := range routes {
		if isDefault(r) && r.LinkIndex > 0 {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU > 0 {
				return min(l.Attrs().MTU, 1500)
			}
		}
	}
	return 1500
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func writeSysctl(name, value string) error {
	p := "/proc/sys/" + name
	if b, err := os.ReadFile(p); err == nil && string(b) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// otherBridges reports whether a bridge of cairn's other than name exists.
func otherBridges(name string) bool {
	links, err := netlink.LinkList()
	if err != nil {
		return true // when in doubt, keep the shared chains
	}
	for _, l := range links {
		if n := l.Attrs().Name; l.Type() == "bridge" && n != name && (n == defaultBridge || strings.HasPrefix(n, "cairn-")) {
			return true
		}
	}
	return false
}
