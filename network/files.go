package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// The files a container sees at /etc/hosts and /etc/resolv.conf, as Docker
// writes them.

const hostsHeader = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// DNS are the resolver options of a container: --dns, --dns-search,
// --dns-option; empty fields take the host's.
type DNS struct {
	Servers, Search, Options []string
}

// fallbackServers are Docker's, for a host whose resolvers are all on
// loopback (a local stub such as systemd-resolved's), unreachable from a
// container's network namespace.
var fallbackServers = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is a container's /etc/resolv.conf: the host's (hostResolv),
// without its loopback nameservers, with d over it.
func ResolvConf(hostResolv []byte, d DNS) []byte {
	var servers, search, options, rest []string
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
					servers = append(servers, f[1])
				}
			}
		case "search", "domain":
			search = append(search[:0], f[1:]...)
		case "options":
			options = append(options, f[1:]...)
		default:
			rest = append(rest, sc.Text())
		}
	}
	if len(servers) == 0 {
		servers = fallbackServers
	}
	if len(d.Servers) > 0 {
		servers = d.Servers
	}
	if len(d.Search) > 0 {
		search = d.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(d.Options) > 0 {
		options = d.Options
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range rest {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

// HostsFile is an /etc/hosts without a network of the store's: base
// (Docker's localhost lines when nil; the host's own for --network host),
// then the --add-host entries, NAME:IP; one that names host-gateway, which
// such a container does not have, is left out.
func HostsFile(base []byte, extraHosts []string) []byte {
	var b strings.Builder
	if base == nil {
		b.WriteString(hostsHeader)
	} else {
		b.Write(base)
	}
	for _, h := range extraHosts {
		name, ip, _ := strings.Cut(h, ":")
		if ip == "host-gateway" {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return []byte(b.String())
}

// hosts is container r's /etc/hosts: localhost, the --add-host entries,
// its own names on its first address, then its peers on every user
// network it shares with them (by name, aliases and short ID), as Docker's
// embedded DNS would answer them.
func hosts(r *Record, peers []*Record) []byte {
	var b strings.Builder
	b.Write(HostsFile(nil, r.ExtraHosts))
	if len(r.Endpoints) > 0 {
		names := []string{r.Hostname}
		if r.Domainname != "" {
			names = []string{r.Hostname + "." + r.Domainname, r.Hostname}
		}
		fmt.Fprintf(&b, "%s\t%s\n", r.Endpoints[0].IP, strings.Join(names, " "))
	}
	for _, e := range r.Endpoints {
		if !e.User {
			continue // the default bridge resolves no names, as in Docker
		}
		for _, p := range peers {
			if p.ID == r.ID {
				continue
			}
			pe := p.Endpoint(e.NetworkID)
			if pe == nil || !pe.IP.IsValid() {
				continue
			}
			names := []string{}
			if p.Name != "" {
				names = append(names, p.Name)
			}
			for _, a := range pe.Aliases {
				if !slices.Contains(names, a) {
					names = append(names, a)
				}
			}
			names = append(names, short(p.ID))
			fmt.Fprintf(&b, "%s\t%s\n", pe.IP, strings.Join(names, " "))
		}
	}
	return []byte(b.String())
}

// rewrite replaces the content of a file bind-mounted into a container in
// place: the container's mount is of the file's inode, which a rename
// would leave behind.
func rewrite(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeHosts writes the /etc/hosts of every container that shares a user
// network with r, and r's own if its record is there, from the records as
// they are on disk now (after Attach wrote r's, or Detach removed it).
func (s *Store) writeHosts(r *Record) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	users := map[string]bool{}
	for _, e := range r.Endpoints {
		if e.User {
			users[e.NetworkID] = true
		}
	}
	for _, p := range recs {
		if p.ID != r.ID && !sharesUser(p, users) {
			continue
		}
		if p.HostsPath == "" {
			continue
		}
		if err := rewrite(p.HostsPath, hosts(p, recs)); err != nil && p.ID == r.ID {
			return fmt.Errorf("write the /etc/hosts of %s: %w", short(p.ID), err)
		}
	}
	return nil
}

func sharesUser(p *Record, users map[string]bool) bool {
	for _, e := range p.Endpoints {
		if users[e.NetworkID] {
			return true
		}
	}
	return false
}
