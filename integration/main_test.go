// Package integration drives the built cairn binary as a user types it.
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cairnBin is the binary under test, built once by TestMain.
var cairnBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration: skipped: needs root (mounts, namespaces, chown)")
		if os.Getenv("CI") != "" {
			return 1
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "cairn-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("../hack/build", cairnBin)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: build cairn:", err)
		return 1
	}
	before := append(leftovers(), networkState(true)...)
	code := m.Run()
	// The default bridge stays up after its last container, as docker0
	// does: network prune takes it down, so that the tests leave no trace.
	pruner := filepath.Join(dir, "prune")
	if out, err := exec.Command(cairnBin, "--root", pruner, "network", "prune", "-f").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: network prune: %v\n%s", err, out)
		if code == 0 {
			code = 1
		}
	}
	os.RemoveAll(runDirOf(pruner))
	// What the tests may leave behind: mounts, cgroups, run directories, network.
	if leaked := subtract(append(leftovers(), networkState(true)...), before); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "integration: the tests left behind:\n  %s\n", strings.Join(leaked, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// leftovers lists the overlay mounts, the containers' cgroup directories
// and the stores' run directories on this machine.
func leftovers() []string {
	var out []string
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// The test Docker engine's own mounts (hack/dockerd) are not ours.
		if len(f) > 2 && (f[2] == "overlay" || strings.Contains(f[1], "/cairn/containers/")) &&
			!strings.HasPrefix(f[1], "/var/lib/cairn-test/") && !strings.HasPrefix(f[1], "/run/cairn-test/") {
			out = append(out, "mount "+f[1])
		}
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/cairn/*")
	v2, _ := filepath.Glob("/sys/fs/cgroup/cairn/*") // cgroup v2
	dirs = append(dirs, v2...)
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, "cgroup "+d)
		}
	}
	// The stores' run directories (/run/cairn/network is the network's).
	runs, _ := os.ReadDir("/run/cairn")
	for _, e := range runs {
		if e.Name() != "network" {
			out = append(out, "run directory /run/cairn/"+e.Name())
		}
	}
	return out
}

// networkLeftovers lists what the network leaves on the host but the
// default bridge, which stays up once a container brought it up, as docker0
// does (networkState(true) lists it too): cairn's firewall lines, its links
// (veths vc…, the bridges cairn-… of user networks), its network
// namespaces, and the leases and records under /run/cairn/network.
func networkLeftovers() []string { return networkState(false) }

// defaultBridgeLine reports whether a firewall line is the default bridge's
// or the shared chains', which stay while the default bridge is up.
func defaultBridgeLine(l string) bool {
	sum := sha256.Sum256([]byte("cairn default bridge"))
	for _, k := range []string{"cairn:base:", "cairn:net:" + hex.EncodeToString(sum[:])[:12] + ":",
		":CAIRN-FORWARD ", ":CAIRN-PREROUTING ", ":CAIRN-OUTPUT ", ":CAIRN-POSTROUTING "} {
		if strings.Contains(l, k) {
			return true
		}
	}
	return false
}

func networkState(all bool) []string {
	var out []string
	if b, err := exec.Command("iptables-save").Output(); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if (strings.Contains(l, "cairn") || strings.Contains(l, "CAIRN")) && (all || !defaultBridgeLine(l)) {
				out = append(out, "firewall "+regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(l, ""))
			}
		}
	}
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, l := range links {
			if n := l.Name(); regexp.MustCompile(`^(vc[0-9a-f]{10}\d+|cairn.*)$`).MatchString(n) && (all || n != "cairn0") {
				out = append(out, "link "+n)
			}
		}
	}
	ns, _ := filepath.Glob("/run/netns/cairn-*")
	for _, n := range ns {
		out = append(out, "netns "+n)
	}
	for _, pat := range []string{"/run/cairn/network/leases/*/*", "/run/cairn/network/containers/*"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			out = append(out, "state "+f)
		}
	}
	return out
}

func subtract(a, b []string) []string {
	seen := map[string]bool{}
	for _, x := range b {
		seen[x] = true
	}
	var out []string
	for _, x := range a {
		if !seen[x] {
			out = append(out, x)
		}
	}
	return out
}

// result is what one cairn command did.
type result struct {
	Stdout, Stderr string
	Code           int
}

// store is a cairn store root of one test.
type store struct {
	t    testing.TB
	root string
	env  []string // added to cairn's environment (CAIRN_CONFIG, DOCKER_CONFIG)
}

func newStore(t testing.TB) *store {
	t.Helper()
	s := &store{t: t, root: filepath.Join(t.TempDir(), "cairn")}
	t.Cleanup(s.cleanup)
	return s
}

// cleanup removes the containers a test left (a failed one, most often),
// its networks, and the store's runtime state directory (see engine.RunDir).
func (s *store) cleanup() {
	if _, err := os.Stat(s.root); err != nil {
		return
	}
	ids := strings.Fields(s.run(nil, "ps", "-aq", "--no-trunc").Stdout)
	if len(ids) > 0 {
		if r := s.run(nil, append([]string{"rm", "-f", "-v"}, ids...)...); r.Code != 0 {
			s.t.Errorf("cleanup: rm -f: %s", r.Stderr)
		}
	}
	// Its user networks go with it: their bridges stay up while they are
	// defined, and the definitions are in the root.
	if r := s.run(nil, "network", "prune", "-f"); r.Code != 0 {
		s.t.Errorf("cleanup: network prune: %s", r.Stderr)
	}
	os.RemoveAll(s.runDir())
}

// runDirOf is the run directory of the store at root, /run/cairn/<hash>
// (engine.RunDir).
func runDirOf(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join("/run/cairn", hex.EncodeToString(sum[:8]))
}

// busybox imports the busybox rootfs into the store, as image "busybox".
func (s *store) busybox() {
	s.t.Helper()
	s.ok("import", busyboxRootfs(s.t), "busybox")
}

// run runs cairn on the store, bounded in time, with stdin from in (may be nil).
func (s *store) run(in []byte, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, append([]string{"--root", s.root}, args...)...)
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	return runCmd(s.t, cmd, in)
}

// runCmd runs cmd with stdin from in (may be nil) and says what it did;
// the test fails if it could not be run at all.
func runCmd(t testing.TB, cmd *exec.Cmd, in []byte) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return r
}

// ok runs cairn and fails the test unless it exits 0; it returns stdout.
func (s *store) ok(args ...string) string {
	s.t.Helper()
	r := s.run(nil, args...)
	if r.Code != 0 {
		s.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// fails runs cairn, expects exit code code and stderr containing want.
func (s *store) fails(code int, want string, args ...string) result {
	s.t.Helper()
	r := s.run(nil, args...)
	if r.Code != code || !strings.Contains(r.Stderr, want) {
		s.t.Fatalf("cairn %s: want exit %d and stderr with %q, got exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, r.Code, r.Stdout, r.Stderr)
	}
	return r
}
