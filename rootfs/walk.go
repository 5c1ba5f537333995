package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

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
