package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI, where a missing requirement
// is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") != "" }

// unmet stops the test because a requirement is not met: Fatalf under CI,
// Skipf elsewhere.
func unmet(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI is set: not skipping)", args...)
		return
	}
	t.Skipf(format, args...)
}

// RequiresRoot stops the test unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unmet(t, "requires root")
	}
}

// RequiresTool stops the test unless name is found on PATH.
func RequiresTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		unmet(t, "requires %s on PATH (hack/install-deps installs it): %v", name, err)
	}
}

// RequiresGNUTar stops the test unless the tar on PATH is GNU tar, the
// reference for what other tars read: PAX sparse files, xattrs.
func RequiresGNUTar(t testing.TB) {
	t.Helper()
	out, err := exec.Command("tar", "--version").Output()
	if err != nil || !strings.Contains(string(out), "GNU tar") {
		unmet(t, "requires GNU tar on PATH: tar --version: %v %s", err, out)
	}
}

// RepoRoot returns the repository's root: the nearest directory at or above
// the working directory that holds a go.mod. go test runs a test binary in its
// package's directory, so this finds the module root.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
