package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempStore is a network store whose definitions, leases and records are
// in temporary directories: nothing of the host's is touched by what these
// tests call (no link, rule or namespace is made).
func tempStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Root: t.TempDir(), Run: t.TempDir(), NetNS: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testNetwork(subnet, gateway string) *Network {
	return &Network{Name: "n", ID: "00112233445566778899aabbccddeeff", Driver: "bridge", Bridge: "cairnut-none",
		Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gateway)}
}

// Leases: the first free address after the network's own, never the
// gateway, the network or the broadcast address; a lease is a file holding
// its container's ID; --ip takes exactly that address or fails; a full
// network says so; a released address is the next one given.
func TestLease(t *testing.T) {
	s := tempStore(t)
	n := testNetwork("10.89.0.0/29", "10.89.0.3") // .0 network, .3 gateway, .7 broadcast
	var got []string
	for _, id := range []string{"c1", "c2", "c3", "c4"} {
		a, err := s.lease(n, id, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.89.0.1 10.89.0.2 10.89.0.4 10.89.0.5" {
		t.Fatalf("leases: %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(s.run, "leases", n.ID, "10.89.0.4")); err != nil || string(b) != "c3" {
		t.Fatalf("lease file: %q %v", b, err)
	}
	for _, want := range []string{"10.89.0.0", "10.89.0.3", "10.89.0.7", "10.90.0.1", "10.89.0.2"} {
		if _, err := s.lease(n, "x", netip.MustParseAddr(want)); !errors.Is(err, ErrInvalid) {
			t.Errorf("--ip %s: %v, want ErrInvalid", want, err)
		}
	}
	if a, err := s.lease(n, "c5", netip.MustParseAddr("10.89.0.6")); err != nil || a.String() != "10.89.0.6" {
		t.Fatalf("--ip 10.89.0.6: %v %v", a, err)
	}
	if _, err := s.lease(n, "c6", netip.Addr{}); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("a full network: %v, want ErrNoAddress", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.leaseDir(n.ID), "10.89.0.4")); err != nil || strings.TrimSpace(string(b)) != "c3" {
		t.Fatalf("the lease of c3: %q %v", b, err)
	}
	// Release gives back only the holder's lease.
	if err := s.release(n.ID, netip.MustParseAddr("10.89.0.2"), "not-c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.leaseDir(n.ID), "10.89.0.2")); err != nil {
		t.Fatalf("another container's release took c2's lease: %v", err)
	}
	for _, a := range []string{"10.89.0.2", "10.89.0.5"} {
		if err := s.release(n.ID, netip.MustParseAddr(a), map[string]string{"10.89.0.2": "c2", "10.89.0.5": "c4"}[a]); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := s.lease(n, "c7", netip.Addr{}); err != nil || a.String() != "10.89.0.2" {
		t.Fatalf("after releases: %v %v, want 10.89.0.2", a, err)
	}
	if err := s.release(n.ID, netip.MustParseAddr("10.89.0.250"), "c7"); err != nil {
		t.Fatalf("release of an address never leased: %v", err)
	}
	// The last lease of a network takes its directory with it.
	for _, l := range []struct{ ip, id string }{{"10.89.0.1", "c1"}, {"10.89.0.2", "c7"}, {"10.89.0.4", "c3"}, {"10.89.0.6", "c5"}} {
		if err := s.release(n.ID, netip.MustParseAddr(l.ip), l.id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(s.leaseDir(n.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lease directory of a network without leases: %v", err)
	}
}

// sweepGone detaches the records of containers that are gone from their
// store, and gives back the leases no record holds, keeping those of
// containers that are there.
func TestSweepGoneLeases(t *testing.T) {
	s := tempStore(t)
	n := testNetwork("10.89.0.0/24", "10.89.0.1")
	ctrRoot := t.TempDir()
	for _, id := range []string{"alive", "gone", "orphan"} {
		if _, err := s.lease(n, id, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(ctrRoot, "containers", "alive"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctrRoot, "containers", "alive", "container.json"), []byte("{}"), 0o600)
	ep := func(ip string) []Endpoint {
		return []Endpoint{{NetworkID: n.ID, NetworkName: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway,
			IP: netip.MustParseAddr(ip), HostVeth: "vcutnone0", IfName: "eth0"}}
	}
	for _, r := range []*Record{{ID: "alive", Root: ctrRoot, Endpoints: ep("10.89.0.2")}, {ID: "gone", Root: ctrRoot, Endpoints: ep("10.89.0.3")}} {
		if err := s.write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sweepGone(); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(s.leaseDir(n.ID))
	if len(left) != 1 || left[0].Name() != "10.89.0.2" {
		t.Fatalf("leases left: %v, want alive's 10.89.0.2 only", left)
	}
	if r, _ := s.read("gone"); r != nil {
		t.Fatal("the record of a container that is gone is still there")
	}
	if r, _ := s.read("alive"); r == nil {
		t.Fatal("the record of a container that is there went")
	}
}

func TestBroadcastAndMAC(t *testing.T) {
	for p, want := range map[string]string{
		"172.17.0.0/16": "172.17.255.255", "10.89.0.0/24": "10.89.0.255", "10.89.0.5/24": "10.89.0.255",
		"192.168.16.0/20": "192.168.31.255", "10.0.0.4/30": "10.0.0.7", "10.0.0.9/32": "10.0.0.9",
	} {
		if got := broadcast(netip.MustParsePrefix(p)).String(); got != want {
			t.Errorf("broadcast(%s) = %s, want %s", p, got, want)
		}
	}
	for a, want := range map[string]string{"172.17.0.2": "02:42:ac:11:00:02", "10.89.0.50": "02:42:0a:59:00:32", "192.168.255.254": "02:42:c0:a8:ff:fe"} {
		if got := macFor(netip.MustParseAddr(a)); got != want {
			t.Errorf("macFor(%s) = %s, want %s", a, got, want)
		}
	}
}

// The subnet of a new network is the first of Docker's pools that nothing
// overlaps.
func TestFreeSubnet(t *testing.T) {
	used := func(ps ...string) []reserved {
		var out []reserved
		for _, p := range ps {
			out = append(out, reserved{netip.MustParsePrefix(p), "test"})
		}
		return out
	}
	for _, c := range []struct {
		used []reserved
		want string
	}{
		{nil, "172.17.0.0/16"},
		{used("172.17.0.0/16"), "172.18.0.0/16"},
		{used("172.17.5.0/24", "172.18.0.1/32"), "172.19.0.0/16"},
		{used("172.16.0.0/12"), "192.168.0.0/20"},
		{used("172.16.0.0/12", "192.168.0.0/16"), ""},
	} {
		got, err := freeSubnet(c.used)
		if c.want == "" {
			if !errors.Is(err, ErrNoAddress) {
				t.Errorf("every pool used: %v %v", got, err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("used %v: %v %v, want %s", c.used, got, err, c.want)
		}
	}
}

// Create checks what `network create` is given, as Docker does; Get finds
// a network by name, ID or unique prefix; Remove refuses a network with
// a container on it, and the pre-defined ones.
func TestCreateGetRemove(t *testing.T) {
	s := tempStore(t)
	ctx := context.Background()
	n, err := s.Create(ctx, CreateOptions{Name: "n", Subnet: "10.89.0.7/24", Gateway: "10.89.0.254", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet.String() != "10.89.0.0/24" || n.Gateway.String() != "10.89.0.254" || n.Bridge != "cairn-"+n.ID[:8] || n.Driver != "bridge" || len(n.ID) != 64 {
		t.Fatalf("created: %+v", n)
	}
	for _, c := range []struct {
		o    CreateOptions
		want error
	}{
		{CreateOptions{Name: "n"}, ErrExists},
		{CreateOptions{Name: "bridge"}, ErrPredefined},
		{CreateOptions{Name: "host"}, ErrPredefined},
		{CreateOptions{Name: "-bad"}, ErrInvalid},
		{CreateOptions{Name: "bad name"}, ErrInvalid},
		{CreateOptions{Name: "m", Subnet: "10.89.0.128/25"}, ErrInvalid}, // overlaps n
		{CreateOptions{Name: "m", Subnet: "10.1.0.0/31"}, ErrInvalid},
		{CreateOptions{Name: "m", Subnet: "fd00::/64"}, ErrInvalid},
		{CreateOptions{Name: "m", Subnet: "10.2.0.0/24", Gateway: "10.3.0.1"}, ErrInvalid},
		{CreateOptions{Name: "m", Subnet: "10.2.0.0/24", Gateway: "10.2.0.0"}, ErrInvalid},
	} {
		if _, err := s.Create(ctx, c.o); !errors.Is(err, c.want) {
			t.Errorf("Create(%+v): %v, want %v", c.o, err, c.want)
		}
	}
	m, err := s.Create(ctx, CreateOptions{Name: "m.2_x", Subnet: "10.2.0.0/24"})
	if err != nil || m.Gateway.String() != "10.2.0.1" {
		t.Fatalf("default gateway: %+v %v", m, err)
	}
	for _, ref := range []string{"n", n.ID, n.ID[:12]} {
		if got, err := s.Get(ref); err != nil || got.ID != n.ID {
			t.Errorf("Get(%s): %v %v", ref, got, err)
		}
	}
	if _, err := s.Get("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nosuch): %v", err)
	}
	list, _ := s.List()
	var names []string
	for _, x := range list {
		names = append(names, x.Name+"/"+x.Driver)
	}
	if strings.Join(names, " ") != "bridge/bridge host/host none/null m.2_x/bridge n/bridge" {
		t.Errorf("List: %v", names)
	}
	// A container on n: n cannot go.
	if err := s.write(&Record{ID: "c1", Endpoints: []Endpoint{{NetworkID: n.ID, IP: netip.MustParseAddr("10.89.0.1")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "n"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Errorf("Remove of a network in use: %v", err)
	}
	if ids, err := s.InUse(n); err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("InUse: %v %v", ids, err)
	}
	if err := s.Remove(ctx, "bridge"); !errors.Is(err, ErrPredefined) {
		t.Errorf("Remove(bridge): %v", err)
	}
	os.Remove(s.recordPath("c1"))
	if err := s.Remove(ctx, n.ID[:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("n"); !errors.Is(err, ErrNotFound) {
		t.Errorf("n after Remove: %v", err)
	}
}
