package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"

	securejoin "github.com/cyphar/filepath-securejoin"

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

// fuseOpaque is fuse-overlayfs's own opaque mark; it also leaves the
// files of fuseMarks in an opaque directory of its upper directory.
const fuseOpaque = "user.fuseoverlayfs.opaque"

var fuseMarks = map[string]bool{".wh..wh..opq": true, ".wh..opq": true}

// IsOverlayMark reports whether name, in an overlay upper directory, is
// a mark of its overlay (fuse-overlayfs's of an opaque directory), not a
// file of the container.
func IsOverlayMark(name string) bool { return fuseMarks[name] }

// IsOpaque reports whether the directory open at fd (O_PATH will do) is
// an opaque directory of an overlay upper directory: marked so by the
// kernel's overlayfs (OverlayOpaque) or by fuse-overlayfs.
func IsOpaque(fd int) bool { return opaqueBy(fd) != "" }

// opaqueBy is the xattr that marks the directory at fd opaque:
// OverlayOpaque, fuseOpaque, or "" for none.
func opaqueBy(fd int) string {
	for _, x := range []string{OverlayOpaque, fuseOpaque} {
		var v [1]byte
		if n, err := unix.Getxattr(procFD(fd), x, v[:]); err == nil && n == 1 && v[0] == 'y' {
			return x
		}
	}
	return ""
}

// replaces reports whether the opaque directory name of the layer, whose
// mark is by, hides something below: always, when the kernel's overlayfs
// marked it; when fuse-overlayfs did (it marks the new ones too), if a
// lower directory has something of that name.
func (t *TarWriter) replaces(name, by string) bool {
	if by != fuseOpaque || t.opts.Lower == nil {
		return true
	}
	for _, l := range t.opts.Lower {
		// Resolved inside l: a symlink of a lower layer leads nowhere else.
		p, err := securejoin.SecureJoin(l, name)
		if err != nil {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return true // made where something was: the kernel's marks it too
		}
	}
	return false
}

// warn reports what Apply skipped (a rootless store's device nodes), on
// standard error.
func warn(msg string) { fmt.Fprintln(os.Stderr, "WARNING: "+msg) }

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
	warn(fmt.Sprintf("layer entry %q: device %d:%d skipped: a rootless store cannot make device nodes", hdr.Name, hdr.Devmajor, hdr.Devminor))
	return true
}
