package network

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// ParsePorts reads -p as Docker's CLI does: [IP:][HOST:]CONTAINER[/PROTO],
// ranges paired port by port, an empty host port for one the kernel picks;
// what cairn cannot publish (another protocol, IPv6, a host range for one
// port) is refused with ErrInvalid.
func TestParsePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		specs    []string
		exposed  []string
		bindings []PortBinding
	}{
		{[]string{"8080:80"}, []string{"80/tcp"}, []PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{[]string{"80"}, []string{"80/tcp"}, []PortBinding{{ContainerPort: 80, Proto: "tcp"}}},
		{[]string{"127.0.0.1:5353:53/udp"}, []string{"53/udp"}, []PortBinding{{HostIP: lo, HostPort: 5353, ContainerPort: 53, Proto: "udp"}}},
		{[]string{"127.0.0.1::80"}, []string{"80/tcp"}, []PortBinding{{HostIP: lo, ContainerPort: 80, Proto: "tcp"}}},
		{[]string{"18100-18101:80-81"}, []string{"80/tcp", "81/tcp"}, []PortBinding{
			{HostPort: 18100, ContainerPort: 80, Proto: "tcp"}, {HostPort: 18101, ContainerPort: 81, Proto: "tcp"}}},
		{[]string{"53:53/udp", "53:53/tcp", "0.0.0.0:8443:443"}, []string{"443/tcp", "53/tcp", "53/udp"}, []PortBinding{
			{HostPort: 53, ContainerPort: 53, Proto: "tcp"}, {HostPort: 53, ContainerPort: 53, Proto: "udp"},
			{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 8443, ContainerPort: 443, Proto: "tcp"}}},
		{[]string{"80-81"}, []string{"80/tcp", "81/tcp"}, []PortBinding{{ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 81, Proto: "tcp"}}},
	}
	for _, c := range cases {
		exposed, bindings, err := ParsePorts(c.specs)
		if err != nil {
			t.Errorf("ParsePorts(%q): %v", c.specs, err)
			continue
		}
		if !reflect.DeepEqual(exposed, c.exposed) || !reflect.DeepEqual(bindings, c.bindings) {
			t.Errorf("ParsePorts(%q):\ngot  %v %+v\nwant %v %+v", c.specs, exposed, bindings, c.exposed, c.bindings)
		}
	}
	for _, bad := range []string{"80/sctp", "[::1]:80:80", "abc", "1-3:80-81", "70000:80", "8000-8001:80", "999.0.0.1:80:80", ""} {
		if _, _, err := ParsePorts([]string{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePorts(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// Host and Port name a binding as `docker port` prints it.
func TestPortBindingNames(t *testing.T) {
	p := PortBinding{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}
	q := PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: "udp"}
	if got := fmt.Sprint(p.Port(), " -> ", p.Host(), ", ", q.Port(), " -> ", q.Host()); got != "80/tcp -> 0.0.0.0:8080, 53/udp -> 127.0.0.1:5353" {
		t.Fatal(got)
	}
}

// A port another container's record holds is refused with Docker's words,
// whichever of the two asked for every address; another protocol, another
// specific address, or a port the kernel picks does not conflict.
func TestConflicts(t *testing.T) {
	lo, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	any4 := netip.MustParseAddr("0.0.0.0")
	others := []*Record{
		{ID: "a", Ports: []PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{ID: "b", Ports: []PortBinding{{HostIP: lo, HostPort: 5353, ContainerPort: 53, Proto: "udp"}}},
	}
	for _, c := range []struct {
		p        PortBinding
		conflict bool
	}{
		{PortBinding{HostPort: 8080, Proto: "tcp"}, true},
		{PortBinding{HostIP: lo, HostPort: 8080, Proto: "tcp"}, true},
		{PortBinding{HostIP: any4, HostPort: 8080, Proto: "tcp"}, true},
		{PortBinding{HostPort: 8080, Proto: "udp"}, false},
		{PortBinding{HostPort: 8081, Proto: "tcp"}, false},
		{PortBinding{HostPort: 5353, Proto: "udp"}, true},
		{PortBinding{HostIP: lo, HostPort: 5353, Proto: "udp"}, true},
		{PortBinding{HostIP: lo2, HostPort: 5353, Proto: "udp"}, false},
		{PortBinding{HostPort: 0, Proto: "tcp"}, false},
	} {
		err := conflicts([]PortBinding{c.p}, others)
		if c.conflict != (err != nil) || err != nil && !errors.Is(err, ErrPortAllocated) {
			t.Errorf("%+v: %v, want conflict %v", c.p, err, c.conflict)
		}
		if want := fmt.Sprintf("Bind for %s failed: port is already allocated", c.p.Host()); err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %q lacks Docker's %q", c.p, err, want)
		}
	}
}
