package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond every 20 ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inCgroupOf returns the pids of the processes of container id (in its
// cgroups) whose command line is cmdline.
func inCgroupOf(id, cmdline string) []int {
	var pids []int
	for _, pid := range processesOf(cmdline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), "/cairn/"+id) && strings.ReplaceAll(strings.TrimRight(string(c), "\x00"), "\x00", " ") == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}

// background is a cairn command running while the test goes on.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

// syncBuffer is a buffer a command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs cairn in the background; the test's cleanup kills it (by its
// pid: only what the test started) if it still runs.
func (s *store) start(args ...string) *background {
	s.t.Helper()
	return s.startWith(cairnBin, nil, args...)
}

// startWith is start with binary bin, and env added to its environment.
func (s *store) startWith(bin string, env []string, args ...string) *background {
	s.t.Helper()
	bg := &background{
		cmd:    exec.Command(bin, append([]string{"--root", s.root}, args...)...),
		stdout: &syncBuffer{}, stderr: &syncBuffer{},
		done: make(chan struct{}),
	}
	bg.cmd.Stdout, bg.cmd.Stderr = bg.stdout, bg.stderr
	if len(s.env)+len(env) > 0 {
		bg.cmd.Env = append(append(os.Environ(), s.env...), env...)
	}
	if err := bg.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { bg.cmd.Wait(); close(bg.done) }()
	s.t.Cleanup(func() {
		select {
		case <-bg.done:
		default:
			bg.cmd.Process.Kill()
			<-bg.done
		}
	})
	return bg
}

// wait waits (bounded) for the command to end and returns its exit code.
func (bg *background) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-bg.done:
		return bg.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%v still running after %v\nstdout: %s\nstderr: %s", bg.cmd.Args, timeout, bg.stdout, bg.stderr)
	}
	return -1
}

// status is the status of container ref, as `inspect` has it.
func (s *store) status(ref string) string {
	s.t.Helper()
	return strings.TrimSpace(s.ok("inspect", "-f", "{{.State.Status}}", ref))
}

func (s *store) inspect(ref string) map[string]any {
	s.t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(s.ok("inspect", ref)), &v); err != nil || len(v) != 1 {
		s.t.Fatalf("inspect %s: %v", ref, err)
	}
	return v[0]
}

func (s *store) containerID(ref string) string {
	s.t.Helper()
	return strings.TrimSpace(s.ok("inspect", "-f", "{{.Id}}", ref))
}

func (s *store) upper(id string) string { return filepath.Join(s.root, "containers", id, "upper") }

// A container is an overlay of the image's snapshots under a writable layer
// of its own: two containers share every lower byte (the same inodes), and a
// change in one is invisible to the other and to the image.
func TestContainersShareLowerLayersAndKeepChangesApart(t *testing.T) {
	s := newStore(t)
	s.busybox()
	var st syscall.Stat_t
	snaps := s.snapshotIDs()
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
	if err := syscall.Stat(filepath.Join(s.root, "snapshots", snaps[0], "fs", "bin", "busybox"), &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(st.Ino)

	s.ok("run", "--name", "one", "busybox", "sh", "-c", "echo one > /etc/changed; rm /etc/group")
	for _, name := range []string{"one-view", "two"} {
		img := "busybox"
		out := s.ok("run", "--rm", img, "sh", "-c", "stat -c %i /bin/busybox; cat /etc/changed 2>&1; ls /etc/group")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if lines[0] != want {
			t.Errorf("%s: /bin/busybox is inode %s, the snapshot's is %s: the lower layer is not shared", name, lines[0], want)
		}
		if !strings.Contains(out, "No such file") || !strings.Contains(out, "/etc/group") {
			t.Errorf("%s sees the change of another container:\n%s", name, out)
		}
	}
	id := s.containerID("one")
	b, err := os.ReadFile(filepath.Join(s.upper(id), "etc", "changed"))
	if err != nil || string(b) != "one\n" {
		t.Fatalf("the change is not in the container's upper directory: %q %v", b, err)
	}
	if err := syscall.Lstat(filepath.Join(s.upper(id), "etc", "group"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("the deletion is not an overlay whiteout in the upper directory: %v %o", err, st.Mode)
	}
	if _, err := os.Stat(filepath.Join(s.root, "snapshots", snaps[0], "fs", "etc", "changed")); err == nil {
		t.Fatal("the container's change reached the image's snapshot")
	}
	// The mount points the runtime needs are in the init layer, not among the changes.
	for _, p := range []string{"etc/hosts", "etc/hostname", "etc/resolv.conf", "proc", "dev"} {
		if _, err := os.Lstat(filepath.Join(s.upper(id), p)); err == nil {
			t.Errorf("%s is in the container's upper directory", p)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), id) {
		t.Fatal("the root of an exited container is still mounted")
	}
	s.ok("rm", "one")
}

// ENTRYPOINT and CMD combine as Docker combines them; Env, WorkingDir and
// User come from the image, each overridable; a user name is resolved in the
// container's own /etc/passwd.
func TestProcessIsTheOneDockerWouldStart(t *testing.T) {
	s := newStore(t)
	base := busyboxTar(t)
	users := layerTar(t, dir("etc/"), file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n"),
		file("etc/group", "root:x:0:\napp:x:2345:\nextra:x:3456:app\n"), dir("srv/"))
	imgs := []fixtureImage{
		{Names: []string{"ep"}, Layers: [][]byte{base}, Entrypoint: []string{"echo", "ep"}, Cmd: []string{"default", "args"}},
		{Names: []string{"cmd"}, Layers: [][]byte{base}, Cmd: []string{"echo", "cmd"}},
		{Names: []string{"shellform"}, Layers: [][]byte{base}, Entrypoint: []string{"/bin/sh", "-c", "echo shell $0 $FOO"}},
		{Names: []string{"cfg"}, Layers: [][]byte{base, users}, Cmd: []string{"sh", "-c", "echo $FOO $BAR; pwd; id"},
			Env: []string{"FOO=image", "BAR=image", "PATH=/bin:/usr/bin"}, WorkingDir: "/srv", User: "app"},
	}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, imgs...)))
	s.busybox()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ep"}, "ep default args"},
		{[]string{"ep", "replaced"}, "ep replaced"},
		{[]string{"--entrypoint", "echo", "ep"}, ""}, // --entrypoint clears CMD
		{[]string{"--entrypoint", "echo", "ep", "given"}, "given"},
		{[]string{"cmd"}, "cmd"},
		{[]string{"cmd", "echo", "other"}, "other"},
		{[]string{"shellform"}, "shell /bin/sh"},
		{[]string{"-e", "FOO=flag", "shellform"}, "shell /bin/sh flag"},
		{[]string{"cfg"}, "image image\n/srv\nuid=1234(app) gid=2345(app) groups=2345(app),3456(extra)"},
		{[]string{"-e", "FOO=flag", "-w", "/tmp", "-u", "65534", "cfg"}, "flag image\n/tmp\nuid=65534 gid=0(root) groups=0(root)"},
		{[]string{"-u", "0:3456", "cfg"}, "image image\n/srv\nuid=0(root) gid=3456(extra) groups=3456(extra)"},
		{[]string{"-w", "/made/by/run", "cfg", "pwd"}, "/made/by/run"},
	}
	for _, c := range cases {
		out := strings.TrimSpace(s.ok(append([]string{"run", "--rm"}, c.args...)...))
		if out != c.want {
			t.Errorf("run %s: got %q, want %q", strings.Join(c.args, " "), out, c.want)
		}
	}
	// The environment Docker gives: PATH (the image's here), HOSTNAME, HOME of the user.
	out := s.ok("run", "--rm", "--hostname", "box", "cfg", "env")
	for _, want := range []string{"PATH=/bin:/usr/bin", "HOSTNAME=box", "HOME=/home/app", "FOO=image"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, out)
		}
	}
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nFOO=from-file\n\nFROMHOST\n"), 0o644)
	r := exec.Command(cairnBin, "--root", s.root, "run", "--rm", "--env-file", envFile, "cfg", "sh", "-c", "echo $FOO $FROMHOST")
	r.Env = append(os.Environ(), "FROMHOST=host-value")
	b, err := r.Output()
	if err != nil || strings.TrimSpace(string(b)) != "from-file host-value" {
		t.Errorf("--env-file: %q %v", b, err)
	}
	// /etc/hosts, /etc/hostname and /etc/resolv.conf are the container's.
	out = s.ok("run", "--rm", "-h", "named", "busybox", "sh", "-c", "cat /etc/hostname; hostname; grep -c localhost /etc/hosts; test -f /etc/resolv.conf && echo resolv")
	if out != "named\nnamed\n2\nresolv\n" {
		t.Errorf("etc files: %q", out)
	}
	s.fails(125, "invalid", "run", "--rm", "-u", "nosuchuser", "busybox", "true")
}

// Foreground run streams stdout and stderr apart, passes stdin with -i, and
// exits with the container's code; cairn's own failures are 125, a command
// that cannot run 126, one that is not found 127.
func TestRunForegroundStreamsAndExitCodes(t *testing.T) {
	s := newStore(t)
	s.busybox()
	r := s.run(nil, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Fatalf("got exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = s.run([]byte("line one\nline two\n"), "run", "--rm", "-i", "busybox", "wc", "-l")
	if strings.TrimSpace(r.Stdout) != "2" {
		t.Fatalf("-i: stdin did not reach the container: %+v", r)
	}
	// -a: only the streams it names reach this terminal (the log has all),
	// in the foreground and through the monitor (-i).
	r = s.run(nil, "run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2")
	if r.Stdout != "" || r.Stderr != "err\n" {
		t.Fatalf("-a stderr: %+v", r)
	}
	r = s.run([]byte("in\n"), "run", "--rm", "-i", "-a", "stdout", "busybox", "sh", "-c", "cat; echo err >&2")
	if r.Stdout != "in\n" || r.Stderr != "" {
		t.Fatalf("-i -a stdout: %+v", r)
	}
	r = s.run([]byte("ignored\n"), "run", "--rm", "busybox", "cat")
	if r.Code != 0 || r.Stdout != "" {
		t.Fatalf("without -i the container must read nothing: %+v", r)
	}
	s.fails(127, "executable file not found", "run", "--rm", "busybox", "nosuchcommand")
	s.fails(126, "", "run", "--rm", "busybox", "/etc/passwd")
	s.fails(125, "No such image", "run", "--rm", "--pull=never", "nosuchimage")
	s.fails(125, "invalid argument \"12q\" for \"-m, --memory\"", "run", "--rm", "--memory", "12q", "busybox", "true")
	s.fails(125, "network nosuchnet not found", "run", "--rm", "--network", "nosuchnet", "busybox", "true")
	s.fails(125, "unknown capability", "run", "--rm", "--cap-add", "NOPE", "busybox", "true")
	s.fails(125, "flag provided but not defined", "run", "--no-such-flag", "busybox", "true")
	s.fails(1, "No such container", "logs", "nosuchcontainer")
	s.fails(1, "No such container", "rm", "nosuchcontainer")
	// A container given a command that is not found stays, with the error, as Docker's does.
	s.fails(127, "not found", "run", "--name", "broken", "busybox", "nosuchcommand")
	if st := s.inspect("broken")["State"].(map[string]any); st["ExitCode"].(float64) != 127 || !strings.Contains(st["Error"].(string), "nosuchcommand") {
		t.Fatalf("state of the failed container: %v", st)
	}
	s.ok("rm", "broken")
	// Nothing of all this is left: no container, no mount, no state.
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %s", out)
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range entries {
		if e.Name() != "init" { // the init layer, which all containers share
			t.Fatalf("container directory left: %s", e.Name())
		}
	}
}

// The CLI forwards signals to the container in the foreground.
func TestRunForwardsSignals(t *testing.T) {
	s := newStore(t)
	s.busybox()
	bg := s.start("run", "--name", "sig", "busybox", "sh", "-c", `trap "echo got USR1" USR1; trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.05; done`)
	waitFor(t, 10*time.Second, "the container to start", func() bool { return strings.Contains(bg.stdout.String(), "ready") })
	bg.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, 10*time.Second, "USR1 to reach the container", func() bool { return strings.Contains(bg.stdout.String(), "got USR1") })
	bg.cmd.Process.Signal(syscall.SIGTERM)
	if code := bg.wait(t, 10*time.Second); code != 7 {
		t.Fatalf("exit %d, want 7; stdout %q stderr %q", code, bg.stdout, bg.stderr)
	}
	// The foreground run logged its output too.
	if out := s.ok("logs", "sig"); out != "ready\ngot USR1\ngot TERM\n" {
		t.Fatalf("logs: %q", out)
	}
	s.ok("rm", "sig")
}

// With -t the process gets a real terminal of the caller's size, and Ctrl-C
// typed there reaches it. (script(1) gives cairn a terminal to run on.)
func TestRunTerminal(t *testing.T) {
	s := newStore(t)
	s.busybox()
	cmd := exec.Command("script", "-qec", fmt.Sprintf("stty rows 33 cols 101; %s --root %s run --rm -it --name term busybox sh", cairnBin, s.root), "/dev/null")
	var out bytes.Buffer
	cmd.Stdout = &out
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fmt.Fprintln(stdin, `tty; stty size; echo "TERM=$TERM"; echo "sleep""ing"; sleep 30`)
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "sleeping") {
		select {
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no terminal output: %q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Ctrl-C once sleep runs in the container (its cgroup holds it), not
	// while the shell is still reading the line.
	waitFor(t, 20*time.Second, "sleep to run in the container", func() bool {
		id := strings.TrimSpace(s.ok("inspect", "--format", "{{.Id}}", "term"))
		return len(inCgroupOf(id, "sleep 30")) > 0
	})
	stdin.Write([]byte{3}) // Ctrl-C: the terminal's line discipline sends SIGINT to sleep
	fmt.Fprintln(stdin, `echo "after sleep $?"; exit 9`)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the terminal session did not end: %q", out.String())
	}
	text := out.String()
	for _, want := range []string{"/dev/pts/0", "33 101", "TERM=xterm", "after sleep 130"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, text)
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 9 {
		t.Errorf("exit %d, want 9", code)
	}
}

// run -d returns at once; a monitor owns the container and keeps its log in
// Docker's json-file format; ps, logs -f, stop, kill, wait, start and rm -f
// all work from other processes.
func TestDetachedLifecycle(t *testing.T) {
	s := newStore(t)
	s.busybox()
	start := time.Now()
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "web", "busybox", "sh", "-c", `trap "echo stopping; exit 7" TERM; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done`))
	if len(id) != 64 || time.Since(start) > 10*time.Second {
		t.Fatalf("run -d printed %q after %v", id, time.Since(start))
	}
	if out := s.ok("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "web Up") {
		t.Fatalf("ps: %q", out)
	}
	follow := s.start("logs", "-f", "web")
	waitFor(t, 10*time.Second, "logs -f to show output", func() bool { return strings.Contains(follow.stdout.String(), "tick 3") })

	// The json-file log, as Docker writes it.
	b, err := os.ReadFile(filepath.Join(s.root, "containers", id, id+"-json.log"))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	var e struct{ Log, Stream, Time string }
	if err := json.Unmarshal([]byte(first), &e); err != nil || e.Log != "tick 0\n" || e.Stream != "stdout" {
		t.Fatalf("log line %q: %+v %v", first, e, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		t.Fatalf("log time %q: %v", e.Time, err)
	}

	s.ok("stop", "web")
	if code := follow.wait(t, 10*time.Second); code != 0 || !strings.HasSuffix(follow.stdout.String(), "stopping\n") {
		t.Fatalf("logs -f ended with %d: %q", code, follow.stdout)
	}
	if st := s.status("web"); st != "exited" {
		t.Fatalf("after stop: %s", st)
	}
	if out := s.ok("wait", "web"); out != "7\n" {
		t.Fatalf("wait: %q", out)
	}
	if out := s.ok("logs", "--tail", "1", "web"); out != "stopping\n" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	if out := s.ok("logs", "-t", "--tail", "1", "web"); !strings.HasSuffix(out, "Z stopping\n") {
		t.Fatalf("logs -t: %q", out)
	}
	if out := s.ok("ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (7)") {
		t.Fatalf("ps -a: %q", out)
	}

	// start runs it again; the log goes on.
	s.ok("start", "web")
	if st := s.status("web"); st != "running" {
		t.Fatalf("after start: %s", st)
	}
	waitFor(t, 10*time.Second, "the restarted container's output", func() bool {
		return strings.Count(s.ok("logs", "web"), "tick 0\n") == 2
	})
	// kill: SIGKILL by default. (A signal without a handler does nothing to
	// a PID namespace's init, in cairn as in Docker.)
	s.ok("kill", "web")
	if out := s.ok("wait", "web"); out != "137\n" {
		t.Fatalf("wait after kill: %q", out)
	}
	s.fails(1, "is not running", "kill", "web")

	// A container that ignores SIGTERM is killed when the timeout ends.
	s.ok("run", "-d", "--name", "stubborn", "busybox", "sleep", "1000")
	start = time.Now()
	s.ok("stop", "-t", "1", "stubborn")
	if d := time.Since(start); d < time.Second || d > 20*time.Second {
		t.Fatalf("stop -t 1 of a process ignoring SIGTERM took %v", d)
	}
	if out := s.ok("inspect", "-f", "{{.State.ExitCode}}", "stubborn"); out != "137\n" {
		t.Fatalf("exit code after SIGKILL: %q", out)
	}
	// rm refuses a running container; rm -f kills it.
	s.ok("start", "stubborn")
	s.fails(1, "You cannot remove a running container", "rm", "stubborn")
	s.ok("rm", "-f", "stubborn", "web")
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %q", out)
	}

	// --rm, detached: the monitor removes the container when it exits.
	s.ok("run", "-d", "--rm", "--name", "gone", "busybox", "true")
	waitFor(t, 10*time.Second, "run -d --rm to remove its container", func() bool { return s.ok("ps", "-aq") == "" })
}

// Docker's default isolation, proven from inside; --privileged, --cap-add and
// --cap-drop change it as in Docker; --network none has loopback only.
func TestIsolation(t *testing.T) {
	s := newStore(t)
	s.busybox()
	const capSysAdmin = 21
	hasCap := func(status string, bit uint) bool {
		for _, l := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
				n, _ := strconv.ParseUint(v, 16, 64)
				return n&(1<<bit) != 0
			}
		}
		t.Fatalf("no CapEff in %q", status)
		return false
	}
	out := s.ok("run", "--rm", "busybox", "cat", "/proc/self/status")
	if hasCap(out, capSysAdmin) {
		t.Error("a default container has CAP_SYS_ADMIN")
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(out, want) {
			t.Errorf("a default container lacks %q", want)
		}
	}
	r := s.run(nil, "run", "--rm", "busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo MOUNTED")
	if strings.Contains(r.Stdout, "MOUNTED") {
		t.Error("a default container can mount")
	}
	r = s.run(nil, "run", "--rm", "busybox", "sh", "-c", "echo x > /proc/sys/kernel/domainname && echo WROTE")
	if strings.Contains(r.Stdout, "WROTE") {
		t.Error("a default container can write /proc/sys")
	}
	// ls alone beside sh while it reads /proc (in a pipeline, grep may or may
	// not exist yet: that raced).
	out = s.ok("run", "--rm", "busybox", "sh", "-c", "ls /proc > /tmp/procs; grep -c '^[0-9]' /tmp/procs; cat /proc/kcore | wc -c; ls /sys/firmware | wc -l")
	if f := strings.Fields(out); len(f) != 3 || f[0] != "2" || f[1] != "0" || f[2] != "0" {
		// sh and ls: the container's own processes only; kcore and firmware masked.
		t.Errorf("processes seen, kcore bytes, firmware entries: %q", out)
	}
	if out := s.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"); out != "lo\n" {
		t.Errorf("--network none: interfaces %q, want lo only", out)
	}
	hostIfaces, _ := os.ReadDir("/sys/class/net")
	if out := s.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"); len(strings.Fields(out)) != len(hostIfaces) {
		t.Errorf("--network host sees %q, the host has %d interfaces", out, len(hostIfaces))
	}
	// /dev is minimal.
	if out := s.ok("run", "--rm", "busybox", "ls", "/dev"); strings.Contains(out, "vda") || !strings.Contains(out, "null") {
		t.Errorf("/dev of a default container: %q", out)
	}

	out = s.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo MOUNTED; echo priv > /proc/sys/kernel/domainname && cat /proc/sys/kernel/domainname; cat /proc/self/status")
	if !strings.Contains(out, "MOUNTED") || !strings.Contains(out, "\npriv\n") || !hasCap(out, capSysAdmin) || !strings.Contains(out, "Seccomp:\t0") {
		t.Errorf("--privileged did not lift the limits:\n%s", out)
	}
	out = s.ok("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo MOUNTED")
	if out != "MOUNTED\n" {
		t.Errorf("--cap-add SYS_ADMIN: %q", out)
	}
	r = s.run(nil, "run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "65534", "/tmp")
	if r.Code == 0 {
		t.Error("chown works after --cap-drop CHOWN")
	}
}

// Limits are enforced through cgroups, and the cgroups go with the container.
func TestLimits(t *testing.T) {
	s := newStore(t)
	s.busybox()
	// The shell itself holds 64 MiB: it is OOM-killed, and the container exits 137.
	r := s.run(nil, "run", "--name", "oom", "--memory", "16m", "busybox", "sh", "-c", `x=$(head -c 64m /dev/zero | tr "\0" a); echo ${#x}`)
	if r.Code != 137 {
		t.Fatalf("over --memory: exit %d, want 137: %+v", r.Code, r)
	}
	if out := s.ok("inspect", "-f", "{{.State.OOMKilled}}", "oom"); out != "true\n" {
		t.Fatalf("OOMKilled: %q", out)
	}
	s.ok("rm", "oom")

	// A fork loop stops at --pids-limit, and only there.
	loop := `for i in $(seq 40); do sleep 1 & done; echo all forked`
	if r := s.run(nil, "run", "--rm", "--pids-limit", "16", "busybox", "sh", "-c", loop); r.Code == 0 || strings.Contains(r.Stdout, "all forked") || !strings.Contains(r.Stderr, "can't fork") {
		t.Fatalf("--pids-limit 16 did not stop a fork loop: %+v", r)
	}
	if r := s.run(nil, "run", "--rm", "--pids-limit", "100", "busybox", "sh", "-c", loop); r.Stdout != "all forked\n" {
		t.Fatalf("--pids-limit 100: %+v", r)
	}

	// --cpus sets the CFS quota, read from the host while it runs.
	id := strings.TrimSpace(s.ok("run", "-d", "--cpus", "0.5", "--memory", "32m", "--pids-limit", "10", "busybox", "sleep", "1000"))
	read := func(glob string) string {
		m, _ := filepath.Glob(glob)
		if len(m) != 1 {
			t.Fatalf("%s: %v", glob, m)
		}
		b, _ := os.ReadFile(m[0])
		return strings.TrimSpace(string(b))
	}
	cg := "/sys/fs/cgroup/%s/cairn/" + id + "/%s"
	if q, p := read(fmt.Sprintf(cg, "cpu*", "cpu.cfs_quota_us")), read(fmt.Sprintf(cg, "cpu*", "cpu.cfs_period_us")); q != "50000" || p != "100000" {
		t.Errorf("--cpus 0.5: quota %s period %s", q, p)
	}
	if m := read(fmt.Sprintf(cg, "memory", "memory.limit_in_bytes")); m != fmt.Sprint(32<<20) {
		t.Errorf("--memory 32m: %s", m)
	}
	if p := read(fmt.Sprintf(cg, "pids", "pids.max")); p != "10" {
		t.Errorf("--pids-limit 10: %s", p)
	}
	s.ok("rm", "-f", id)
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/cairn/" + id); len(left) > 0 {
		t.Fatalf("cgroups left after rm -f: %v", left)
	}
}

// Bind mounts and named volumes, as Docker has them: a named volume is made
// on first use and gets the image's content at its mount point; VOLUME paths
// of the image get anonymous volumes; volume content is not in the
// container's layer.
func TestVolumes(t *testing.T) {
	s := newStore(t)
	base := busyboxTar(t)
	data := layerTar(t, dir("data/"), file("data/from-image", "image content"))
	s.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{Names: []string{"withvol"}, Layers: [][]byte{base, data}, Volumes: []string{"/data"}})))
	s.busybox()

	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in"), []byte("from host"), 0o644)
	out := s.ok("run", "--rm", "-v", host+":/mnt/host", "busybox", "sh", "-c", "cat /mnt/host/in; echo back > /mnt/host/out")
	if out != "from host" {
		t.Errorf("bind mount: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "back\n" {
		t.Errorf("write through a bind mount: %q", b)
	}
	r := s.run(nil, "run", "--rm", "-v", host+":/mnt/host:ro", "busybox", "sh", "-c", "echo x > /mnt/host/ro")
	if r.Code == 0 {
		t.Error("a :ro bind mount is writable")
	}
	missing := filepath.Join(t.TempDir(), "made", "by", "cairn")
	s.ok("run", "--rm", "-v", missing+":/m", "busybox", "true")
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("a missing bind source is made, as Docker does: %v", err)
	}

	// A named volume, filled from the image on first use, kept across containers.
	s.ok("run", "--name", "writer", "-v", "shared:/data", "withvol", "sh", "-c", "cat /data/from-image; echo more > /data/added")
	out = s.ok("run", "--rm", "-v", "shared:/vol", "busybox", "sh", "-c", "cat /vol/from-image /vol/added")
	if out != "image contentmore\n" {
		t.Errorf("named volume: %q", out)
	}
	id := s.containerID("writer")
	if _, err := os.Lstat(filepath.Join(s.upper(id), "data", "added")); err == nil {
		t.Error("a volume's content is in the container's layer")
	}
	if !strings.Contains(s.ok("volume", "ls"), "shared") {
		t.Error("volume ls does not show the named volume")
	}
	s.fails(1, "volume is in use", "volume", "rm", "shared")
	s.ok("rm", "writer")
	s.ok("volume", "rm", "shared")

	// The image's VOLUME gets an anonymous volume, with the image's content; rm -v removes it.
	s.ok("run", "--name", "anon", "withvol", "sh", "-c", "cat /data/from-image > /dev/null && echo kept > /data/x")
	v := s.inspect("anon")
	mounts := v["Mounts"].([]any)
	if len(mounts) != 1 || mounts[0].(map[string]any)["Destination"] != "/data" {
		t.Fatalf("mounts: %v", mounts)
	}
	name := mounts[0].(map[string]any)["Name"].(string)
	if !strings.Contains(s.ok("volume", "ls", "-q"), name) {
		t.Fatalf("anonymous volume %s not listed", name)
	}
	s.ok("rm", "-v", "anon")
	if strings.Contains(s.ok("volume", "ls", "-q"), name) {
		t.Fatalf("rm -v left anonymous volume %s", name)
	}
	s.ok("volume", "create", "keepme")
	s.ok("run", "--rm", "-v", "keepme:/k", "-v", "/scratch", "busybox", "true")
	if out := s.ok("volume", "ls", "-q"); out != "keepme\n" {
		t.Fatalf("--rm removes anonymous volumes only: %q", out)
	}
	s.fails(125, "invalid", "run", "--rm", "-v", "bad name:/x", "busybox", "true")
	s.fails(125, "mount path must be absolute", "run", "--rm", "-v", "/tmp:relative", "busybox", "true")
}

// exec runs a process in a running container, in its namespaces.
func TestExec(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "box", "-e", "FROM_RUN=1", "busybox", "sh", "-c", "echo started > /tmp/marker; sleep 1000")
	waitFor(t, 10*time.Second, "the container to start", func() bool { return s.run(nil, "exec", "box", "test", "-f", "/tmp/marker").Code == 0 })
	out := s.ok("exec", "-e", "FROM_EXEC=2", "-w", "/tmp", "box", "sh", "-c", "cat marker; echo $FROM_RUN $FROM_EXEC; pwd; ps -o comm | grep -c sleep")
	if out != "started\n1 2\n/tmp\n1\n" {
		t.Errorf("exec: %q", out)
	}
	if out := s.ok("exec", "-u", "nobody", "box", "id", "-u"); out != "65534\n" {
		t.Errorf("exec -u: %q", out)
	}
	if r := s.run([]byte("piped\n"), "exec", "-i", "box", "cat"); r.Stdout != "piped\n" {
		t.Errorf("exec -i: %+v", r)
	}
	s.fails(5, "", "exec", "box", "sh", "-c", "exit 5")
	s.fails(127, "executable file not found", "exec", "box", "nosuchcommand")
	s.ok("exec", "-d", "box", "sh", "-c", "sleep 0.2; echo detached > /tmp/d")
	waitFor(t, 10*time.Second, "exec -d to run", func() bool { return s.run(nil, "exec", "box", "cat", "/tmp/d").Stdout == "detached\n" })
	s.ok("stop", "-t", "0", "box")
	s.fails(1, "is not running", "exec", "box", "true")
	s.ok("rm", "box")
}

// export writes the filesystem the container sees as one tar.
func TestExport(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "--name", "ex", "busybox", "sh", "-c", "echo new > /root/new; rm /etc/group; mkdir -p /a/b")
	out := filepath.Join(t.TempDir(), "ex.tar")
	s.ok("export", "-o", out, "ex")
	list, err := exec.Command("tar", "-tf", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	names := "\n" + string(list)
	for _, want := range []string{"\nroot/new\n", "\nbin/busybox\n", "\na/b/\n", "\netc/passwd\n"} {
		if !strings.Contains(names, want) {
			t.Errorf("export lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(names, "\netc/group\n") || strings.Contains(names, ".wh.") {
		t.Error("export shows a deleted file, or a whiteout")
	}
	content, _ := exec.Command("tar", "-xOf", out, "root/new").Output()
	if string(content) != "new\n" {
		t.Errorf("root/new in the export: %q", content)
	}
	// The export imports as an image that runs.
	s.ok("import", out, "exported")
	if out := s.ok("run", "--rm", "exported", "cat", "/root/new"); out != "new\n" {
		t.Errorf("the imported export: %q", out)
	}
	s.ok("rm", "ex")
}

// create makes a container that start runs; start -a attaches to it and exits
// with its code; restart runs it again; inspect tells its state as Docker's.
func TestCreateStartRestartInspect(t *testing.T) {
	s := newStore(t)
	s.busybox()
	id := strings.TrimSpace(s.ok("create", "--name", "made", "-e", "N=1", "-l", "team=cairn", "busybox", "sh", "-c", `echo "run $N"; exit 4`))
	if len(id) != 64 || s.status("made") != "created" {
		t.Fatalf("create: %q, %s", id, s.status("made"))
	}
	// Docker quotes the words that hold spaces: 'echo "run $N"…
	if out := s.ok("ps", "-a", "--format", "{{.Status}} {{.Command}}"); out != "Created \"sh -c 'echo \\\"run $N…\"\n" {
		t.Fatalf("ps of a created container: %q", out)
	}
	r := s.run(nil, "start", "-a", "made")
	if r.Code != 4 || r.Stdout != "run 1\n" {
		t.Fatalf("start -a: %+v", r)
	}
	v := s.inspect("made")
	st := v["State"].(map[string]any)
	if st["Status"] != "exited" || st["ExitCode"].(float64) != 4 || st["Running"] != false || st["StartedAt"] == "0001-01-01T00:00:00Z" || st["FinishedAt"] == "0001-01-01T00:00:00Z" {
		t.Fatalf("State: %v", st)
	}
	cfg := v["Config"].(map[string]any)
	if v["Name"] != "/made" || v["Path"] != "sh" || fmt.Sprint(cfg["Cmd"]) != `[sh -c echo "run $N"; exit 4]` ||
		fmt.Sprint(cfg["Env"]) != "[N=1]" || fmt.Sprint(cfg["Labels"]) != "map[team:cairn]" || cfg["Image"] != "busybox" {
		t.Fatalf("inspect: Name %v Path %v Config %v", v["Name"], v["Path"], cfg)
	}
	if v["Image"] != strings.TrimSpace(s.ok("image", "inspect", "-f", "{{.Id}}", "busybox")) {
		t.Fatalf("Image %v", v["Image"])
	}
	s.ok("restart", "made")
	waitFor(t, 10*time.Second, "the restarted container to run again", func() bool { return strings.Count(s.ok("logs", "made"), "run 1") == 2 })
	s.ok("wait", "made")
	// A running container's Pid is its init's, in the host's PID namespace.
	s.ok("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	st = s.inspect("up")["State"].(map[string]any)
	pid := int(st["Pid"].(float64))
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || string(comm) != "sleep\n" || st["Running"] != true {
		t.Fatalf("State.Pid %d: %q %v (%v)", pid, comm, err, st)
	}
	if out := s.ok("inspect", "-f", "{{.Id}} {{.State.Status}}", "up", "busybox"); !strings.Contains(out, " running\n") || !strings.Contains(out, "sha256:") {
		t.Fatalf("inspect of a container and an image: %q", out)
	}
	s.fails(1, "No such object: nothing", "inspect", "nothing")
	s.ok("rm", "-f", "up", "made")
}
