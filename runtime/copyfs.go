package runtime

// Resolving a copy's paths in a container: its root and the volumes and
// host directories mounted into it, each as an O_PATH descriptor.

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// copyFS is the filesystem of a container as a copy sees it: its root and
// the directories mounted into it.
type copyFS struct {
	c     *Container
	trees []*copyTree // [0] is the container's root; mounts as they are met
}

// copyTree is a tree a copy resolves paths in: the container's root, or a
// volume or host directory mounted into it.
type copyTree struct {
	root  *os.File // O_PATH
	host  string   // where it is on the host, as the kernel names it
	at    string   // where it shows in the container
	mount *Mount   // nil: the container's root
}

func openTree(path, at string, m *Mount) (*copyTree, error) {
	f, err := os.OpenFile(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	host, err := os.Readlink(procFD(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &copyTree{root: f, host: host, at: at, mount: m}, nil
}

func (f *copyFS) close() {
	for _, t := range f.trees {
		t.root.Close()
	}
}

// inTree is the path of the file open as fd in the tree (absolute), or
// fallback if the kernel names it elsewhere.
func (t *copyTree) inTree(fd *os.File, fallback string) string {
	p, err := os.Readlink(procFD(fd))
	if err != nil {
		return fallback
	}
	if t.host == "/" {
		return p
	}
	rel, ok := strings.CutPrefix(p, t.host)
	if !ok || rel != "" && rel[0] != '/' {
		return fallback
	}
	return filepath.Join("/", rel)
}

// shown is where the file open as fd is in the container, for messages.
func (t *copyTree) shown(fd *os.File, fallback string) string {
	p := t.inTree(fd, "")
	if p == "" {
		return fallback
	}
	return filepath.Join(t.at, p)
}

// canonical resolves the symlinks of container path p in the container's
// root (a path that stays in it, whatever the symlinks say): which tree p
// is in is told from that.
func (f *copyFS) canonical(p string) string {
	root := f.trees[0].host
	hp, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return filepath.Clean(p)
	}
	rel, err := filepath.Rel(root, hp)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return filepath.Clean(p)
	}
	return filepath.Join("/", rel)
}

// locate returns the tree that container path p (absolute, clean, its
// symlinks resolved) lies in, and p inside that tree.
func (f *copyFS) locate(p string) (*copyTree, string) {
	var best *Mount
	for i := range f.c.Mounts {
		m := &f.c.Mounts[i]
		d := filepath.Clean(m.Destination)
		if m.Source == "" || d == "/" || p != d && !strings.HasPrefix(p, d+"/") {
			continue
		}
		if best == nil || len(d) > len(filepath.Clean(best.Destination)) {
			best = m
		}
	}
	if best == nil {
		return f.trees[0], p
	}
	d := filepath.Clean(best.Destination)
	t := f.mountTree(best, d)
	if t == nil {
		return f.trees[0], p
	}
	return t, filepath.Join("/", strings.TrimPrefix(p, d))
}

// mountTree opens the tree of mount m at d, once; nil if its source is
// not a directory that can be opened (a bound file, a missing source).
func (f *copyFS) mountTree(m *Mount, d string) *copyTree {
	for _, t := range f.trees[1:] {
		if t.at == d {
			return t
		}
	}
	t, err := openTree(m.Source, d, m)
	if err != nil {
		return nil
	}
	f.trees = append(f.trees, t)
	return t
}

// openDir opens directory p of the container (absolute), every symlink of
// it resolved inside the container (or the volume it is in), and returns
// the tree it is in. The file may turn out not to be a directory: the
// caller looks.
func (f *copyFS) openDir(p string) (*copyTree, *os.File, error) {
	t, rel := f.trees[0], p
	if len(f.c.Mounts) > 0 {
		t, rel = f.locate(f.canonical(p))
	}
	d, err := pathrs.OpenatInRoot(t.root, rel)
	if err != nil {
		return nil, nil, err
	}
	return t, d, nil
}

// copyResource is the file a path of a copy names.
type copyResource struct {
	tree *copyTree
	dir  *os.File // the directory it is in; or, with base "", itself
	base string   // its name in dir, or ""
	st   unix.Stat_t
	abs  string // the path, absolute in the container, its trailing "/" or "/." kept
}

func (r *copyResource) close() { r.dir.Close() }

// resolve finds the file path names in the container, as Docker's daemon
// does (ResolvePath, then Lstat): its directory part resolved, symlinks
// and all, its last component not followed; a trailing "/" or "/." names
// the directory it resolves to.
func (f *copyFS) resolve(path, ref string) (*copyResource, error) {
	abs := preserveTrailingDotOrSeparator(filepath.Join("/", path), path)
	dirPath, base := filepath.Split(abs)
	if base == "." {
		base = ""
	}
	t, dir, err := f.openDir(dirPath)
	if err == nil && base != "" && len(f.c.Mounts) > 0 {
		// A mount point names the mounted directory.
		if mt, rel := f.locate(filepath.Join(f.canonical(dirPath), base)); mt.mount != nil && rel == "/" {
			if d, derr := pathrs.OpenatInRoot(mt.root, "/"); derr == nil {
				dir.Close()
				t, dir, base = mt, d, ""
			}
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, pathNotFound(path, ref)
		}
		return nil, &os.PathError{Op: "lstat", Path: abs, Err: errnoOf(err)}
	}
	r := &copyResource{tree: t, dir: dir, base: base, abs: abs}
	if base == "" {
		err = unix.Fstat(int(dir.Fd()), &r.st)
		if err == nil && r.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = unix.ENOTDIR
		}
	} else {
		err = unix.Fstatat(int(dir.Fd()), base, &r.st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		dir.Close()
		if err == unix.ENOENT {
			return nil, pathNotFound(path, ref)
		}
		return nil, &os.PathError{Op: "lstat", Path: abs, Err: err}
	}
	return r, nil
}

// stat is Docker's ContainerPathStat of the resource.
func (r *copyResource) stat() PathStat {
	st := PathStat{
		Name:  filepath.Base(r.abs),
		Size:  r.st.Size,
		Mode:  fileMode(r.st.Mode),
		Mtime: time.Unix(r.st.Mtim.Sec, r.st.Mtim.Nsec),
	}
	if st.Mode&os.ModeSymlink != 0 {
		// The whole path resolved in the tree, as Docker resolves it in the
		// container; the target need not exist.
		dir := r.tree.inTree(r.dir, filepath.Dir(r.abs))
		if hp, err := securejoin.SecureJoin(r.tree.host, filepath.Join(dir, r.base)); err == nil {
			if rel, err := filepath.Rel(r.tree.host, hp); err == nil {
				st.LinkTarget = filepath.Join(r.tree.at, rel)
			}
		}
	}
	return st
}

// fileMode is the os.FileMode of a stat's mode, as os.Lstat makes it.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// preserveTrailingDotOrSeparator is Docker's: cleaned, with the trailing
// "/." or "/" of original put back.
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if filepath.Base(cleaned) != "." && filepath.Base(original) == "." {
		if !strings.HasSuffix(cleaned, "/") {
			cleaned += "/"
		}
		cleaned += "."
	}
	if !strings.HasSuffix(cleaned, "/") && strings.HasSuffix(original, "/") {
		cleaned += "/"
	}
	return cleaned
}

func procFD(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// errnoOf is the errno under err (a lookup's), or err.
func errnoOf(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
