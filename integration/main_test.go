// Package integration drives the built cairn binary as a user types it.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cairnBin is the binary under test, built once by TestMain.
var cairnBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration: skipped: needs root (mounts, namespaces, chown)")
		if os.Getenv("CI") != "" {
			return 1
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "cairn-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, "../cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: build cairn:", err)
		return 1
	}
	return m.Run()
}

// result is what one cairn command did.
type result struct {
	Stdout, Stderr string
	Code           int
}

// store is a cairn store root of one test.
type store struct {
	t    testing.TB
	root string
}

func newStore(t testing.TB) *store {
	t.Helper()
	return &store{t: t, root: filepath.Join(t.TempDir(), "cairn")}
}

// run runs cairn on the store, bounded in time, with stdin from in (may be nil).
func (s *store) run(in []byte, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, append([]string{"--root", s.root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs cairn and fails the test unless it exits 0; it returns stdout.
func (s *store) ok(args ...string) string {
	s.t.Helper()
	r := s.run(nil, args...)
	if r.Code != 0 {
		s.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// fails runs cairn, expects exit code code and stderr containing want.
func (s *store) fails(code int, want string, args ...string) result {
	s.t.Helper()
	r := s.run(nil, args...)
	if r.Code != code || !strings.Contains(r.Stderr, want) {
		s.t.Fatalf("cairn %s: want exit %d and stderr with %q, got exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, r.Code, r.Stdout, r.Stderr)
	}
	return r
}
