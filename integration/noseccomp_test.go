package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A cairn built the plain way (go build ./cmd/cairn: no seccomp tag) still
// runs containers: it says once, on stderr, that the default seccomp
// profile is not applied and how to get it.
func TestBuiltWithoutSeccompRuns(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cairn-plain")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cairn: %v\n%s", err, out)
	}
	s := newStore(t)
	s.busybox()
	cmd := exec.Command(bin, "--root", s.root, "run", "--rm", "busybox", "sh", "-c", "echo ran; grep Seccomp: /proc/self/status")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run with a cairn built without seccomp: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	if !strings.HasPrefix(string(out), "ran\n") || !strings.Contains(string(out), "Seccomp:\t0") {
		t.Fatalf("stdout %q: want the container to run, without a seccomp filter", out)
	}
	if n := strings.Count(stderr.String(), "built without seccomp"); n != 1 || !strings.Contains(stderr.String(), "-tags seccomp") {
		t.Fatalf("stderr says it %d times, want once with the fix:\n%s", n, stderr.String())
	}
	// The cairn built with the tag applies the profile, and says nothing.
	r := s.run(nil, "run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Seccomp:\t2") || strings.Contains(r.Stderr, "seccomp") {
		t.Fatalf("the seccomp build: %+v", r)
	}
	os.Remove(bin)
}
