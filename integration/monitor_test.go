package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The monitor of a detached container restarts it as its policy says,
// with Docker's counts and exit codes: on-failure:2 of a command that
// exits 3 runs three times and ends exited (3) with RestartCount 2, as in
// the real Docker; always restarts it after it exits 0 until `stop`, which
// it does not undo; kill counts as a stop by hand; `wait` returns the exit
// code of the run it waited for.
func TestRestartPolicies(t *testing.T) {
	s := newStore(t)
	s.busybox()
	id := strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3"))
	waitFor(t, 20*time.Second, "on-failure:2 to give up", func() bool { return s.status(id) == "exited" })
	st := s.inspect(id)
	if n := st["RestartCount"].(float64); n != 2 || st["State"].(map[string]any)["ExitCode"].(float64) != 3 {
		t.Fatalf("on-failure:2 of exit 3: RestartCount %v, state %v", n, st["State"])
	}
	if hc := st["HostConfig"].(map[string]any)["RestartPolicy"].(map[string]any); hc["Name"] != "on-failure" || hc["MaximumRetryCount"].(float64) != 2 {
		t.Errorf("HostConfig.RestartPolicy: %v", hc)
	}
	if out := strings.TrimSpace(s.ok("wait", id)); out != "3" {
		t.Errorf("wait of an exited container: %q, want 3", out)
	}
	// The same in Docker.
	docker := testutil.Docker(t)
	img := "cairn-test/monitor:1"
	archive := filepath.Join(t.TempDir(), "bb.tar")
	s.ok("tag", "busybox", img)
	s.ok("save", "-o", archive, img)
	docker.Run(t, "load", "-i", archive)
	t.Cleanup(func() { docker.RunErr("rmi", "-f", img) })
	did := strings.TrimSpace(docker.Run(t, "run", "-d", "--network", "none", "--restart", "on-failure:2", img, "sh", "-c", "exit 3"))
	t.Cleanup(func() { docker.RunErr("rm", "-f", did) })
	waitFor(t, 30*time.Second, "Docker's on-failure:2 to give up", func() bool {
		out, _, _ := docker.RunErr("inspect", "-f", "{{.State.Status}}", did)
		return strings.TrimSpace(out) == "exited"
	})
	if out := docker.Run(t, "inspect", "-f", "{{.RestartCount}} {{.State.ExitCode}}", did); strings.TrimSpace(out) != "2 3" {
		t.Errorf("Docker's on-failure:2 of exit 3: %q, cairn's the same: 2 3", out)
	}

	// always: each exit 0 is followed by a new run; `stop` ends it for good.
	s.ok("run", "-d", "--network", "none", "--name", "forever", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3")
	waitFor(t, 20*time.Second, "always to restart twice", func() bool {
		return s.inspect("forever")["RestartCount"].(float64) >= 2
	})
	s.ok("stop", "-t", "1", "forever")
	if st := s.status("forever"); st != "exited" {
		t.Fatalf("always after stop: %s", st)
	}
	n := s.inspect("forever")["RestartCount"].(float64)
	time.Sleep(800 * time.Millisecond)
	if st, m := s.status("forever"), s.inspect("forever")["RestartCount"].(float64); st != "exited" || m != n {
		t.Fatalf("a stopped always container came back: %s, RestartCount %v then %v", st, n, m)
	}
	// A start by hand counts from 0 again; kill is a stop by hand too.
	s.ok("start", "forever")
	if n := s.inspect("forever")["RestartCount"].(float64); n != 0 {
		t.Errorf("RestartCount after start: %v, want 0 (as Docker)", n)
	}
	s.ok("kill", "forever")
	waitFor(t, 10*time.Second, "the killed container to end", func() bool { return s.status("forever") == "exited" })
	time.Sleep(500 * time.Millisecond)
	if st := s.status("forever"); st != "exited" {
		t.Fatalf("always after kill: %s (Docker does not restart a container killed by hand)", st)
	}

	// wait follows the run it waited for, across restarts.
	s.ok("run", "-d", "--network", "none", "--name", "counted", "--restart", "always", "busybox", "sh", "-c", "sleep 0.5; exit 7")
	if out := strings.TrimSpace(s.ok("wait", "counted")); out != "7" {
		t.Errorf("wait of a restarting container: %q, want 7", out)
	}
	// A foreground run with a policy: its output and the first run's exit
	// code, as Docker's client; the monitor restarts it after this ends.
	if r := s.run(nil, "run", "--network", "none", "--name", "fgpolicy", "--restart", "on-failure:1", "busybox", "sh", "-c", "echo run; exit 3"); r.Code != 3 || r.Stdout != "run\n" {
		t.Errorf("foreground run with a policy: %+v, want run and exit 3", r)
	}
	waitFor(t, 20*time.Second, "the foreground run's container to be restarted", func() bool {
		return strings.TrimSpace(s.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "fgpolicy")) == "1 exited"
	})
	if out := s.ok("logs", "fgpolicy"); out != "run\nrun\n" {
		t.Errorf("logs of two runs: %q", out)
	}
	s.ok("rm", "-f", "counted", "forever", "fgpolicy")
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("left: %v", tr)
	}
}

// After a reboot (the monitors and their containers killed, /run emptied),
// `cairn boot` starts the always and unless-stopped containers, but not an
// unless-stopped one stopped by hand, nor one without a policy.
func TestBootRestartsPolicies(t *testing.T) {
	s := newStore(t)
	s.busybox()
	for _, c := range []struct{ name, policy string }{{"a", "always"}, {"u", "unless-stopped"}, {"us", "unless-stopped"}, {"n", "no"}} {
		s.ok("run", "-d", "--network", "none", "--name", c.name, "--restart", c.policy, "busybox", "sleep", "1000")
	}
	s.ok("stop", "-t", "0", "us")
	// The reboot: every process of the store killed, the run directory gone.
	for _, name := range []string{"a", "u", "n"} {
		pid := int(s.inspect(name)["State"].(map[string]any)["Pid"].(float64))
		for _, mp := range processesOf(monitorName, s.root) {
			syscall.Kill(mp, syscall.SIGKILL)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 10*time.Second, "the containers to die", func() bool {
		for _, name := range []string{"a", "u", "n"} {
			if s.status(name) == "running" {
				return false
			}
		}
		return true
	})
	out := s.ok("boot")
	for _, name := range []string{"a", "u"} {
		if st := s.status(name); st != "running" {
			t.Errorf("%s after boot: %s, want running", name, st)
		}
	}
	for _, name := range []string{"us", "n"} {
		if st := s.status(name); st == "running" {
			t.Errorf("%s after boot: running (boot printed %q)", name, out)
		}
	}
	s.ok("rm", "-f", "a", "u", "us", "n")
}

// A health check run by the monitor: starting, then unhealthy after its
// retries fail, then healthy once the probe passes; ps shows it, inspect
// has State.Health with its log, and events tell each change.
func TestHealthCheck(t *testing.T) {
	s := newStore(t)
	s.busybox()
	since := time.Now().Add(-time.Second).Unix()
	s.ok("run", "-d", "--network", "none", "--name", "doc",
		"--health-cmd", "test -f /tmp/ok && echo fine", "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "2s",
		"busybox", "sleep", "1000")
	health := func() map[string]any {
		h, _ := s.inspect("doc")["State"].(map[string]any)["Health"].(map[string]any)
		return h
	}
	if h := health(); h == nil || h["Status"] != "starting" {
		t.Fatalf("State.Health right after start: %v", h)
	}
	waitFor(t, 20*time.Second, "unhealthy", func() bool { h := health(); return h != nil && h["Status"] == "unhealthy" })
	if out := s.ok("ps", "--format", "{{.Status}}", "--filter", "name=doc"); !strings.Contains(out, "(unhealthy)") {
		t.Errorf("ps status: %q", out)
	}
	s.ok("exec", "doc", "touch", "/tmp/ok")
	waitFor(t, 20*time.Second, "healthy", func() bool { h := health(); return h != nil && h["Status"] == "healthy" })
	h := health()
	log := h["Log"].([]any)
	last := log[len(log)-1].(map[string]any)
	if last["ExitCode"].(float64) != 0 || last["Output"] != "fine\n" || h["FailingStreak"].(float64) != 0 {
		t.Errorf("the last probe: %v (health %v)", last, h)
	}
	if out := s.ok("ps", "--format", "{{.Status}}", "--filter", "name=doc"); !strings.Contains(out, "(healthy)") {
		t.Errorf("ps status: %q", out)
	}
	ev := s.ok("events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "container=doc")
	for _, want := range []string{"health_status: unhealthy", "health_status: healthy"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
	s.ok("rm", "-f", "doc")
}

// attach connects to the output of a detached container (several clients
// at once), to its terminal with -it: typed input reaches it, Ctrl-P
// Ctrl-Q detaches leaving it running (exit 1, "read escape sequence", as
// Docker), and the exit code of the container is attach's when it ends.
// `run -it` detaches the same way, exit 0, the container running on.
func TestAttach(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "talker", "busybox", "sh", "-c", "sleep 1; for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 5")
	// A start of the running container starts a second monitor, which
	// must leave the first one's attach socket alone.
	s.ok("start", "talker")
	var runs []*exec.Cmd
	var outs, errs []*bytes.Buffer
	for range 2 {
		cmd := exec.Command(cairnBin, "--root", s.root, "attach", "talker")
		o, e := &bytes.Buffer{}, &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = o, e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs, outs, errs = append(runs, cmd), append(outs, o), append(errs, e)
	}
	for i, cmd := range runs {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("attach %d did not end", i)
		}
		if code := cmd.ProcessState.ExitCode(); code != 5 {
			t.Errorf("attach %d: exit %d, want the container's 5", i, code)
		}
		if !strings.Contains(outs[i].String(), "out 1\nout 2\nout 3\n") || !strings.Contains(errs[i].String(), "err 3\n") {
			t.Errorf("attach %d: stdout %q stderr %q", i, outs[i].String(), errs[i].String())
		}
	}

	// A terminal: input, output, window size, detach.
	s.ok("run", "-d", "-it", "--network", "none", "--name", "shell", "busybox", "sh")
	out, code := scriptSession(t, fmt.Sprintf("stty rows 40 cols 120; %s --root %s attach shell", cairnBin, s.root),
		"echo typed-$((6*7)); stty size\n", "40 120", []byte{0x10, 0x11})
	if !strings.Contains(out, "typed-42") || !strings.Contains(out, "40 120") || !strings.Contains(out, "read escape sequence") || code != 1 {
		t.Errorf("attach -it session (exit %d):\n%s", code, out)
	}
	if st := s.status("shell"); st != "running" {
		t.Fatalf("after detaching: %s", st)
	}
	// run -it, detached with Ctrl-P Ctrl-Q: exit 0, running on; attach
	// again, and exit: attach has its exit code.
	out, code = scriptSession(t, fmt.Sprintf("%s --root %s run -it --network none --name fg busybox sh", cairnBin, s.root),
		"echo in-$((1+1))-fg\n", "in-2-fg", []byte{0x10, 0x11})
	if !strings.Contains(out, "in-2-fg") || code != 0 {
		t.Errorf("run -it detached (exit %d):\n%s", code, out)
	}
	if st := s.status("fg"); st != "running" {
		t.Fatalf("run -it after detaching: %s", st)
	}
	out, code = scriptSession(t, fmt.Sprintf("%s --root %s attach fg", cairnBin, s.root), "\nexit 9\n", "", nil)
	if code != 9 {
		t.Errorf("attach then exit 9: exit %d\n%s", code, out)
	}
	s.ok("rm", "-f", "shell", "fg", "talker")
}

// scriptSession runs command on a terminal (script(1)), types input once
// its prompt shows, then — once the terminal shows expect — keys, and
// returns what the terminal showed and the command's exit code.
func scriptSession(t *testing.T, command, input, expect string, keys []byte) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", command+`; echo "EXIT=$?"`, "/dev/null")
	var out syncBuffer
	cmd.Stdout = &out
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Input typed before the shell reads it waits in the terminal: the
	// prompt is only waited for a while.
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(out.String(), "#") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stdin.Write([]byte(input))
	for expect != "" && !strings.Contains(out.String(), expect) && time.Now().Before(deadline.Add(15*time.Second)) {
		time.Sleep(20 * time.Millisecond)
	}
	if keys != nil {
		stdin.Write(keys)
	}
	cmd.Wait()
	text := out.String()
	code := -1
	if i := strings.LastIndex(text, "EXIT="); i >= 0 {
		fmt.Sscanf(text[i+5:], "%d", &code)
	}
	return text, code
}
