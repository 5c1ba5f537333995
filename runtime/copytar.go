package runtime

// The two halves of the tar format of a copy: TarResource writes a tree as
// Docker's cp names it; ExtractToDir's extractor (and Untar, on the host)
// makes one from a stream, one name at a time through file descriptors.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/rootfs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// TarResource writes to w a tar stream of the file base in the directory
// dir (with base "", of dir itself), its entries named as Docker names
// those of a copy: name for the file itself ("/" after a directory's),
// name/… for what a directory holds ("./…" for name ".", "/…" for "/").
// Nothing is followed: a symlink is written as one, in the tree as at its
// top. A file that changes while it is read is written as it was read.
func TarResource(ctx context.Context, w io.Writer, dir *os.File, base, name string) error {
	src := dir
	if base != "" {
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lstat", Path: name, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return renamed(w, func(pw io.Writer) error {
				tw := rootfs.NewTarWriter(pw, rootfs.TarOptions{})
				err := tw.Add(ctx, procFD(dir), base)
				if cerr := tw.Close(); err == nil || errors.Is(err, rootfs.ErrChanged) {
					err = cerr
				}
				return err
			}, func(string) string { return name }, nil)
		}
		fd, err := unix.Openat(int(dir.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: name, Err: err}
		}
		src = os.NewFile(uintptr(fd), name)
		defer src.Close()
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	top := &tar.Header{
		Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/",
		Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0), Format: tar.FormatPAX,
	}
	prefix := strings.TrimSuffix(name, "/") + "/"
	return renamed(w, func(pw io.Writer) error {
		err := rootfs.WriteTree(ctx, pw, procFD(src), rootfs.TarOptions{})
		if errors.Is(err, rootfs.ErrChanged) {
			err = nil // the stream is whole: what was read, as Docker gives it
		}
		return err
	}, func(n string) string { return prefix + n }, top)
}

// renamed writes to w the tar stream that write writes, every name (and
// hard link target) passed through rename, after the entry first if it is
// not nil.
func renamed(w io.Writer, write func(io.Writer) error, rename func(string) string, first *tar.Header) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := func() error {
		tw := tar.NewWriter(w)
		if first != nil {
			if err := tw.WriteHeader(first); err != nil {
				return err
			}
		}
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			hdr.Name = rename(hdr.Name)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = rename(hdr.Linkname)
			}
			hdr.Format = tar.FormatPAX
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
		return tw.Close()
	}()
	pr.CloseWithError(errCopyDone)
	werr := <-done
	if err == nil && werr != nil && !errors.Is(werr, errCopyDone) {
		err = werr
	}
	return err
}

// Untar extracts the tar stream r (plain, gzip or zstd) into the directory
// dir of the host, as Docker's CLI ends a copy out of a container: by the
// rules of ExtractToDir, but the files are the caller's (no owner is set).
// Nothing is made outside dir, whatever the stream's names and links.
func Untar(ctx context.Context, r io.Reader, dir string) error {
	root, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, dest: "/", shown: filepath.Clean(dir), noChown: true}
	defer x.close()
	return x.untar(ctx, r)
}

// extractor extracts a tar stream into a directory of a tree, as Docker's
// archive.Unpack with NoOverwriteDirNonDir: every name is resolved inside
// the tree, each file made by its parent's fd without following its name.
type extractor struct {
	root    *os.File // the tree: nothing is resolved outside it
	dest    string   // the directory extracted into, absolute in the tree
	shown   string   // dest as messages show it (and Docker's checks see it)
	noChown bool     // the files stay the caller's
	chown   *[2]int  // every file owned by this uid and gid

	dirs      []extractedDir // times to set at the end
	destTimes *[2]unix.Timespec
	pname     string   // the parent directory last opened, in the tree
	pdir      *os.File // and its fd
	buf       []byte
}

type extractedDir struct {
	path  string // in the tree
	times [2]unix.Timespec
}

func (x *extractor) close() {
	if x.pdir != nil {
		x.pdir.Close()
		x.pdir = nil
	}
}

func (x *extractor) untar(ctx context.Context, r io.Reader) error {
	rc, _, err := rootfs.Decompress(r)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// ErrInsecurePath (GODEBUG=tarinsecurepath=0): names are checked below.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last: what was made in them changed them.
	for _, d := range x.dirs {
		parent, base := filepath.Split(d.path)
		pdir, err := x.parent(filepath.Clean(parent), false)
		if err == nil {
			err = unix.UtimesNanoAt(int(pdir.Fd()), base, d.times[:], unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("set times of %s: %w", filepath.Join(x.shown, strings.TrimPrefix(d.path, x.dest)), err)
		}
	}
	if x.destTimes != nil {
		if err := x.onDest(func(fd int) error {
			return unix.UtimesNanoAt(fd, "", x.destTimes[:], unix.AT_EMPTY_PATH)
		}); err != nil {
			return fmt.Errorf("set times of %s: %w", x.shown, err)
		}
	}
	return nil
}

func breakout(format string, args ...any) error {
	return &copyError{kind: ErrUnsafeArchive, msg: fmt.Sprintf(format, args...)}
}

func overwrite(format string, args ...any) error {
	return &copyError{kind: ErrConflict, msg: fmt.Sprintf(format, args...)}
}

// entry extracts one entry of the stream.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := filepath.Clean(hdr.Name)
	path := filepath.Join(x.shown, name)
	if rel, err := filepath.Rel(x.shown, path); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return breakout("%q is outside of %q", name, x.shown)
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid >= 1<<32-1 || hdr.Gid >= 1<<32-1 {
		return fmt.Errorf("%s: owner %d:%d out of range", path, hdr.Uid, hdr.Gid)
	}
	target := filepath.Join(x.dest, name)
	if target == x.dest {
		// The directory extracted into: its own entry.
		if hdr.Typeflag != tar.TypeDir {
			return overwrite("cannot overwrite directory %q with non-directory %q", path, x.shown)
		}
		if name == "." {
			return nil
		}
		return x.destMeta(hdr)
	}
	parent, base := filepath.Split(target)
	pdir, err := x.parent(filepath.Clean(parent), true)
	if err != nil {
		return err
	}
	pfd := int(pdir.Fd())
	var st unix.Stat_t
	switch err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case isDir && hdr.Typeflag != tar.TypeDir:
			return overwrite("cannot overwrite directory %q with non-directory %q", path, x.shown)
		case !isDir && hdr.Typeflag == tar.TypeDir:
			return overwrite("cannot overwrite non-directory %q with directory %q", path, x.shown)
		case !isDir:
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return &os.PathError{Op: "remove", Path: path, Err: err}
			}
		}
	case err != unix.ENOENT:
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return x.create(pfd, base, path, target, hdr, r)
}

// parent opens directory p of the tree, making what is missing of it
// (0755, the caller's) with mkdir.
func (x *extractor) parent(p string, mkdir bool) (*os.File, error) {
	if x.pdir != nil && x.pname == p {
		return x.pdir, nil
	}
	x.close()
	var d *os.File
	var err error
	if mkdir {
		d, err = pathrs.MkdirAllHandle(x.root, p, 0o755)
	} else {
		d, err = pathrs.OpenatInRoot(x.root, p)
	}
	if err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(x.shown, strings.TrimPrefix(p, x.dest)), Err: errnoOf(err)}
	}
	x.pdir, x.pname = d, p
	return d, nil
}

// onDest calls fn with a readable fd of the directory extracted into.
func (x *extractor) onDest(fn func(fd int) error) error {
	h, err := pathrs.OpenatInRoot(x.root, x.dest)
	if err != nil {
		return err
	}
	defer h.Close()
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(int(d.Fd()))
}

// destMeta gives the directory extracted into the owner and mode of its
// entry ("/" in a copy of a container's root), as Docker does.
func (x *extractor) destMeta(hdr *tar.Header) error {
	err := x.onDest(func(fd int) error {
		if !x.noChown {
			uid, gid := x.owner(hdr)
			if err := unix.Fchown(fd, uid, gid); err != nil {
				return err
			}
		}
		return unix.Fchmod(fd, uint32(hdr.Mode&0o7777))
	})
	if err != nil {
		return &os.PathError{Op: "chmod", Path: x.shown, Err: err}
	}
	ts := entryTimes(hdr)
	x.destTimes = &ts
	return nil
}

func (x *extractor) owner(hdr *tar.Header) (int, int) {
	if x.chown != nil {
		return x.chown[0], x.chown[1]
	}
	return hdr.Uid, hdr.Gid
}

// entryTimes are the access and modification times Docker gives an entry.
func entryTimes(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.Before(hdr.ModTime) {
		atime = hdr.ModTime
	}
	a, _ := unix.TimeToTimespec(atime)
	m, _ := unix.TimeToTimespec(hdr.ModTime)
	return [2]unix.Timespec{a, m}
}

// create makes the file of hdr as base in the directory pfd (path for
// messages, target in the tree), where nothing of its name is but a
// directory when it is one, and sets its owner, xattrs, mode and times.
func (x *extractor) create(pfd int, base, path, target string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	var f *os.File // what was made, open, for a directory or a file
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err = unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: path, Err: err}
		}
		f, err = openAt(pfd, base, path, unix.O_RDONLY|unix.O_DIRECTORY)
	case tar.TypeReg, tar.TypeGNUSparse, '\x00':
		if f, err = openAt(pfd, base, path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL); err != nil {
			break
		}
		if x.buf == nil {
			x.buf = make([]byte, 256<<10)
		}
		if _, err = io.CopyBuffer(struct{ io.Writer }{f}, r, x.buf); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	case tar.TypeSymlink:
		// As Docker: a relative target must not climb out of the directory.
		if t := filepath.Join(filepath.Dir(path), hdr.Linkname); !strings.HasPrefix(t, x.shown) {
			return breakout("invalid symlink %q -> %q", path, hdr.Linkname)
		}
		if err = unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: path, Err: err}
		}
	case tar.TypeLink:
		if t := filepath.Join(x.shown, hdr.Linkname); !strings.HasPrefix(t, x.shown) {
			return breakout("invalid hardlink %q -> %q", t, hdr.Linkname)
		}
		if err = x.link(pfd, base, path, hdr.Linkname); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ, dev := uint32(unix.S_IFIFO), 0
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ, dev = unix.S_IFCHR, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		case tar.TypeBlock:
			typ, dev = unix.S_IFBLK, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		}
		if err = unix.Mknodat(pfd, base, typ|0o600, dev); err != nil {
			return &os.PathError{Op: "mknod", Path: path, Err: err}
		}
	default:
		return fmt.Errorf("%s: unhandled tar header type %d", path, hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	if err := x.meta(f, pfd, base, path, hdr, mode); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirs = append(x.dirs, extractedDir{path: target, times: entryTimes(hdr)})
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", path, err)
		}
	}
	return nil
}

func openAt(pfd int, base, path string, flags int) (*os.File, error) {
	fd, err := unix.Openat(pfd, base, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// link makes base in pfd a hard link to the entry linkname of the stream,
// which is resolved in the tree below the directory extracted into.
func (x *extractor) link(pfd int, base, path, linkname string) error {
	dir, tbase := filepath.Split(filepath.Join(x.dest, linkname))
	if tbase == "" {
		return &os.PathError{Op: "link", Path: path, Err: unix.EPERM}
	}
	td, err := pathrs.OpenatInRoot(x.root, filepath.Clean(dir))
	if err != nil {
		return &os.PathError{Op: "link", Path: path, Err: errnoOf(err)}
	}
	defer td.Close()
	// Flags 0: a symlink is linked itself, not followed.
	if err := unix.Linkat(int(td.Fd()), tbase, pfd, base, 0); err != nil {
		return &os.PathError{Op: "link", Path: path, Err: err}
	}
	return nil
}

// meta sets the owner, xattrs, mode and times of what create made: through
// f when it is open, else by its name in pfd, never following it.
func (x *extractor) meta(f *os.File, pfd int, base, path string, hdr *tar.Header, mode uint32) error {
	uid, gid := x.owner(hdr)
	if !x.noChown {
		var err error
		if f != nil {
			err = unix.Fchown(int(f.Fd()), uid, gid)
		} else {
			err = unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return &os.PathError{Op: "lchown", Path: path, Err: err}
		}
	}
	if f != nil {
		// After chown, which drops security.capability; before chmod.
		for k, v := range hdr.PAXRecords {
			name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
			if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") || name == "security.selinux" {
				continue
			}
			if err := unix.Fsetxattr(int(f.Fd()), name, []byte(v), 0); err != nil && err != unix.ENOTSUP && err != unix.EPERM {
				return &os.PathError{Op: "setxattr " + name, Path: path, Err: err}
			}
		}
		if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
			return &os.PathError{Op: "chmod", Path: path, Err: err}
		}
		if hdr.Typeflag == tar.TypeDir {
			return nil // its times are set at the end
		}
		ts := entryTimes(hdr)
		if err := unix.UtimesNanoAt(int(f.Fd()), "", ts[:], unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "chtimes", Path: path, Err: err}
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeLink {
		// The inode of another entry: it takes the link's owner, but keeps
		// its mode and times, as Docker leaves them.
		return nil
	}
	// A symlink has no mode of its own; anything else made by name is
	// chmodded through an O_PATH fd of it, which follows nothing.
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil {
			return &os.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	ts := entryTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chtimes", Path: path, Err: err}
	}
	return nil
}
