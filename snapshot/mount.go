package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/moby/sys/userns"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Mount describes a filesystem mount; it is performed only by Mount.Mount or
// inside View, which always unmounts.
type Mount struct {
	Type    string
	Source  string
	Options []string
	// Dir, when set, is the directory relative to which the options' paths are
	// resolved (the mount is made from a thread whose working directory is Dir).
	Dir string
}

// overlayOptions keep the upper directory the whole truth about a container's
// changes: no redirects, no metacopy, no index.
var overlayOptions = []string{"redirect_dir=off", "metacopy=off", "index=off"}

// Layers says what an overlay mount stacks over a snapshot chain.
type Layers struct {
	// Top are directories stacked above the chain, topmost first: a
	// container's init layer (its mount points), or for a view of a container,
	// its upper directory. Absolute paths.
	Top []string
	// Upper and Work are the writable layer (absolute paths on the store's
	// filesystem); empty for a read-only mount.
	Upper, Work string
}

// Overlay describes an overlay mount of snapshot chainID and its parents
// (down to the topmost whose root is opaque, see Lowers), with l over them.
// chainID may be empty (an image with no layer) when l.Top is not. A
// read-only mount of a single snapshot is a read-only bind mount.
func (s *Store) Overlay(chainID digest.Digest, l Layers) (Mount, error) {
	var chain []Info
	if chainID != "" {
		var err error
		if chain, err = s.Lowers(chainID); err != nil {
			return Mount{}, err
		}
	}
	lowers := append([]string{}, l.Top...)
	for _, info := range chain {
		link := "l/" + shortID(info.ChainID)
		if _, err := os.Stat(s.root + "/" + link); err != nil {
			// A Commit killed between link and rename, then pruned: make the link again.
			if err := os.Symlink("../"+info.ChainID.Encoded()+"/fs", s.root+"/"+link); err != nil && !errors.Is(err, os.ErrExist) {
				return Mount{}, err
			}
		}
		lowers = append(lowers, link)
	}
	switch {
	case len(lowers) == 0:
		return Mount{}, fmt.Errorf("overlay: no layer to mount")
	case l.Upper == "" && len(lowers) == 1 && len(chain) == 1:
		return Mount{Type: "bind", Source: s.FS(chain[0].ChainID), Options: []string{"rbind", "ro"}}, nil
	case l.Upper == "" && len(lowers) == 1:
		return Mount{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}, nil
	}
	opts := append([]string{"lowerdir=" + strings.Join(lowers, ":")}, overlayOptions...)
	typ := "overlay"
	if userns.RunningInUserNS() {
		driver, err := Driver()
		if err != nil {
			return Mount{}, fmt.Errorf("overlay of %s: %w", chainID, err)
		}
		opts = append([]string{"lowerdir=" + strings.Join(lowers, ":")}, userNSOptions(driver)...)
		if driver == "fuse-overlayfs" {
			typ = fuseType
		}
	}
	if l.Upper != "" {
		opts = append(opts, "upperdir="+l.Upper, "workdir="+l.Work)
	}
	m := Mount{Type: typ, Source: "overlay", Options: opts, Dir: s.root}
	if n := len(strings.Join(m.Options, ",")); n >= os.Getpagesize() {
		return Mount{}, fmt.Errorf("overlay of %s: %d layers need %d bytes of mount options, over the kernel's limit", chainID, len(lowers), n)
	}
	return m, nil
}

// Mount mounts m on target (an absolute path).
func (m Mount) Mount(target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "bind":
			flags |= unix.MS_BIND
		default:
			data = append(data, o)
		}
	}
	if flags&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", flags&^unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, target, err)
		}
		if flags&unix.MS_RDONLY != 0 {
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s read-only: %w", target, err)
			}
		}
		return nil
	}
	if m.Type == fuseType {
		return mountFuse(m, target)
	}
	mount := func() error {
		return unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ","))
	}
	var err error
	if m.Dir == "" {
		err = mount()
	} else {
		err = inDir(m.Dir, mount)
	}
	if err != nil {
		err = fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		if errors.Is(err, unix.EINVAL) {
			err = upperUnsupported(m, err)
		}
		return err
	}
	return nil
}

// upperFilesystems are those overlayfs keeps an upper directory on. The
// kernel refuses others (overlayfs itself, vfat, NFS…) with a bare EINVAL
// and says why only in its log.
var upperFilesystems = map[string]bool{"ext4": true, "ext3": true, "ext2": true, "xfs": true, "btrfs": true, "tmpfs": true, "f2fs": true, "zfs": true}

// upperUnsupported says so when err, an overlay mount's EINVAL, comes from
// an upper directory on a filesystem that overlayfs cannot write to.
func upperUnsupported(m Mount, err error) error {
	var upper string
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			upper = v
		}
	}
	if upper == "" {
		return err
	}
	if p, err := filepath.EvalSymlinks(upper); err == nil {
		upper = p
	}
	mounts, merr := mountinfo.GetMounts(func(mi *mountinfo.Info) (skip, stop bool) {
		return !(mi.Mountpoint == "/" || upper == mi.Mountpoint || strings.HasPrefix(upper, mi.Mountpoint+"/")), false
	})
	if merr != nil || len(mounts) == 0 {
		return err
	}
	fs := mounts[0] // the deepest mount point above upper, the last mounted there
	for _, mi := range mounts {
		if len(mi.Mountpoint) >= len(fs.Mountpoint) {
			fs = mi
		}
	}
	if upperFilesystems[fs.FSType] {
		return err
	}
	where := upper
	if m.Dir != "" {
		where = filepath.Dir(m.Dir) // the snapshots' directory is in the store's root
	}
	return fmt.Errorf("%w: %s is on %s (mounted on %s), where overlayfs cannot keep a container's writable layer: use a store root (--root) on ext4, xfs, btrfs or tmpfs", err, where, fs.FSType, fs.Mountpoint)
}

// inDir runs fn on an OS thread of its own whose working directory is dir. The
// thread unshares its filesystem attributes first, so the rest of the process
// keeps its working directory; it is never returned to the Go scheduler.
func inDir(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread exits with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare CLONE_FS: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Unmount unmounts target, lazily if it is busy.
func Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err == unix.EBUSY {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// UnmountUnder unmounts every mount at or below dir, the deepest first:
// what a process killed inside a view or a build left mounted in the
// store's temporary directory. The caller holds the store's exclusive lock,
// so nothing alive uses them.
func UnmountUnder(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	targets := make([]string, 0, len(mounts))
	for _, m := range mounts {
		targets = append(targets, m.Mountpoint)
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, t := range targets {
		if err := Unmount(t); err != nil {
			return err
		}
	}
	return nil
}

// View mounts snapshot chainID read-only on a temporary directory, calls fn with
// it, and always unmounts.
func (s *Store) View(ctx context.Context, chainID digest.Digest, fn func(root string) error) (err error) {
	return s.ViewOf(ctx, chainID, nil, fn)
}

// ViewOf mounts snapshot chainID with the directories top above it (topmost
// first) read-only on a temporary directory, calls fn with it, and always
// unmounts.
func (s *Store) ViewOf(ctx context.Context, chainID digest.Digest, top []string, fn func(root string) error) (err error) {
	m, err := s.Overlay(chainID, Layers{Top: top})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.tmp, "view-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := m.Mount(dir); err != nil {
		return err
	}
	defer func() {
		if uerr := Unmount(dir); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return fn(dir)
}
