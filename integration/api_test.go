package integration

import (
	"bytes"
	"context"
	"encoding/json"
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

// apiService starts `cairn system service` on a socket of its own and
// returns the socket's path; the service is stopped (SIGTERM, by its pid)
// when the test ends.
func (s *store) apiService(idle string) (string, *background) {
	s.t.Helper()
	sock := filepath.Join(s.t.TempDir(), "docker.sock")
	bg := s.start("system", "service", "--time", idle, "unix://"+sock)
	waitFor(s.t, 10*time.Second, "the API socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	s.t.Cleanup(func() { bg.cmd.Process.Signal(syscall.SIGTERM) })
	return sock, bg
}

// dockerAt runs the docker client bin against the socket sock.
func dockerAt(t testing.TB, bin, sock string, args ...string) (string, string, int) {
	t.Helper()
	return dockerAtIn(t, bin, sock, nil, args...)
}

// dockerAtIn is dockerAt with stdin (nil: none): stdout, stderr, exit
// code. A client still running after testutil.DefaultDockerTimeout is
// killed, and the test fails.
func dockerAtIn(t testing.TB, bin, sock string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	return runDocker(t, t.TempDir(), bin, sock, stdin, args...)
}

// runDocker runs the client bin on socket sock with the client
// configuration directory config.
func runDocker(t testing.TB, config, bin, sock string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultDockerTimeout)
	defer cancel()
	cmd := dockerCmdWith(ctx, config, bin, "unix://"+sock, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("%s %s: timed out", bin, strings.Join(args, " "))
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// dockerCmd is the docker client bin of host with args, to start: bounded
// by ctx, with a configuration of its own.
func dockerCmd(ctx context.Context, t testing.TB, bin, host string, args ...string) *exec.Cmd {
	return dockerCmdWith(ctx, t.TempDir(), bin, host, args...)
}

// dockerCmdWith is dockerCmd with the configuration directory config.
// cairn is the classic builder (its _ping says Builder-Version 1), but a
// Docker 23+ client on Linux turns to BuildKit unless told; and no hints.
func dockerCmdWith(ctx context.Context, config, bin, host string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-H", host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+config, "DOCKER_BUILDKIT=0", "DOCKER_CLI_HINTS=false")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// dockerdSocket is the test Docker engine's socket, for dockerAt.
func dockerdSocket(docker *testutil.DockerEngine) string {
	return strings.TrimPrefix(docker.Host, "unix://")
}

// The docker client talks to cairn's socket as to dockerd's: version and
// info, ps and images with their formats, inspect of a container, of an
// image, and of nothing (Docker's error and exit code), with what the CLI
// shows of the same store.
func TestAPIReadOnlyCommands(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("tag", "busybox", "localhost:5000/team/bb:1")
	s.ok("run", "-d", "--network", "none", "--name", "web", "--label", "role=front", "busybox", "sleep", "1000")
	s.ok("create", "--network", "none", "--name", "made", "busybox", "true")
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		if out, stderr, code := dockerAt(t, bin, sock, "version", "--format", "{{.Server.APIVersion}} {{(index .Server.Components 0).Name}}"); code != 0 || out != "1.41 Engine\n" {
			t.Errorf("%s version: %q %q", bin, out, stderr)
		}
		if out, stderr, code := dockerAt(t, bin, sock, "info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}}"); code != 0 || out != "2 1 1 overlay\n" {
			t.Errorf("%s info: %q %q", bin, out, stderr)
		}
		format := "{{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Labels}}"
		want := s.ok("ps", "-a", "--format", format)
		if out, stderr, _ := dockerAt(t, bin, sock, "ps", "-a", "--no-trunc", "--format", format); out != want {
			t.Errorf("%s ps -a: %q %q, cairn ps: %q", bin, out, stderr, want)
		}
		if out, _, _ := dockerAt(t, bin, sock, "ps", "--filter", "label=role=front", "--format", "{{.Names}}"); out != "web\n" {
			t.Errorf("%s ps --filter label: %q", bin, out)
		}
		format = "{{.Repository}}:{{.Tag}} {{.ID}}"
		want = s.ok("images", "--format", format)
		if out, stderr, _ := dockerAt(t, bin, sock, "images", "--format", format); !sameLines(out, want) {
			t.Errorf("%s images: %q %q, cairn images: %q", bin, out, stderr, want)
		}
		if out, stderr, _ := dockerAt(t, bin, sock, "inspect", "--format", "{{.Name}} {{.State.Status}} {{.Config.Labels.role}}", "web"); out != "/web running front\n" {
			t.Errorf("%s inspect web: %q %q", bin, out, stderr)
		}
		id := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", "busybox"))
		if out, stderr, _ := dockerAt(t, bin, sock, "image", "inspect", "--format", "{{.Id}}", "localhost:5000/team/bb:1"); out != id+"\n" {
			t.Errorf("%s image inspect: %q %q, want %s", bin, out, stderr, id)
		}
		if _, stderr, code := dockerAt(t, bin, sock, "inspect", "nosuch"); code != 1 || !strings.Contains(stderr, "No such object: nosuch") {
			t.Errorf("%s inspect nosuch: exit %d, %q", bin, code, stderr)
		}
	}
	s.ok("rm", "-f", "web", "made")
}

// Bad requests are answered as dockerd answers them, and the service goes
// on: a route it lacks, a version newer than it speaks, filters that are
// not JSON, a container that is not there.
func TestAPIErrors(t *testing.T) {
	s := newStore(t)
	sock, _ := s.apiService("0")
	client := unixClient(sock)
	for _, c := range []struct {
		method, path string
		status       int
		message      string
	}{
		{"GET", "/v1.41/nosuch/route", 404, "page not found"},
		{"GET", "/v1.99/containers/json", 400, "client version 1.99 is too new. Maximum supported API version is 1.41"},
		{"GET", "/v1.12/containers/json", 400, "client version 1.12 is too old"},
		{"GET", "/containers/json?filters=%7Bnot-json", 400, "invalid filter"},
		{"GET", "/containers/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", 400, "colour"},
		{"GET", "/v1.41/containers/nosuch/json", 404, "No such container: nosuch"},
		{"GET", "/images/nosuch:1/json", 404, "No such image"},
	} {
		req, _ := http.NewRequest(c.method, "http://cairn"+c.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ Message string }
		if resp.StatusCode != c.status || json.Unmarshal(b, &body) != nil || !strings.Contains(body.Message, c.message) {
			t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.path, resp.StatusCode, b, c.status, c.message)
		}
	}
	resp, err := client.Head("http://cairn/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header; resp.StatusCode != 200 || h.Get("API-Version") != "1.41" || h.Get("OSType") != "linux" || h.Get("Builder-Version") != "1" {
		t.Errorf("HEAD /_ping: %d %v", resp.StatusCode, resp.Header)
	}
	// The socket: root's and the cairn group's only.
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want 0660", st.Mode())
	}
}

// With --time, the service ends once no request came for that long, and
// takes its socket with it.
func TestAPIServiceIdleExit(t *testing.T) {
	s := newStore(t)
	sock, bg := s.apiService("1")
	select {
	case <-bg.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the service did not end when idle")
	}
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("idle service: exit %d, stderr %q", code, bg.stderr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left: %v", err)
	}
}

// unixClient is an HTTP client of the API socket sock (its URLs'
// host is ignored: http://cairn/...).
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}, Timeout: 30 * time.Second}
}

func sameLines(a, b string) bool {
	split := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			m[l]++
		}
		return m
	}
	ma, mb := split(a), split(b)
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if mb[k] != v {
			return false
		}
	}
	return true
}
