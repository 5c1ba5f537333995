package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/vishvananda/netlink"
)

// Connect gives running container id an interface on one more network, as
// `docker network connect` does.
func (s *Store) Connect(ctx context.Context, id string, er EndpointRequest) (*Endpoint, error) {
	if s.userMode {
		return nil, errUserMode(er.Network)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	r, err := s.read(id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: container %s has no network of its own to connect (it runs with --network none, host or container:)", ErrInvalid, short(id))
	}
	n, err := s.get(er.Network)
	if err != nil {
		return nil, err
	}
	if !n.IsBridge() {
		return nil, fmt.Errorf("%w: container cannot be connected to network %s", ErrInvalid, n.Name)
	}
	if r.Endpoint(n.ID) != nil {
		// The container's own record does not list the network (the
		// engine looked): this is what a connect cut short left. It is
		// undone, and the connect made anew.
		if err := s.disconnect(r, n.ID); err != nil {
			return nil, fmt.Errorf("undo the connect of %s to %s cut short: %w", short(id), n.Name, err)
		}
	}
	if n.IsDefault() {
		if err := s.resolveDefault(n, r); err != nil {
			return nil, err
		}
	}
	ip, err := s.lease(n, id, er.IP)
	if err != nil {
		return nil, err
	}
	i := 0
	for _, e := range r.Endpoints {
		var k int
		if _, err := fmt.Sscanf(e.IfName, "eth%d", &k); err == nil && k >= i {
			i = k + 1
		}
	}
	mac := er.MAC
	if mac == "" {
		mac = macFor(ip)
	}
	r.Endpoints = append(r.Endpoints, Endpoint{
		NetworkID: n.ID, NetworkName: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway,
		Internal: n.Internal, User: !n.IsDefault(), IP: ip, MAC: mac, Aliases: er.Aliases,
		HostVeth: vethName(r.ID, i), IfName: fmt.Sprintf("eth%d", i), Made: true,
	})
	e := &r.Endpoints[len(r.Endpoints)-1]
	if err := s.write(r); err != nil {
		return nil, err
	}
	undo := func(err error) (*Endpoint, error) {
		if derr := s.disconnect(r, n.ID); derr != nil {
			err = fmt.Errorf("%w (and undoing it: %w)", err, derr)
		}
		return nil, err
	}
	if err := s.bringUp(n, hostMTU()); err != nil {
		return undo(err)
	}
	failpoint.Hit("network-connect-recorded")
	if err := addVeth(r.NetNS, e, hostMTU(), len(r.Endpoints) == 1); err != nil {
		return undo(err)
	}
	failpoint.Hit("network-connect-veth")
	if err := s.applyRules(r); err != nil {
		return undo(err)
	}
	failpoint.Hit("network-connect-firewall")
	if err := s.writeHosts(r); err != nil {
		return undo(err)
	}
	out := *e
	return &out, nil
}

// Disconnect takes container id's interface on network ref away.
func (s *Store) Disconnect(ctx context.Context, id, ref string) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := s.read(id)
	if err != nil {
		return err
	}
	n, err := s.get(ref)
	if err != nil {
		return err
	}
	if r == nil || r.Endpoint(n.ID) == nil {
		return fmt.Errorf("%w: container %s is not connected to network %s", ErrNotConnected, short(id), n.Name)
	}
	return s.disconnect(r, n.ID)
}

func (s *Store) disconnect(r *Record, netID string) error {
	e := *r.Endpoint(netID)
	first := len(r.Endpoints) > 0 && r.Endpoints[0].NetworkID == netID
	if first && len(r.Ports) > 0 {
		// Its ports were published on this address: they go with it.
		cur, err := save()
		if err != nil {
			return err
		}
		if err := remove(cur, []string{containerTag(r.ID)}, containerChains(r)).restore(); err != nil {
			return err
		}
		r.Ports = nil
	}
	if err := deleteVethIn(r.NetNS, e.IfName); err != nil {
		return err
	}
	if err := deleteLink(e.HostVeth); err != nil {
		return err
	}
	if err := s.release(netID, e.IP, r.ID); err != nil {
		return err
	}
	r.Endpoints = slices.DeleteFunc(r.Endpoints, func(x Endpoint) bool { return x.NetworkID == netID })
	if err := s.write(r); err != nil {
		return err
	}
	// The peers of the network it left lose it too.
	gone := &Record{ID: r.ID, Endpoints: []Endpoint{e}}
	if err := s.writeHosts(gone); err != nil {
		return err
	}
	return s.writeHosts(r)
}

// Reload puts back every firewall line of the containers that have a
// network, their networks' and the shared ones, after something else
// flushed the firewall (`cairn network reload`). It returns how many
// containers it covered.
func (s *Store) Reload(ctx context.Context) (int, error) {
	l, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer l.Unlock()
	if err := s.sweep(ctx); err != nil {
		return 0, err
	}
	recs, err := s.records()
	if err != nil {
		return 0, err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil && len(recs) > 0 {
		return 0, err
	}
	for _, r := range recs {
		if err := s.applyRules(r); err != nil {
			return 0, fmt.Errorf("container %s: %w", short(r.ID), err)
		}
	}
	return len(recs), nil
}

// sweep reconciles the host with the records: the records of containers
// that are gone are detached, and what no record names — a namespace of
// cairn's, a veth, a container's firewall lines, the lines of a network
// whose bridge is gone, the shared chains when no bridge of cairn's is up —
// is removed. Bridges stay: a network is up without containers. The caller
// holds the lock.
func (s *Store) sweep(ctx context.Context) error {
	if err := s.sweepGone(); err != nil {
		return err
	}
	orphans, err := s.orphanBridges()
	if err != nil {
		return err
	}
	for _, n := range orphans {
		if err := s.takeDown(n); err != nil && !errors.Is(err, ErrInUse) {
			return err
		}
	}
	recs, err := s.records()
	if err != nil {
		return err
	}
	ids, vethsUsed := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		ids[short(r.ID)] = true
		for _, e := range r.Endpoints {
			vethsUsed[e.HostVeth] = true
		}
	}
	var errs []error
	if entries, err := os.ReadDir(s.netns); err == nil {
		for _, e := range entries {
			if id, ok := strings.CutPrefix(e.Name(), "cairn-"); ok && !ids[id] {
				if err := deleteNetNS(filepath.Join(s.netns, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	bridges := map[string]bool{}
	for _, link := range links {
		name := link.Attrs().Name
		switch {
		case link.Type() == "veth" && strings.HasPrefix(name, "vc") && len(name) >= 12 && !vethsUsed[name]:
			if err := deleteLink(name); err != nil {
				errs = append(errs, err)
			}
		case link.Type() == "bridge" && (name == defaultBridge || strings.HasPrefix(name, "cairn-")):
			bridges[name] = true
		}
	}
	cur, err := save()
	if err != nil {
		return err
	}
	var prefixes []string
	var chains []chain
	seen := map[string]bool{}
	for _, t := range cur {
		for _, l := range t.lines {
			tag := commentOf(l)
			parts := strings.Split(tag, ":")
			if len(parts) < 2 || parts[0] != "cairn" {
				continue
			}
			var p string
			switch {
			case parts[1] == "base":
				if len(bridges) == 0 {
					p = "cairn:base"
				}
			case parts[1] == "net" && len(parts) > 2:
				if br := bridgeOf(l); br != "" && !bridges[br] {
					p = "cairn:net:" + parts[2]
				}
			case !ids[parts[1]]:
				p = "cairn:" + parts[1]
				if !seen[p] { // its chains once, however many lines it has: -X twice fails the batch
					chains = append(chains, containerChains(&Record{ID: parts[1], Ports: []PortBinding{{}}})...)
				}
			}
			if p != "" && !seen[p] {
				seen[p] = true
				prefixes = append(prefixes, p)
			}
		}
	}
	if len(bridges) == 0 {
		chains = append(chains, baseChains...)
	}
	if len(prefixes) > 0 || len(chains) > 0 {
		if err := remove(cur, prefixes, chains).restore(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bridgeOf is the bridge a network's firewall line names (its -i or -o).
func bridgeOf(line string) string {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if (f[i] == "-i" || f[i] == "-o") && f[i+1] != "cairn+" {
			return f[i+1]
		}
	}
	return ""
}

// Sweep reconciles the host with the records (see sweep): `network prune`
// and the tests' leak checks call it.
func (s *Store) Sweep(ctx context.Context) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return s.sweep(ctx)
}
