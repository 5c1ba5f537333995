package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/fsck"
	"github.com/vishvananda/netlink"
)

// Check reports what the host holds of the network that no container
// owns, as sweep (network prune) would remove it: records of containers
// whose directory is gone, leases no record holds, network namespaces,
// veths and firewall lines of containers without a record. It changes
// nothing; what it reports, the sweep (Sweep) removes. A container that
// exists but no longer runs and still has a record is the container
// store's to report.
func (s *Store) Check(ctx context.Context) []fsck.Problem {
	var out []fsck.Problem
	add := func(path, what string) {
		out = append(out, fsck.Problem{Path: path, What: what, Sweep: true, Fix: "remove it, as `cairn network prune` does"})
	}
	l, err := s.lock(ctx)
	if err != nil {
		return []fsck.Problem{{Path: filepath.Join(s.run, "lock"), What: "the network lock: " + err.Error(), Fix: "try again"}}
	}
	defer l.Unlock()
	recs, err := s.records()
	if err != nil {
		return []fsck.Problem{{Path: filepath.Join(s.run, "containers"), What: "the network records cannot be read: " + err.Error(), Fix: "remove the record named by hand"}}
	}
	holders, ids, veths := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		ids[short(r.ID)] = true
		for _, e := range r.Endpoints {
			veths[e.HostVeth] = true
		}
		if _, err := os.Stat(filepath.Join(r.Root, "containers", r.ID, "container.json")); errors.Is(err, os.ErrNotExist) {
			add(s.recordPath(r.ID), "the network record of container "+short(r.ID)+", which is gone from "+r.Root)
			continue
		}
		holders[r.ID] = true
	}
	left, _ := filepath.Glob(filepath.Join(s.run, "containers", ".*.tmp-*"))
	for _, f := range left {
		add(f, "a temporary file of a network record's rewrite cut short")
	}
	for p, id := range s.orphanLeases(holders) {
		add(p, "an address lease of "+id+", which no container record holds")
	}
	if entries, err := os.ReadDir(s.netns); err == nil {
		for _, e := range entries {
			if id, ok := strings.CutPrefix(e.Name(), "cairn-"); ok && !ids[id] && !strings.Contains(id, ".") {
				add(filepath.Join(s.netns, e.Name()), "the network namespace of container "+id+", which has no network record")
			}
		}
	}
	if s.userMode {
		return out // no veths or firewall lines of its own
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, link := range links {
			name := link.Attrs().Name
			if link.Type() == "veth" && strings.HasPrefix(name, "vc") && len(name) >= 12 && !veths[name] {
				add("link "+name, "a veth of container "+name[2:12]+"…, which has no network record")
			}
		}
	}
	cur, err := save()
	if err != nil {
		return append(out, fsck.Problem{Path: "iptables", What: err.Error(), Fix: "check that iptables works"})
	}
	seen := map[string]bool{}
	for _, t := range cur {
		for _, l := range t.lines {
			parts := strings.Split(commentOf(l), ":")
			if len(parts) != 2 || parts[0] != "cairn" || parts[1] == "base" || ids[parts[1]] || seen[parts[1]] {
				continue
			}
			seen[parts[1]] = true
			add("iptables "+l, "firewall lines of container "+parts[1]+", which has no network record")
		}
	}
	return out
}
