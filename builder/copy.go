package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// copyFlags are the flags of a COPY or ADD, and which of the two it is.
type copyFlags struct {
	chown, chmod, from, verb string
	add                      bool // ADD: URLs are fetched, local archives unpacked
}

// copyCommand is what a COPY or ADD copies, and its flags; ok is false for
// another instruction.
func copyCommand(cmd instructions.Command) (sd instructions.SourcesAndDest, f copyFlags, ok bool) {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		return c.SourcesAndDest, copyFlags{chown: c.Chown, chmod: c.Chmod, from: c.From, verb: "COPY"}, true
	case *instructions.AddCommand:
		return c.SourcesAndDest, copyFlags{chown: c.Chown, chmod: c.Chmod, verb: "ADD", add: true}, true
	}
	return instructions.SourcesAndDest{}, copyFlags{}, false
}

// copy runs COPY or ADD: its sources are resolved (and, for the cache,
// hashed: their content, not their times) before anything is made.
func (s *stageState) copy(ctx context.Context, sd instructions.SourcesAndDest, f copyFlags) error {
	dest, mode, err := s.copyArgs(&sd, &f)
	if err != nil {
		return err
	}
	run := func(root string, ignore *ignorer, fromID string) error {
		srcs, cleanup, err := s.sources(ctx, root, ignore, sd, f)
		defer cleanup()
		if err != nil {
			return err
		}
		if len(srcs) > 1 && !strings.HasSuffix(dest, "/") {
			return fmt.Errorf("%w: When using %s with more than one source file, the destination must be a directory and end with a /", ErrDockerfile, f.verb)
		}
		createdBy, key, err := s.copyKey(srcs, fromID, dest, f)
		if err != nil {
			return err
		}
		if s.cached(key) {
			return nil
		}
		next := s.cfg
		return s.layer(ctx, key, createdBy, &next, func(target string) error {
			owner, err := chownIDs(target, f.chown)
			if err != nil {
				return err
			}
			return copyInto(ctx, target, dest, srcs, owner, f.chown != "", mode, s.bs.b.Tmp)
		})
	}
	if f.from == "" {
		return run(s.bs.contextDir, s.bs.ignore, "")
	}
	// --from: a stage before, or an image of the store, read through a view.
	var from image.Image
	if st, ok := s.bs.stageByName(f.from); ok && st.parent != nil {
		from = *st.parent
	} else {
		from, err = s.bs.b.Images.Lookup(f.from)
		if errors.Is(err, image.ErrNotFound) && s.bs.b.Pull != nil {
			if err = s.bs.b.Pull(ctx, f.from); err == nil {
				from, err = s.bs.b.Images.Lookup(f.from)
			}
		}
		if err != nil {
			return fmt.Errorf("--from=%s: %w", f.from, err)
		}
	}
	chains, err := s.bs.b.Images.EnsureSnapshots(ctx, from)
	if err != nil {
		return err
	}
	if len(chains) == 0 {
		return fmt.Errorf("%w: --from=%s has no files", ErrDockerfile, f.from)
	}
	return s.bs.b.Snapshots.View(ctx, chains[len(chains)-1], func(root string) error {
		return run(root, nil, from.ID.String())
	})
}

// copyArgs expands the variables of a COPY or ADD (in its sources, its
// destination and --chown) and reads --chmod. The destination comes back
// resolved against the working directory.
func (s *stageState) copyArgs(sd *instructions.SourcesAndDest, f *copyFlags) (dest string, mode *os.FileMode, err error) {
	if err := sd.Expand(s.expand); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	if f.chown, err = s.expand(f.chown); err != nil {
		return "", nil, err
	}
	if f.chmod != "" {
		m, err := strconv.ParseUint(f.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return "", nil, fmt.Errorf("%w: invalid --chmod %q: an octal mode", ErrDockerfile, f.chmod)
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	return joinDest(s.cfg.Config.WorkingDir, sd.DestPath), mode, nil
}

// joinDest resolves a COPY or ADD destination against the working directory.
func joinDest(workdir, dest string) string {
	if path.IsAbs(dest) {
		return dest
	}
	return path.Join("/", workdir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(dest, "/") || dest == "."]
}

// ids is an owner to give copied files.
type ids struct{ uid, gid int }

// chownIDs reads --chown: names are looked up in the image's own
// /etc/passwd and /etc/group; without a group, the group is the user's
// number, as in Docker. No --chown: root.
func chownIDs(root, spec string) (*ids, error) {
	if spec == "" {
		return &ids{0, 0}, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	lookup := func(file string, name string, isUser bool) (int, error) {
		if n, err := strconv.Atoi(name); err == nil {
			return n, nil
		}
		p, err := securejoin.SecureJoin(root, file)
		if err != nil {
			return 0, err
		}
		f, err := os.Open(p)
		if err != nil {
			return 0, fmt.Errorf("%w: unable to convert %q: %s: %w", ErrDockerfile, spec, file, err)
		}
		defer f.Close()
		if isUser {
			users, err := user.ParsePasswdFilter(f, func(x user.User) bool { return x.Name == name })
			if err != nil || len(users) == 0 {
				return 0, fmt.Errorf("%w: unable to find user %s in %s", ErrDockerfile, name, file)
			}
			return users[0].Uid, nil
		}
		groups, err := user.ParseGroupFilter(f, func(x user.Group) bool { return x.Name == name })
		if err != nil || len(groups) == 0 {
			return 0, fmt.Errorf("%w: unable to find group %s in %s", ErrDockerfile, name, file)
		}
		return groups[0].Gid, nil
	}
	uid, err := lookup("/etc/passwd", u, true)
	if err != nil {
		return nil, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookup("/etc/group", g, false); err != nil {
			return nil, err
		}
	}
	return &ids{uid, gid}, nil
}

// copyInto copies srcs to dest inside root, as COPY and ADD do: a file to
// dest (or into it, if it is a directory: it ends with "/" or is one), a
// directory's contents into dest, an ADD archive unpacked into dest.
// Missing directories on the way are made, mode 0755. Every path inside
// root is resolved as if root were "/".
func copyInto(ctx context.Context, root, dest string, srcs []source, owner *ids, chowned bool, mode *os.FileMode, tmp string) error {
	destIsDir := strings.HasSuffix(dest, "/")
	if !destIsDir {
		if p, err := securejoin.SecureJoin(root, dest); err == nil {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				destIsDir = true
			}
		}
	}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := dest
		if destIsDir {
			if s.name == "" {
				return fmt.Errorf("%w: cannot determine a file name from the URL: give ADD a file destination", ErrDockerfile)
			}
			target = path.Join(dest, s.name)
		}
		switch {
		case s.data != nil:
			if err := writeFile(root, target, bytes.NewReader([]byte(*s.data)), 0o644, owner, mode, time.Time{}); err != nil {
				return err
			}
		case s.archive:
			if err := unpackInto(ctx, root, dest, s.path, tmp, owner, !chowned); err != nil {
				return err
			}
		default:
			st, err := os.Lstat(s.path)
			if err != nil {
				return err
			}
			if st.IsDir() {
				if err := copyTree(ctx, root, s, strings.TrimSuffix(dest, "/"), owner, mode, false); err != nil {
					return err
				}
				continue
			}
			if err := copyEntry(root, s.path, target, st, owner, mode, s.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies the contents of the directory src to dir inside root.
// With keepOwner (an ADD archive), owners come from the source.
func copyTree(ctx context.Context, root string, src source, dir string, owner *ids, mode *os.FileMode, keepOwner bool) error {
	type dirTime struct {
		target string
		st     fs.FileInfo
	}
	var dirs []dirTime
	err := filepath.WalkDir(src.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.path, p)
		rel = filepath.ToSlash(rel)
		if ig, skip := src.below(rel); ig {
			if skip && d.IsDir() {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		target := path.Join(dir, rel)
		o := owner
		if keepOwner {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				o = &ids{int(sys.Uid), int(sys.Gid)}
			}
		}
		if st.IsDir() {
			if err := mkdirAll(root, target, o, true); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, st})
			return nil
		}
		return copyEntry(root, p, target, st, o, mode, time.Time{})
	})
	if err != nil {
		return err
	}
	if src.unpacked && len(dirs) > 0 && dirs[0].target == dir {
		dirs = dirs[1:] // the destination keeps its own (0755, made by mkdirAll)
	}
	// Directory modes and times last, once their entries are made.
	for i := len(dirs) - 1; i >= 0; i-- {
		p, err := securejoin.SecureJoin(root, dirs[i].target)
		if err != nil {
			return err
		}
		m := dirs[i].st.Mode()
		if mode != nil {
			m = m&^fs.ModePerm | *mode
		}
		if err := os.Chmod(p, m&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := os.Chtimes(p, dirs[i].st.ModTime(), dirs[i].st.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one file, symlink or special file to target in root.
func copyEntry(root, src, target string, st fs.FileInfo, owner *ids, mode *os.FileMode, mtime time.Time) error {
	if mtime.IsZero() {
		mtime = st.ModTime()
	}
	switch {
	case st.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeFile(root, target, f, st.Mode(), owner, mode, mtime)
	case st.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, p); err != nil {
			return err
		}
		if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	case st.Mode()&fs.ModeNamedPipe != 0:
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := unix.Mkfifo(p, uint32(st.Mode().Perm())); err != nil {
			return err
		}
		return os.Lchown(p, owner.uid, owner.gid)
	case st.Mode()&fs.ModeDevice != 0:
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || st.Mode()&fs.ModeCharDevice != 0 && sys.Rdev == 0 {
			return nil // an archive's whiteout, as the layer applier made it: not a file to copy
		}
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := unix.Mknod(p, sys.Mode, int(sys.Rdev)); err != nil {
			return err
		}
		return os.Lchown(p, owner.uid, owner.gid)
	}
	return nil // sockets mean nothing in an image
}

// prepare makes the parents of target inside root and removes what is at
// target, but a directory; it returns target's path on the host.
func prepare(root, target string, owner *ids) (string, error) {
	dir, base := path.Split(path.Clean("/" + target))
	if err := mkdirAll(root, dir, owner, false); err != nil {
		return "", err
	}
	pd, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(pd, base)
	if st, err := os.Lstat(p); err == nil {
		if st.IsDir() {
			return "", fmt.Errorf("%w: cannot overwrite directory %q with a file", ErrDockerfile, target)
		}
		if err := os.Remove(p); err != nil {
			return "", err
		}
	}
	return p, nil
}

// writeFile writes a regular file at target inside root, of what r holds:
// a file is copied with its holes (copyFile).
func writeFile(root, target string, r io.Reader, srcMode fs.FileMode, owner *ids, mode *os.FileMode, mtime time.Time) error {
	p, err := prepare(root, target, owner)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if src, ok := r.(*os.File); ok {
		err = copyFile(f, src)
	} else {
		_, err = io.Copy(f, r)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
		return err
	}
	m := srcMode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if mode != nil {
		m = *mode
	}
	if err := os.Chmod(p, m); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return os.Chtimes(p, mtime, mtime)
	}
	return nil
}

// copyFile copies src into dst, new and empty, but for the holes of src
// (rootfs.DataRuns), which stay holes: a sparse file of the context costs
// the layer its data, not its size (io.Copy, with copy_file_range, writes
// the zeros of its holes). The data goes from file to file by
// copy_file_range where the kernel can.
func copyFile(dst, src *os.File) error {
	st, err := src.Stat()
	if err != nil {
		return err
	}
	err = rootfs.DataRuns(int(src.Fd()), st.Size(), func(off, n int64) error {
		if _, err := src.Seek(off, io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Seek(off, io.SeekStart); err != nil {
			return err
		}
		_, err := io.CopyN(dst, src, n)
		return err
	})
	if err != nil {
		return err
	}
	return dst.Truncate(st.Size())
}

// mkdirAll makes dir and its missing parents inside root, mode 0755 and
// owned by owner (nil: root), resolving what exists as if root were "/".
// With exact, an existing directory at dir is kept as it is.
func mkdirAll(root, dir string, owner *ids, exact bool) error {
	if owner == nil {
		owner = &ids{0, 0}
	}
	comps := strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/")
	cur := "/"
	for _, c := range comps {
		if c == "" {
			continue
		}
		cur = path.Join(cur, c)
		p, err := securejoin.SecureJoin(root, cur)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			continue
		case err == nil:
			if !exact {
				return fmt.Errorf("%w: %s is not a directory", ErrDockerfile, cur)
			}
			if err := os.Remove(p); err != nil {
				return err
			}
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
			return err
		}
	}
	return nil
}
