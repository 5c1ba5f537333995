package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/internal/failpoint"
)

// Request is what a container asks of the network when it starts.
type Request struct {
	ID   string // the container's
	Name string // its name, which its peers resolve
	// Hostname and Domainname are its own names in its /etc/hosts.
	Hostname, Domainname string
	// HostsPath and ResolvPath are the files bound on its /etc/hosts and
	// /etc/resolv.conf, which Attach writes.
	HostsPath, ResolvPath string
	DNS                   DNS
	// ExtraHosts are --add-host entries, name:ip; the ip "host-gateway"
	// is the address of the host on the container's first network.
	ExtraHosts []string
	Networks   []EndpointRequest // the first is the one its ports are published on
	Ports      []PortBinding
}

// EndpointRequest asks for a container's interface on one network.
type EndpointRequest struct {
	Network string     // name or ID
	Aliases []string   // more names its peers resolve it by (user networks)
	IP      netip.Addr // --ip; zero: the next free address
	MAC     string     // --mac-address; empty: Docker's, from the address
}

// Attachment is a container's network while it runs, held by its owner.
type Attachment struct {
	*Record
	held []*os.File // the published ports, bound
}

// Release lets the owner's hold on the published ports go (Detach first).
func (a *Attachment) Release() {
	for _, f := range a.held {
		f.Close()
	}
	a.held = nil
}

// Attach sets the network of container req.ID up, before it starts: its
// namespace, an interface and an address on each network, its firewall
// lines, its published ports (held by the calling process until Release),
// its /etc/hosts and /etc/resolv.conf, and its peers' /etc/hosts. Nothing
// is left of a failed Attach.
func (s *Store) Attach(ctx context.Context, req Request) (*Attachment, error) {
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if err := s.sweepGone(); err != nil {
		return nil, err
	}
	if old, err := s.read(req.ID); err != nil {
		return nil, err
	} else if old != nil {
		if err := s.detach(old); err != nil { // a start of it that was cut short
			return nil, err
		}
	}
	if len(req.Networks) == 0 {
		return nil, fmt.Errorf("%w: no network to attach %s to", ErrInvalid, short(req.ID))
	}
	if s.userMode {
		return s.attachUserMode(req)
	}
	others, err := s.records()
	if err != nil {
		return nil, err
	}
	if err := conflicts(req.Ports, others); err != nil {
		return nil, err
	}
	ports := slices.Clone(req.Ports)
	held, err := reserve(ports)
	if err != nil {
		return nil, err
	}
	r := &Record{
		ID: req.ID, Name: req.Name, Root: s.root, NetNS: filepath.Join(s.netns, "cairn-"+short(req.ID)),
		Hostname: req.Hostname, Domainname: req.Domainname, HostsPath: req.HostsPath, ResolvPath: req.ResolvPath,
		Ports: ports,
	}
	a := &Attachment{Record: r, held: held}
	if err := s.attach(req, r); err != nil {
		if derr := s.detach(r); derr != nil {
			err = fmt.Errorf("%w (and undoing it: %w)", err, derr)
		}
		a.Release()
		return nil, err
	}
	return a, nil
}

func (s *Store) attach(req Request, r *Record) error {
	mtu := hostMTU()
	var nets []*Network
	for i, er := range req.Networks {
		n, err := s.get(er.Network)
		if err != nil {
			return err
		}
		if !n.IsBridge() {
			return fmt.Errorf("%w: container cannot be connected to network %s and others", ErrInvalid, n.Name)
		}
		if n.IsDefault() {
			if err := checkDefaultEndpoint(er); err != nil {
				return err
			}
			if err := s.resolveDefault(n, r); err != nil {
				return err
			}
		}
		ip, err := s.lease(n, r.ID, er.IP)
		if err != nil {
			return err
		}
		mac := er.MAC
		if mac == "" {
			mac = macFor(ip)
		}
		r.Endpoints = append(r.Endpoints, Endpoint{
			NetworkID: n.ID, NetworkName: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway,
			Internal: n.Internal, User: !n.IsDefault(), IP: ip, MAC: mac, Aliases: er.Aliases,
			HostVeth: vethName(r.ID, i), IfName: fmt.Sprintf("eth%d", i),
		})
		nets = append(nets, n)
		// Written as soon as the lease is taken: from here on, whatever is
		// made, Detach finds it in the record.
		if err := s.write(r); err != nil {
			return err
		}
		failpoint.Hit("network-lease")
	}
	var err error
	if r.ExtraHosts, err = extraHosts(req.ExtraHosts, r.Endpoints[0].Gateway); err != nil {
		return err
	}
	for i := range r.Endpoints {
		r.Endpoints[i].Made = true
	}
	r.Rules = true
	if err := s.write(r); err != nil {
		return err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	for _, n := range nets {
		if err := s.bringUp(n, mtu); err != nil {
			return err
		}
		failpoint.Hit("network-bridge")
	}
	if err := newNetNS(r.NetNS, true); err != nil {
		return err
	}
	failpoint.Hit("network-netns")
	for i := range r.Endpoints {
		if err := addVeth(r.NetNS, &r.Endpoints[i], mtu, i == 0); err != nil {
			return err
		}
		failpoint.Hit("network-veth")
	}
	if err := s.applyRules(r); err != nil {
		return err
	}
	failpoint.Hit("network-firewall")
	flushConntrack(r.Ports)
	if err := s.writeNameFiles(r, req.DNS); err != nil {
		return err
	}
	failpoint.Hit("network-hosts")
	return nil
}

// checkDefaultEndpoint refuses what only a user network gives, in Docker's
// words.
func checkDefaultEndpoint(er EndpointRequest) error {
	if er.IP.IsValid() {
		return fmt.Errorf("%w: user specified IP address is supported on user defined networks only", ErrInvalid)
	}
	if len(er.Aliases) > 0 {
		return fmt.Errorf("%w: network-scoped alias is supported only for containers in user defined networks", ErrInvalid)
	}
	return nil
}

// extraHosts checks --add-host entries (host:ip) and resolves the ip
// "host-gateway" to gateway.
func extraHosts(hosts []string, gateway netip.Addr) ([]string, error) {
	var out []string
	for _, h := range hosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: invalid --add-host %q: want host:ip", ErrInvalid, h)
		}
		if ip == "host-gateway" {
			ip = gateway.String()
		} else if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("%w: invalid IP address %q in --add-host %q", ErrInvalid, ip, h)
		}
		out = append(out, name+":"+ip)
	}
	return out, nil
}

// writeNameFiles writes the /etc/resolv.conf (the host's, with dns) and
// /etc/hosts of r, and its peers' /etc/hosts.
func (s *Store) writeNameFiles(r *Record, dns DNS) error {
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if r.ResolvPath != "" {
		if err := rewrite(r.ResolvPath, ResolvConf(resolv, dns)); err != nil {
			return fmt.Errorf("write the /etc/resolv.conf of %s: %w", short(r.ID), err)
		}
	}
	return s.writeHosts(r)
}

// resolveDefault gives the default bridge its subnet: the one its bridge
// has, or the first free one of the pools.
func (s *Store) resolveDefault(n *Network, r *Record) error {
	if p, gw, ok := bridgeSubnet(n.Bridge); ok {
		n.Subnet, n.Gateway = p, gw
		return nil
	}
	used, err := s.takenSubnets()
	if err != nil {
		return err
	}
	for _, rec := range []*Record{r} { // the other networks of this very request
		for _, e := range rec.Endpoints {
			used = append(used, reserved{e.Subnet, "network " + e.NetworkName})
		}
	}
	if n.Subnet, err = freeSubnet(used); err != nil {
		return err
	}
	n.Gateway = n.Subnet.Addr().Next()
	return nil
}

// vethName is the host end of container id's i-th interface: "vc", ten
// hex digits of the ID, i (at most 15 bytes, the kernel's limit).
func vethName(id string, i int) string { return fmt.Sprintf("vc%s%d", id[:10], i) }

// applyRules adds what of r's firewall lines, its networks' and the shared
// ones is missing.
func (s *Store) applyRules(r *Record) error {
	cur, err := save()
	if err != nil {
		return err
	}
	chains := append(slices.Clone(baseChains), containerChains(r)...)
	rules := baseRules()
	for i := range r.Endpoints {
		rules = append(rules, networkRules(&r.Endpoints[i])...)
	}
	rules = append(rules, containerRules(r)...)
	return ensure(cur, chains, rules).restore()
}

// Detach undoes container id's network, from its record, whatever its
// maker reached: its firewall lines, interfaces, namespace and leases, and
// its peers' /etc/hosts. Its networks stay up, their bridges and lines with
// them, as Docker's do. A container without a record has nothing to undo.
func (s *Store) Detach(ctx context.Context, id string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := s.read(id)
	if err != nil || r == nil {
		return err
	}
	return s.detach(r)
}

// detach is Detach under the lock. Each step is done whatever became of
// the others, and the first error is returned.
func (s *Store) detach(r *Record) error {
	var errs []error
	// Only a container that publishes ports has lines of its own.
	if r.Rules && len(r.Ports) > 0 {
		if cur, err := save(); err != nil {
			errs = append(errs, err)
		} else if err := remove(cur, []string{containerTag(r.ID)}, containerChains(r)).restore(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range r.Endpoints {
		if e.Made {
			if err := deleteLink(e.HostVeth); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if r.NetNS != "" {
		if err := deleteNetNS(r.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := stopPasta(r.Pasta); err != nil {
		errs = append(errs, err)
	}
	flushConntrack(r.Ports)
	for _, e := range r.Endpoints {
		if err := s.release(e.NetworkID, e.IP, r.ID); err != nil {
			errs = append(errs, err)
		}
	}
	// And those the record does not name: a connect killed between its
	// lease and its record.
	if err := s.releaseAll(r.ID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("network of %s: %w", short(r.ID), errors.Join(errs...))
	}
	if err := os.Remove(s.recordPath(r.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return s.writeHosts(r)
}

// sweepGone detaches the records of containers that are gone from their
// store (removed while their owner was killed, say), and gives back the
// leases no record holds (a start killed between taking a lease and
// writing it down). The caller holds the lock.
func (s *Store) sweepGone() error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	// Temporary files of record writes cut short (every write is made
	// under the lock the caller holds, so none is in progress).
	left, _ := filepath.Glob(filepath.Join(s.run, "containers", ".*.tmp-*"))
	for _, f := range left {
		os.Remove(f)
	}
	holders := map[string]bool{}
	for _, r := range recs {
		if _, err := os.Stat(filepath.Join(r.Root, "containers", r.ID, "container.json")); errors.Is(err, os.ErrNotExist) {
			if err := s.detach(r); err != nil {
				return err
			}
			continue
		}
		holders[r.ID] = true
	}
	for p := range s.orphanLeases(holders) {
		os.Remove(p)
	}
	dirs, _ := os.ReadDir(filepath.Join(s.run, "leases"))
	for _, d := range dirs {
		os.Remove(filepath.Join(s.run, "leases", d.Name())) // if empty
	}
	return nil
}

// orphanLeases maps the path of each lease whose holder is not in holders
// to that holder's ID.
func (s *Store) orphanLeases(holders map[string]bool) map[string]string {
	out := map[string]string{}
	dirs, _ := os.ReadDir(filepath.Join(s.run, "leases"))
	for _, d := range dirs {
		ips, _ := os.ReadDir(filepath.Join(s.run, "leases", d.Name()))
		for _, ip := range ips {
			p := filepath.Join(s.run, "leases", d.Name(), ip.Name())
			if b, err := os.ReadFile(p); err == nil && !holders[strings.TrimSpace(string(b))] {
				out[p] = strings.TrimSpace(string(b))
			}
		}
	}
	return out
}
