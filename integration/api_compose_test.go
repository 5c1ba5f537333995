package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// compose runs Debian's docker-compose 1.29 on project dir against the
// socket sock, with env added; it returns its output and exit code.
func compose(t *testing.T, sock, project string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	file := filepath.Join(testutil.RepoRoot(t), "integration", "testdata", "compose", "docker-compose.yml")
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-f", file, "-p", project}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir()), env...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// freePort is a TCP port of the loopback nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url once, briefly.
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// docker-compose 1.29 brings a two-service application up through cairn's
// socket and takes it down again: web built from a Dockerfile (by
// docker-py's build, and by the docker CLI's), published on the loopback,
// worker reaching web by name on the user network, a named volume both
// share. Down leaves no container, network or volume of the project.
func TestAPICompose(t *testing.T) {
	testutil.RequiresTool(t, "docker-compose")
	for _, cliBuild := range []string{"0", "1"} {
		t.Run("COMPOSE_DOCKER_CLI_BUILD="+cliBuild, func(t *testing.T) {
			s := newStore(t)
			s.busybox()
			sock, _ := s.apiService("0")
			project := "cairnapi" + cliBuild
			port := freePort(t)
			env := []string{"COMPOSE_DOCKER_CLI_BUILD=" + cliBuild, "DOCKER_BUILDKIT=0", fmt.Sprintf("WEB_PORT=%d", port)}
			if out, code := compose(t, sock, project, env, "up", "-d", "--build"); code != 0 {
				t.Fatalf("up: exit %d\n%s", code, out)
			}
			defer compose(t, sock, project, env, "down", "-v")
			if out := s.ok("image", "inspect", "--format", "{{.Config.Cmd}}", "cairn-compose-web:1"); out != "[httpd -f -p 80 -h /www]\n" {
				t.Errorf("the built image's Cmd: %q", out)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			var got string
			waitFor(t, 30*time.Second, "web's published port", func() bool {
				got, _ = httpGet(url + "index.html")
				return got == "built by compose\n"
			})
			if motd, err := httpGet(url + "motd"); motd != "served through cairn\n" {
				t.Errorf("GET /motd: %q %v", motd, err)
			}
			web, worker := project+"_web_1", project+"_worker_1"
			waitFor(t, 30*time.Second, "worker fetching web by name into the shared volume", func() bool {
				r := s.run(nil, "exec", web, "cat", "/data/fetched", "/data/worker")
				return r.Stdout == "built by compose\nfrom-worker\n"
			})
			if out, code := compose(t, sock, project, env, "ps"); code != 0 || strings.Count(out, " Up ") != 2 {
				t.Errorf("ps: exit %d\n%s", code, out)
			}
			for _, ctr := range []string{web, worker} {
				nets := s.ok("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", ctr)
				if strings.TrimSpace(nets) != project+"_back" {
					t.Errorf("%s networks: %q", ctr, nets)
				}
			}
			if out, code := compose(t, sock, project, env, "down", "-v"); code != 0 {
				t.Fatalf("down: exit %d\n%s", code, out)
			}
			if left := s.ok("ps", "-aq"); left != "" {
				t.Errorf("containers left after down: %q", left)
			}
			if nets := s.ok("network", "ls", "--format", "{{.Name}}"); strings.Contains(nets, project) {
				t.Errorf("networks left after down: %q", nets)
			}
			if vols := s.ok("volume", "ls", "--format", "{{.Name}}"); strings.Contains(vols, project) {
				t.Errorf("volumes left after down: %q", vols)
			}
		})
	}
}

// The same application's life through docker-py (Debian's python3-docker, 5.0.3):
// build, a user network and a named volume, a published port, exec with
// its exit code, logs, commit with changes, and the clean-up.
func TestAPIPythonSDK(t *testing.T) {
	// Debian's python3 and its python3-docker, not another python on PATH.
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import docker").Run(); err != nil {
		if testutil.InCI() {
			t.Fatal("python3-docker is not installed")
		}
		t.Skip("python3-docker is not installed")
	}
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(testutil.RepoRoot(t), "integration", "testdata")
	cmd := exec.CommandContext(ctx, python, filepath.Join(dir, "sdk.py"), filepath.Join(dir, "compose", "web"))
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, fmt.Sprintf("WEB_PORT=%d", port))
	out, err := cmd.CombinedOutput()
	want := `ping True
built True True
served built by compose
worker exit 0
worker logs served through cairn
exec 0 served through cairn
exec exit 5
status running True
commit True sdk ['cat', '/data/got']
listed ['sdk-web', 'sdk-worker']
left [] [] []
`
	if err != nil || string(out) != want {
		t.Errorf("sdk.py: %v\n%s\nwant:\n%s", err, out, want)
	}
}
