package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// docker run through cairn's socket, as a docker user types it: the output
// of every run (20 in a row), exit codes, stdin that ends, stdout and
// stderr apart, --rm, a command that is not there; with both clients.
func TestAPIRunForeground(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		for i := range 20 {
			out, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "--rm", "--network", "none", "busybox", "echo", "hi")
			if out != "hi\n" || code != 0 {
				t.Fatalf("%s run --rm echo hi (#%d): exit %d, stdout %q, stderr %q", bin, i, code, out, stderr)
			}
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 3"); code != 3 {
			t.Errorf("%s run exit 3: exit %d, %q %q", bin, code, out, stderr)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, []byte("hi\n"), "run", "-i", "--rm", "--network", "none", "busybox", "cat"); out != "hi\n" || code != 0 {
			t.Errorf("%s echo hi | run -i cat: exit %d, %q %q", bin, code, out, stderr)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 1"); out != "out\n" || stderr != "err\n" || code != 1 {
			t.Errorf("%s run with stderr: exit %d, stdout %q, stderr %q", bin, code, out, stderr)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "-t", "--rm", "--network", "none", "busybox", "sh", "-c", "echo tty; echo err >&2"); out != "tty\r\nerr\r\n" || code != 0 {
			t.Errorf("%s run -t: exit %d, %q %q", bin, code, out, stderr)
		}
		if _, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "--rm", "--network", "none", "busybox", "nosuch"); code != 127 || !strings.Contains(stderr, "executable file not found") {
			t.Errorf("%s run nosuch: exit %d, %q", bin, code, stderr)
		}
		// Without --rm it stays, exited, with its code, for the CLI too.
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "--name", "kept", "--network", "none", "-e", "WHO=api", "busybox", "sh", "-c", "echo $WHO; exit 2"); out != "api\n" || code != 2 {
			t.Errorf("%s run --name kept: exit %d, %q %q", bin, code, out, stderr)
		}
		if st, code := s.status("kept"), s.inspect("kept")["State"].(map[string]any)["ExitCode"]; st != "exited" || code != 2.0 {
			t.Errorf("cairn inspect kept: %s %v", st, code)
		}
		if out := s.ok("logs", "kept"); out != "api\n" {
			t.Errorf("cairn logs kept: %q", out)
		}
		if _, stderr, code := dockerAtIn(t, bin, sock, nil, "create", "--name", "kept", "busybox", "true"); code == 0 || !strings.Contains(stderr, `The container name "/kept" is already in use`) {
			t.Errorf("%s create a taken name: exit %d, %q", bin, code, stderr)
		}
		s.ok("rm", "kept")
		if out := s.ok("ps", "-aq"); out != "" {
			t.Errorf("%s: containers left: %q", bin, out)
		}
	}
}

// docker run -d, then what a user does with it: ps, logs (-f, --tail,
// --timestamps, --since), exec (its output, stdin, exit code), attach,
// wait, start -ai, run -d --rm.
func TestAPIRunDetached(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		id, stderr, code := dockerAtIn(t, bin, sock, nil, "run", "-d", "--name", "bg", "--network", "none", "busybox", "sh", "-c", "echo first; echo to-err >&2; exec sleep 1000")
		if code != 0 || len(strings.TrimSpace(id)) != 64 {
			t.Fatalf("%s run -d: exit %d, %q %q", bin, code, id, stderr)
		}
		if st := s.status("bg"); st != "running" {
			t.Fatalf("cairn sees bg %s", st)
		}
		waitFor(t, 10*time.Second, "bg's first line", func() bool { return s.ok("logs", "bg") == "first\n" })
		if out, errOut, _ := dockerAtIn(t, bin, sock, nil, "logs", "bg"); out != "first\n" || errOut != "to-err\n" {
			t.Errorf("%s logs bg: %q %q", bin, out, errOut)
		}
		if out, errOut, _ := dockerAtIn(t, bin, sock, nil, "logs", "--tail", "1", "bg"); out+errOut != "first\n" && out+errOut != "to-err\n" {
			t.Errorf("%s logs --tail 1: %q %q", bin, out, errOut)
		}
		if out, _, _ := dockerAtIn(t, bin, sock, nil, "logs", "--timestamps", "bg"); !strings.HasPrefix(out, time.Now().UTC().Format("2006-01-02T")) || !strings.HasSuffix(out, " first\n") {
			t.Errorf("%s logs --timestamps: %q", bin, out)
		}
		if out, errOut, _ := dockerAtIn(t, bin, sock, nil, "logs", "--since", "1h", "--until", time.Now().Add(time.Hour).Format(time.RFC3339), "bg"); out != "first\n" || errOut != "to-err\n" {
			t.Errorf("%s logs --since 1h --until in an hour: %q %q", bin, out, errOut)
		}
		if out, _, _ := dockerAtIn(t, bin, sock, nil, "logs", "--until", "1h", "bg"); out != "" {
			t.Errorf("%s logs --until an hour ago: %q", bin, out)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "exec", "bg", "sh", "-c", "echo in-$HOSTNAME-$((1+1)); exit 4"); code != 4 || !strings.HasPrefix(out, "in-") || !strings.HasSuffix(out, "-2\n") {
			t.Errorf("%s exec exit 4: exit %d, %q %q", bin, code, out, stderr)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, []byte("abc\n"), "exec", "-i", "bg", "cat"); code != 0 || out != "abc\n" {
			t.Errorf("%s exec -i cat: exit %d, %q %q", bin, code, out, stderr)
		}
		if _, stderr, code := dockerAtIn(t, bin, sock, nil, "exec", "bg", "nosuch"); code != 126 {
			t.Errorf("%s exec nosuch: exit %d, %q", bin, code, stderr)
		}
		if _, stderr, code := dockerAtIn(t, bin, sock, nil, "exec", "-d", "bg", "sh", "-c", "echo detached > /tmp/d"); code != 0 {
			t.Errorf("%s exec -d: exit %d, %q", bin, code, stderr)
		}
		waitFor(t, 10*time.Second, "exec -d's file", func() bool { return s.run(nil, "exec", "bg", "cat", "/tmp/d").Stdout == "detached\n" })
		s.ok("rm", "-f", "bg")

		// logs -f follows to the end of the run.
		dockerAtIn(t, bin, sock, nil, "run", "-d", "--name", "counter", "--network", "none", "busybox", "sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.2; done")
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "logs", "-f", "counter"); out != "l1\nl2\nl3\n" || code != 0 {
			t.Errorf("%s logs -f: exit %d, %q %q", bin, code, out, stderr)
		}
		// wait, of a running container and of one that has exited.
		dockerAtIn(t, bin, sock, nil, "run", "-d", "--name", "waited", "--network", "none", "busybox", "sh", "-c", "sleep 0.5; exit 7")
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "wait", "waited"); out != "7\n" || code != 0 {
			t.Errorf("%s wait: exit %d, %q %q", bin, code, out, stderr)
		}
		if out, _, _ := dockerAtIn(t, bin, sock, nil, "wait", "waited", "counter"); out != "7\n0\n" {
			t.Errorf("%s wait of exited containers: %q", bin, out)
		}
		// attach to a running container: its output from then on, and its
		// exit code.
		dockerAtIn(t, bin, sock, nil, "run", "-d", "--name", "talker", "--network", "none", "busybox", "sh", "-c", "sleep 1; echo said; echo err-said >&2; exit 5")
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "attach", "talker"); out != "said\n" || stderr != "err-said\n" || code != 5 {
			t.Errorf("%s attach: exit %d, %q %q", bin, code, out, stderr)
		}
		// start -a of an exited container runs it again; start -ai passes
		// stdin.
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "start", "-a", "counter"); out != "l1\nl2\nl3\n" || code != 0 {
			t.Errorf("%s start -a: exit %d, %q %q", bin, code, out, stderr)
		}
		dockerAtIn(t, bin, sock, nil, "create", "-i", "--name", "cat", "--network", "none", "busybox", "sh", "-c", "cat; exit 6")
		if out, stderr, code := dockerAtIn(t, bin, sock, []byte("through start\n"), "start", "-ai", "cat"); out != "through start\n" || code != 6 {
			t.Errorf("%s start -ai: exit %d, %q %q", bin, code, out, stderr)
		}
		if out, stderr, code := dockerAtIn(t, bin, sock, nil, "start", "counter", "waited"); out != "counter\nwaited\n" || code != 0 {
			t.Errorf("%s start: exit %d, %q %q", bin, code, out, stderr)
		}
		// run -d --rm: gone when it ends.
		id, _, _ = dockerAtIn(t, bin, sock, nil, "run", "-d", "--rm", "--network", "none", "busybox", "sleep", "0.3")
		waitFor(t, 10*time.Second, "run -d --rm's removal", func() bool {
			return s.run(nil, "inspect", strings.TrimSpace(id)).Code != 0
		})
		s.ok("rm", "-f", "counter", "waited", "talker", "cat")
	}
}

// run -it and exec -it on a terminal: what is typed, the terminal's size,
// the exit code; a detach leaves the container running.
func TestAPIRunTerminal(t *testing.T) {
	testutil.RequiresTool(t, "script")
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		docker := fmt.Sprintf("%s -H unix://%s", bin, sock)
		out, code := scriptSession(t, "stty rows 40 cols 120; "+docker+" run -it --rm --network none busybox sh",
			"echo typed-$((6*7)); stty size; exit 3\n", "", nil)
		if !strings.Contains(out, "typed-42") || !strings.Contains(out, "40 120") || code != 3 {
			t.Errorf("%s run -it (exit %d):\n%s", bin, code, out)
		}
		dockerAtIn(t, bin, sock, nil, "run", "-d", "-it", "--name", "shell", "--network", "none", "busybox", "sh")
		out, code = scriptSession(t, "stty rows 30 cols 90; "+docker+" exec -it shell sh",
			"echo exec-$((2+3)); stty size; exit 6\n", "", nil)
		if !strings.Contains(out, "exec-5") || !strings.Contains(out, "30 90") || code != 6 {
			t.Errorf("%s exec -it (exit %d):\n%s", bin, code, out)
		}
		out, code = scriptSession(t, docker+" attach shell", "echo attached-$((3+4))\n", "attached-7", []byte{0x10, 0x11})
		if !strings.Contains(out, "attached-7") {
			t.Errorf("%s attach, then detach (exit %d):\n%s", bin, code, out)
		}
		if st := s.status("shell"); st != "running" {
			t.Errorf("%s: after the detach, shell is %s", bin, st)
		}
		s.ok("rm", "-f", "shell")
	}
	// A resize with no client attached through the service.
	dockerAtIn(t, dockerClients(t)[0], sock, nil, "run", "-d", "-t", "--name", "sized", "--network", "none", "busybox", "sh", "-c", "sleep 1; stty size")
	resp, err := unixClient(sock).Post("http://cairn/v1.41/containers/sized/resize?h=33&w=77", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resize: %v %v", resp, err)
	}
	resp.Body.Close()
	s.ok("wait", "sized")
	if out := s.ok("logs", "sized"); out != "33 77\r\n" {
		t.Errorf("the size after a resize: %q", out)
	}
	s.ok("rm", "-f", "sized")
}

// A docker client killed in the middle (kill -9) leaves the service
// serving and the container as it was: running on, its end recorded when
// it comes; an attach held before the start whose client went away
// leaves the start alone.
func TestAPIRunClientKilled(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, service := s.apiService("0")
	bin := dockerClients(t)[0]
	fds := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", service.cmd.Process.Pid))
		return len(ents)
	}
	dockerAtIn(t, bin, sock, nil, "ps")
	before := fds()
	start := func(args ...string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(bin, append([]string{"-H", "unix://" + sock}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	kill := func(cmd *exec.Cmd, out *syncBuffer, want string) {
		waitFor(t, 20*time.Second, fmt.Sprintf("%q from docker %v", want, cmd.Args[3:]), func() bool { return strings.Contains(out.String(), want) })
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	// A foreground run, killed: the container runs to its end.
	cmd, out := start("run", "--name", "fg", "--network", "none", "busybox", "sh", "-c", "echo up; sleep 1; echo done; exit 2")
	kill(cmd, out, "up")
	if out, stderr, code := dockerAtIn(t, bin, sock, nil, "wait", "fg"); out != "2\n" || code != 0 {
		t.Errorf("wait after the run's client was killed: exit %d, %q %q", code, out, stderr)
	}
	if out := s.ok("logs", "fg"); out != "up\ndone\n" {
		t.Errorf("logs of fg: %q", out)
	}
	// An attach and an exec, killed.
	dockerAtIn(t, bin, sock, nil, "run", "-d", "--name", "ticker", "--network", "none", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	cmd, out = start("attach", "ticker")
	kill(cmd, out, "tick")
	cmd, out = start("exec", "ticker", "sh", "-c", "while true; do echo exec-tick; sleep 0.1; done")
	kill(cmd, out, "exec-tick")
	cmd, out = start("run", "-i", "--name", "held", "--network", "none", "busybox", "sh", "-c", "echo started; sleep 1000")
	kill(cmd, out, "started")
	if _, stderr, code := dockerAtIn(t, bin, sock, nil, "ps"); code != 0 {
		t.Fatalf("the service after its clients were killed: %s", stderr)
	}
	if st := s.status("ticker"); st != "running" {
		t.Errorf("ticker after its clients were killed: %s", st)
	}
	if out, _, code := dockerAtIn(t, bin, sock, nil, "exec", "ticker", "echo", "still"); out != "still\n" || code != 0 {
		t.Errorf("exec after the kills: exit %d, %q", code, out)
	}
	// An attach held before the start, whose client went away.
	dockerAtIn(t, bin, sock, nil, "create", "--name", "later", "--network", "none", "busybox", "echo", "later")
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1.41/containers/later/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: cairn\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	head := make([]byte, 12)
	io.ReadFull(conn, head)
	if string(head) != "HTTP/1.1 101" {
		t.Errorf("attach before start: %q", head)
	}
	conn.Close()
	time.Sleep(time.Second) // the service sees it go
	if out, stderr, code := dockerAtIn(t, bin, sock, nil, "start", "-a", "later"); out != "later\n" || code != 0 {
		t.Errorf("start -a after an abandoned attach: exit %d, %q %q", code, out, stderr)
	}
	s.ok("rm", "-f", "fg", "ticker", "held", "later")
	// Nothing of the killed clients is left in the service.
	waitFor(t, 15*time.Second, fmt.Sprintf("the service's descriptors back to %d (%d)", before, fds()), func() bool { return fds() <= before+2 })
}

// What the create route refuses, and how: a body that is not JSON, a
// missing image (404, which makes the docker CLI pull), what cairn does not
// do (named), a name in use (409, Docker's words).
func TestAPIRunCreateErrors(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	client := unixClient(sock)
	post := func(path, body string) (int, string) {
		resp, err := client.Post("http://cairn"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, body string
		status     int
		message    string
	}{
		{"/v1.41/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"/v1.41/containers/create", `{"Image":"nosuch:1"}`, 404, "No such image: nosuch:1"},
		{"/v1.41/containers/create", `{"Image":"nosuch"}`, 404, "No such image: nosuch:latest"},
		{"/v1.41/containers/create", `{"Cmd":["true"]}`, 400, "Config.Image"},
		{"/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Links":["a:b"]}}`, 400, "HostConfig.Links"},
		{"/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","PortBindings":{"80/sctp":[{}]}}}`, 400, "sctp"},
		{"/v1.41/containers/create?name=bad/name", `{"Image":"busybox"}`, 400, "Invalid container name"},
		{"/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"a":{},"b":{}}}}`, 400, "Container cannot be connected to network endpoints: a, b"},
		{"/v1.41/containers/create?name=one", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`, 201, `"Warnings":[]`},
		{"/v1.41/containers/create?name=one", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`, 409, `The container name "/one" is already in use`},
		{"/v1.41/containers/one/start", ``, 204, ``},
		{"/v1.41/containers/nosuch/start", ``, 404, `No such container: nosuch`},
		{"/v1.41/containers/one/wait?condition=sometimes", ``, 400, `invalid condition`},
		{"/v1.41/containers/one/wait", ``, 200, `{"StatusCode":0,"Error":null}`},
		{"/v1.41/containers/one/resize?h=10&w=10", ``, 409, `is not running`},
		{"/v1.41/containers/one/exec", `{"Cmd":["true"]}`, 409, `is not running`},
		{"/v1.41/exec/nosuch/start", `{}`, 404, `No such exec instance: nosuch`},
	} {
		status, body := post(c.path, c.body)
		var msg struct{ Message string }
		if json.Unmarshal([]byte(body), &msg) == nil && msg.Message != "" {
			body = msg.Message
		}
		if status != c.status || !strings.Contains(body, c.message) {
			t.Errorf("POST %s %s: %d %s, want %d with %q", c.path, c.body, status, body, c.status, c.message)
		}
	}
	s.ok("rm", "-f", "one")
}

// The same runs through cairn's socket and through the real dockerd give
// the same output and exit codes.
func TestAPIRunMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	tag := "cairn-test/api-run:1"
	s.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Cmd: []string{"sh"}})))
	archive := filepath.Join(t.TempDir(), "save.tar")
	s.ok("save", "-o", archive, tag)
	docker.Run(t, "load", "-i", archive)
	defer docker.RunErr("rmi", "-f", tag)
	sock, _ := s.apiService("0")
	bin := dockerClients(t)[0]
	theirs := strings.TrimPrefix(docker.Host, "unix://")
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"run", "--rm", "--network", "none", tag, "echo", "hi"}},
		{"", []string{"run", "--rm", "--network", "none", tag, "sh", "-c", "echo out; echo err >&2; exit 3"}},
		{"in\n", []string{"run", "-i", "--rm", "--network", "none", tag, "cat"}},
		{"", []string{"run", "--rm", "--network", "none", tag, "nosuch"}},
	} {
		var in []byte
		if c.stdin != "" {
			in = []byte(c.stdin)
		}
		out, errOut, code := dockerAtIn(t, bin, sock, in, c.args...)
		wantOut, wantErr, wantCode := dockerAtIn(t, bin, theirs, in, c.args...)
		if out != wantOut || code != wantCode || (code == 0 || code == 3) && errOut != wantErr {
			t.Errorf("%v: cairn exit %d %q %q, dockerd exit %d %q %q", c.args, code, out, errOut, wantCode, wantOut, wantErr)
		}
	}
	// exec in a running container.
	for _, sk := range []string{sock, theirs} {
		dockerAtIn(t, bin, sk, nil, "run", "-d", "--name", "api-run-exec", "--network", "none", tag, "sleep", "100")
	}
	for _, args := range [][]string{{"sh", "-c", "echo out; exit 4"}, {"nosuch"}, {"/etc/passwd"}} {
		args = append([]string{"exec", "api-run-exec"}, args...)
		out, _, code := dockerAtIn(t, bin, sock, nil, args...)
		wantOut, _, wantCode := dockerAtIn(t, bin, theirs, nil, args...)
		if code != wantCode || code == 4 && out != wantOut {
			t.Errorf("%v: cairn exit %d %q, dockerd exit %d %q", args, code, out, wantCode, wantOut)
		}
	}
	for _, sk := range []string{sock, theirs} {
		dockerAtIn(t, bin, sk, nil, "rm", "-f", "api-run-exec")
	}
	// wait of a container that was created and never started.
	for _, sk := range []string{sock, theirs} {
		id, _, _ := dockerAtIn(t, bin, sk, nil, "create", "--network", "none", tag, "true")
		id = strings.TrimSpace(id)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://docker/v1.41/containers/"+id+"/wait", nil)
		resp, err := unixClient(sk).Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err != nil || !strings.Contains(string(body), `"StatusCode":0`) {
			t.Errorf("%s: wait of a created container: %s %v (dockerd answers at once)", sk, body, err)
		}
		dockerAtIn(t, bin, sk, nil, "rm", "-f", id)
	}
}
