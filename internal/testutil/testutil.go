// Package testutil holds what cairn's tests share: the rules for tests that
// need root or a tool, and handles on the fixtures that hack/ provides — a
// Docker engine on its own socket (hack/dockerd), a registry on
// 127.0.0.1:5000 (hack/registry) and a busybox root filesystem
// (hack/busybox-rootfs). It is imported by tests only.
//
// A test whose requirement is not met is skipped, with the reason, except
// under CI (the environment variable CI is not empty), where it fails: CI must
// never pass by skipping. .ci/run installs and starts everything these
// helpers look for.
package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
