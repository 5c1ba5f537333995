package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill (SIGKILL, the default) returns once the container's end is recorded,
// as Docker's does, so that the next command sees it exited: with its
// monitor stopped (SIGSTOP) it cannot be recorded, and kill waits; once the
// monitor goes on, kill returns and inspect says exited 137.
func TestKillWaitsForTheEnd(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "victim", "busybox", "sleep", "1000")
	defer s.run(nil, "rm", "-f", "victim")
	monitor := monitorPid(t, s, s.containerID("victim"))
	if err := syscall.Kill(monitor, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	resume := func() {
		if !continued {
			syscall.Kill(monitor, syscall.SIGCONT)
			continued = true
		}
	}
	defer resume()
	kill := s.start("kill", "victim")
	select {
	case <-kill.done:
		t.Fatalf("kill returned before the end was recorded: %s %s; inspect: %s", kill.stdout, kill.stderr, s.status("victim"))
	case <-time.After(time.Second):
	}
	resume()
	if code := kill.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("kill: exit %d: %s", code, kill.stderr)
	}
	if got := s.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "victim"); got != "exited 137\n" {
		t.Fatalf("after kill: %q", got)
	}
	// Another signal is only sent: kill -s TERM returns at once (sleep as a
	// PID namespace's init ignores it).
	s.ok("start", "victim")
	s.ok("kill", "-s", "TERM", "victim")
	if st := s.status("victim"); st != "running" {
		t.Fatalf("after kill -s TERM: %s", st)
	}
}

// monitorPid finds the pid of the monitor of container id of store s, by
// its command line.
func monitorPid(t *testing.T, s *store, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) == 5 && args[1] == "--root" && args[2] == s.root && args[3] == "container-monitor" && args[4] == id {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no monitor of container %s", id)
	return 0
}
