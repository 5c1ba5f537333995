package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Names below a root directory, resolved one openat of one component at a
// time from the root's fd, so that no lookup leaves the root: clean and the
// walker for Apply, splitName and dirCache for the tar writer.

const (
	dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	maxLinks = 40 // symlinks followed in one lookup, as the kernel allows
)

// walker opens directories inside a root directory fd as if the root were
// "/" (chroot semantics): a symlink met on the way is resolved inside the
// root, ".." stops at the root, and each step is an openat of one name
// relative to its parent's fd, never a whole path. Paths of any length work.
//
// The walker caches the fds of the last path it opened, so that consecutive
// tar entries of one directory cost no lookups. The cache is keyed by the
// lexical components of the path; that is sound because, within one Apply,
// nothing that may be looked up as a directory is ever replaced.
type walker struct {
	root int
	fdPath
	links   int
	linkbuf []byte

	// whiteouts holds the whiteout devices made by this layer: a real entry
	// of the same name, here an implicit directory, replaces them.
	whiteouts map[fileID]struct{}
}

// fileID identifies an inode.
type fileID struct{ dev, ino uint64 }

func idOf(st *unix.Stat_t) fileID { return fileID{dev: st.Dev, ino: st.Ino} }

// isWhiteout reports whether st is a whiteout device made by this layer.
func (w *walker) isWhiteout(st *unix.Stat_t) bool {
	_, ok := w.whiteouts[idOf(st)]
	return ok && st.Mode&unix.S_IFMT == unix.S_IFCHR
}

type level struct {
	name  string // lexical path component
	fd    int    // the directory it resolved to; -1 once dropped from the cache
	depth int    // depth of that directory below the root
}

// fdPath caches the fds of the directories along the last path opened
// below a root: the walker's, and the TarWriter's (dirCache).
type fdPath struct{ levels []level }

// reuse keeps the cached levels comps begins with (those still open),
// closes the others, and returns how many it kept.
func (p *fdPath) reuse(comps []string) int {
	n := 0
	for n < len(p.levels) && n < len(comps) && p.levels[n].name == comps[n] {
		n++
	}
	for n > 0 && p.levels[n-1].fd < 0 {
		n--
	}
	p.truncate(n)
	return n
}

// push caches the next level of the path, closing one held too deep.
func (p *fdPath) push(l level) {
	p.levels = append(p.levels, l)
	if j := len(p.levels) - 1 - cacheWindow; j >= cacheWindow && j%cacheWindow != 0 && p.levels[j].fd >= 0 {
		unix.Close(p.levels[j].fd)
		p.levels[j].fd = -1
	}
}

// truncate closes the cached levels from n on.
func (p *fdPath) truncate(n int) {
	for _, l := range p.levels[n:] {
		if l.fd >= 0 {
			unix.Close(l.fd)
		}
	}
	p.levels = p.levels[:n]
}

// At most about 2*cacheWindow fds are held, plus one per cacheWindow levels
// of a deep path, so that a hostile depth cannot exhaust fds and re-walking
// after a cache drop costs at most cacheWindow lookups.
const cacheWindow = 64

// dir returns an fd of the directory named by comps, relative to the root.
// The fd belongs to the walker and stays valid until the next call. With
// create, missing directories are made (mode 0755, owned by the caller).
func (w *walker) dir(comps []string, create bool) (int, error) {
	n := w.reuse(comps)
	fd, depth := w.root, 0
	if n > 0 {
		fd, depth = w.levels[n-1].fd, w.levels[n-1].depth
	}
	w.links = 0
	for i := n; i < len(comps); i++ {
		next, ndepth, err := w.step(fd, depth, comps[i], create)
		if err != nil {
			return -1, fmt.Errorf("parent %q: %w", strings.Join(comps[:i+1], "/"), err)
		}
		w.push(level{name: comps[i], fd: next, depth: ndepth})
		fd, depth = next, ndepth
	}
	return fd, nil
}

// step resolves one path component below the directory dirfd, following
// symlinks inside the root, and returns a new fd of the directory reached.
func (w *walker) step(dirfd, depth int, name string, create bool) (int, int, error) {
	cur, owned := dirfd, false
	move := func(fd int) {
		if owned {
			unix.Close(cur)
		}
		cur, owned = fd, fd != w.root
	}
	fail := func(err error) (int, int, error) {
		if owned {
			unix.Close(cur)
		}
		return -1, 0, err
	}

	var rest []string // components still to walk, from symlink targets
	for {
		switch name {
		case "", ".":
		case "..":
			if depth > 0 { // at the root, ".." is the root
				fd, err := unix.Openat(cur, "..", dirFlags, 0)
				if err != nil {
					return fail(err)
				}
				move(fd)
				depth--
			}
		default:
			fd, err := unix.Openat(cur, name, dirFlags, 0)
			if err == nil {
				move(fd)
				depth++
				break
			}
			target, err := w.miss(cur, name, create, err)
			if err != nil {
				return fail(err)
			}
			if target == "" {
				continue // created or replaced: open name again
			}
			if strings.HasPrefix(target, "/") {
				move(w.root)
				depth = 0
			}
			rest = append(strings.Split(target, "/"), rest...)
		}
		if len(rest) == 0 {
			break
		}
		name, rest = rest[0], rest[1:]
	}
	if !owned {
		fd, err := unix.FcntlInt(uintptr(cur), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, 0, err
		}
		cur = fd
	}
	return cur, depth, nil
}

// miss handles a component that openat could not open as a directory. It
// returns the target of a symlink to follow, or "" when the component now
// exists and should be opened again.
func (w *walker) miss(dirfd int, name string, create bool, err error) (string, error) {
	switch {
	case errors.Is(err, unix.ENOENT) && create:
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
			return "", err
		}
		// Implicit directories get 0755 whatever the umask.
		return "", unix.Fchmodat(dirfd, name, 0o755, 0)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
	default:
		return "", err
	}

	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", err
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if w.links++; w.links > maxLinks {
			return "", fmt.Errorf("too many levels of symbolic links: %w", ErrInvalid)
		}
		if w.linkbuf == nil {
			w.linkbuf = make([]byte, unix.PathMax)
		}
		n, err := unix.Readlinkat(dirfd, name, w.linkbuf)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("empty symlink: %w", ErrInvalid)
		}
		return string(w.linkbuf[:n]), nil
	case create && w.isWhiteout(&st):
		// A whiteout and a real entry of one name in one layer: the real
		// entry wins, here a directory needed by a later entry.
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return "", err
		}
		delete(w.whiteouts, idOf(&st))
		return "", nil
	}
	return "", fmt.Errorf("not a directory: %w", ErrInvalid)
}

// close releases every fd the walker holds, but not the root.
func (w *walker) close() { w.truncate(0) }

// clean appends the components of name, cleaned lexically within the root,
// to dst. A leading "/" is dropped; a ".." above the root is an error.
func clean(dst []string, name string) ([]string, error) {
	for rest := name; rest != ""; {
		c := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			c, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		switch c {
		case "", ".":
		case "..":
			if len(dst) == 0 {
				return dst, fmt.Errorf("path escapes the layer: %w", ErrUnsafe)
			}
			dst = dst[:len(dst)-1]
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// splitName returns the components of a clean, relative, non-empty name.
func splitName(name string) ([]string, error) {
	if name == "" || name == "." || path.IsAbs(name) || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") {
		return nil, fmt.Errorf("tar entry %q: not a clean relative name", name)
	}
	return strings.Split(name, "/"), nil
}

// dirCache opens directories below a root by their names, one openat of
// one component at a time from the root's fd, never following a symlink.
// Like walker, it keeps the fds of the last path it opened, so that the
// entries of one directory cost no lookups, and drops most of them on a
// deep path (see cacheWindow).
type dirCache struct {
	path string // of the root, as the caller named it
	root int    // -1 until a root is opened
	fdPath
}

// setRoot opens the root directory, unless it is open already.
func (c *dirCache) setRoot(root string) error {
	if c.root >= 0 && root == c.path {
		return nil
	}
	c.close()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	c.root, c.path = fd, root
	return nil
}

// open returns an fd of the directory comps below the root. The fd belongs
// to the cache and stays valid until the next call.
func (c *dirCache) open(comps []string) (int, error) {
	n := c.reuse(comps)
	fd := c.root
	if n > 0 {
		fd = c.levels[n-1].fd
	}
	for i := n; i < len(comps); i++ {
		next, err := unix.Openat(fd, comps[i], dirFlags, 0)
		if err != nil {
			return -1, fmt.Errorf("parent %q: %w", strings.Join(comps[:i+1], "/"), notDir(fd, comps[i], err))
		}
		c.push(level{name: comps[i], fd: next})
		fd = next
	}
	return fd, nil
}

// notDir explains why name in dirfd could not be opened as a directory.
func notDir(dirfd int, name string, err error) error {
	if err != unix.ENOTDIR && err != unix.ELOOP {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("symlink, not followed: %w", ErrUnsafe)
	}
	return err
}

// close releases every fd of the cache, the root's too.
func (c *dirCache) close() {
	c.truncate(0)
	if c.root >= 0 {
		unix.Close(c.root)
	}
	c.root, c.path = -1, ""
}
