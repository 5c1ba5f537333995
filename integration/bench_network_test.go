package integration

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkNetworkVsPodman measures what a published port adds to a
// container's start: `cairn run --rm -p 18080:80 busybox true` against
// `cairn run --rm --network none busybox true`, alternately, and the same
// two with Debian's podman on the same busybox rootfs (imported), in the
// same run. It reports the medians cairn-none-ms, cairn-p-ms and their
// difference added-ms (the target: at most 50 ms), podman's
// podman-none-ms, podman-p-ms and podman-added-ms, and
// x-podman-added-over-cairn, podman's added time over cairn's (the target:
// at least 3). A container alone on the default bridge makes the bridge and
// its firewall lines and removes them again (the deletion of a bridge
// alone takes the kernel some 40 ms): added-beside-peer-ms is cairn's
// added time with another container keeping them. And twenty concurrent `run -d` on one user network: the
// median wall time until all twenty have started with their addresses,
// 20-concurrent-ms (the target: 1.5 s).
//
// Podman 4.3 runs here only as `podman run --runtime runc --ulimit
// nofile=20000:20000 --ulimit nproc=32768:32768` (no CAP_SYS_RESOURCE, a
// hard open-files limit of 20000; crun refuses the host's cgroup layout).
// Where it cannot run at all, the benchmark says why (b.Log) and measures
// cairn alone. Podman's images and containers made here are removed, and
// what it keeps of its networks under its default paths is left as it was.
func BenchmarkNetworkVsPodman(b *testing.B) {
	s := newStore(b)
	s.busybox()
	cairnRun := func(args ...string) []string { return append([]string{"--root", s.root, "run", "--rm"}, args...) }
	cNoneArgs := cairnRun("--network", "none", "busybox", "true")
	cPubArgs := cairnRun("-p", "18080:80", "busybox", "true")
	pod, why := newPodmanPeer(b)
	if pod == nil {
		b.Logf("podman is not measured: %s", why)
	}
	s.ok("network", "create", "bench-crowd")
	defer s.run(nil, "network", "rm", "bench-crowd")
	// One of each first: caches warm for all.
	timed(b, cairnBin, cNoneArgs...)
	timed(b, cairnBin, cPubArgs...)

	var cNone, cPub, pNone, pPub, crowd []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Alternately, and each pair in either order.
		if i%2 == 0 {
			cNone = append(cNone, timed(b, cairnBin, cNoneArgs...))
		}
		b.StartTimer()
		cPub = append(cPub, timed(b, cairnBin, cPubArgs...))
		b.StopTimer()
		if i%2 == 1 {
			cNone = append(cNone, timed(b, cairnBin, cNoneArgs...))
		}
		if pod != nil {
			if err := pod.measure(i, &pNone, &pPub); err != nil {
				b.Logf("podman is not measured any more: %v", err)
				pod, pNone, pPub = nil, nil, nil
			}
		}
		crowd = append(crowd, s.benchCrowd(b, "bench-crowd", i, 20))
	}
	b.StopTimer()
	// The same beside another container on the default bridge, which keeps
	// the bridge and its lines (alone, a container makes and removes them).
	peer := strings.TrimSpace(s.ok("run", "-d", "busybox", "sleep", "100000"))
	var peerNone, peerPub []time.Duration
	for i := 0; i < b.N; i++ {
		peerNone = append(peerNone, timed(b, cairnBin, cNoneArgs...))
		peerPub = append(peerPub, timed(b, cairnBin, cPubArgs...))
	}
	s.ok("rm", "-f", peer)
	added := median(cPub) - median(cNone)
	b.ReportMetric(ms(median(peerPub)-median(peerNone)), "added-beside-peer-ms")
	b.ReportMetric(ms(median(cNone)), "cairn-none-ms")
	b.ReportMetric(ms(median(cPub)), "cairn-p-ms")
	b.ReportMetric(ms(added), "added-ms")
	b.ReportMetric(ms(median(crowd)), "20-concurrent-ms")
	if len(pPub) > 0 {
		podAdded := median(pPub) - median(pNone)
		b.ReportMetric(ms(median(pNone)), "podman-none-ms")
		b.ReportMetric(ms(median(pPub)), "podman-p-ms")
		b.ReportMetric(ms(podAdded), "podman-added-ms")
		if added > 0 {
			b.ReportMetric(podAdded.Seconds()/added.Seconds(), "x-podman-added-over-cairn")
		} else {
			b.Logf("a published port added nothing measurable to cairn's start (%v): no ratio to podman's %v", added, podAdded)
		}
	}
}

// benchCrowd starts n containers at once on network netName with `run -d`, and
// returns the wall time until every one of them has started (run -d returns
// once the container runs, on its address); it checks the addresses
// (distinct) and removes the containers.
func (s *store) benchCrowd(b *testing.B, netName string, round, n int) time.Duration {
	b.Helper()
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("bench-crowd-%d-%d", round, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command(cairnBin, "--root", s.root, "run", "-d", "--name", names[i], "--network", netName, "busybox", "sleep", "1000").CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("run -d %s: %v: %s", names[i], err, out)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	defer s.run(nil, append([]string{"rm", "-f"}, names...)...)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	addrs := map[string]bool{}
	for _, name := range names {
		ip := strings.TrimSpace(s.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
		if net.ParseIP(ip) == nil || addrs[ip] {
			b.Fatalf("%s: address %q (missing, or another's)", name, ip)
		}
		addrs[ip] = true
	}
	return d
}

// podmanPeer is Debian's podman, with the busybox rootfs imported as an
// image of its own.
type podmanPeer struct {
	b     *testing.B
	image string
	run   []string // `podman run` with what it needs on this machine
}

// newPodmanPeer readies podman, or says why it cannot run here. What it
// makes is removed at the end of the benchmark.
func newPodmanPeer(b *testing.B) (*podmanPeer, string) {
	b.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, "podman is not installed (hack/bench installs Debian's): " + err.Error()
	}
	state := podmanNetworkState()
	b.Cleanup(func() { restorePodmanNetworkState(b, state) })
	p := &podmanPeer{b: b, image: fmt.Sprintf("localhost/cairn-bench-busybox:%d", os.Getpid()),
		run: []string{"run", "--rm", "--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}}
	if out, err := exec.Command("podman", "import", busyboxRootfs(b), p.image).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("podman import: %v: %s", err, strings.TrimSpace(string(out)))
	}
	b.Cleanup(func() {
		if ids, err := exec.Command("podman", "ps", "-aq", "--filter", "name=^cairn-bench-net-").Output(); err == nil && len(strings.Fields(string(ids))) > 0 {
			if out, err := exec.Command("podman", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).CombinedOutput(); err != nil {
				b.Errorf("podman rm: %v: %s", err, out)
			}
		}
		if out, err := exec.Command("podman", "rmi", "-f", p.image).CombinedOutput(); err != nil {
			b.Errorf("podman rmi %s: %v: %s", p.image, err, out)
		}
	})
	// One of each: caches warm, and the proof that it runs here.
	for _, args := range [][]string{p.none(-1), p.published(-1)} {
		if _, err := podmanTimed(args); err != nil {
			return nil, err.Error()
		}
	}
	return p, ""
}

func (p *podmanPeer) none(i int) []string {
	return append(append([]string{}, p.run...), "--name", fmt.Sprintf("cairn-bench-net-none-%d", i), "--network", "none", p.image, "true")
}

func (p *podmanPeer) published(i int) []string {
	return append(append([]string{}, p.run...), "--name", fmt.Sprintf("cairn-bench-net-p-%d", i), "-p", "18081:80", p.image, "true")
}

// measure times round i of podman: --network none and -p, in the order
// cairn's were.
func (p *podmanPeer) measure(i int, none, pub *[]time.Duration) error {
	order := [][]string{p.none(i), p.published(i)}
	into := []*[]time.Duration{none, pub}
	if i%2 == 1 {
		order[0], order[1], into[0], into[1] = order[1], order[0], into[1], into[0]
	}
	for k, args := range order {
		d, err := podmanTimed(args)
		if err != nil {
			return err
		}
		*into[k] = append(*into[k], d)
	}
	return nil
}

// podmanTimed is timed for podman, whose failure is a reason to measure
// cairn alone rather than a failure of the benchmark.
func podmanTimed(args []string) (time.Duration, error) {
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return time.Since(start), nil
}

// podmanNetworkDirs are where podman keeps its networks by default: CNI's
// configurations and address leases, netavark's.
var podmanNetworkDirs = []string{"/etc/cni/net.d", "/var/lib/cni", "/etc/containers/networks",
	"/var/lib/containers/storage/networks", "/run/containers/networks"}

// podmanNetworkState lists the files and directories under
// podmanNetworkDirs, and podman's bridges ("link NAME").
func podmanNetworkState() map[string]bool {
	out := map[string]bool{}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		if strings.HasPrefix(l.Name(), "cni-podman") || strings.HasPrefix(l.Name(), "podman") {
			out["link "+l.Name()] = true
		}
	}
	for _, d := range podmanNetworkDirs {
		filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				out[p] = true
			}
			return nil
		})
	}
	return out
}

// restorePodmanNetworkState removes what podman's runs added to its
// network state: the bookkeeping of CNI's host-local allocator (its
// last_reserved_ip and lock files, and directories made for them), once it
// holds no address. Anything else new is reported (podman's bridge and
// firewall chains, which it keeps once made, are left to it).
func restorePodmanNetworkState(b *testing.B, before map[string]bool) {
	var added []string
	for p := range podmanNetworkState() {
		if !before[p] {
			added = append(added, p)
		}
	}
	// Deepest first: a directory after what is in it.
	sort.Slice(added, func(i, j int) bool { return len(added[i]) > len(added[j]) })
	var other []string
	for _, p := range added {
		base := filepath.Base(p)
		st, err := os.Lstat(p)
		switch {
		case strings.HasPrefix(p, "link "):
			other = append(other, p)
		case err != nil:
		case strings.HasPrefix(p, "/var/lib/cni/networks/") && !st.IsDir() && (strings.HasPrefix(base, "last_reserved_ip") || base == "lock"):
			if leases, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*.*.*.*")); len(leases) == 0 {
				os.Remove(p)
			} else {
				other = append(other, p)
			}
		case st.IsDir() && strings.HasPrefix(p, "/var/lib/cni"):
			if os.Remove(p) != nil { // only if empty
				other = append(other, p)
			}
		default:
			other = append(other, p)
		}
	}
	if len(other) > 0 {
		b.Logf("podman's network state gained (left as podman keeps it): %v", other)
	}
}
