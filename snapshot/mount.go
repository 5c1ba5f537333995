package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

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

// Overlay describes an overlay mount of snapshot chainID and its parents. With
// upper and work empty the mount is read-only; otherwise they are the container's
// writable layer (absolute paths on the store's filesystem).
func (s *Store) Overlay(chainID digest.Digest, upper, work string) (Mount, error) {
	chain, err := s.Chain(chainID)
	if err != nil {
		return Mount{}, err
	}
	lowers := make([]string, len(chain))
	for i, info := range chain {
		lowers[i] = "l/" + shortID(info.ChainID)
		if _, err := os.Stat(s.root + "/" + lowers[i]); err != nil {
			// A Commit killed between link and rename, then pruned: make the link again.
			if err := os.Symlink("../"+info.ChainID.Encoded()+"/fs", s.root+"/"+lowers[i]); err != nil && !errors.Is(err, os.ErrExist) {
				return Mount{}, err
			}
		}
	}
	if upper == "" && len(lowers) == 1 {
		return Mount{Type: "bind", Source: s.FS(chainID), Options: []string{"rbind", "ro"}}, nil
	}
	opts := append([]string{"lowerdir=" + strings.Join(lowers, ":")}, overlayOptions...)
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: opts, Dir: s.root}
	if n := len(strings.Join(m.Options, ",")); n >= os.Getpagesize() {
		return Mount{}, fmt.Errorf("overlay of %s: %d layers need %d bytes of mount options, over the kernel's limit", chainID, len(chain), n)
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
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
	}
	return nil
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

// View mounts snapshot chainID read-only on a temporary directory, calls fn with
// it, and always unmounts.
func (s *Store) View(ctx context.Context, chainID digest.Digest, fn func(root string) error) (err error) {
	m, err := s.Overlay(chainID, "", "")
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
