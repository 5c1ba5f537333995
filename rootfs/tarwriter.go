package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the tar writer, wrapped with the offending entry's name.
var (
	// ErrUnrepresentable reports a file that a tar stream cannot carry as it
	// is: in a layer, a name whose last component begins with ".wh." (it
	// would read as a whiteout); an xattr whose name holds "="; headers
	// longer than tar readers accept (1 MiB).
	ErrUnrepresentable = errors.New("rootfs: entry cannot be represented")

	// ErrChanged reports a file that changed while it was being written: its
	// size, modification or change time moved, or it vanished. The entry is
	// complete (exactly the size its header announces, padded with zeros if
	// the file shrank) and the stream stays valid, but it may hold a mix of
	// the old and new contents. A caller that froze the tree treats it as an
	// error; one that exports a running container may accept the stream.
	ErrChanged = errors.New("rootfs: file changed while being written")

	errClosed = errors.New("rootfs: tar writer closed")
	errNoProc = errors.New("/proc/self/fd missing: is /proc mounted?")
)

const (
	maxPAXHeader = 1 << 20 // PAX header data that archive/tar reads or writes
	outBuffer    = 64 << 10
)

// TarOptions says what kind of tar stream a TarWriter writes.
type TarOptions struct {
	// Layer: the stream is an OCI image layer, where a name whose last
	// component begins with ".wh." reads as a whiteout. Add refuses such a
	// name with [ErrUnrepresentable]; AddWhiteout and AddOpaque write the
	// real whiteouts. Without Layer (an export), such names are written as
	// they are.
	Layer bool

	// Overlay: the tree is an overlay upper directory, written as the layer
	// of its changes. A character device 0/0 is a deleted file, written as
	// its OCI whiteout; a directory marked opaque (see IsOpaque) was
	// replaced, and its entry is followed by its opaque whiteout.
	Overlay bool

	// Lower are the directories below an Overlay upper directory, topmost
	// first. fuse-overlayfs marks every directory it makes opaque, new or
	// not; such a mark is written only where one of Lower has something of
	// the directory's name, as the kernel's overlayfs marks them. Nil: every
	// mark is written.
	Lower []string

	// MaxTime, if not zero, clamps every time written: a file modified
	// later is dated MaxTime, for layers that are the same whenever they
	// are made.
	MaxTime time.Time
}

// TarWriter writes files of a directory tree as tar entries: an export of
// a container's filesystem, or the layer of a commit.
//
// Exporting a whole tree is one call to [WriteTree]. A commit writes the
// changes of an overlay upper directory, as the caller lists them, one
// entry at a time:
//
//	tw := rootfs.NewTarWriter(w, rootfs.TarOptions{Layer: true})
//	for _, c := range changes {
//		var err error
//		switch {
//		case c.deleted:
//			err = tw.AddWhiteout(c.name) // "a/.wh.b"
//		case c.opaque: // the directory, then "a/.wh..wh..opq"
//			if err = tw.Add(ctx, upper, c.name); err == nil {
//				err = tw.AddOpaque(c.name)
//			}
//		default:
//			err = tw.Add(ctx, upper, c.name)
//		}
//		if err != nil {
//			tw.Close()
//			return err
//		}
//	}
//	return tw.Close() // the end of the archive; w stays open
//
// The tree may be hostile: no symlink is ever followed, in the last
// component of a name or among its parents (a symlink where a parent
// directory should be is [ErrUnsafe]), and no device is ever opened.
// Paths of any length work (up to the 1 MiB of headers that tar readers
// accept); every lookup is an openat of one component below the root's
// fd. Reading /proc/self/fd is needed.
//
// Each entry carries the file's type, its mode with the setuid, setgid and
// sticky bits, its owner as numbers (never names), its modification time
// truncated to whole seconds (no access or change time, as Docker writes
// layers, so that the same tree gives the same bytes), and all its xattrs
// as PAX SCHILY.xattr records but overlayfs's own (trusted.overlay.*,
// user.overlay.*) and security.selinux, which mean nothing elsewhere.
// Names have no "./" prefix and directories end with "/". A non-directory
// with more than one link whose inode was already written in this stream
// becomes a hard link to the first name written. Sockets are skipped.
// Regular files with holes are written in the PAX sparse format 1.0 that
// GNU tar and archive/tar read, so that they stay small.
//
// Output is buffered: nothing is complete before Close. A TarWriter is not
// safe for concurrent use.
type TarWriter struct {
	opts  TarOptions
	bw    *bufio.Writer
	tw    *tar.Writer
	dirs  dirCache
	links map[fileID]string // first name written of each inode with links

	buf     []byte     // file data and directory listings, reused
	xbuf    []byte     // xattr names
	vbuf    []byte     // xattr values
	linkbuf []byte     // symlink targets
	frags   []fragment // data of a sparse file

	dirty bool  // an entry is partly written
	err   error // sticky: the stream is broken, or closed
}

// NewTarWriter returns a TarWriter that writes a tar stream to w.
func NewTarWriter(w io.Writer, opts TarOptions) *TarWriter {
	bw := bufio.NewWriterSize(w, outBuffer)
	return &TarWriter{
		opts:  opts,
		bw:    bw,
		tw:    tar.NewWriter(bw),
		dirs:  dirCache{root: -1},
		links: map[fileID]string{},
	}
}

// Add writes the entry of the file root/name. name is slash-separated,
// relative to root, clean and not empty: "etc/passwd", not "./etc/passwd",
// "etc/" or "". Its metadata are read with lstat: a symlink is written as
// a symlink, and a symlink among the parents of name is an error.
//
// An error leaves the stream valid, and the caller may go on, unless it
// came in the middle of the entry (writing to w failed, reading the file's
// data failed, or ctx was done while copying it): then the stream is
// broken and every later call returns that error. A missing file
// ([fs.ErrNotExist]), [ErrUnsafe], [ErrUnrepresentable] and [ErrChanged]
// always leave it valid; after ErrChanged the entry has been written.
func (t *TarWriter) Add(ctx context.Context, root, name string) error {
	if t.err != nil {
		return t.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	comps, err := splitName(name)
	if err != nil {
		return err
	}
	if err := t.dirs.setRoot(root); err != nil {
		return err
	}
	pfd, err := t.dirs.open(comps[:len(comps)-1])
	if err == nil {
		_, err = t.entry(ctx, pfd, comps[len(comps)-1], name)
	}
	return t.fail(name, err)
}

// Close writes the end of the archive (two zero blocks), flushes the
// output and releases the writer's file descriptors. It does not close
// the underlying writer. Call it even after an error: it then writes
// nothing and returns the error that broke the stream.
func (t *TarWriter) Close() error {
	t.dirs.close()
	if t.err == errClosed {
		return nil
	}
	if t.err != nil {
		return t.err
	}
	err := t.tw.Close()
	if err == nil {
		err = t.bw.Flush()
	}
	if err != nil {
		t.err = fmt.Errorf("write tar end: %w", err)
		return t.err
	}
	t.err = errClosed
	return nil
}

// fail names the entry in err and, if the entry was left half-written,
// makes err sticky.
func (t *TarWriter) fail(name string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("tar entry %q: %w", name, err)
	if t.dirty {
		t.err = err
	}
	return err
}

// entry writes the entry of base, in the directory pfd, as name, and
// returns the file's type (its S_IFMT bits).
func (t *TarWriter) entry(ctx context.Context, pfd int, base, name string) (uint32, error) {
	if t.opts.Overlay && IsOverlayMark(base) {
		return 0, nil // the opaque mark, written as AddOpaque
	}
	if t.opts.Layer && strings.HasPrefix(base, whiteoutPrefix) {
		return 0, fmt.Errorf("name would read as a whiteout: %w", ErrUnrepresentable)
	}
	// An O_PATH fd follows nothing and opens no device; the file is then
	// read through this fd alone, so it cannot be swapped meanwhile.
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	typ := st.Mode & unix.S_IFMT
	if t.opts.Overlay && typ == unix.S_IFCHR && st.Rdev == 0 {
		// Before the hard link logic: overlay links all its whiteouts to one inode.
		return typ, t.AddWhiteout(name)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	if !t.opts.MaxTime.IsZero() && hdr.ModTime.After(t.opts.MaxTime) {
		hdr.ModTime = t.opts.MaxTime.Truncate(time.Second)
	}
	switch typ {
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = t.readlink(fd); err != nil {
			return typ, fmt.Errorf("readlink: %w", err)
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return typ, nil // as Docker does: a socket means nothing in an image
	default:
		return typ, fmt.Errorf("unsupported file type %o", typ)
	}

	id, linked := idOf(&st), typ != unix.S_IFDIR && st.Nlink > 1
	if first, ok := t.links[id]; ok && linked {
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		return typ, t.header(hdr)
	}
	rfd := -1
	if typ == unix.S_IFREG {
		// Reopened for reading: the inode that fd names, a regular file.
		if rfd, err = unix.Open(procFD(fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
			return typ, fmt.Errorf("open: %w", noProc(err))
		}
		defer unix.Close(rfd)
	}
	if err := t.xattrs(hdr, fd, rfd); err != nil {
		return typ, err
	}
	if rfd >= 0 && hdr.Size > 0 {
		err = t.file(ctx, hdr, rfd, &st)
	} else {
		err = t.header(hdr)
	}
	if err == nil && typ == unix.S_IFDIR && t.opts.Overlay {
		if by := opaqueBy(fd); by != "" && t.replaces(name, by) {
			err = t.AddOpaque(name)
		}
	}
	if linked && (err == nil || errors.Is(err, ErrChanged)) {
		t.links[id] = name
	}
	return typ, err
}

// header writes the header of an entry without data.
func (t *TarWriter) header(hdr *tar.Header) error {
	if err := checkHeader(hdr); err != nil {
		return err
	}
	t.dirty = true
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	t.dirty = false
	return nil
}

// checkHeader refuses headers that a tar stream cannot carry, before any
// of them is written: archive/tar would fail on them half-way.
func checkHeader(hdr *tar.Header) error {
	// The path and linkpath records, counted whether needed or not, and
	// the record lengths, generously.
	n := len(hdr.Name) + len(hdr.Linkname) + 64
	for k, v := range hdr.PAXRecords {
		if strings.Contains(k, "=") {
			return fmt.Errorf("xattr %q: name holds '=': %w", strings.TrimPrefix(k, paxXattr), ErrUnrepresentable)
		}
		n += len(k) + len(v) + 16
	}
	if n > maxPAXHeader-512 {
		return fmt.Errorf("headers of %d bytes, over %d: %w", n, maxPAXHeader, ErrUnrepresentable)
	}
	return nil
}

// readlink returns the target of the symlink that the O_PATH fd names.
func (t *TarWriter) readlink(fd int) (string, error) {
	if t.linkbuf == nil {
		t.linkbuf = make([]byte, unix.PathMax)
	}
	for {
		n, err := unix.Readlinkat(fd, "", t.linkbuf)
		if err != nil {
			return "", err
		}
		if n < len(t.linkbuf) {
			return string(t.linkbuf[:n]), nil
		}
		t.linkbuf = make([]byte, 2*len(t.linkbuf)) // perhaps cut: grow
	}
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// noProc tells a missing /proc from a missing file: a file open by fd can
// always be reached through /proc/self/fd, even once unlinked.
func noProc(err error) error {
	if err == unix.ENOENT {
		return errNoProc
	}
	return err
}

// file writes a regular file of at least one byte, read from fd, whose
// stat was st. A file with holes becomes a sparse entry.
//
// A file that changes size meanwhile still gets exactly the size of its
// header: zeros past a premature end, nothing past the announced size.
// Then, if its size, modification or change time moved, file returns an
// error wrapping ErrChanged, once the entry is complete.
func (t *TarWriter) file(ctx context.Context, hdr *tar.Header, fd int, st *unix.Stat_t) error {
	if err := checkHeader(hdr); err != nil {
		return err
	}
	var short bool
	if frags := t.scan(fd, st); frags != nil {
		var err error
		if short, err = t.sparse(ctx, hdr, fd, frags); err != nil {
			return err
		}
	} else {
		t.dirty = true
		if err := t.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		var err error
		if short, err = t.copyRange(ctx, t.tw, fd, 0, hdr.Size); err != nil {
			return err
		}
		t.dirty = false
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if short || now.Size != st.Size || now.Mtim != st.Mtim || now.Ctim != st.Ctim {
		return fmt.Errorf("changed while being read: %w", ErrChanged)
	}
	return nil
}

// copyRange writes n bytes of fd from off to w, zeros past its end.
func (t *TarWriter) copyRange(ctx context.Context, w io.Writer, fd int, off, n int64) (short bool, err error) {
	if t.buf == nil {
		t.buf = make([]byte, copyBuffer)
	}
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return short, err
		}
		b := t.buf[:min(n, int64(len(t.buf)))]
		m := 0
		if !short {
			if m, err = preadFull(fd, b, off); err != nil {
				return short, fmt.Errorf("read: %w", err)
			}
			short = m < len(b)
		}
		clear(b[m:])
		if _, err := w.Write(b); err != nil {
			return short, fmt.Errorf("write: %w", err)
		}
		off, n = off+int64(len(b)), n-int64(len(b))
	}
	return short, nil
}

// preadFull reads len(b) bytes at off, fewer at the end of the file.
func preadFull(fd int, b []byte, off int64) (int, error) {
	total := 0
	for total < len(b) {
		n, err := unix.Pread(fd, b[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}
