package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const copyBuffer = 256 << 10

// Apply unpacks one uncompressed OCI layer tar from r into dir and returns
// the unpacked size: the sum of the sizes of its regular files.
//
// dir must be a fresh directory owned by the caller. It receives this layer
// alone, as one overlayfs lowerdir: the layers below are not in it. On error
// dir is left in an undefined state and the caller must remove it. Apply
// does not sync; the caller syncs the filesystem once. It needs root (or
// CAP_CHOWN, CAP_FOWNER, CAP_MKNOD and CAP_SYS_ADMIN) and a mounted /proc.
//
// Nothing outside dir is ever created, changed or removed:
//
//   - Names are cleaned lexically within dir: a leading "/" is dropped and
//     "a/../b" means "b", but a name whose ".." climbs above dir is refused
//     with [ErrUnsafe] (so is "/a/../../b"); a hard link target likewise.
//   - Parent directories are resolved inside dir, one openat per component
//     from dir's fd: a symlink among them resolves as if dir were "/" (as
//     chroot does), ".." stops at dir. Missing parents are made, mode 0755.
//     Paths of any length work, one name at a time.
//   - The last component of a name is never followed: every entry is
//     created exclusively (O_EXCL, mknodat, symlinkat, linkat) in its
//     parent's fd, and metadata is set without following symlinks.
//   - Each name is used once. A second entry of a name that exists already
//     is a duplicate ([ErrInvalid]), except a directory repeated (its last
//     metadata wins, its xattrs accumulate) and a whiteout (see below).
//
// OCI whiteouts become overlay whiteouts: ".wh.NAME" is a character device
// 0/0 at NAME, ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory,
// and other ".wh..wh.*" names are skipped, as Docker does. A whiteout and a
// real entry of one name in one layer: the real entry wins, in either order.
// A whiteout of "", "." or ".." is [ErrUnsafe]. A layer with an opaque root
// hides every layer below it, so its whiteouts hide nothing: none is left.
//
// Owners, modes (with setuid, setgid and sticky bits), access and
// modification times and the xattrs of PAX SCHILY.xattr records are set on
// every entry but hard links, which share the target's inode. Overlay's own
// xattrs (trusted.overlay.*, user.overlay.*) are never set; an xattr the
// filesystem does not support is skipped. Directory modes and times are set
// last, after all their children. Aligned 32 KiB blocks of zeros in regular
// files become holes, and so do the holes of a sparse entry, without their
// zeros being read (holes.go).
//
// After the end of the archive Apply reads r to its end, so that a digest or
// a compressed trailer of the stream is checked whole. ctx is checked before
// each entry and while copying data.
func Apply(ctx context.Context, dir string, r io.Reader) (int64, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	a := &applier{
		root:     root,
		w:        walker{root: root, whiteouts: map[fileID]struct{}{}},
		buf:      make([]byte, copyBuffer),
		dirIndex: map[string]int{},
	}
	defer a.close()

	tr := tar.NewReader(r)
	var size int64
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return size, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// ErrInsecurePath (GODEBUG=tarinsecurepath=0) is handled below.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return size, streamError(last, err)
		}
		if err := a.entry(ctx, hdr, tr); err != nil {
			return size, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if isReg(hdr) {
			size += hdr.Size
		}
		last = hdr.Name
	}
	if err := a.finish(); err != nil {
		return size, err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return size, streamError(last, err)
	}
	return size, nil
}

// applier holds the state of one Apply.
type applier struct {
	root int
	w    walker
	buf  []byte

	comps, linkComps []string // reused by clean

	dirs     []dirMeta      // directory modes and times, set at the end
	dirIndex map[string]int // cleaned name -> index in dirs

	opaqueRoot bool         // the layer has a ".wh..wh..opq" at its root
	made       []whiteoutAt // the whiteouts it made, for dropWhiteouts
}

type dirMeta struct {
	name  string // as written in the tar, for errors
	path  string // cleaned
	mode  uint32
	times [2]unix.Timespec
}

func (a *applier) close() {
	a.w.close()
	unix.Close(a.root)
}

func (a *applier) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q: %w", hdr.Typeflag, ErrInvalid)
	}
	comps, err := clean(a.comps[:0], hdr.Name)
	a.comps = comps
	if err != nil {
		return err
	}
	if len(comps) > 0 && strings.HasPrefix(comps[len(comps)-1], whiteoutPrefix) {
		return a.whiteout(comps[:len(comps)-1], comps[len(comps)-1])
	}
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return fmt.Errorf("owner %d:%d out of range: %w", hdr.Uid, hdr.Gid, ErrInvalid)
	}
	if len(comps) == 0 {
		return a.rootEntry(hdr)
	}
	parent, base := comps[:len(comps)-1], comps[len(comps)-1]
	if hdr.Typeflag == tar.TypeLink {
		return a.link(parent, base, hdr)
	}
	pfd, err := a.w.dir(parent, true)
	if err != nil {
		return err
	}
	switch {
	case isReg(hdr):
		return a.file(ctx, pfd, base, hdr, r)
	case hdr.Typeflag == tar.TypeDir:
		return a.mkdir(pfd, base, comps, hdr)
	}
	return a.special(pfd, base, hdr)
}

// isReg reports whether hdr is a regular file; the tar reader expands old
// GNU sparse files but keeps their type.
func isReg(hdr *tar.Header) bool {
	return hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse
}

// create runs mk to create base in pfd. If base exists and is a whiteout of
// this layer, it is replaced: in one layer, a real entry beats a whiteout of
// its name. Anything else there makes a duplicate entry, except a directory
// met again by a directory entry, which create reports as repeated.
func (a *applier) create(pfd int, base string, dir bool, mk func() error) (repeated bool, err error) {
	for {
		err := mk()
		if err != unix.EEXIST {
			return false, err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, err
		}
		switch {
		case dir && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			return true, nil
		case a.w.isWhiteout(&st):
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return false, err
			}
			delete(a.w.whiteouts, idOf(&st))
		default:
			return false, fmt.Errorf("duplicate entry: %w", ErrInvalid)
		}
	}
}

func (a *applier) file(ctx context.Context, pfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd := -1
	_, err := a.create(pfd, base, false, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	var holes io.WriterTo
	if tr, ok := r.(*tar.Reader); ok {
		holes = holesOf(tr)
	}
	if holes != nil {
		err = a.writeSparse(ctx, fd, holes, hdr.Size)
	} else {
		err = a.write(ctx, fd, r, hdr.Size)
	}
	if err == nil {
		err = a.meta(fd, -1, "", hdr)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

func (a *applier) mkdir(pfd int, base string, comps []string, hdr *tar.Header) error {
	_, err := a.create(pfd, base, true, func() error { return unix.Mkdirat(pfd, base, 0o755) })
	if err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return chownError(hdr, err)
	}
	if hasXattrs(hdr) {
		fd, err := unix.Openat(pfd, base, dirFlags, 0)
		if err != nil {
			return err
		}
		err = a.xattrs(hdr, fd, -1, "")
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	a.deferDir(hdr, strings.Join(comps, "/"))
	return nil
}

// rootEntry applies a directory entry that names the root itself.
func (a *applier) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("entry would replace the layer root: %w", ErrUnsafe)
	}
	if err := unix.Fchown(a.root, hdr.Uid, hdr.Gid); err != nil {
		return chownError(hdr, err)
	}
	if err := a.xattrs(hdr, a.root, -1, ""); err != nil {
		return err
	}
	a.deferDir(hdr, "")
	return nil
}

// deferDir records the mode and times of a directory, to be set by finish.
// A repeated directory keeps its last metadata.
func (a *applier) deferDir(hdr *tar.Header, path string) {
	d := dirMeta{name: hdr.Name, path: path, mode: mode(hdr), times: times(hdr)}
	if i, ok := a.dirIndex[path]; ok {
		a.dirs[i] = d
		return
	}
	a.dirIndex[path] = len(a.dirs)
	a.dirs = append(a.dirs, d)
}

// finish sets the modes and times of directories, now that all their
// children exist.
func (a *applier) finish() error {
	if a.opaqueRoot {
		if err := a.dropWhiteouts(); err != nil {
			return err
		}
	}
	for _, d := range a.dirs {
		fd := a.root
		if d.path != "" {
			comps, _ := clean(a.comps[:0], d.path)
			a.comps = comps
			var err error
			if fd, err = a.w.dir(comps, false); err != nil {
				return fmt.Errorf("layer entry %q: %w", d.name, err)
			}
		}
		if err := unix.Fchmod(fd, d.mode); err != nil {
			return fmt.Errorf("layer entry %q: chmod: %w", d.name, err)
		}
		if err := unix.UtimesNanoAt(fd, "", d.times[:], unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("layer entry %q: set times: %w", d.name, err)
		}
	}
	return nil
}

// special creates a symlink, a device or a fifo.
func (a *applier) special(pfd int, base string, hdr *tar.Header) error {
	var dev int
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		if hdr.Devmajor < 0 || hdr.Devmajor >= 1<<12 || hdr.Devminor < 0 || hdr.Devminor >= 1<<20 {
			return fmt.Errorf("device %d:%d out of range: %w", hdr.Devmajor, hdr.Devminor, ErrInvalid)
		}
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	skipped := false
	_, err := a.create(pfd, base, false, func() error {
		var err error
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			return unix.Symlinkat(hdr.Linkname, pfd, base)
		case tar.TypeChar:
			err = unix.Mknodat(pfd, base, unix.S_IFCHR|0o600, dev)
		case tar.TypeBlock:
			err = unix.Mknodat(pfd, base, unix.S_IFBLK|0o600, dev)
		default:
			return unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0)
		}
		if err != nil && skipDevice(hdr, err) {
			skipped, err = true, nil
		}
		return err
	})
	if err != nil || skipped {
		return err
	}
	return a.meta(-1, pfd, base, hdr)
}

// link makes a hard link to an earlier entry of this layer.
func (a *applier) link(parent []string, base string, hdr *tar.Header) error {
	target, err := clean(a.linkComps[:0], hdr.Linkname)
	a.linkComps = target
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if len(target) == 0 {
		return fmt.Errorf("hardlink to the layer root: %w", ErrInvalid)
	}
	tname := target[len(target)-1]
	tfd, err := a.w.dir(target[:len(target)-1], false)
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstatat(tfd, tname, &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("hardlink target %q: not in this layer: %w", hdr.Linkname, ErrInvalid)
	case err != nil:
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Errorf("hardlink target %q: is a directory: %w", hdr.Linkname, ErrInvalid)
	case a.w.isWhiteout(&st):
		return fmt.Errorf("hardlink target %q: is a whiteout: %w", hdr.Linkname, ErrInvalid)
	}
	// The next lookup may close tfd: keep a copy.
	if tfd, err = unix.FcntlInt(uintptr(tfd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
		return err
	}
	defer unix.Close(tfd)

	pfd, err := a.w.dir(parent, true)
	if err != nil {
		return err
	}
	// Flags 0: a symlink target is linked itself, not followed.
	_, err = a.create(pfd, base, false, func() error { return unix.Linkat(tfd, tname, pfd, base, 0) })
	return err
}

// meta sets the owner, xattrs, mode and times of a new non-directory,
// through fd if it is open, else by name in pfd, never following a symlink.
func (a *applier) meta(fd, pfd int, base string, hdr *tar.Header) error {
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	} else {
		err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return chownError(hdr, err)
	}
	// After chown, which drops security.capability; before chmod.
	if err := a.xattrs(hdr, fd, pfd, base); err != nil {
		return err
	}
	ts := times(hdr)
	if fd >= 0 {
		if err := unix.Fchmod(fd, mode(hdr)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		err = unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH)
	} else {
		if hdr.Typeflag != tar.TypeSymlink {
			// Not a symlink: we made it, so following is moot.
			if err := unix.Fchmodat(pfd, base, mode(hdr), 0); err != nil {
				return fmt.Errorf("chmod: %w", err)
			}
		}
		err = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func mode(hdr *tar.Header) uint32 { return uint32(hdr.Mode & 0o7777) }

func times(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// markInvalid wraps ErrInvalid around errors of a corrupt or truncated
// stream: a premature end, or what archive/tar says of the stream (a bad
// header, a sparse entry whose data does not match its map, errors it does
// not export and that say "archive/tar:").
func markInvalid(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, tar.ErrHeader) && !strings.HasPrefix(err.Error(), "archive/tar: ") {
		return err
	}
	return fmt.Errorf("%w: %w", err, ErrInvalid)
}

// streamError describes an error reading the tar stream between entries.
func streamError(last string, err error) error {
	err = markInvalid(err)
	what := "read layer stream"
	if errors.Is(err, ErrInvalid) {
		what = "corrupt layer stream"
	}
	if last == "" {
		return fmt.Errorf("%s at its start: %w", what, err)
	}
	return fmt.Errorf("%s after entry %q: %w", what, last, err)
}
