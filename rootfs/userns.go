package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"

	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

// In a user namespace (a rootless cairn, see package rootless) three things
// differ, all said here: overlayfs, mounted with userxattr, keeps its
// opaque mark in user.overlay.opaque; a file can only be owned by an ID
// the namespace maps; and device nodes cannot be made, so a layer's are
// skipped with a warning, as Podman does.

var inUserNS = userns.RunningInUserNS()

// OverlayOpaque is the xattr that marks an opaque directory of an overlay
// upper directory or snapshot, with the value "y".
var OverlayOpaque = overlayOpaque()

func overlayOpaque() string {
	if inUserNS {
		return "user.overlay.opaque"
	}
	return "trusted.overlay.opaque"
}

// Warn reports what Apply skipped (a rootless store's device nodes); by
// default, on standard error.
var Warn = func(msg string) { fmt.Fprintln(os.Stderr, "WARNING: "+msg) }

// chownError explains a failed chown: in a user namespace, EINVAL is an ID
// that the namespace does not map.
func chownError(hdr *tar.Header, err error) error {
	if inUserNS && errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("owned by %d:%d, an ID outside this user namespace's (see /proc/self/uid_map and gid_map): give the user more subordinate IDs in /etc/subuid and /etc/subgid: %w", hdr.Uid, hdr.Gid, ErrUnrepresentable)
	}
	return fmt.Errorf("chown: %w", err)
}

// skipDevice reports whether a device node that mknod refused is skipped:
// in a user namespace, it is, with a warning that names it.
func skipDevice(hdr *tar.Header, err error) bool {
	if !inUserNS || !errors.Is(err, unix.EPERM) {
		return false
	}
	Warn(fmt.Sprintf("layer entry %q: device %d:%d skipped: a rootless store cannot make device nodes", hdr.Name, hdr.Devmajor, hdr.Devminor))
	return true
}
