package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// ResolvConf is the host's resolv.conf without the nameservers a container
// cannot reach — loopback ones (a local stub such as systemd-resolved's) —
// with Docker's fallback when nothing is left, and the --dns flags over it.
func TestResolvConf(t *testing.T) {
	cases := []struct {
		name, host string
		dns        DNS
		want       string
	}{
		{"loopback stub only: Docker's fallback servers",
			"# managed by systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", DNS{},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\noptions edns0 trust-ad\n"},
		{"loopback ones filtered, others kept in order",
			"nameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 10.0.0.3 # second\n", DNS{},
			"nameserver 10.0.0.2\nnameserver 10.0.0.3\n"},
		{"any 127/8 address is loopback",
			"nameserver 127.1.2.3\nnameserver 192.0.2.53\n", DNS{},
			"nameserver 192.0.2.53\n"},
		{"IPv6 ones are kept, as Docker keeps them; ::1 is loopback",
			"nameserver ::1\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n", DNS{},
			"nameserver 2001:db8::53\nnameserver 192.0.2.53\n"},
		{"nothing at all: fallback", "", DNS{}, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"the last of search and domain wins, comments and unknown lines",
			"domain old.example\n; comment\nsearch a.example b.example\nsortlist 10.0.0.0/255.0.0.0\nnameserver 10.0.0.2\n", DNS{},
			"nameserver 10.0.0.2\nsearch a.example b.example\nsortlist 10.0.0.0/255.0.0.0\n"},
		{"--dns, --dns-search, --dns-option replace the host's",
			"nameserver 10.0.0.2\nsearch lan\noptions rotate\n",
			DNS{Servers: []string{"9.9.9.9", "1.1.1.1"}, Search: []string{"example.org"}, Options: []string{"ndots:2"}},
			"nameserver 9.9.9.9\nnameserver 1.1.1.1\nsearch example.org\noptions ndots:2\n"},
		{"--dns replaces even a loopback-only host",
			"nameserver 127.0.0.53\n", DNS{Servers: []string{"9.9.9.9"}}, "nameserver 9.9.9.9\n"},
		{"--dns-search . clears the search list",
			"nameserver 10.0.0.2\nsearch lan\n", DNS{Search: []string{"."}}, "nameserver 10.0.0.2\n"},
	}
	for _, c := range cases {
		if got := string(ResolvConf([]byte(c.host), c.dns)); got != c.want {
			t.Errorf("%s:\nhost %q\ngot  %q\nwant %q", c.name, c.host, got, c.want)
		}
	}
}

// hosts is what Docker writes: localhost, the --add-host entries, the
// container's own names on its first address, then the peers of each user
// network it shares with them, by name, aliases and short ID; nobody on
// the default bridge, which resolves no names.
func TestHosts(t *testing.T) {
	user := Endpoint{NetworkID: "aaaaaaaaaaaaaaaa", NetworkName: "appnet", User: true}
	other := Endpoint{NetworkID: "cccccccccccccccc", NetworkName: "other", User: true}
	def := Endpoint{NetworkID: "bbbbbbbbbbbbbbbb", NetworkName: "bridge"}
	at := func(e Endpoint, ip string, aliases ...string) Endpoint {
		e.IP, e.Aliases = netip.MustParseAddr(ip), aliases
		return e
	}
	self := &Record{ID: "0123456789abcdef0123", Name: "web", Hostname: "h", Domainname: "example.org",
		ExtraHosts: []string{"gw:172.17.0.1", "h:10.1.1.1"},
		Endpoints:  []Endpoint{at(def, "172.17.0.2"), at(user, "10.89.0.2", "www")}}
	peers := []*Record{
		self,
		{ID: "fedcba9876543210fedc", Name: "db", Endpoints: []Endpoint{at(user, "10.89.0.3", "database", "db")}},
		{ID: "1111111111112222", Name: "onbridge", Endpoints: []Endpoint{at(def, "172.17.0.3")}},
		{ID: "3333333333334444", Name: "elsewhere", Endpoints: []Endpoint{at(other, "10.90.0.2")}},
		{ID: "5555555555556666", Endpoints: []Endpoint{at(user, "10.89.0.4")}}, // no name: its short ID
	}
	want := hostsHeader +
		"172.17.0.1\tgw\n10.1.1.1\th\n" +
		"172.17.0.2\th.example.org h\n" +
		"10.89.0.3\tdb database fedcba987654\n" +
		"10.89.0.4\t555555555555\n"
	if got := string(hosts(self, peers)); got != want {
		t.Errorf("hosts:\ngot  %q\nwant %q", got, want)
	}
	// Without a domain name, the hostname alone.
	lone := &Record{ID: "abcdefabcdefabcdef", Hostname: "abcdefabcdef", Endpoints: []Endpoint{at(def, "172.17.0.9")}}
	if got, want := string(hosts(lone, peers)), hostsHeader+"172.17.0.9\tabcdefabcdef\n"; got != want {
		t.Errorf("hosts on the default bridge:\ngot  %q\nwant %q", got, want)
	}
	// A peer shows on every user network shared, under that network's aliases.
	both := &Record{ID: "7777777777778888", Name: "both", Hostname: "both",
		Endpoints: []Endpoint{at(user, "10.89.0.7"), at(other, "10.90.0.7")}}
	elsewhere := &Record{ID: "3333333333334444", Name: "elsewhere", Endpoints: []Endpoint{at(other, "10.90.0.2", "e")}}
	if got, want := string(hosts(both, []*Record{both, elsewhere, peers[1]})),
		hostsHeader+"10.89.0.7\tboth\n10.89.0.3\tdb database fedcba987654\n10.90.0.2\telsewhere e 333333333333\n"; got != want {
		t.Errorf("hosts on two networks:\ngot  %q\nwant %q", got, want)
	}
}

// rewrite keeps the file's inode — the one bind-mounted into the container.
func TestRewriteKeepsTheInode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte("a much longer first content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	if err := rewrite(p, []byte("short\n")); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "short\n" || !os.SameFile(before, after) {
		t.Fatalf("rewrite: %q, same file %v", b, os.SameFile(before, after))
	}
	if err := rewrite(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("rewrite made a file that was not there")
	}
}
