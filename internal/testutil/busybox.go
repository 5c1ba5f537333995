package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	busyboxOnce sync.Once
	busyboxTar  string
	busyboxErr  error
)

// BusyboxRootfs returns the path of a tarball of a minimal busybox root
// filesystem (bin/busybox, bin/sh and the other applets as relative symlinks,
// etc/passwd with root and nobody, tmp, root, and empty dev, proc and sys),
// made by hack/busybox-rootfs from Debian's busybox-static. Treat the file as
// read-only.
//
// The tarball is built at most once per test binary and cached in
// os.TempDir()/cairn-testutil, keyed by the busybox binary (path, size,
// mtime) and the script's contents, so that the test binaries of one
// `go test ./...` share it. The build is deterministic: the same key gives
// the same bytes.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	RequiresTool(t, "busybox")
	busyboxOnce.Do(func() { busyboxTar, busyboxErr = buildBusyboxRootfs() })
	if busyboxErr != nil {
		t.Fatalf("busybox rootfs: %v", busyboxErr)
	}
	return busyboxTar
}

// BusyboxRootfsDir returns a fresh directory, removed when the test ends,
// holding BusyboxRootfs unpacked. The test may change it.
func BusyboxRootfsDir(t testing.TB) string {
	t.Helper()
	tarball := BusyboxRootfs(t)
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-x", "-f", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", tarball, err, out)
	}
	return dir
}

func buildBusyboxRootfs() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "busybox-rootfs")
	scriptBytes, err := os.ReadFile(script)
	if err != nil {
		return "", err
	}
	bin, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00", bin, fi.Size(), fi.ModTime().UnixNano())
	h.Write(scriptBytes)
	key := hex.EncodeToString(h.Sum(nil))[:16]

	cache := filepath.Join(os.TempDir(), "cairn-testutil")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cache, "busybox-rootfs-"+key+".tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	// The script writes beside out and renames, so concurrent builds by
	// other test binaries are safe, and a reader never sees half a file.
	cmd := exec.Command(script, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
