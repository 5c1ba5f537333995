package rootfs

import (
	"archive/tar"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Extended attributes: which of them a layer carries, how the tar writer
// reads them and how Apply sets them. xattrRules decides for both.

const (
	paxXattr    = "SCHILY.xattr." // prefix of the PAX record of an xattr
	xattrBuffer = 64 << 10        // XATTR_LIST_MAX and XATTR_SIZE_MAX
)

// An xattrScope says how far an xattr travels.
type xattrScope int

const (
	// xattrKept is a property of the file: the tar writer writes it and
	// Apply sets it.
	xattrKept xattrScope = iota

	// xattrOverlay is overlayfs's own, private to the overlay it
	// describes: the tar writer leaves it out and Apply never sets it.
	// Whiteouts and opaque directories travel as OCI whiteouts instead.
	xattrOverlay

	// xattrHostLabel is the host's SELinux label, which means nothing on
	// another host: the tar writer leaves it out, but Apply sets it when
	// a layer carries one.
	xattrHostLabel
)

// xattrRules lists the xattrs that are not simply kept, each by its name or
// by a prefix that ends with ".". It is the one rule of the tar writer and
// of Apply: both ask xattrScopeOf.
var xattrRules = []struct {
	name  string
	scope xattrScope
}{
	{"trusted.overlay.", xattrOverlay},
	{"user.overlay.", xattrOverlay},
	{"security.selinux", xattrHostLabel},
}

// xattrScopeOf returns the scope of the xattr name.
func xattrScopeOf(name string) xattrScope {
	for _, r := range xattrRules {
		if name == r.name || strings.HasSuffix(r.name, ".") && strings.HasPrefix(name, r.name) {
			return r.scope
		}
	}
	return xattrKept
}

// privateXattr reports whether an xattr must not leave the host: the tar
// writer leaves it out of every entry.
func privateXattr(name string) bool { return xattrScopeOf(name) != xattrKept }

// appliedXattr reports whether Apply sets an xattr that a tar entry carries.
func appliedXattr(name string) bool { return xattrScopeOf(name) != xattrOverlay }

// xattrs adds the file's xattrs to hdr as SCHILY.xattr records. They are
// read through rfd if it is open, else through the O_PATH fd by its
// /proc/self/fd link, which names the file itself, even a symlink.
func (t *TarWriter) xattrs(hdr *tar.Header, fd, rfd int) error {
	var proc string
	if rfd < 0 {
		proc = procFD(fd)
	}
	list := func(b []byte) (int, error) {
		if rfd >= 0 {
			return unix.Flistxattr(rfd, b)
		}
		return unix.Listxattr(proc, b)
	}
	get := func(name string, b []byte) (int, error) {
		if rfd >= 0 {
			return unix.Fgetxattr(rfd, name, b)
		}
		return unix.Getxattr(proc, name, b)
	}
	if t.xbuf == nil {
		t.xbuf, t.vbuf = make([]byte, xattrBuffer), make([]byte, xattrBuffer)
	}
	n, err := sizedCall(&t.xbuf, list)
	switch {
	case err == unix.ENOTSUP:
		return nil
	case err != nil:
		return fmt.Errorf("list xattrs: %w", noProc(err))
	case n == 0:
		return nil
	}
	for _, name := range strings.Split(string(t.xbuf[:n]), "\x00") {
		if name == "" || privateXattr(name) {
			continue
		}
		m, err := sizedCall(&t.vbuf, func(b []byte) (int, error) { return get(name, b) })
		switch {
		case err == unix.ENODATA:
			continue // removed since listed
		case err != nil:
			return fmt.Errorf("get xattr %q: %w", name, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+name] = string(t.vbuf[:m])
	}
	return nil
}

// sizedCall calls an xattr call with *buf, growing it while it is too small.
func sizedCall(buf *[]byte, call func([]byte) (int, error)) (int, error) {
	for {
		n, err := call(*buf)
		if err != unix.ERANGE {
			return n, err
		}
		size, err := call(nil)
		if err != nil {
			return 0, err
		}
		*buf = make([]byte, max(2*len(*buf), size))
	}
}

// hasXattrs reports whether hdr carries an xattr record.
func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			return true
		}
	}
	return false
}

// xattrs sets the xattrs of hdr, through fd if it is open, else by name in
// pfd without following a symlink.
func (a *applier) xattrs(hdr *tar.Header, fd, pfd int, base string) error {
	var path string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !appliedXattr(name) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			// No lsetxattrat: reach base through its parent's fd.
			if path == "" {
				path = fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
			}
			err = unix.Lsetxattr(path, name, []byte(v), 0)
		}
		switch {
		case err == nil, err == unix.ENOTSUP:
		case err == unix.EPERM && fd < 0 && strings.HasPrefix(name, "user."):
			// Linux allows user.* only on regular files and directories.
		default:
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}
