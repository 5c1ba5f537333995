// Package network gives containers Docker's networking without a daemon:
// a default bridge with outbound NAT, user networks whose containers reach
// each other by name, published ports, and the files /etc/hosts and
// /etc/resolv.conf say.
//
// It works in the process that owns a container (the foreground `run`, or
// the monitor of a detached one), with netlink in that process and one
// iptables-restore batch per change:
//
//	att, err := s.Attach(ctx, req)   // before the container starts: its netns, veths, address, rules, ports
//	spec: the container joins att.NetNS
//	err = s.Detach(ctx, id)          // when it has exited, or by anyone cleaning up after a killed owner
//	att.Release()                    // the owner lets its hold on the published ports go
//
// What one container gets, per network: an address leased from the
// network's subnet, a veth pair (vc<id> on the host, in the network's
// bridge; eth0, eth1… in the container's network namespace), and rules in
// chains of its own (CAIRN-<id12>, CAIRN-L<id12>, CAIRN-F<id12>) that the
// shared chains jump to. A network's bridge and its own rules (masquerade,
// forwarding, isolation from the other networks) come up with its first
// container and stay up, as docker0 and Docker's user bridges do, until
// `network rm` (or `network prune`, which also takes the default bridge
// down when no container is on it); the shared chains go with the last
// bridge. A bridge whose definition went away with its root is taken down
// by the next prune of any root (/run/cairn/network/bridges records which
// root brought each one up).
//
// Daemonless ownership: every change is made under one host-wide lock
// (/run/cairn/network/lock), and before touching the host, Attach writes
// the container's record (/run/cairn/network/containers/<id>.json) saying
// what it is about to create. Detach undoes what the record says, whether
// or not each thing was made, so a process killed at any step leaves
// nothing that the next Detach (rm -f, the reaping of a container whose
// owner died) or Sweep (network prune, the next Attach, for a container
// that is gone altogether) does not remove. Leases and records live under
// /run, so a reboot leaves none.
//
// Name resolution is nerdctl's: no DNS server to die or to own port 53;
// each container's /etc/hosts (a file bind-mounted into it, rewritten in
// place) lists its peers on every user network they share, by name, alias
// and short ID. As in Docker, the default bridge resolves no names.
//
// Why netlink in process rather than CNI plugins or netavark: measured on
// the 2-core machine this is built on, Debian's CNI plugins (bridge,
// portmap, firewall) take about 300 ms per ADD and as long per DEL, and
// leak their rules when the namespace is gone before DEL; netavark about
// 140 ms each way, and Podman's `run -p` adds 356 ms to its `--network
// none`. Here the network adds 46 ms to `cairn run --rm -p` (make bench):
// a few netlink messages, one iptables-save and one iptables-restore
// batch to set up, one batch to tear down; and cairn's own record and
// sweep are needed whatever the mechanism, since neither of the others
// cleans up after a killed caller.
//
// This package does not import runtime: runtime calls it at start, exit
// and removal.
package network
