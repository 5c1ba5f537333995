package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The network killed at every step of Attach (network/attach.go), in each
// of its owners — the foreground `run` and the monitor of `run -d` — on the
// default bridge and on a user network: whatever the kill left, `rm -f`
// (or, for a container whose directory is gone, `network prune`) removes,
// and the port is free again. Then the same under concurrency: twenty
// starts at once on one network.

// networkFailpoints are the failpoints of network/attach.go, in the order
// Attach passes them.
var networkFailpoints = []string{"network-lease", "network-bridge", "network-netns", "network-veth", "network-firewall", "network-hosts"}

var (
	failpointsOnce sync.Once
	failpointsBin  string
	failpointsErr  error
)

// failpointsCairn is a cairn built with the tag failpoints
// (internal/failpoint), once per test binary, beside cairnBin (TestMain
// removes it with that directory).
func failpointsCairn(t testing.TB) string {
	t.Helper()
	failpointsOnce.Do(func() {
		out := filepath.Join(filepath.Dir(cairnBin), "cairn-failpoints")
		cmd := exec.Command("../hack/build", out)
		cmd.Env = append(os.Environ(), "CAIRN_BUILD_TAGS=failpoints")
		if b, err := cmd.CombinedOutput(); err != nil {
			failpointsErr = fmt.Errorf("CAIRN_BUILD_TAGS=failpoints hack/build: %w\n%s", err, b)
			return
		}
		failpointsBin = out
	})
	if failpointsErr != nil {
		t.Fatal(failpointsErr)
	}
	return failpointsBin
}

// nkRun runs binary bin (a cairn) on the store, with env added to its
// environment, bounded in time.
func (s *store) nkRun(bin string, env []string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--root", s.root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(append(os.Environ(), s.env...), env...)
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return r
}

// nkFreePort is a TCP port of the host that nothing listens on or binds now.
func nkFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nkAnswers reports whether an HTTP server answers on 127.0.0.1:port (any
// status: busybox httpd has nothing to serve at /).
func nkAnswers(port int) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func nkWaitAnswers(t testing.TB, port int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("an answer on published port %d", port), func() bool { return nkAnswers(port) })
}

// nkHTTPD is the arguments of a container that serves HTTP on its port 80.
var nkHTTPD = []string{"busybox", "httpd", "-f", "-p", "80"}

// nkRecord is what the tests read of a container's network record.
type nkRecord struct {
	ID, Root  string
	Endpoints []struct{ NetworkID, Bridge, HostVeth, IP string }
}

func nkRecords() []nkRecord {
	var out []nkRecord
	files, _ := filepath.Glob("/run/cairn/network/containers/*.json")
	for _, f := range files {
		var r nkRecord
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

func nkRecordOf(id string) *nkRecord {
	for _, r := range nkRecords() {
		if r.ID == id {
			return &r
		}
	}
	return nil
}

// nkSnapshot is networkLeftovers() at one moment, with the IDs of the
// containers of other stores that had a network record around it.
type nkSnapshot struct {
	items   []string
	foreign []string
}

func (s *store) nkSnapshot() nkSnapshot {
	var snap nkSnapshot
	add := func() {
		for _, r := range nkRecords() {
			if r.Root != s.root && !slices.Contains(snap.foreign, r.ID) {
				snap.foreign = append(snap.foreign, r.ID)
			}
		}
	}
	add()
	snap.items = networkLeftovers()
	add()
	return snap
}

// nkDefaultNetID is the ID of the default bridge (network.defaultNetwork).
func nkDefaultNetID() string {
	sum := sha256.Sum256([]byte("cairn default bridge"))
	return hex.EncodeToString(sum[:])
}

// nkCheck fails the test unless the network holds nothing of
// containers ids and of user networks netIDs (all of store s, gone now),
// and networkLeftovers() holds nothing that before did not: the global
// comparison. While containers of other stores have a network (another
// test's, on this host), only what is this test's is compared: lines and
// links of other containers and networks come and go with them, and the
// lines of the default bridge and the shared chains stay while any
// container has a network. It retries for a few seconds, for what another
// test's container makes or removes meanwhile.
func (s *store) nkCheck(t testing.TB, before nkSnapshot, ids, netIDs []string) {
	t.Helper()
	var keys []string // what names one of ours in a line, a link or a path
	for _, id := range ids {
		keys = append(keys, id[:12], "vc"+id[:10])
	}
	for _, n := range netIDs {
		keys = append(keys, n[:12], "cairn-"+n[:8])
	}
	mine := func(item string) bool {
		for _, k := range keys {
			if strings.Contains(item, k) {
				return true
			}
		}
		if p, ok := strings.CutPrefix(item, "state "); ok && strings.Contains(p, "/leases/") {
			b, _ := os.ReadFile(p)
			return slices.Contains(ids, strings.TrimSpace(string(b)))
		}
		return false
	}
	def := nkDefaultNetID()
	shared := func(item string) bool {
		for _, k := range []string{"cairn0", "cairn:base", "cairn:net:" + def[:12], "/leases/" + def + "/",
			":CAIRN-FORWARD ", ":CAIRN-PREROUTING ", ":CAIRN-OUTPUT ", ":CAIRN-POSTROUTING "} {
			if strings.Contains(item, k) {
				return true
			}
		}
		return false
	}
	var problems, ignored []string
	var after nkSnapshot
	for try := 0; try < 6; try++ {
		if try > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		problems, ignored = nil, nil
		after = s.nkSnapshot()
		problems = append(problems, networkTraces(ids...)...)
		for _, it := range after.items {
			if mine(it) && !slices.Contains(problems, it) {
				problems = append(problems, it)
			}
		}
		foreign := len(before.foreign)+len(after.foreign) > 0
		for _, it := range subtract(after.items, before.items) {
			switch {
			case mine(it):
			case shared(it) && len(nkRecords()) == 0, !shared(it) && !foreign:
				problems = append(problems, it)
			default:
				ignored = append(ignored, it)
			}
		}
		if len(problems) == 0 {
			break
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("the network holds, after its containers are gone:\n  %s", strings.Join(problems, "\n  "))
	}
	if len(ignored) > 0 {
		t.Logf("new on the host, of other tests' containers (%d with a network): %v", len(after.foreign), ignored)
	}
	if gone := subtract(before.items, after.items); len(gone) > 0 {
		t.Logf("gone from the host meanwhile (another test's, or swept): %v", gone)
	}
}

// nkNetworkID is the ID of network name of the store.
func (s *store) nkNetworkID(name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.ok("network", "inspect", "-f", "{{.Id}}", name))
}

// A cairn killed at each step of its network's set-up, in the foreground
// `run` and in the monitor of `run -d`, on the default bridge and on a user
// network, each with a published port: the owner dies by SIGKILL having
// made what the steps before made, `rm -f` removes all of it (record,
// lease, bridge, namespace, veth, firewall lines), and the port serves a
// new container.
func TestNetworkKilledAtFailpoints(t *testing.T) {
	bin := failpointsCairn(t)
	pairs := map[string]bool{}
	for i, fp := range networkFailpoints {
		for _, detached := range []bool{false, true} {
			for _, userNet := range []bool{false, true} {
				owner, netw := "foreground", "bridge"
				if detached {
					owner = "monitor"
				}
				if userNet {
					netw = "user-network"
				}
				t.Run(fp+"/"+owner+"/"+netw, func(t *testing.T) {
					s := newStore(t)
					s.busybox()
					var netArgs, netIDs []string
					if userNet {
						s.ok("network", "create", "killnet")
						netIDs = []string{s.nkNetworkID("killnet")}
						netArgs = []string{"--network", "killnet"}
					}
					before := s.nkSnapshot()
					port := nkFreePort(t)
					publish := []string{"-p", fmt.Sprintf("%d:80", port)}
					id := s.nkKillAt(t, bin, fp, detached, slices.Concat([]string{"--name", "victim"}, netArgs, publish))
					s.nkCheckKilledAt(t, i, id)
					s.ok("rm", "-f", "victim")
					if tr := s.traces(); len(tr) > 0 {
						t.Fatalf("rm -f after a kill at %s left: %v", fp, tr)
					}
					// The port, the address and the network serve the next container.
					next := strings.TrimSpace(s.ok(slices.Concat([]string{"run", "-d"}, netArgs, publish, nkHTTPD)...))
					nkWaitAnswers(t, port)
					s.ok("rm", "-f", next)
					if userNet {
						s.ok("network", "rm", "killnet")
					}
					s.nkCheck(t, before, []string{id, next}, netIDs)
				})
				pairs[fp+" "+owner] = true
			}
		}
	}
	t.Logf("%d (failpoint, owner) pairs, each on the default bridge and on a user network", len(pairs))
}

// nkKillAt starts a container of nkHTTPD with args, in the foreground or detached,
// with the cairn of bin set to die at failpoint fp, checks that its owner
// died by SIGKILL, and returns the container's ID.
func (s *store) nkKillAt(t *testing.T, bin, fp string, detached bool, args []string) string {
	t.Helper()
	env := []string{"CAIRN_FAILPOINT=" + fp}
	if detached {
		r := s.nkRun(bin, env, slices.Concat([]string{"run", "-d"}, args, nkHTTPD)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "exited (signal: killed) before the container started") {
			t.Fatalf("run -d with the monitor killed at %s: exit %d\nstdout: %s\nstderr: %s", fp, r.Code, r.Stdout, r.Stderr)
		}
	} else {
		bg := s.startWith(bin, env, slices.Concat([]string{"run"}, args, nkHTTPD)...)
		bg.wait(t, 2*time.Minute)
		ws, _ := bg.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("run killed at %s: %v, not killed by SIGKILL\nstdout: %s\nstderr: %s", fp, bg.cmd.ProcessState, bg.stdout, bg.stderr)
		}
	}
	id := s.containerID("victim")
	if st := s.status(id); st != "created" {
		t.Fatalf("a container whose start was killed at %s is %s", fp, st)
	}
	return id
}

// nkCheckKilledAt checks that a start killed at networkFailpoints[i] left
// what the steps up to it make: the record and the lease, the bridge, the
// namespace, the veth, the firewall lines.
func (s *store) nkCheckKilledAt(t *testing.T, i int, id string) {
	t.Helper()
	r := nkRecordOf(id)
	if r == nil || len(r.Endpoints) != 1 {
		t.Fatalf("killed at %s: no record of one endpoint for %s: %+v", networkFailpoints[i], id[:12], r)
	}
	tr := strings.Join(networkTraces(id), "\n")
	want := map[string]bool{
		"record ":                 true,
		"lease ":                  true,
		"netns /run/netns/cairn-": i >= 2,
		"link vc" + id[:10]:       i >= 3,
		"firewall ":               i >= 4,
	}
	for what, made := range want {
		if got := strings.Contains(tr, what); got != made {
			t.Errorf("killed at %s: %q among the traces is %v, want %v:\n%s", networkFailpoints[i], what, got, made, tr)
		}
	}
	// The bridge may be there before (another container's on the default
	// bridge): it must be there from the bridge step on.
	if _, err := os.Stat("/sys/class/net/" + r.Endpoints[0].Bridge); i >= 1 && err != nil {
		t.Errorf("killed at %s: bridge %s: %v", networkFailpoints[i], r.Endpoints[0].Bridge, err)
	}
}

// After a kill at each failpoint, the container's directory removed by
// hand (its root unmounted first): `network prune` removes what its record
// names, as sweepGone documents, and the user network with it.
func TestNetworkKilledThenPrune(t *testing.T) {
	bin := failpointsCairn(t)
	for i, fp := range networkFailpoints {
		detached := i%2 == 1
		t.Run(fp, func(t *testing.T) {
			s := newStore(t)
			s.busybox()
			s.ok("network", "create", "prunenet")
			netID := s.nkNetworkID("prunenet")
			before := s.nkSnapshot()
			port := nkFreePort(t)
			id := s.nkKillAt(t, bin, fp, detached, []string{"--name", "victim", "--network", "prunenet", "-p", fmt.Sprintf("%d:80", port)})
			s.nkCheckKilledAt(t, i, id)
			dir := filepath.Join(s.root, "containers", id)
			mounts, _ := os.ReadFile("/proc/self/mounts")
			for _, line := range strings.Split(string(mounts), "\n") {
				if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
					if err := syscall.Unmount(f[1], syscall.MNT_DETACH); err != nil {
						t.Fatalf("unmount %s: %v", f[1], err)
					}
				}
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			out := s.ok("network", "prune", "-f")
			if !strings.Contains(out, "prunenet") {
				t.Errorf("network prune kept the network of a container that is gone: %q", out)
			}
			if out := s.ok("ps", "-aq"); out != "" {
				t.Fatalf("containers left: %q", out)
			}
			s.nkCheck(t, before, []string{id}, []string{netID})
			next := strings.TrimSpace(s.ok(slices.Concat([]string{"run", "-d", "-p", fmt.Sprintf("%d:80", port)}, nkHTTPD)...))
			nkWaitAnswers(t, port)
			s.ok("rm", "-f", next)
			s.nkCheck(t, before, []string{id, next}, []string{netID})
		})
	}
}

// The foreground CLI killed while its container serves a published port:
// the container runs on and the port answers (the firewall lines stay;
// only the CLI's hold on the port is gone), ps says running, and rm -f
// removes everything.
func TestNetworkKilledForegroundCLIWithPort(t *testing.T) {
	s := newStore(t)
	s.busybox()
	before := s.nkSnapshot()
	port := nkFreePort(t)
	bg := s.start(slices.Concat([]string{"run", "--name", "orphan", "-p", fmt.Sprintf("%d:80", port)}, nkHTTPD)...)
	nkWaitAnswers(t, port)
	id := s.containerID("orphan")
	bg.cmd.Process.Kill()
	bg.wait(t, 10*time.Second)
	if st := s.status("orphan"); st != "running" {
		t.Fatalf("a container whose CLI was killed, still serving, is %s", st)
	}
	if !nkAnswers(port) {
		t.Fatalf("port %d no longer nkAnswers once the CLI is killed", port)
	}
	if ps := s.ok("ps", "-q", "--no-trunc"); !strings.Contains(ps, id) {
		t.Fatalf("ps does not list the orphan: %q", ps)
	}
	s.ok("rm", "-f", "orphan")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
	if nkAnswers(port) {
		t.Fatalf("port %d still nkAnswers after rm -f", port)
	}
	s.nkCheck(t, before, []string{id}, nil)
}

// Twenty `run -d` at once on one user network all start, with twenty
// distinct addresses of its subnet, each /etc/hosts naming the nineteen
// others, and no firewall line twice; rm -f and network rm leave nothing.
// Then five `run -d -p` at once, on five ports: all answer.
func TestNetworkConcurrentRuns(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("network", "create", "crowd")
	netID := s.nkNetworkID("crowd")
	subnet := strings.TrimSpace(s.ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "crowd"))
	_, prefix, err := net.ParseCIDR(subnet)
	if err != nil {
		t.Fatalf("subnet of crowd %q: %v", subnet, err)
	}
	before := s.nkSnapshot()
	const n = 20
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(nil, "run", "-d", "--name", fmt.Sprintf("c%02d", i), "--network", "crowd", "busybox", "sleep", "1000")
		}()
	}
	wg.Wait()
	var ids []string
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("run -d c%02d: exit %d: %s", i, r.Code, r.Stderr)
			continue
		}
		ids = append(ids, strings.TrimSpace(r.Stdout))
	}
	if t.Failed() {
		t.FailNow()
	}
	seen := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("c%02d", i)
		ip := strings.TrimSpace(s.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
		if a := net.ParseIP(ip); a == nil || !prefix.Contains(a) {
			t.Errorf("%s has address %q, not one of %s", name, ip, subnet)
		}
		if other, ok := seen[ip]; ok {
			t.Errorf("%s and %s both have address %s", other, name, ip)
		}
		seen[ip] = name
	}
	hosts := s.ok("exec", "c07", "cat", "/etc/hosts")
	for i := range n {
		if name := fmt.Sprintf("c%02d", i); i != 7 && !strings.Contains(hosts, "\t"+name+" ") {
			t.Errorf("the /etc/hosts of c07 does not name %s:\n%s", name, hosts)
		}
	}
	if dups := nkDuplicatedLines(t); len(dups) > 0 {
		t.Errorf("firewall lines of cairn twice: %v", dups)
	}
	s.ok(append([]string{"rm", "-f"}, ids...)...)
	s.ok("network", "rm", "crowd")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
	s.nkCheck(t, before, ids, []string{netID})

	// Five published ports at once, on the default bridge.
	ports := make([]int, 5)
	for i := range ports {
		for ports[i] == 0 || slices.Contains(ports[:i], ports[i]) {
			ports[i] = nkFreePort(t)
		}
	}
	results = make([]result, len(ports))
	for i, p := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(nil, slices.Concat([]string{"run", "-d", "--name", fmt.Sprintf("p%d", i), "-p", fmt.Sprintf("%d:80", p)}, nkHTTPD)...)
		}()
	}
	wg.Wait()
	ids = nil
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("run -d -p %d: exit %d: %s", ports[i], r.Code, r.Stderr)
			continue
		}
		ids = append(ids, strings.TrimSpace(r.Stdout))
	}
	for i, p := range ports {
		if results[i].Code == 0 {
			nkWaitAnswers(t, p)
		}
	}
	if dups := nkDuplicatedLines(t); len(dups) > 0 {
		t.Errorf("firewall lines of cairn twice: %v", dups)
	}
	if len(ids) > 0 {
		s.ok(append([]string{"rm", "-f"}, ids...)...)
	}
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
	s.nkCheck(t, before, ids, nil)
}

// nkDuplicatedLines are the lines of cairn that `iptables-save | sort
// | uniq -d` prints.
func nkDuplicatedLines(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "iptables-save | sort | uniq -d").Output()
	if err != nil {
		t.Fatalf("iptables-save | sort | uniq -d: %v", err)
	}
	var dups []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "cairn") || strings.Contains(l, "CAIRN") {
			dups = append(dups, l)
		}
	}
	return dups
}

// Firewall lines of a container that no record names (a ruleset saved
// while it ran and restored after its removal, as a firewall service
// does): `network prune` removes them with their chains, whatever the
// number of lines — its chains were listed once per line, and the second
// deletion of a chain failed the whole batch.
func TestNetworkPruneSweepsOrphanLines(t *testing.T) {
	s := newStore(t)
	s.busybox()
	before := s.nkSnapshot()
	port := nkFreePort(t)
	id := strings.TrimSpace(s.ok(slices.Concat([]string{"run", "-d", "-p", fmt.Sprintf("%d:80", port), "-p", fmt.Sprintf("%d:81/udp", port)}, nkHTTPD)...))
	saved, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	s.ok("rm", "-f", id)
	// The container's own chains and their lines, in a batch per table.
	var batch strings.Builder
	table := ""
	var chains, lines []string
	flush := func() {
		if table != "" && len(chains) > 0 {
			fmt.Fprintf(&batch, "*%s\n%s\n%s\nCOMMIT\n", table, strings.Join(chains, "\n"), strings.Join(lines, "\n"))
		}
		chains, lines = nil, nil
	}
	for _, l := range strings.Split(string(saved), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			flush()
			table = l[1:]
		case strings.HasPrefix(l, ":CAIRN") && strings.Contains(l, id[:12]):
			name, _, _ := strings.Cut(l[1:], " ")
			chains = append(chains, ":"+name+" - [0:0]")
		case strings.HasPrefix(l, "-A CAIRN") && strings.HasPrefix(strings.Fields(l)[1], "CAIRN-") && strings.Contains(strings.Fields(l)[1], id[:12]):
			lines = append(lines, l)
		}
	}
	flush()
	restore := exec.Command("iptables-restore", "--noflush", "--wait")
	restore.Stdin = strings.NewReader(batch.String())
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore: %v: %s\n%s", err, out, batch.String())
	}
	if n := len(networkTraces(id)); n < 4 {
		t.Fatalf("restored %d lines and chains of %s, want at least 4:\n%s", n, id[:12], batch.String())
	}
	s.ok("network", "prune", "-f")
	s.nkCheck(t, before, []string{id}, nil)
}
