package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"golang.org/x/sys/unix"
)

// The networking, end to end (network/, runtime/network.go,
// cmd/cairn/network.go): published ports, UDP, what stays on the host's
// loopback, outbound NAT, user networks and their names, the network
// modes, the files of /etc, the reload of the firewall. Traffic goes only
// to 127.0.0.1 and to network namespaces the tests make: containers', and
// a fake outside joined to the host by a veth (nwOutside). Every test ends
// with nothing of the network left on the host (nwStore).
//
// The containers that resolve names are given --dns 127.0.0.1: their
// resolver is their own loopback, where nothing answers, so that no query
// leaves the host and the name comes from /etc/hosts alone (busybox's
// glibc, without an nsswitch.conf in the image, takes glibc's default
// "hosts: dns [!UNAVAIL=return] files": a refused query falls to files).

// nwStore is a store with busybox for a test of the network. When the test
// ends — after the store's cleanup has removed its containers, which this
// cleanup, registered first, runs after — it fails the test if the host
// has network state that was not there before: a firewall line of
// cairn's, a link vc…/cairn…, a namespace /run/netns/cairn-*, a lease or a
// record under /run/cairn/network (networkLeftovers, as TestMain checks
// for the package).
func nwStore(t *testing.T) *store {
	t.Helper()
	for _, tool := range []string{"iptables-save", "iptables-restore", "ip"} {
		testutil.RequiresTool(t, tool)
	}
	before := networkLeftovers()
	t.Cleanup(func() {
		if left := subtract(networkLeftovers(), before); len(left) > 0 {
			t.Errorf("the test left network state behind:\n  %s", strings.Join(left, "\n  "))
		}
	})
	s := newStore(t)
	s.busybox()
	return s
}

// nwFreePorts is the first of n consecutive ports that nothing binds now,
// in TCP and in UDP, below the kernel's ephemeral range (so that a port
// the kernel gives another socket meanwhile is not one of them).
func nwFreePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		base, free := 20000+rand.IntN(12000), true
		var held []io.Closer
		for p := base; p < base+n && free; p++ {
			if l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", p)); err != nil {
				free = false
			} else {
				held = append(held, l)
			}
			if u, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", p)); err != nil {
				free = false
			} else {
				held = append(held, u)
			}
		}
		for _, c := range held {
			c.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// nwGet is the body of http://addr/ on a connection of its own, or why
// there is none.
func nwGet(addr string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("http://%s/: %s", addr, resp.Status)
	}
	return string(b), err
}

// nwWait polls cond every 50 ms until it holds, failing the test after
// timeout with what and the last thing cond said.
func nwWait(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nwWaitGet waits until http://addr/ answers want.
func nwWaitGet(t testing.TB, addr, want string) {
	t.Helper()
	nwWait(t, 20*time.Second, fmt.Sprintf("http://%s/ to answer %q", addr, want), func() (bool, string) {
		got, err := nwGet(addr)
		return err == nil && got == want, fmt.Sprintf("%q %v", got, err)
	})
}

// nwPorts is the PORTS column of `ps` for container name.
func (s *store) nwPorts(name string) string {
	s.t.Helper()
	for _, l := range strings.Split(s.ok("ps", "--format", "{{.Names}}\t{{.Ports}}"), "\n") {
		if n, ports, ok := strings.Cut(l, "\t"); ok && n == name {
			return ports
		}
	}
	s.t.Fatalf("ps lists no container %s", name)
	return ""
}

// nwWget is the command of a container that fetches url with busybox's
// wget, for at most secs seconds: under timeout(1), since busybox 1.35's
// wget -T crashes (SIGSEGV) when its timeout fires; and under a shell that
// stays, since the signal of timeout(1) does nothing to the init of a PID
// namespace, which wget would be were it the container's process.
func nwWget(secs int, url string) []string {
	return []string{"sh", "-c", fmt.Sprintf("timeout %d wget -q -O - %s; exit $?", secs, url)}
}

// nwWeb runs container name detached: busybox httpd serving body (one
// word) at / on its port 80; flags go before the image. It returns the
// container's ID.
func (s *store) nwWeb(name, body string, flags ...string) string {
	s.t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, flags...),
		"busybox", "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && exec httpd -f -p 80 -h /www")
	return strings.TrimSpace(s.ok(args...))
}

// nwIP is container ref's address on network name, as inspect shows it.
func (s *store) nwIP(ref, name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.ok("inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", name), ref))
}

// nwCairnLines are the lines of iptables-save that are cairn's, without
// their counters, sorted.
func nwCairnLines(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var lines []string
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "cairn") || strings.Contains(l, "CAIRN") {
			lines = append(lines, counters.ReplaceAllString(l, ""))
		}
	}
	sort.Strings(lines)
	return lines
}

func nwRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// A port published on every address answers on the host's 127.0.0.1; port,
// ps and inspect show it as Docker does; a second container asking for the
// same host port is refused with Docker's exit code and message, and
// leaves nothing of its network; once the first is removed, its port is
// free again.
func TestNetworkPublishedPort(t *testing.T) {
	s := nwStore(t)
	hp := nwFreePorts(t, 1)
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", hp), "-v", www+":/www",
		"busybox", "httpd", "-f", "-p", "80", "-h", "/www"))
	addr := fmt.Sprintf("127.0.0.1:%d", hp)
	nwWaitGet(t, addr, "hello from web\n")

	if out := s.ok("port", "web"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n", hp) {
		t.Errorf("port web: %q", out)
	}
	for _, p := range []string{"80", "80/tcp"} {
		if out := s.ok("port", "web", p); out != fmt.Sprintf("0.0.0.0:%d\n", hp) {
			t.Errorf("port web %s: %q", p, out)
		}
	}
	s.fails(1, "No public port '81/tcp' published for web", "port", "web", "81")
	if out := s.ok("ps", "--format", "{{.Names}} {{.Ports}}"); out != fmt.Sprintf("web 0.0.0.0:%d->80/tcp\n", hp) {
		t.Errorf("ps PORTS: %q", out)
	}
	if out := s.ok("ps"); !strings.Contains(out, "PORTS") || !strings.Contains(out, fmt.Sprintf("0.0.0.0:%d->80/tcp", hp)) {
		t.Errorf("ps table:\n%s", out)
	}

	// inspect, as Docker 20.10 shows a container on the default bridge.
	var v []struct {
		NetworkSettings struct {
			IPAddress, Gateway, MacAddress, SandboxKey, EndpointID string
			IPPrefixLen                                            int
			Ports                                                  map[string][]struct{ HostIp, HostPort string }
			Networks                                               map[string]struct {
				IPAddress, Gateway, MacAddress, NetworkID, EndpointID string
				IPPrefixLen                                           int
			}
		}
	}
	if err := json.Unmarshal([]byte(s.ok("inspect", "web")), &v); err != nil || len(v) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	ns := v[0].NetworkSettings
	ip, err := netip.ParseAddr(ns.IPAddress)
	gw, gerr := netip.ParseAddr(ns.Gateway)
	if err != nil || gerr != nil || !ip.Is4() || ns.IPPrefixLen == 0 || !netip.PrefixFrom(gw, ns.IPPrefixLen).Masked().Contains(ip) || ip == gw {
		t.Fatalf("NetworkSettings: IPAddress %q Gateway %q IPPrefixLen %d", ns.IPAddress, ns.Gateway, ns.IPPrefixLen)
	}
	b := ip.As4()
	if want := fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]); ns.MacAddress != want {
		t.Errorf("MacAddress %q, want Docker's %q", ns.MacAddress, want)
	}
	if p := ns.Ports["80/tcp"]; len(ns.Ports) != 1 || len(p) != 1 || p[0].HostIp != "0.0.0.0" || p[0].HostPort != strconv.Itoa(hp) {
		t.Errorf("Ports: %+v", ns.Ports)
	}
	br, ok := ns.Networks["bridge"]
	bridgeID := strings.TrimSpace(s.ok("network", "inspect", "-f", "{{.Id}}", "bridge"))
	if !ok || len(ns.Networks) != 1 || br.IPAddress != ns.IPAddress || br.Gateway != ns.Gateway || br.MacAddress != ns.MacAddress ||
		br.IPPrefixLen != ns.IPPrefixLen || br.NetworkID != bridgeID || br.EndpointID == "" || br.EndpointID != ns.EndpointID {
		t.Errorf("Networks: %+v (top: %+v, bridge network %s)", ns.Networks, ns, bridgeID)
	}
	if ns.SandboxKey != "/run/netns/cairn-"+id[:12] {
		t.Errorf("SandboxKey %q", ns.SandboxKey)
	}
	// The container has that address on its eth0, and its default route via the gateway.
	out := s.ok("exec", "web", "sh", "-c", "ip -4 -o addr show eth0; ip route")
	if !strings.Contains(out, fmt.Sprintf("inet %s/%d ", ip, ns.IPPrefixLen)) || !strings.Contains(out, "default via "+ns.Gateway+" dev eth0") {
		t.Errorf("in the container:\n%s", out)
	}

	// Containers reach a published port at the host's address on their
	// bridge, the container itself too (hairpin), as with Docker's
	// userland-proxy=false.
	hostAt := "http://" + net.JoinHostPort(ns.Gateway, strconv.Itoa(hp)) + "/"
	if r := s.run(nil, append([]string{"run", "--rm", "busybox"}, nwWget(5, hostAt)...)...); r.Stdout != "hello from web\n" {
		t.Errorf("another container at %s: %+v", hostAt, r)
	}
	if r := s.run(nil, append([]string{"exec", "web"}, nwWget(5, hostAt)...)...); r.Stdout != "hello from web\n" {
		t.Errorf("the container itself at %s: %+v", hostAt, r)
	}
	// Stopped, it lets the port go; started again, it has it again.
	s.ok("stop", "-t", "0", "web")
	if _, err := nwGet(addr); err == nil {
		t.Error("the port of a stopped container answers")
	}
	if out := s.ok("port", "web"); out != "" {
		t.Errorf("port of a stopped container: %q", out)
	}
	s.ok("start", "web")
	nwWaitGet(t, addr, "hello from web\n")
	if out := s.ok("port", "web"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n", hp) {
		t.Errorf("port web after start: %q", out)
	}

	// The same host port again: refused before anything is made.
	before := networkLeftovers()
	for _, spec := range []string{fmt.Sprintf("%d:80", hp), fmt.Sprintf("127.0.0.1:%d:8080", hp)} {
		host := "0.0.0.0"
		if strings.HasPrefix(spec, "127.") {
			host = "127.0.0.1"
		}
		r := s.fails(125, fmt.Sprintf("Bind for %s:%d failed: port is already allocated", host, hp),
			"run", "-d", "--name", "second", "-p", spec, "busybox", "httpd", "-f", "-p", "80")
		if strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("a refused run -d printed %q", r.Stdout)
		}
		if st := s.status("second"); st == "running" {
			t.Fatalf("the refused container runs")
		}
		if diff := append(subtract(networkLeftovers(), before), subtract(before, networkLeftovers())...); len(diff) > 0 {
			t.Errorf("the refused container changed the network: %v", diff)
		}
		s.ok("rm", "second")
	}
	nwWaitGet(t, addr, "hello from web\n") // the first still serves

	// Removed, the container lets its port go: another gets it, and so
	// does a foreground run --rm after it, twice (its end lets it go too).
	s.ok("rm", "-f", "web")
	if _, err := nwGet(addr); err == nil {
		t.Error("the port still answers after rm -f")
	}
	s.nwWeb("again", "again", "-p", fmt.Sprintf("%d:80", hp))
	nwWaitGet(t, addr, "again\n")
	s.ok("rm", "-f", "again")
	for i := 0; i < 2; i++ {
		if out := s.ok("run", "--rm", "-p", fmt.Sprintf("%d:80", hp), "busybox", "sh", "-c", "ip -4 -o addr show eth0 | wc -l"); out != "1\n" {
			t.Errorf("foreground run --rm -p: %q", out)
		}
	}
}

// cairn's inspect has the fields of Docker 20.10's NetworkSettings, and of
// each of its networks, by the same names (the test Docker engine runs
// without a bridge: its container is on none, whose fields are those of
// every network).
func TestNetworkInspectLikeDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := nwStore(t)
	tag := "cairn-test/network-inspect:" + strings.ToLower(t.Name())
	docker.Run(t, "import", busyboxRootfs(t), tag)
	t.Cleanup(func() { docker.RunErr("rmi", "-f", tag) })
	did := strings.TrimSpace(docker.Run(t, "run", "-d", "--network", "none", tag, "sleep", "1000"))
	t.Cleanup(func() { docker.RunErr("rm", "-f", did) })
	keys := func(doc string, network string) (top, ep []string) {
		var v []struct {
			NetworkSettings map[string]json.RawMessage
		}
		if err := json.Unmarshal([]byte(doc), &v); err != nil || len(v) != 1 {
			t.Fatalf("inspect: %v\n%s", err, doc)
		}
		var nets map[string]map[string]json.RawMessage
		if err := json.Unmarshal(v[0].NetworkSettings["Networks"], &nets); err != nil {
			t.Fatalf("Networks: %v", err)
		}
		for k := range v[0].NetworkSettings {
			top = append(top, k)
		}
		for k := range nets[network] {
			ep = append(ep, k)
		}
		if len(nets) != 1 || len(ep) == 0 {
			t.Fatalf("Networks of the container on %s: %v", network, nets)
		}
		sort.Strings(top)
		sort.Strings(ep)
		return top, ep
	}
	dTop, dEp := keys(docker.Run(t, "inspect", did), "none")
	s.ok("run", "-d", "--name", "onbridge", "-p", fmt.Sprintf("%d:80", nwFreePorts(t, 1)), "busybox", "sleep", "1000")
	s.ok("run", "-d", "--name", "onnone", "--network", "none", "busybox", "sleep", "1000")
	for _, c := range []struct{ name, network string }{{"onbridge", "bridge"}, {"onnone", "none"}} {
		cTop, cEp := keys(s.ok("inspect", c.name), c.network)
		if !slices.Equal(cTop, dTop) {
			t.Errorf("%s: NetworkSettings fields\ncairn  %v\ndocker %v", c.name, cTop, dTop)
		}
		if !slices.Equal(cEp, dEp) {
			t.Errorf("%s: fields of Networks.%s\ncairn  %v\ndocker %v", c.name, c.network, cEp, dEp)
		}
	}
}

// -p with ranges publishes port by port; -p CONTAINER alone, and -P for
// --expose's ports or the image's EXPOSE, publish on a port the kernel
// picks; -p IP:HOST:CONTAINER/udp publishes on that address alone; an
// exposed port that is not published shows in ps as Docker shows it.
func TestNetworkPublishForms(t *testing.T) {
	s := nwStore(t)
	// Ranges: two httpd, one per port.
	base := nwFreePorts(t, 2)
	s.ok("run", "-d", "--name", "ranged", "-p", fmt.Sprintf("%d-%d:80-81", base, base+1), "busybox", "sh", "-c",
		"mkdir /a /b && echo eighty > /a/index.html && echo eighty-one > /b/index.html && httpd -p 80 -h /a && exec httpd -f -p 81 -h /b")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", base), "eighty\n")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", base+1), "eighty-one\n")
	if out := s.ok("port", "ranged"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n81/tcp -> 0.0.0.0:%d\n", base, base+1) {
		t.Errorf("port ranged: %q", out)
	}

	// A host port the kernel picks.
	hostPort := func(name, port string) int {
		t.Helper()
		out := strings.TrimSpace(s.ok("port", name, port))
		hostIP, p, ok := strings.Cut(out, ":")
		n, err := strconv.Atoi(p)
		if !ok || hostIP != "0.0.0.0" || err != nil || n <= 0 || n > 65535 {
			t.Fatalf("port %s %s: %q", name, port, out)
		}
		return n
	}
	s.nwWeb("random", "random", "-p", "80")
	rp := hostPort("random", "80")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", rp), "random\n")
	if out := s.nwPorts("random"); out != fmt.Sprintf("0.0.0.0:%d->80/tcp", rp) {
		t.Errorf("ps PORTS of -p 80: %q", out)
	}

	// -P with --expose.
	s.nwWeb("exposeflag", "exposeflag", "-P", "--expose", "80")
	ep := hostPort("exposeflag", "80/tcp")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", ep), "exposeflag\n")
	if ep == rp {
		t.Errorf("two containers got host port %d", ep)
	}
	if out := s.ok("port", "exposeflag"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n", ep) {
		t.Errorf("port of -P --expose 80: %q", out)
	}

	// -P with the image's EXPOSE; without -P, the port is exposed only.
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nEXPOSE 80 9000/udp\n"), 0o644)
	s.ok("build", "-q", "-t", "exposed", ctx)
	s.ok("run", "-d", "--name", "exposeimage", "-P", "exposed", "sh", "-c", "mkdir /www && echo image > /www/index.html && exec httpd -f -p 80 -h /www")
	ip := hostPort("exposeimage", "80")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", ip), "image\n")
	up := hostPort("exposeimage", "9000/udp")
	if out := s.ok("port", "exposeimage"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n9000/udp -> 0.0.0.0:%d\n", ip, up) {
		t.Errorf("port of -P on an image with EXPOSE: %q", out)
	}
	s.ok("run", "-d", "--name", "notpublished", "exposed", "sleep", "1000")
	if out := s.nwPorts("notpublished"); out != "80/tcp, 9000/udp" {
		t.Errorf("ps PORTS of exposed ports: %q", out)
	}
	if out := s.ok("port", "notpublished"); out != "" {
		t.Errorf("port of a container that publishes nothing: %q", out)
	}

	// IP:HOST:CONTAINER/udp.
	hp := nwFreePorts(t, 1)
	s.ok("run", "-d", "--name", "udp", "-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", hp), "busybox", "sleep", "1000")
	if out := s.ok("port", "udp"); out != fmt.Sprintf("5353/udp -> 127.0.0.1:%d\n", hp) {
		t.Errorf("port udp: %q", out)
	}
	if out := s.ok("port", "udp", "5353/udp"); out != fmt.Sprintf("127.0.0.1:%d\n", hp) {
		t.Errorf("port udp 5353/udp: %q", out)
	}
	s.fails(1, "No public port '5353/tcp'", "port", "udp", "5353")
	if out := s.nwPorts("udp"); out != fmt.Sprintf("127.0.0.1:%d->5353/udp", hp) {
		t.Errorf("ps PORTS of a udp port on 127.0.0.1: %q", out)
	}
	var v []struct {
		NetworkSettings struct {
			Ports map[string][]struct{ HostIp, HostPort string }
		}
	}
	json.Unmarshal([]byte(s.ok("inspect", "udp")), &v)
	if len(v) != 1 || fmt.Sprint(v[0].NetworkSettings.Ports) != fmt.Sprintf("map[5353/udp:[{127.0.0.1 %d}]]", hp) {
		t.Errorf("inspect Ports: %+v", v)
	}
	// What -p cannot be is refused before anything is made.
	s.fails(125, "invalid argument", "run", "--rm", "-p", "80/sctp", "busybox", "true")
	s.fails(125, "invalid argument", "run", "--rm", "-p", "1-3:80-81", "busybox", "true")
	s.fails(125, "port publishing", "run", "--rm", "-p", "80", "--network", "host", "busybox", "true")
}

// nwUDPEcho builds testdata/udpecho, static, into a directory of its own,
// for a container to bind-mount: busybox has no UDP server.
func nwUDPEcho(t *testing.T) string {
	t.Helper()
	testutil.RequiresTool(t, "go")
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "udpecho"), "./testdata/udpecho")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/udpecho: %v\n%s", err, out)
	}
	return dir
}

// nwWaitEcho sends datagrams from c to addr until one is answered with
// prefix and the datagram.
func nwWaitEcho(t *testing.T, c *net.UDPConn, addr, prefix string) {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	n := 0
	nwWait(t, 20*time.Second, fmt.Sprintf("udp %s to answer %q to %s", addr, prefix, c.LocalAddr()), func() (bool, string) {
		n++
		msg := fmt.Sprintf("ping-%d", n)
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			return false, err.Error()
		}
		buf := make([]byte, 1500)
		for {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return false, fmt.Sprintf("answer %q, then %v", last, err)
			}
			last = string(buf[:k])
			if last == prefix+msg {
				return true, ""
			}
			// An answer to an earlier datagram: read on.
		}
	})
}

// UDP is published, on 127.0.0.1 here: the echo answers the host. When the
// container is gone and another answers on the same host port, a client
// that keeps its local port — the same connection-tracking entry, were it
// kept — reaches the new one, not the address where the old one was
// (which another container now has). The default bridge stays up all the
// while (a keeper container is on it): its going would take the entries
// masqueraded through it along, and prove nothing.
func TestNetworkUDP(t *testing.T) {
	s := nwStore(t)
	bin := nwUDPEcho(t)
	s.ok("run", "-d", "--name", "keeper", "busybox", "sleep", "1000")
	hp := nwFreePorts(t, 1)
	publish := fmt.Sprintf("127.0.0.1:%d:5353/udp", hp)
	echo := func(name, prefix string) {
		s.ok("run", "-d", "--name", name, "-v", bin+":/echo:ro", "-p", publish, "busybox", "/echo/udpecho", "-addr", ":5353", "-prefix", prefix)
	}
	echo("one", "one:")
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", hp)
	nwWaitEcho(t, client, addr, "one:")
	oldIP := s.nwIP("one", "bridge")

	s.ok("rm", "-f", "one")
	// The address of the one that is gone goes to a container without any
	// server: a datagram sent there by a stale entry is never answered.
	s.ok("run", "-d", "--name", "filler", "busybox", "sleep", "1000")
	if ip := s.nwIP("filler", "bridge"); ip != oldIP {
		t.Fatalf("the filler got %s, not %s: the first free address is not given first", ip, oldIP)
	}
	echo("two", "two:")
	if s.nwIP("two", "bridge") == oldIP {
		t.Fatal("two has the address of one")
	}
	nwWaitEcho(t, client, addr, "two:")
}

// nwOutside is a network namespace that stands for the world outside the
// host, joined to the host by a veth pair: the host's end has the first
// address of a documentation subnet (RFC 5737), the outside the second.
type nwOutside struct {
	name, path     string
	hostIf, nsIf   string
	hostIP, nsIP   netip.Addr
	serverRequests func() []string // what serve saw: the address of each request
}

// nwTestNet is the first of the TEST-NETs of RFC 5737 that overlaps no
// route of the host (its local routes, its addresses' among them) — this
// host's own eth0 may well be on 192.0.2.0/24, with its default route via
// 192.0.2.1 — chosen at run time, for the fake outside.
func nwTestNet(t testing.TB) netip.Prefix {
	t.Helper()
	out, err := exec.Command("ip", "-o", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	var routes []netip.Prefix
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "unicast", "local", "broadcast", "multicast", "anycast", "blackhole", "unreachable", "prohibit", "throw", "nat":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue // overlaps everything: it is not the host's own
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			routes = append(routes, p)
		}
	}
	for _, c := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
		p := netip.MustParsePrefix(c)
		if !slices.ContainsFunc(routes, p.Overlaps) {
			return p
		}
	}
	t.Fatalf("every TEST-NET of RFC 5737 overlaps a route of the host: %v", routes)
	return netip.Prefix{}
}

// nwNewOutside makes the fake outside; the test's cleanup removes its
// namespace and veth (and fails the test if it cannot).
func nwNewOutside(t *testing.T) *nwOutside {
	t.Helper()
	p := nwTestNet(t)
	suffix := fmt.Sprintf("%06x", rand.IntN(1<<24))
	o := &nwOutside{name: "nwtest-" + suffix, hostIf: "nwh" + suffix, nsIf: "nwo" + suffix,
		hostIP: p.Addr().Next(), nsIP: p.Addr().Next().Next()}
	o.path = "/run/netns/" + o.name
	nwRun(t, "ip", "netns", "add", o.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", o.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", o.name, err, out)
		}
	})
	nwRun(t, "ip", "link", "add", o.hostIf, "type", "veth", "peer", "name", o.nsIf, "netns", o.name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", o.hostIf).Run()
		if _, err := os.Stat("/sys/class/net/" + o.hostIf); err == nil {
			t.Errorf("link %s is still there", o.hostIf)
		}
	})
	bits := strconv.Itoa(p.Bits())
	nwRun(t, "ip", "addr", "add", o.hostIP.String()+"/"+bits, "dev", o.hostIf)
	nwRun(t, "ip", "link", "set", o.hostIf, "up")
	nwRun(t, "ip", "-n", o.name, "addr", "add", o.nsIP.String()+"/"+bits, "dev", o.nsIf)
	nwRun(t, "ip", "-n", o.name, "link", "set", o.nsIf, "up")
	// Its loopback stays down: it has no 127/8 of its own (see
	// TestNetworkLoopbackStaysLocal), and the tests need none.
	return o
}

// in runs f on a thread of its own that joined the outside's namespace:
// the sockets f makes are the outside's. The thread is never given back to
// the scheduler (it ends with its goroutine), so nothing else runs there.
func (o *nwOutside) in(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		fd, err := unix.Open(o.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", o.path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// get is an HTTP GET of http://addr/ from the outside: its body, or why
// there is none.
func (o *nwOutside) get(addr string) (string, error) {
	var body string
	err := o.in(func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s", resp.Status)
		}
		body = string(b)
		return err
	})
	return body, err
}

// serve starts an HTTP server in the outside, on its own address: it
// answers each request with the address it came from, and remembers it.
// It returns the server's address.
func (o *nwOutside) serve(t *testing.T) string {
	t.Helper()
	var ln net.Listener
	if err := o.in(func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(o.nsIP.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen = append(seen, host)
		mu.Unlock()
		fmt.Fprint(w, host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o.serverRequests = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	return ln.Addr().String()
}

// A port published on 127.0.0.1 is the host's alone: from outside, a
// connection to the host's address on that port is refused, and so is one
// addressed to 127.0.0.1 itself and routed to the host — even where the
// host lets such packets in (route_localnet on the outside's link, which
// the test sets on its own veth: a listener of the host on 127.0.0.1 then
// answers the outside, which proves the path). A port published on every
// address answers the outside at the host's address.
func TestNetworkLoopbackStaysLocal(t *testing.T) {
	s := nwStore(t)
	o := nwNewOutside(t)
	lp, ap := nwFreePorts(t, 1), nwFreePorts(t, 1)
	for lp == ap {
		ap = nwFreePorts(t, 1)
	}
	s.nwWeb("local", "local", "-p", fmt.Sprintf("127.0.0.1:%d:80", lp))
	s.nwWeb("public", "public", "-p", fmt.Sprintf("%d:80", ap))
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", lp), "local\n")
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", ap), "public\n")

	// On every address: the outside reaches it at the host's address.
	pub := net.JoinHostPort(o.hostIP.String(), strconv.Itoa(ap))
	nwWait(t, 10*time.Second, "the outside to reach "+pub, func() (bool, string) {
		got, err := o.get(pub)
		return err == nil && got == "public\n", fmt.Sprintf("%q %v", got, err)
	})
	// On 127.0.0.1: not at the host's address.
	if got, err := o.get(net.JoinHostPort(o.hostIP.String(), strconv.Itoa(lp))); err == nil {
		t.Errorf("a port published on 127.0.0.1 answers the outside at %s: %q", o.hostIP, got)
	}

	// Packets to 127.0.0.1 routed from the outside to the host, accepted
	// on both ends of the veth.
	nwRun(t, "ip", "-n", o.name, "route", "add", "127.0.0.0/8", "via", o.hostIP.String(), "dev", o.nsIf)
	nwRun(t, "ip", "netns", "exec", o.name, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/"+o.nsIf+"/route_localnet")
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+o.hostIf+"/route_localnet", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	control, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host loopback\n") })}
	go srv.Serve(control)
	defer srv.Close()
	if got, err := o.get(control.Addr().String()); err != nil || got != "host loopback\n" {
		t.Fatalf("the path from the outside to the host's 127.0.0.1 does not work, so it proves nothing: %q %v", got, err)
	}
	if got, err := o.get(fmt.Sprintf("127.0.0.1:%d", lp)); err == nil {
		t.Errorf("a port published on 127.0.0.1 answers a packet from outside addressed to 127.0.0.1: %q", got)
	}
	// The host itself still reaches it.
	nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", lp), "local\n")
}

// A container on the default bridge reaches the outside masqueraded: the
// server there sees the host's address, not the container's. A container
// on an --internal network has no way out (no default route, and the host
// forwards nothing off its bridge), while two containers on it reach each
// other.
func TestNetworkOutboundNAT(t *testing.T) {
	s := nwStore(t)
	o := nwNewOutside(t)
	server := o.serve(t)
	s.ok("run", "-d", "--name", "inside", "busybox", "sleep", "1000")
	ctrIP := s.nwIP("inside", "bridge")
	out := s.ok(append([]string{"exec", "inside"}, nwWget(5, "http://"+server+"/")...)...)
	if out != o.hostIP.String() {
		t.Errorf("the outside saw the request come from %q, want the host's %s (the container is %s)", out, o.hostIP, ctrIP)
	}
	if seen := o.serverRequests(); len(seen) != 1 || seen[0] != o.hostIP.String() {
		t.Errorf("the outside's server saw %v", seen)
	}

	s.ok("network", "create", "--internal", "isolated")
	if out := s.ok("network", "inspect", "-f", "{{.Internal}}", "isolated"); out != "true\n" {
		t.Errorf("network inspect .Internal: %q", out)
	}
	s.ok("run", "-d", "--name", "in1", "--network", "isolated", "--dns", "127.0.0.1", "busybox", "sleep", "1000")
	s.ok("run", "-d", "--name", "in2", "--network", "isolated", "--dns", "127.0.0.1", "busybox", "sleep", "1000")
	if out := s.ok("exec", "in1", "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("a container on an internal network has a default route:\n%s", out)
	}
	r := s.run(nil, append([]string{"exec", "in1"}, nwWget(3, "http://"+server+"/")...)...)
	if r.Code == 0 || r.Stdout != "" {
		t.Errorf("a container on an internal network reached the outside: %+v", r)
	}
	// Even given a route: the host forwards nothing off the bridge.
	gw := strings.TrimSpace(s.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "isolated").Gateway}}`, "in2"))
	s.ok("run", "--rm", "--network", "container:in2", "--cap-add", "NET_ADMIN", "busybox", "ip", "route", "add", "default", "via", gw)
	r = s.run(nil, append([]string{"exec", "in2"}, nwWget(3, "http://"+server+"/")...)...)
	if r.Code == 0 || r.Stdout != "" {
		t.Errorf("a container on an internal network, given a default route, reached the outside: %+v", r)
	}
	if seen := o.serverRequests(); len(seen) != 1 {
		t.Errorf("the outside's server saw requests from the internal network: %v", seen)
	}
	for _, pair := range [][2]string{{"in1", "in2"}, {"in2", "in1"}} {
		if r := s.run(nil, "exec", pair[0], "ping", "-c1", "-W2", pair[1]); r.Code != 0 {
			t.Errorf("%s cannot reach %s on their internal network: %+v", pair[0], pair[1], r)
		}
	}
}

// Containers on a user network reach each other by name, by
// --network-alias and by short ID (their /etc/hosts); a container on the
// default bridge, or on another user network, reaches none of them, by
// name or by address — not even on a port one of them publishes — and
// none of them reaches it, while a peer on the network does. (Every
// container serves a published port, and each network was up before the
// next: whatever the order of the networks' lines, a published port must
// not open a way between them.)
func TestNetworkUserNetworkNamesAndIsolation(t *testing.T) {
	s := nwStore(t)
	ports := nwFreePorts(t, 3)
	s.nwWeb("onbridge", "onbridge", "--dns", "127.0.0.1", "-p", fmt.Sprintf("%d:80", ports))
	s.ok("network", "create", "othernet")
	s.nwWeb("onother", "onother", "--dns", "127.0.0.1", "--network", "othernet", "-p", fmt.Sprintf("%d:80", ports+1))
	netID := strings.TrimSpace(s.ok("network", "create", "appnet"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(netID) {
		t.Fatalf("network create printed %q", netID)
	}
	id := s.nwWeb("web", "web", "--dns", "127.0.0.1", "--network", "appnet", "--network-alias", "webalias", "-p", fmt.Sprintf("%d:80", ports+2))
	for i, body := range []string{"onbridge", "onother", "web"} {
		nwWaitGet(t, fmt.Sprintf("127.0.0.1:%d", ports+i), body+"\n")
	}
	webIP := s.nwIP("web", "appnet")
	for _, name := range []string{"web", "webalias", id[:12]} {
		if r := s.run(nil, "run", "--rm", "--network", "appnet", "--dns", "127.0.0.1", "busybox", "ping", "-c1", "-W2", name); r.Code != 0 {
			t.Errorf("ping %s from appnet: %+v", name, r)
		}
	}
	out := s.ok("run", "--rm", "--network", "appnet", "--dns", "127.0.0.1", "busybox", "sh", "-c", "cat /etc/hosts; timeout 5 wget -q -O - http://webalias/; exit $?")
	if !strings.Contains(out, fmt.Sprintf("%s\tweb webalias %s\n", webIP, id[:12])) || !strings.HasSuffix(out, "\nweb\n") {
		t.Errorf("a peer on appnet:\n%s", out)
	}
	// inspect lists the alias and the short ID, as Docker 20.10 does, and
	// no address at its top (that is the default bridge's).
	if out := s.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "appnet").Aliases}} {{.NetworkSettings.IPAddress}}`, "web"); out != fmt.Sprintf("[webalias %s] \n", id[:12]) {
		t.Errorf("inspect of a container on a user network: %q", out)
	}

	// Across networks, nothing: by address, on the published port, by name.
	addrs := map[string]string{"onbridge": s.nwIP("onbridge", "bridge"), "onother": s.nwIP("onother", "othernet"), "web": webIP}
	for _, pair := range [][2]string{{"onbridge", "web"}, {"onother", "web"}, {"web", "onbridge"}, {"web", "onother"}, {"onbridge", "onother"}} {
		from, to := pair[0], pair[1]
		if r := s.run(nil, "exec", from, "ping", "-c1", "-W2", addrs[to]); r.Code == 0 {
			t.Errorf("%s reaches %s at %s: %+v", from, to, addrs[to], r)
		}
		if r := s.run(nil, append([]string{"exec", from}, nwWget(3, "http://"+addrs[to]+"/")...)...); r.Code == 0 || r.Stdout != "" {
			t.Errorf("%s reaches the published port of %s at %s: %+v", from, to, addrs[to], r)
		}
		if r := s.run(nil, "exec", from, "ping", "-c1", "-W2", to); r.Code == 0 {
			t.Errorf("%s resolves %s: %+v", from, to, r)
		}
	}
	// The default bridge resolves no names (as in Docker), even of itself.
	if r := s.run(nil, "run", "--rm", "--dns", "127.0.0.1", "busybox", "ping", "-c1", "-W2", "onbridge"); r.Code == 0 {
		t.Errorf("the default bridge resolves a container's name: %+v", r)
	}
	// Within the default bridge, by address, a container reaches another.
	if r := s.run(nil, append([]string{"run", "--rm", "busybox"}, nwWget(5, "http://"+addrs["onbridge"]+"/")...)...); r.Stdout != "onbridge\n" {
		t.Errorf("a container on the default bridge cannot reach another by address: %+v", r)
	}
}

// network connect gives a running container an interface on one more
// network (eth1), where its peers reach it by name and alias at once;
// disconnect takes it away, and its name with it. network rm refuses a
// network a running container is on, and removes it once none is; network
// prune removes the networks no container is on; network inspect lists
// the containers on a network.
func TestNetworkConnectRemovePrune(t *testing.T) {
	s := nwStore(t)
	s.ok("network", "create", "appnet")
	soloID := strings.TrimSpace(s.ok("run", "-d", "--name", "solo", "--dns", "127.0.0.1", "busybox", "sleep", "1000"))
	s.ok("run", "-d", "--name", "peer", "--network", "appnet", "--dns", "127.0.0.1", "busybox", "sleep", "1000")
	if out := s.ok("exec", "solo", "ls", "/sys/class/net"); out != "eth0\nlo\n" {
		t.Fatalf("interfaces before connect: %q", out)
	}
	s.ok("network", "connect", "--alias", "x", "appnet", "solo")
	soloIP := s.nwIP("solo", "appnet")
	if out := s.ok("exec", "solo", "sh", "-c", "ls /sys/class/net; ip -4 -o addr show eth1"); !strings.HasPrefix(out, "eth0\neth1\nlo\n") || !strings.Contains(out, "inet "+soloIP+"/") {
		t.Fatalf("after connect:\n%s", out)
	}
	for _, name := range []string{"x", "solo", soloID[:12]} {
		if r := s.run(nil, "exec", "peer", "ping", "-c1", "-W2", name); r.Code != 0 {
			t.Errorf("peer cannot reach the connected container as %s: %+v", name, r)
		}
	}
	if r := s.run(nil, "exec", "solo", "ping", "-c1", "-W2", "peer"); r.Code != 0 {
		t.Errorf("the connected container cannot reach peer by name: %+v", r)
	}
	if out := s.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "appnet").Aliases}} {{len .NetworkSettings.Networks}}`, "solo"); out != fmt.Sprintf("[x %s] 2\n", soloID[:12]) {
		t.Errorf("inspect after connect: %q", out)
	}
	s.fails(1, "already exists", "network", "connect", "appnet", "solo")
	// The connection is for every start from now on: restarted, solo is
	// on both networks again, under its alias.
	s.ok("restart", "-t", "0", "solo")
	if out := s.ok("exec", "solo", "ls", "/sys/class/net"); out != "eth0\neth1\nlo\n" {
		t.Errorf("interfaces after restart: %q", out)
	}
	soloIP = s.nwIP("solo", "appnet")
	if r := s.run(nil, "exec", "peer", "ping", "-c1", "-W2", "x"); r.Code != 0 {
		t.Errorf("peer cannot reach the restarted container as x: %+v", r)
	}
	bits := strings.TrimSpace(s.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "appnet").IPPrefixLen}}`, "solo"))
	var ni []struct {
		Name       string
		Containers map[string]struct{ Name, IPv4Address, MacAddress string }
	}
	json.Unmarshal([]byte(s.ok("network", "inspect", "appnet")), &ni)
	if len(ni) != 1 || len(ni[0].Containers) != 2 || ni[0].Containers[soloID].Name != "solo" || ni[0].Containers[soloID].IPv4Address != soloIP+"/"+bits {
		t.Errorf("network inspect appnet: %+v", ni)
	}

	s.ok("network", "disconnect", "appnet", "solo")
	if out := s.ok("exec", "solo", "ls", "/sys/class/net"); out != "eth0\nlo\n" {
		t.Errorf("interfaces after disconnect: %q", out)
	}
	if r := s.run(nil, "exec", "peer", "ping", "-c1", "-W2", "x"); r.Code == 0 {
		t.Errorf("the alias still resolves after disconnect: %+v", r)
	}
	if out := s.ok("exec", "peer", "cat", "/etc/hosts"); strings.Contains(out, soloIP) || strings.Contains(out, "solo") {
		t.Errorf("peer's /etc/hosts after disconnect:\n%s", out)
	}
	if r := s.run(nil, "exec", "solo", "ping", "-c1", "-W2", s.nwIP("peer", "appnet")); r.Code == 0 {
		t.Errorf("solo reaches appnet after disconnect: %+v", r)
	}
	s.fails(1, "is not connected", "network", "disconnect", "appnet", "solo")

	// rm: refused while a container runs on it.
	s.fails(1, "has active endpoints", "network", "rm", "appnet")
	s.ok("rm", "-f", "peer")
	s.ok("network", "rm", "appnet")
	if out := s.ok("network", "ls", "--format", "{{.Name}}"); out != "bridge\nhost\nnone\n" {
		t.Errorf("network ls after rm: %q", out)
	}
	s.fails(1, "not found", "network", "rm", "appnet")
	s.fails(1, "pre-defined", "network", "rm", "bridge")

	// prune: the networks nobody is on.
	for _, n := range []string{"unused1", "unused2", "busy"} {
		s.ok("network", "create", n)
	}
	s.ok("run", "-d", "--name", "onbusy", "--network", "busy", "busybox", "sleep", "1000")
	// Without -f it asks, as Docker's; anything but "y" keeps them.
	if r := s.run([]byte("n\n"), "network", "prune"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ") || strings.Contains(r.Stdout, "Deleted") {
		t.Errorf("network prune answered n: %+v", r)
	}
	if out := s.ok("network", "prune", "-f"); out != "Deleted Networks:\nunused1\nunused2\n" {
		t.Errorf("network prune: %q", out)
	}
	if out := s.ok("network", "ls", "--format", "{{.Name}}"); out != "bridge\nhost\nnone\nbusy\n" {
		t.Errorf("network ls after prune: %q", out)
	}
	if out := s.ok("network", "prune", "-f"); out != "" {
		t.Errorf("network prune with nothing to prune: %q", out)
	}
}

// network create --subnet --gateway makes a network on that subnet with
// that gateway, and run --ip gives a container that address (and Docker's
// MAC of it); an address outside the subnet, one taken, or --ip on the
// default bridge is refused; network inspect shows the subnet and the
// container.
func TestNetworkSubnetAndIP(t *testing.T) {
	s := nwStore(t)
	s.ok("network", "create", "--subnet", "10.89.0.0/24", "--gateway", "10.89.0.254", "--label", "team=cairn", "n")
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "fixed", "--ip", "10.89.0.50", "--network", "n", "busybox", "sleep", "1000"))
	out := s.ok("exec", "fixed", "sh", "-c", "ip -4 -o addr show eth0; ip route; cat /sys/class/net/eth0/address")
	for _, want := range []string{"inet 10.89.0.50/24 ", "default via 10.89.0.254 dev eth0", "10.89.0.0/24 dev eth0", "02:42:0a:59:00:32"} {
		if !strings.Contains(out, want) {
			t.Errorf("in the container, no %q:\n%s", want, out)
		}
	}
	if out := s.ok("inspect", "-f", `{{with index .NetworkSettings.Networks "n"}}{{.IPAddress}}/{{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}} {{.IPAMConfig.IPv4Address}}{{end}}`, "fixed"); out != "10.89.0.50/24 10.89.0.254 02:42:0a:59:00:32 10.89.0.50\n" {
		t.Errorf("inspect: %q", out)
	}
	var ni []struct {
		Name, Driver string
		Internal     bool
		Labels       map[string]string
		IPAM         struct {
			Config []struct{ Subnet, Gateway string }
		}
		Containers map[string]struct{ Name, IPv4Address, MacAddress string }
		Options    map[string]string
	}
	if err := json.Unmarshal([]byte(s.ok("network", "inspect", "n")), &ni); err != nil || len(ni) != 1 {
		t.Fatalf("network inspect: %v", err)
	}
	n := ni[0]
	if n.Name != "n" || n.Driver != "bridge" || n.Internal || n.Labels["team"] != "cairn" || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet != "10.89.0.0/24" || n.IPAM.Config[0].Gateway != "10.89.0.254" ||
		n.Containers[id].Name != "fixed" || n.Containers[id].IPv4Address != "10.89.0.50/24" || n.Containers[id].MacAddress != "02:42:0a:59:00:32" ||
		len(n.Containers) != 1 || len(n.Options) != 0 {
		t.Errorf("network inspect n: %+v", n)
	}
	// The network's bridge carries its gateway.
	if out, err := exec.Command("ip", "-4", "-o", "addr", "show", "to", "10.89.0.254").Output(); err != nil || !strings.Contains(string(out), ": cairn-") || !strings.Contains(string(out), "inet 10.89.0.254/24") {
		t.Errorf("the bridge of n: %q %v", out, err)
	}
	// --mac-address: that address on eth0, and in inspect.
	if out := s.ok("run", "--rm", "--network", "n", "--mac-address", "92:d0:c6:0a:29:33", "busybox", "cat", "/sys/class/net/eth0/address"); out != "92:d0:c6:0a:29:33\n" {
		t.Errorf("--mac-address: %q", out)
	}
	s.fails(125, "not found", "run", "--rm", "--network", "nosuchnet", "busybox", "true")
	s.fails(125, "is not in the subnet", "run", "--rm", "--ip", "10.90.0.5", "--network", "n", "busybox", "true")
	s.fails(125, "in use", "run", "--rm", "--ip", "10.89.0.50", "--network", "n", "busybox", "true")
	s.fails(125, "invalid IPv4 address", "run", "--rm", "--ip", "10.89.0.500", "--network", "n", "busybox", "true")
	s.fails(125, "user defined networks only", "run", "--rm", "--ip", "172.17.0.50", "busybox", "true")
	s.fails(125, "only supported for user-defined networks", "run", "--rm", "--network-alias", "a", "busybox", "true")
	s.fails(125, "overlaps", "network", "create", "--subnet", "10.89.0.128/25", "n2")
	s.fails(125, "not an address of subnet", "network", "create", "--subnet", "10.91.0.0/24", "--gateway", "10.92.0.1", "n3")
	s.fails(1, "already exists", "network", "create", "n")
	// A second container gets the first free address, not the gateway.
	s.ok("run", "-d", "--name", "next", "--network", "n", "--dns", "127.0.0.1", "busybox", "sleep", "1000")
	if ip := s.nwIP("next", "n"); ip != "10.89.0.1" {
		t.Errorf("the next container on n has %s, want 10.89.0.1", ip)
	}
	if r := s.run(nil, "exec", "next", "ping", "-c1", "-W2", "fixed"); r.Code != 0 {
		t.Errorf("next cannot reach fixed: %+v", r)
	}
}

// --network container:web shares web's namespace: the same interfaces and
// address, the same hostname and /etc/hosts; --network none has loopback
// only; --network host sees the host's interfaces and has its name.
func TestNetworkModes(t *testing.T) {
	s := nwStore(t)
	s.ok("network", "create", "appnet")
	s.ok("run", "-d", "--name", "web", "--hostname", "webhost", "--network", "appnet", "busybox", "sleep", "1000")
	s.ok("run", "-d", "--name", "other", "--network", "appnet", "--dns", "127.0.0.1", "busybox", "sleep", "1000")
	view := "ls /sys/class/net; ip -4 -o addr show eth0; hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf"
	own := s.ok("exec", "web", "sh", "-c", view)
	shared := s.ok("run", "--rm", "--network", "container:web", "busybox", "sh", "-c", view)
	if own != shared {
		t.Errorf("--network container:web sees\n%s\nweb sees\n%s", shared, own)
	}
	if !strings.Contains(own, "inet "+s.nwIP("web", "appnet")+"/") || !strings.Contains(own, "webhost\nwebhost\n") || !strings.Contains(own, "\tother ") {
		t.Errorf("web's view:\n%s", own)
	}
	// A second container in web's namespace serves on web's address.
	s.ok("run", "-d", "--name", "sidecar", "--network", "container:web", "busybox", "sh", "-c", "mkdir /www && echo sidecar > /www/index.html && exec httpd -f -p 8080 -h /www")
	waitFor(t, 20*time.Second, "the sidecar to answer on web's address", func() bool {
		return s.run(nil, append([]string{"exec", "other"}, nwWget(2, "http://web:8080/")...)...).Stdout == "sidecar\n"
	})
	s.fails(125, "conflicting options", "run", "--rm", "--network", "container:web", "-p", "80", "busybox", "true")
	s.fails(125, "conflicting options", "run", "--rm", "--network", "container:web", "--hostname", "x", "busybox", "true")
	s.fails(125, "No such container", "run", "--rm", "--network", "container:nosuch", "busybox", "true")

	if out := s.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip -4 -o addr; ip route"); !strings.HasPrefix(out, "lo\n") ||
		strings.Count(out, "inet ") != 1 || !strings.Contains(out, "inet 127.0.0.1/8") || strings.Contains(out, "default") {
		t.Errorf("--network none: %q", out)
	}
	hostIfaces, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range hostIfaces {
		names = append(names, e.Name())
	}
	hostname, _ := os.Hostname()
	if out := s.ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ls /sys/class/net; hostname"); out != strings.Join(names, "\n")+"\n"+hostname+"\n" {
		t.Errorf("--network host sees %q; the host has %v, named %s", out, names, hostname)
	}
	if out := s.ok("ps", "--format", "{{.Names}} {{.Networks}}"); !strings.Contains("\n"+out, "\nweb appnet\n") {
		t.Errorf("ps NETWORKS: %q", out)
	}
}

// /etc/resolv.conf, /etc/hosts and /etc/hostname are exactly what --dns,
// --dns-search, --dns-option, --add-host (host-gateway is the container's
// gateway), --hostname and --domainname say, as Docker writes them; without
// --dns a container has the host's resolv.conf without its loopback
// nameservers, on the default bridge and on a user network; --network host
// has the host's files.
func TestNetworkEtcFiles(t *testing.T) {
	s := nwStore(t)
	out := s.ok("run", "--rm", "--dns", "9.9.9.9", "--dns-search", "example.org", "--dns-option", "ndots:2",
		"--add-host", "gw:host-gateway", "--add-host", "h:10.1.1.1", "--hostname", "h", "--domainname", "example.org",
		"busybox", "sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; echo ---; hostname; ip -4 -o addr show eth0; ip route; echo ---; cat /proc/sys/kernel/domainname")
	parts := strings.Split(out, "---\n")
	if len(parts) != 5 {
		t.Fatalf("output:\n%s", out)
	}
	m := regexp.MustCompile(`inet (\S+)/\d+ `).FindStringSubmatch(parts[3])
	g := regexp.MustCompile(`default via (\S+) `).FindStringSubmatch(parts[3])
	if m == nil || g == nil || !strings.HasPrefix(parts[3], "h\n") {
		t.Fatalf("hostname, address and route:\n%s", parts[3])
	}
	header := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	for _, c := range []struct{ what, got, want string }{
		{"/etc/resolv.conf", parts[0], "nameserver 9.9.9.9\nsearch example.org\noptions ndots:2\n"},
		{"/etc/hosts", parts[1], header + g[1] + "\tgw\n10.1.1.1\th\n" + m[1] + "\th.example.org h\n"},
		{"/etc/hostname", parts[2], "h\n"},
		{"the kernel's domain name", parts[4], "example.org\n"},
	} {
		if c.got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.what, c.got, c.want)
		}
	}

	// Without --dns: the host's, without loopback nameservers.
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := nwResolvOf(string(host))
	s.ok("network", "create", "appnet")
	for _, network := range []string{"bridge", "appnet"} {
		got := s.ok("run", "--rm", "--network", network, "busybox", "cat", "/etc/resolv.conf")
		lines := strings.Split(strings.TrimSpace(got), "\n")
		sort.Strings(lines)
		if strings.Join(lines, "\n") != want {
			t.Errorf("resolv.conf on %s:\n%s\nwant (in any order):\n%s", network, got, want)
		}
	}
	// --network host: the host's files, and --add-host after its hosts.
	hosts, _ := os.ReadFile("/etc/hosts")
	out = s.ok("run", "--rm", "--network", "host", "--add-host", "h:10.1.1.1", "busybox", "sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts")
	if want := string(host) + "---\n" + string(hosts) + "10.1.1.1\th\n"; out != want {
		t.Errorf("--network host:\ngot  %q\nwant %q", out, want)
	}
	s.fails(125, "bad format for add-host", "run", "--rm", "--add-host", "nocolon", "busybox", "true")
	s.fails(125, "invalid IP address in add-host", "run", "--rm", "--add-host", "h:notanip", "busybox", "true")
}

// nwResolvOf is the resolv.conf Docker gives a container of a host whose
// resolv.conf is host: its nameserver, search and options lines without
// the loopback nameservers (Google's when none is left), sorted.
func nwResolvOf(host string) string {
	var lines []string
	servers := 0
	for _, l := range strings.Split(host, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		if f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err != nil || a.IsLoopback() {
				continue
			}
			servers++
		}
		lines = append(lines, strings.Join(f, " "))
	}
	if servers == 0 {
		lines = append(lines, "nameserver 8.8.8.8", "nameserver 8.8.4.4")
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// nwDeleteCairnLines deletes every firewall line and chain of cairn's —
// and only those: what a firewall reload of the host's own would do to
// cairn — in one iptables-restore --noflush batch.
func nwDeleteCairnLines(t *testing.T) {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	var batch strings.Builder
	var table string
	var dels, chains []string
	flush := func() {
		if table != "" && len(dels)+len(chains) > 0 {
			fmt.Fprintf(&batch, "*%s\n", table)
			for _, d := range dels {
				batch.WriteString(d + "\n")
			}
			for _, c := range chains {
				batch.WriteString("-X " + c + "\n")
			}
			batch.WriteString("COMMIT\n")
		}
		dels, chains = nil, nil
	}
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			flush()
			table = l[1:]
		case strings.HasPrefix(l, ":CAIRN-"):
			name, _, _ := strings.Cut(l[1:], " ")
			chains = append(chains, name)
		case strings.HasPrefix(l, "-A ") && (strings.Contains(l, "cairn") || strings.Contains(l, "CAIRN")):
			dels = append(dels, "-D "+l[3:])
		}
	}
	flush()
	cmd := exec.Command("iptables-restore", "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore of\n%s: %v\n%s", batch.String(), err, out)
	}
}

// After something deleted cairn's firewall lines (only cairn's), a
// published port no longer answers; network reload puts every line back,
// exactly as it was, and the port answers again; a reload with every line
// in place changes nothing (no line twice).
func TestNetworkReload(t *testing.T) {
	s := nwStore(t)
	hp := nwFreePorts(t, 1)
	id := s.nwWeb("web", "reloaded", "-p", fmt.Sprintf("%d:80", hp))
	addr := fmt.Sprintf("127.0.0.1:%d", hp)
	nwWaitGet(t, addr, "reloaded\n")
	// The lines compared are this container's, its network's and the shared
	// ones: they stay while it runs, whatever other containers of the host
	// come and go meanwhile.
	netID := strings.TrimSpace(s.ok("network", "inspect", "-f", "{{.Id}}", "bridge"))
	ours := func() []string {
		var out []string
		for _, l := range nwCairnLines(t) {
			chain, _, _ := strings.Cut(strings.TrimPrefix(l, ":"), " ")
			if strings.Contains(l, id[:12]) || strings.Contains(l, "cairn:base:") || strings.Contains(l, "cairn:net:"+netID[:12]+":") ||
				strings.HasPrefix(l, ":") && slices.Contains([]string{"CAIRN-FORWARD", "CAIRN-PREROUTING", "CAIRN-OUTPUT", "CAIRN-POSTROUTING"}, chain) {
				out = append(out, l)
			}
		}
		return out
	}
	before := ours()
	if len(before) != 7+4+4+7+2 {
		// 7 chains, 4 shared lines, 4 jumps to the container's chains, 7 of
		// the default bridge, a DNAT and an accept.
		t.Fatalf("firewall lines of a container publishing one port on the default bridge:\n  %s", strings.Join(before, "\n  "))
	}
	nwDeleteCairnLines(t)
	if left := nwCairnLines(t); len(left) != 0 {
		t.Fatalf("cairn's lines left after deleting them: %v", left)
	}
	if got, err := nwGet(addr); err == nil {
		t.Fatalf("the port answers without cairn's firewall lines: %q", got)
	}
	out := s.ok("network", "reload")
	if !regexp.MustCompile(`^Reloaded the networks of [1-9]\d* containers\n$`).MatchString(out) {
		t.Errorf("network reload: %q", out)
	}
	nwWaitGet(t, addr, "reloaded\n")
	if after := ours(); !slices.Equal(after, before) {
		t.Errorf("after reload, cairn's lines are\n  %s\nwere\n  %s", strings.Join(after, "\n  "), strings.Join(before, "\n  "))
	}
	s.ok("network", "reload")
	if again := ours(); !slices.Equal(again, before) {
		t.Errorf("a second reload changed cairn's lines:\n  %s", strings.Join(again, "\n  "))
	}
	nwWaitGet(t, addr, "reloaded\n")
}

// A user network's bridge stays up, as Docker's do, until `network rm`; a
// root deleted with its networks up leaves bridges no definition names,
// which the next `network prune` of any root takes down.
func TestNetworkBridgeOfDeletedRoot(t *testing.T) {
	s := nwStore(t)
	s.ok("network", "create", "gone-with-root")
	id := strings.TrimSpace(s.ok("network", "inspect", "-f", "{{.Id}}", "gone-with-root"))
	s.ok("run", "--rm", "--network", "gone-with-root", "busybox", "true")
	bridge := "cairn-" + id[:8]
	if _, err := os.Stat("/sys/class/net/" + bridge); err != nil {
		t.Fatalf("the bridge of a network without containers: %v (it stays up until network rm)", err)
	}
	if err := os.Remove(filepath.Join(s.root, "networks", "gone-with-root.json")); err != nil {
		t.Fatal(err)
	}
	other := newStore(t)
	other.ok("network", "prune", "-f")
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		t.Fatalf("bridge %s of a network whose definition is gone is still up after network prune", bridge)
	}
	for _, l := range nwCairnLines(t) {
		if strings.Contains(l, id[:12]) || strings.Contains(l, bridge) {
			t.Errorf("a line of the gone network stays: %s", l)
		}
	}
}
