package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/moby/sys/userns"
)

// uidEnv carries the user's own UID into the namespace, where cairn's UID
// is 0: its presence (in a user namespace) is what makes a cairn rootless.
const uidEnv = "_CAIRN_ROOTLESS_UID"

// Active reports whether this cairn runs for an unprivileged user, inside
// that user's namespace (Enter has run).
func Active() bool {
	_, ok := os.LookupEnv(uidEnv)
	return ok && userns.RunningInUserNS()
}

// UID is the user's own UID: in the namespace, the one container root is.
func UID() int {
	if v, ok := os.LookupEnv(uidEnv); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return os.Getuid()
}

// DataDir is the user's store: $XDG_DATA_HOME/cairn, else
// ~/.local/share/cairn.
func DataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cairn"), nil
	}
	home := os.Getenv("HOME")
	if !filepath.IsAbs(home) {
		u, err := user.LookupId(strconv.Itoa(UID()))
		if err != nil {
			return "", fmt.Errorf("find the home directory of user %d (set HOME or XDG_DATA_HOME): %w", UID(), err)
		}
		home = u.HomeDir
	}
	return filepath.Join(home, ".local", "share", "cairn"), nil
}

// RunDir is the user's runtime state: $XDG_RUNTIME_DIR/cairn, or, where
// XDG_RUNTIME_DIR is unset or is not a directory of the user's (su leaves
// the first user's), /tmp/cairn-run-UID, a directory of the user's alone.
// It is made if missing.
func RunDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		if _, own := ownDir(d); own {
			dir := filepath.Join(d, "cairn")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", fmt.Errorf("the runtime directory: %w", err)
			}
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("cairn-run-%d", UID()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("the runtime directory (XDG_RUNTIME_DIR is not the user's): %w", err)
	}
	// Someone else may have made it first: it must be the user's own, and
	// closed to others.
	if fi, own := ownDir(dir); !own || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the runtime directory %s (XDG_RUNTIME_DIR is not the user's) is not a private directory of user %d: remove it, or set XDG_RUNTIME_DIR", dir, UID())
	}
	return dir, nil
}

// ownDir reports whether dir is a directory (not a symlink) of this
// process's user.
func ownDir(dir string) (os.FileInfo, bool) {
	fi, err := os.Lstat(dir)
	return fi, err == nil && fi.IsDir() && int(fi.Sys().(*syscall.Stat_t).Uid) == os.Getuid()
}
