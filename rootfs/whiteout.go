package rootfs

import (
	"archive/tar"
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Whiteouts: the OCI ones of a layer's tar stream, and the overlay ones of
// a directory on disk. Apply turns the first into the second; the tar
// writer writes the first, from an overlay upper directory too.

const (
	whiteoutPrefix = ".wh."         // .wh.NAME deletes NAME
	whiteoutMeta   = ".wh..wh."     // Docker's markers, skipped, but for
	whiteoutOpaque = ".wh..wh..opq" // which deletes its directory's contents
)

// OverlayOpaque (userns.go) set to "y" marks an overlay directory whose
// contents hide those of the layers below. It is one of overlayfs's own
// xattrs, never copied from or to a tar entry (see xattrRules).

// whiteout turns an OCI whiteout into an overlay one.
func (a *applier) whiteout(parent []string, base string) error {
	if base == whiteoutOpaque {
		a.opaqueRoot = a.opaqueRoot || len(parent) == 0
		fd, err := a.w.dir(parent, true)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(fd, OverlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s: %w", OverlayOpaque, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout of %q: %w", name, ErrUnsafe)
	}
	pfd, err := a.w.dir(parent, true)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	if err != nil && err != unix.EEXIST {
		return fmt.Errorf("mknod: %w", err)
	}
	if serr := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
		return serr
	}
	if err == unix.EEXIST {
		if a.w.isWhiteout(&st) {
			return fmt.Errorf("duplicate entry: %w", ErrInvalid)
		}
		return nil // the real entry wins
	}
	a.w.whiteouts[idOf(&st)] = struct{}{}
	a.made = append(a.made, whiteoutAt{parent: slices.Clone(parent), name: name})
	return nil
}

// whiteoutAt is where Apply made a whiteout.
type whiteoutAt struct {
	parent []string // cleaned components
	name   string
}

// dropWhiteouts removes the whiteouts of a layer whose root is opaque: no
// layer is stacked below it (see package snapshot), so they hide nothing,
// and in a directory of that layer alone overlayfs would list them, as
// names that cannot be opened. A real entry that won over a whiteout of
// its name stays.
func (a *applier) dropWhiteouts() error {
	for _, wh := range a.made {
		pfd, err := a.w.dir(wh.parent, false)
		if err != nil {
			return fmt.Errorf("whiteout of %q: %w", path.Join(append(wh.parent, wh.name)...), err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, wh.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("whiteout of %q: %w", path.Join(append(wh.parent, wh.name)...), err)
		}
		if !a.w.isWhiteout(&st) {
			continue
		}
		if err := unix.Unlinkat(pfd, wh.name, 0); err != nil {
			return fmt.Errorf("whiteout of %q: remove: %w", path.Join(append(wh.parent, wh.name)...), err)
		}
	}
	return nil
}

// AddWhiteout writes the OCI whiteout of name, "dir/.wh.base", which
// deletes name from the layers below. name is clean and relative, as for
// Add. The entry is an empty regular file, mode 0, owned by 0:0, dated
// 1970-01-01, so that layers are reproducible.
func (t *TarWriter) AddWhiteout(name string) error {
	comps, err := splitName(name)
	if err != nil {
		return err
	}
	base := comps[len(comps)-1]
	if strings.HasPrefix(base, whiteoutPrefix) {
		return t.fail(name, fmt.Errorf("whiteout of a whiteout name: %w", ErrUnrepresentable))
	}
	dir, _ := path.Split(name)
	return t.marker(name, dir+whiteoutPrefix+base)
}

// AddOpaque writes the OCI opaque whiteout of the directory dir,
// "dir/.wh..wh..opq", which hides the contents of dir in the layers below;
// dir "." is the root. It follows the entry of dir itself, written by Add.
// The entry is like that of AddWhiteout.
func (t *TarWriter) AddOpaque(dir string) error {
	if dir == "." {
		return t.marker(dir, whiteoutOpaque)
	}
	if _, err := splitName(dir); err != nil {
		return err
	}
	return t.marker(dir, dir+"/"+whiteoutOpaque)
}

// marker writes an empty whiteout entry.
func (t *TarWriter) marker(name, entry string) error {
	if t.err != nil {
		return t.err
	}
	return t.fail(name, t.header(&tar.Header{Typeflag: tar.TypeReg, Name: entry, Format: tar.FormatPAX}))
}
