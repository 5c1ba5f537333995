package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultDockerHost is where hack/dockerd start serves the test engine.
const DefaultDockerHost = "unix:///run/cairn-test/docker.sock"

// DefaultDockerTimeout bounds one docker CLI call made through a DockerEngine.
const DefaultDockerTimeout = 2 * time.Minute

// DockerEngine is a handle on the real Docker engine that hack/dockerd runs
// for the tests, on its own socket and data root. Tests use it to compare
// cairn with Docker and to produce images in Docker's own formats (docker
// save). It drives the docker CLI, so what a test runs is what a user types.
type DockerEngine struct {
	// Host is the engine's address, passed as docker -H.
	Host string
	// Timeout bounds each docker call; DefaultDockerTimeout if zero.
	Timeout time.Duration
}

var dockerPing = sync.OnceValues(func() (string, error) {
	e := &DockerEngine{Host: dockerHost(), Timeout: 15 * time.Second}
	out, stderr, err := e.RunErr("version", "--format", "{{.Server.Version}}")
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr))
	}
	return strings.TrimSpace(out), nil
})

func dockerHost() string {
	if h := os.Getenv("CAIRN_TEST_DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultDockerHost
}

// Docker returns a handle on the test Docker engine (DefaultDockerHost, or
// the environment variable CAIRN_TEST_DOCKER_HOST). The test stops (Fatalf
// under CI, Skipf elsewhere) if the docker CLI is missing or the engine does
// not answer; start it with `hack/dockerd start`.
func Docker(t testing.TB) *DockerEngine {
	t.Helper()
	RequiresTool(t, "docker")
	if _, err := dockerPing(); err != nil {
		unmet(t, "requires the test Docker engine at %s (run hack/dockerd start): %v", dockerHost(), err)
	}
	return &DockerEngine{Host: dockerHost(), Timeout: DefaultDockerTimeout}
}

// Run runs `docker -H Host args...` and returns its standard output as it is
// (not trimmed). If docker fails or times out, the test fails with docker's
// standard error.
func (e *DockerEngine) Run(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := e.RunErr(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// RunErr runs `docker -H Host args...` and returns its standard output and
// standard error, and an error if it could not run, exited non-zero or ran
// past the timeout.
func (e *DockerEngine) RunErr(args ...string) (stdout, stderr string, err error) {
	return e.RunErrIn(nil, args...)
}

// RunErrIn is RunErr with stdin (nil: none).
func (e *DockerEngine) RunErrIn(stdin []byte, args ...string) (stdout, stderr string, err error) {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultDockerTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", e.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CLI_HINTS=false")
	// A child of docker that keeps the pipes open must not hold us past the
	// timeout.
	cmd.WaitDelay = 5 * time.Second
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return outBuf.String(), errBuf.String(), err
}
