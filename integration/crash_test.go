package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// traces lists what the containers of store s hold on this machine: their
// mounts, cgroup directories and libcontainer state, and what the network
// holds of them (networkTraces): of the containers in its directory, and
// of those its records name though their directory is gone.
func (s *store) traces() []string {
	s.t.Helper()
	var out []string
	var ids []string
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], s.root) {
			out = append(out, "mount "+f[1])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range entries {
		if len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/cairn/" + e.Name())
		v2, _ := filepath.Glob("/sys/fs/cgroup/cairn/" + e.Name()) // cgroup v2
		dirs = append(dirs, v2...)
		for _, d := range dirs {
			out = append(out, "cgroup "+d)
		}
	}
	state, _ := os.ReadDir(filepath.Join(s.runDir(), "libcontainer"))
	for _, e := range state {
		out = append(out, "state "+e.Name())
	}
	records, _ := filepath.Glob("/run/cairn/network/containers/*.json")
	for _, f := range records {
		var r struct{ ID, Root string }
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &r) == nil && r.Root == s.root && !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
		}
	}
	return append(out, networkTraces(ids...)...)
}

// networkTraces lists what the network holds of containers ids (full IDs):
// the namespace /run/netns/cairn-<id12>, the record
// /run/cairn/network/containers/<id>.json, the leases holding the ID, the
// veths vc<id10>…, and the firewall lines and chains tagged or named with
// <id12>.
func networkTraces(ids ...string) []string {
	var out []string
	if len(ids) == 0 {
		return nil
	}
	leases, _ := filepath.Glob("/run/cairn/network/leases/*/*")
	links, _ := os.ReadDir("/sys/class/net")
	rules, _ := exec.Command("iptables-save").Output()
	for _, id := range ids {
		if len(id) < 12 {
			continue
		}
		if statOK("/run/netns/cairn-" + id[:12]) {
			out = append(out, "netns /run/netns/cairn-"+id[:12])
		}
		if p := "/run/cairn/network/containers/" + id + ".json"; statOK(p) {
			out = append(out, "record "+p)
		}
		for _, l := range leases {
			if b, err := os.ReadFile(l); err == nil && strings.TrimSpace(string(b)) == id {
				out = append(out, "lease "+l)
			}
		}
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "vc"+id[:10]) {
				out = append(out, "link "+l.Name())
			}
		}
		for _, l := range strings.Split(string(rules), "\n") {
			if strings.Contains(l, "cairn:"+id[:12]) || strings.Contains(l, "CAIRN-"+id[:12]) ||
				strings.Contains(l, "CAIRN-F"+id[:12]) || strings.Contains(l, "CAIRN-L"+id[:12]) {
				out = append(out, "firewall "+l)
			}
		}
	}
	return out
}

func statOK(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// processesOf returns the pids of processes whose command line contains all of words.
func processesOf(words ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		match := true
		for _, w := range words {
			match = match && strings.Contains(cmd, w)
		}
		if match {
			pids = append(pids, pid)
		}
	}
	return pids
}

// The CLI of a foreground run killed with SIGKILL: the container runs on, as
// Docker's does when its client dies; ps tells the truth, and rm -f cleans up
// everything.
func TestForegroundCLIKilled(t *testing.T) {
	s := newStore(t)
	s.busybox()
	bg := s.start("run", "--name", "orphan", "busybox", "sh", "-c", "echo up; sleep 1000")
	waitFor(t, 10*time.Second, "the container to start", func() bool { return strings.Contains(bg.stdout.String(), "up") })
	bg.cmd.Process.Kill()
	bg.wait(t, 10*time.Second)
	if st := s.status("orphan"); st != "running" {
		t.Fatalf("a container whose CLI was killed, still running, is %s", st)
	}
	if out := s.ok("exec", "orphan", "echo", "alive"); out != "alive\n" {
		t.Fatalf("exec into the orphan: %q", out)
	}
	s.ok("rm", "-f", "orphan")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
}

// The monitor of a detached container killed with SIGKILL: ps says running
// while the processes live, and exited (its code lost) once they are gone;
// stop and rm work, and nothing is left.
func TestMonitorKilled(t *testing.T) {
	s := newStore(t)
	s.busybox()
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "lost", "busybox", "sleep", "1000"))
	mons := processesOf(monitorName, id)
	if len(mons) != 1 {
		t.Fatalf("monitors of %s: %v", id, mons)
	}
	syscall.Kill(mons[0], syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the monitor to die", func() bool { return len(processesOf(monitorName, id)) == 0 })
	if st := s.status("lost"); st != "running" {
		t.Fatalf("with its monitor killed and its process alive, the container is %s", st)
	}
	s.ok("stop", "-t", "0", "lost")
	v := s.inspect("lost")["State"].(map[string]any)
	if v["Status"] != "exited" || v["ExitCode"].(float64) != 255 || !strings.Contains(v["Error"].(string), "exit code is lost") {
		t.Fatalf("state after stop: %v", v)
	}
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("an exited container holds: %v", tr)
	}
	// It starts again, with a monitor of its own.
	s.ok("start", "lost")
	if st := s.status("lost"); st != "running" {
		t.Fatalf("restarted: %s", st)
	}
	s.ok("rm", "-f", "lost")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
}

const monitorName = "container-monitor"

// SIGKILL of `run`, `run -d` and of the monitor at random moments: whatever
// was cut short, ps tells a consistent story and rm -f cleans up everything.
func TestKilledAtAnyMoment(t *testing.T) {
	s := newStore(t)
	s.busybox()
	const rounds = 12
	for i := 0; i < rounds; i++ {
		var args []string
		switch i % 3 {
		case 0:
			args = []string{"run", "--name", fmt.Sprint("fg", i), "busybox", "sleep", "1000"}
		case 1, 2:
			args = []string{"run", "-d", "--name", fmt.Sprint("bg", i), "busybox", "sleep", "1000"}
		}
		bg := s.start(args...)
		delay := time.Duration(i*10) * time.Millisecond // across the start, from the CLI to the container
		time.Sleep(delay)
		if i%3 == 2 {
			// The monitor rather than the CLI, as soon as it shows.
			deadline := time.Now().Add(delay + 50*time.Millisecond)
			for time.Now().Before(deadline) {
				if pids := processesOf(monitorName, s.root); len(pids) > 0 {
					syscall.Kill(pids[0], syscall.SIGKILL)
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		bg.cmd.Process.Kill()
		bg.wait(t, 30*time.Second)
	}
	// A `run -d` killed after it spawned the monitor is not the end of the
	// start: the monitor goes on, as dockerd would. Every container said to
	// be created must have no monitor left that is about to start it.
	var out string
	waitFor(t, 30*time.Second, "the monitors of created containers to start them or give up", func() bool {
		out = s.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[1] == "created" && len(processesOf(monitorName, f[0])) > 0 {
				return false
			}
		}
		return true
	})
	// Every container is in a state that its processes agree with.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		id, state := f[0], f[1]
		switch state {
		case "running":
			if r := s.run(nil, "exec", id, "true"); r.Code != 0 {
				t.Errorf("%s is said to run, but exec into it fails: %s", id[:12], r.Stderr)
			}
		case "exited", "created":
			if r := s.run(nil, "exec", id, "true"); r.Code == 0 {
				t.Errorf("%s is said to be %s, but exec into it works", id[:12], state)
			}
		default:
			t.Errorf("%s: state %q", id[:12], state)
		}
	}
	ids := strings.Fields(s.ok("ps", "-aq", "--no-trunc"))
	if len(ids) > 0 {
		s.ok(append([]string{"rm", "-f"}, ids...)...)
	}
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("rm -f left: %v", tr)
	}
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %q", out)
	}
}

// Twenty `run --rm` at once on one store all succeed; names stay unique.
func TestConcurrentRuns(t *testing.T) {
	s := newStore(t)
	s.busybox()
	var wg sync.WaitGroup
	results := make([]result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(nil, "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("echo %d > /tmp/me; cat /tmp/me", i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 || r.Stdout != fmt.Sprintf("%d\n", i) {
			t.Errorf("run %d: %+v", i, r)
		}
	}
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("--rm left containers: %q", out)
	}

	var ok, conflict int
	var mu sync.Mutex
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.run(nil, "run", "--name", "only-one", "busybox", "true")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Code == 0:
				ok++
			case r.Code == 125 && strings.Contains(r.Stderr, `The container name "/only-one" is already in use`):
				conflict++
			default:
				t.Errorf("run --name only-one: %+v", r)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || conflict != 5 {
		t.Fatalf("six runs of one name: %d succeeded, %d conflicted; want 1 and 5", ok, conflict)
	}
	s.ok("rm", "only-one")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("left: %v", tr)
	}
}

// What a process killed inside a view (diff, export) or a build leaves
// mounted in tmp/ — a read-only bind, an overlay — does not wedge garbage
// collection: prune unmounts it and empties tmp/.
func TestPruneUnmountsLeftovers(t *testing.T) {
	s := newStore(t)
	s.busybox()
	tmp := filepath.Join(s.root, "tmp")
	view := filepath.Join(tmp, "view-killed")
	build := filepath.Join(tmp, "build-killed")
	for _, d := range []string{view, build + "/lower", build + "/upper", build + "/work", build + "/root"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(build, "lower", "f"), []byte("x"), 0o644)
	if err := syscall.Mount(filepath.Join(s.root, "snapshots"), view, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	syscall.Mount("", view, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", build, build, build)
	if err := syscall.Mount("overlay", build+"/root", "overlay", 0, opts); err != nil {
		syscall.Unmount(view, syscall.MNT_DETACH)
		t.Fatal(err)
	}
	t.Cleanup(func() { // should the prune not have
		syscall.Unmount(build+"/root", syscall.MNT_DETACH)
		syscall.Unmount(view, syscall.MNT_DETACH)
	})
	s.ok("image", "prune", "-f")
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("tmp/ after prune: %v", entries)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), tmp) {
		t.Fatalf("mounts left under %s", tmp)
	}
	s.ok("run", "--rm", "busybox", "true") // the store is whole
}

// A commit of a 200 MiB change killed with SIGKILL at any instant leaves
// either nothing visible or the named image — never an unnamed `<none>` one
// (the image is named in the same rewrite of index.json that lists it) —
// and a store that `system check` finds sound or repairs to sound.
func TestCommitKilledAtAnyInstant(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "--network", "none", "--name", "big", "busybox", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=200 2>/dev/null")
	start := time.Now()
	s.ok("commit", "big", "probe:1")
	full := time.Since(start)
	s.ok("rmi", "probe:1")
	t.Logf("an uninterrupted commit of 200 MiB takes %v", full)
	named := 0
	const rounds = 8
	for i := 0; i < rounds; i++ {
		delay := time.Duration(float64(full) * 1.3 * float64(i) / (rounds - 1)) // from the start to after the end
		name := fmt.Sprintf("big:%d", i)
		cmd := exec.Command(cairnBin, "--root", s.root, "commit", "big", name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		out := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
		if strings.Contains(out, "<none>") {
			t.Fatalf("a commit killed after %v left an unnamed image:\n%s", delay, out)
		}
		if strings.Contains(out, name) {
			named++
		}
		if r := s.run(nil, "system", "check"); r.Code != 0 {
			if r := s.run(nil, "system", "check", "--repair"); r.Code != 0 {
				t.Fatalf("a commit killed after %v: system check --repair: %s%s", delay, r.Stdout, r.Stderr)
			}
		}
	}
	t.Logf("%d of %d killed commits had named their image; none left an unnamed one", named, rounds)
	s.ok("commit", "big", "final:1")
	if n := s.checkConsistent(); n < 2 {
		t.Fatalf("%d images after the final commit", n)
	}
}
