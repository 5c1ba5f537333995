package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/docker/go-units"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// StorageError says, after err, what a user can do when err is a
// filesystem that is full (ENOSPC, EDQUOT) or read-only (EROFS): which
// filesystem, and to free space there, remount it or use another root. The
// place that failed has named the object and the file already; this is
// said once, by the front end, for every command. Any other error is
// returned as it is; the result is still err for errors.Is.
func StorageError(root string, err error) error {
	full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
	readOnly := errors.Is(err, syscall.EROFS)
	if err == nil || (!full && !readOnly) {
		return err
	}
	// The file that failed, when the error says which: outside the store
	// (save -o, cp out), the advice is about that file's filesystem.
	where, inStore := root, true
	var pe *fs.PathError
	var le *os.LinkError
	var path string
	if errors.As(err, &pe) {
		path = pe.Path
	} else if errors.As(err, &le) {
		path = le.New
	}
	if path != "" && root != "" && path != root && !strings.HasPrefix(path, root+string(filepath.Separator)) {
		where, inStore = path, false
	}
	if where == "" {
		return err
	}
	fsys := "a filesystem"
	mp := mountOf(where)
	if mp != nil {
		fsys = fmt.Sprintf("%s mounted on %s", mp.FSType, mp.Mountpoint)
	}
	subject := "the store's root " + where
	if !inStore {
		subject = where
	}
	if readOnly {
		hint := "remount it read-write"
		if inStore {
			hint += " or use another --root"
			if _, err := os.Stat(root); err == nil {
				hint += "; commands that only read the store (images, ps, inspect) still work"
			}
		}
		return fmt.Errorf("%w: %s is on a read-only filesystem (%s): %s", err, subject, fsys, hint)
	}
	if mp != nil {
		// Its size, not what is free: what failed has removed its part.
		var st unix.Statfs_t
		if unix.Statfs(mp.Mountpoint, &st) == nil {
			fsys += fmt.Sprintf(" (%s)", units.HumanSize(float64(st.Blocks)*float64(st.Bsize)))
		}
	}
	hint := "free space there"
	if inStore {
		hint += " (cairn image prune, cairn rm, cairn builder prune) or use another --root"
	}
	return fmt.Errorf("%w: %s is on %s: %s", err, subject, fsys, hint)
}

// mountOf is the mount that holds path (which need not exist): the
// deepest mount point above it, the last mounted of those on one point.
func mountOf(path string) *mountinfo.Info {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !(m.Mountpoint == "/" || path == m.Mountpoint || strings.HasPrefix(path, m.Mountpoint+"/")), false
	})
	if err != nil || len(mounts) == 0 {
		return nil
	}
	m := mounts[0]
	for _, mi := range mounts {
		if len(mi.Mountpoint) >= len(m.Mountpoint) {
			m = mi
		}
	}
	return m
}
