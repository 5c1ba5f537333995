package runtime

// Copies between a container and the host (`cairn cp`): what Docker's daemon
// does for `docker cp` — stat a path in a container, write a tar of it,
// extract a tar into a directory of it (daemon/archive.go) — and the two
// halves of the archive format that the front end's side of a copy uses on
// the host (TarResource, Untar).
//
// Every path of a container is resolved inside it, as if its root were "/"
// (openat2 RESOLVE_IN_ROOT, through filepath-securejoin), and every file is
// then read or made through file descriptors, one name at a time, never
// following a symlink in the last component: a container whose paths are
// symlinks out of it (absolute or ../../), or that swaps them meanwhile,
// never makes cairn read or write a file of the host.
//
// Where a copy works:
//
//   - A running (or paused) container: through the overlay mounted on
//     containers/<id>/rootfs, open as a file descriptor for the whole copy,
//     so that a container that stops meanwhile keeps it alive.
//   - A stopped one: its layers mounted on a temporary directory of the
//     store's tmp/ — writable (lowers, upper and work, as Start mounts them)
//     to copy in, a read-only view (as Export) to read — while this process
//     holds the container's owner lock, so that it cannot start meanwhile,
//     and a lease of the image store, so that a prune does not take the
//     mount; it is always unmounted.
//
// Either way what is written lands in the container's upper directory, so
// that `diff` and `commit` see it.
//
// Volumes and bind mounts: a path at or below the destination of one of
// the container's volumes or bound directories (after its symlinks are
// resolved in the container) is read or written in that volume or host
// directory, resolved inside it — as Docker, which copies into the mounted
// volume; a read-only one refuses a copy in. A copy of a directory that
// holds a mount point copies what the container's own layers have there
// (the empty mount point), not the volume; bound files, and the /etc/hosts,
// /etc/hostname and /etc/resolv.conf that a running container has mounted,
// are not followed either: a copy sees the container's layers there.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/snapshot"
	"golang.org/x/sys/unix"
)

// Errors of copies; the messages are Docker's.
var (
	// ErrPathNotFound: a path of a copy is not in the container.
	ErrPathNotFound = errors.New("no such path in the container")
	// ErrExtractPoint: a tar is extracted only into a directory.
	ErrExtractPoint = errors.New("extraction point is not a directory")
	// ErrRootfsReadOnly: the container runs with --read-only.
	ErrRootfsReadOnly = errors.New("container rootfs is marked read-only")
	// ErrVolumeReadOnly: the destination is in a volume mounted :ro.
	ErrVolumeReadOnly = errors.New("mounted volume is marked read-only")
	// ErrUnsafeArchive: an entry of a tar to extract would land outside its
	// directory, or is a link that points out of it.
	ErrUnsafeArchive = errors.New("archive entry outside its directory")
)

// copyError is an error of a copy with Docker's exact words, which wraps
// the sentinel it is.
type copyError struct {
	kind error
	msg  string
}

func (e *copyError) Error() string { return e.msg }
func (e *copyError) Unwrap() error { return e.kind }

func pathNotFound(path, ref string) error {
	return &copyError{kind: ErrPathNotFound, msg: "Could not find the file " + path + " in container " + ref}
}

// PathStat is what a copy learns of a path in a container, as Docker's
// ContainerPathStat: its name, size, mode and time and, for a symlink, the
// path it leads to in the container, every symlink on the way resolved.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

// ExtractOptions say how ExtractToDir extracts a tar.
type ExtractOptions struct {
	// CopyUIDGID is `cp -a`: a container run with a user (--user, or its
	// image's USER) gets the files owned by that user and its group, looked
	// up in the container's own /etc/passwd and /etc/group. Without it, or
	// for a container without a user, each file keeps the owner its entry
	// has, as Docker does.
	CopyUIDGID bool
}

// StatPath stats path in container ref, as `docker cp` does before it
// copies: the directory part of path is resolved in the container, symlinks
// and all, and its last component is not followed, unless path ends with
// "/" or "/.".
func (s *Store) StatPath(ctx context.Context, ref, path string) (PathStat, error) {
	var st PathStat
	err := s.withCopyFS(ctx, ref, false, func(f *copyFS) error {
		r, err := f.resolve(path, ref)
		if err != nil {
			return err
		}
		defer r.close()
		st = r.stat()
		return nil
	})
	return st, err
}

// ArchivePath calls fn with the stat of path in container ref (as StatPath)
// and a tar stream of it, as Docker's daemon serves a copy out of a
// container: a file is one entry named as path's last component; a
// directory is its entry (named so; "." for a path that ends with "/.",
// "/" for the root) and its whole tree below it, symlinks written as
// symlinks. A path that ends with "/" or "/." is the directory it resolves
// to. The container's filesystem stays mounted until fn returns; fn need
// not read the stream to its end.
func (s *Store) ArchivePath(ctx context.Context, ref, path string, fn func(PathStat, io.Reader) error) error {
	return s.withCopyFS(ctx, ref, false, func(f *copyFS) error {
		r, err := f.resolve(path, ref)
		if err != nil {
			return err
		}
		defer r.close()
		name := filepath.Base(r.abs)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := TarResource(ctx, pw, r.dir, r.base, name)
			pw.CloseWithError(err)
			done <- err
		}()
		err = fn(r.stat(), pr)
		pr.CloseWithError(errCopyDone)
		werr := <-done
		if err == nil && werr != nil && !errors.Is(werr, errCopyDone) && !errors.Is(werr, io.ErrClosedPipe) {
			err = werr
		}
		if err == nil {
			s.emit(f.c, "archive-path", nil)
		}
		return err
	})
}

// errCopyDone stops the writer of a tar whose reader has finished.
var errCopyDone = errors.New("copy: the reader has finished")

// ExtractToDir extracts the tar stream r (plain, gzip or zstd) into the
// directory path of container ref, as Docker's daemon does for a copy into
// a container: path, its symlinks resolved in the container (the last one
// too), must be a directory; an entry replaces a file of its name but never
// a directory with a non-directory nor the other way round; missing parent
// directories are made (0755, root's); an entry that would land outside the
// directory, a symlink whose relative target climbs out of it and a hard
// link to outside it are refused, as Docker refuses them.
func (s *Store) ExtractToDir(ctx context.Context, ref, path string, r io.Reader, o ExtractOptions) error {
	return s.withCopyFS(ctx, ref, true, func(f *copyFS) error {
		abs := preserveTrailingDotOrSeparator(filepath.Join("/", path), path)
		t, dir, err := f.openDir(abs)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return pathNotFound(path, ref)
			}
			return &os.PathError{Op: "lstat", Path: abs, Err: errnoOf(err)}
		}
		defer dir.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return ErrExtractPoint
		}
		switch {
		case t.mount != nil && !t.mount.RW:
			return ErrVolumeReadOnly
		case t.mount == nil && f.c.Host.ReadonlyRootfs:
			return ErrRootfsReadOnly
		}
		x := &extractor{root: t.root, dest: t.inTree(dir, abs), shown: t.shown(dir, abs)}
		defer x.close()
		if o.CopyUIDGID && f.c.Config.User != "" {
			u, err := resolveUser(f.trees[0].host, f.c.Config.User)
			if err != nil {
				return err
			}
			x.chown = &[2]int{u.Uid, u.Gid}
		}
		if err := x.untar(ctx, r); err != nil {
			return err
		}
		s.emit(f.c, "extract-to-dir", nil)
		return nil
	})
}

// withCopyFS calls fn with the filesystem of container ref: the root a
// running container has mounted, or the layers of a stopped one mounted
// for the call (writable with write, else a read-only view), under its
// owner lock and a lease of the image store.
func (s *Store) withCopyFS(ctx context.Context, ref string, write bool, fn func(*copyFS) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := s.Get(ctx, ref)
		if err != nil {
			return err
		}
		if c.Live() {
			t, err := openTree(s.RootFS(c.ID), "/", nil)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err == nil {
				if mounted(t.root, s.path(c.ID)) {
					f := &copyFS{c: c, trees: []*copyTree{t}}
					defer f.close()
					return fn(f)
				}
				t.root.Close()
			}
			// It has just stopped: its root is unmounted.
		} else {
			owner, ok, err := lockfile.TryExclusive(s.path(c.ID, "owner.lock"))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%w: %s", ErrNotFound, ref)
				}
				return err
			}
			if ok {
				err := s.copyStopped(ctx, c.ID, write, fn)
				owner.Unlock()
				if !errors.Is(err, errCopyRunning) {
					return err
				}
			}
			// Its owner is starting it, or a check looks at it: again.
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: its owner did not finish in 30 seconds", ShortID(c.ID))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// errCopyRunning: the record of a container whose owner lock a copy holds
// says it runs (an orphan): the copy goes through its mounted root instead.
var errCopyRunning = errors.New("copy: the container runs")

// copyStopped mounts the layers of stopped container id and calls fn with
// them; the caller holds its owner lock.
func (s *Store) copyStopped(ctx context.Context, id string, write bool, fn func(*copyFS) error) error {
	c, err := s.read(id)
	if err != nil {
		return err
	}
	if c.Live() {
		return errCopyRunning
	}
	// The lease keeps a prune from taking the mount for a killed process's.
	release, err := s.images.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	in := func(root string) error {
		t, err := openTree(root, "/", nil)
		if err != nil {
			return err
		}
		f := &copyFS{c: c, trees: []*copyTree{t}}
		defer f.close()
		return fn(f)
	}
	if !write {
		return s.snaps.ViewOf(ctx, c.Chain, []string{s.Upper(c.ID), s.initLayer}, in)
	}
	m, err := s.snaps.Overlay(c.Chain, snapshot.Layers{
		Top:   []string{s.initLayer},
		Upper: s.Upper(c.ID), Work: s.path(c.ID, "work"),
	})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.tmp, "cp-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := m.Mount(dir); err != nil {
		return err
	}
	err = in(dir)
	if uerr := snapshot.Unmount(dir); err == nil {
		err = uerr
	}
	return err
}

// mounted reports whether the directory open as root is a mount point
// below parent (another device).
func mounted(root *os.File, parent string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(root.Fd()), &a) == nil && unix.Stat(parent, &b) == nil && a.Dev != b.Dev
}
