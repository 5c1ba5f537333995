package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The process cairn starts is the one the real Docker engine starts: the same
// image (cairn save → docker load) and the same run options give the same
// user and groups, environment, working directory, command, capabilities,
// /dev and /etc/hosts, and the same exit codes for commands that cannot run.
func TestRunMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	users := layerTar(t, dir("etc/"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		file("etc/group", "root:x:0:\napp:x:2345:\nextra:x:3456:app\nnogroup:x:65534:\n"), dir("srv/"))
	tag := "cairn-test/run-matches:1"
	ep := "cairn-test/run-matches-ep:1"
	imgs := []fixtureImage{
		{Names: []string{tag}, Layers: [][]byte{busyboxTar(t), users}, Cmd: []string{"sh", "-c", "echo $FOO $BAR; pwd; id"},
			Env: []string{"FOO=image", "BAR=image"}, WorkingDir: "/srv"},
		{Names: []string{ep}, Layers: [][]byte{busyboxTar(t)}, Entrypoint: []string{"echo", "ep"}, Cmd: []string{"default"}},
	}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, imgs...)))
	archive := filepath.Join(t.TempDir(), "save.tar")
	s.ok("save", "-o", archive, tag, ep)
	docker.Run(t, "load", "-i", archive)
	defer docker.RunErr("rmi", "-f", tag, ep)

	cases := [][]string{
		{tag},
		{"-u", "app", tag},
		{"-u", "nobody", tag, "id"},
		{"-u", "1234:77", tag, "id"},
		{"-u", "4321", tag, "id"},
		{"-u", "0:3456", tag, "id"},
		{"-e", "FOO=flag", "-w", "/tmp", tag},
		{"-w", "/made/by/run", tag, "pwd"},
		{tag, "sh", "-c", "env | grep -v ^HOSTNAME= | sort"},
		{"-u", "app", "-e", "EXTRA=1", tag, "sh", "-c", "env | grep -v ^HOSTNAME= | sort"},
		{"-t", tag, "sh", "-c", "echo $TERM"},
		{tag, "sh", "-c", "grep -E '^Cap(Prm|Eff|Bnd|Inh|Amb)' /proc/self/status"},
		{"--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN", tag, "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"},
		{"--cap-drop", "ALL", "--cap-add", "KILL", tag, "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"},
		{"-u", "app", tag, "sh", "-c", "grep -E '^Cap(Prm|Eff)' /proc/self/status"},
		{tag, "ls", "/dev"},
		{tag, "sh", "-c", "ls /dev/pts /dev/shm /dev/mqueue"},
		{tag, "cat", "/etc/hosts"},
		{"-h", "myhost", tag, "sh", "-c", "hostname; cat /etc/hostname"},
		{tag, "sh", "-c", "ls /sys/class/net; cat /proc/1/cmdline | tr '\\0' ' '"},
		{"--read-only", tag, "sh", "-c", "touch /x 2>&1; echo $?"},
		{ep},
		{ep, "x", "y"},
		{"--entrypoint", "echo", ep},
		{"--entrypoint", "echo", ep, "hi"},
		{tag, "nosuchcommand"},
		{tag, "/etc/passwd"},
		{tag, "sh", "-c", "exit 42"},
	}
	for _, args := range cases {
		// The test Docker engine has no bridge (hack/dockerd: --bridge=none):
		// both run with --network none.
		cr := s.run(nil, append([]string{"run", "--rm", "--network", "none"}, args...)...)
		dout, derr, err := docker.RunErr(append([]string{"run", "--rm", "--network", "none"}, args...)...)
		dcode := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			dcode = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker run %v: %v", args, err)
		}
		if cr.Code != dcode || cr.Code == 0 && cr.Stdout != dout {
			t.Errorf("run %s:\ncairn  (exit %d): %q %s\ndocker (exit %d): %q %s", strings.Join(args, " "), cr.Code, cr.Stdout, cr.Stderr, dcode, dout, derr)
		}
	}
}
