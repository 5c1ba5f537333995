package snapshot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

// Overlays in a user namespace (a rootless store): the kernel's overlayfs
// where it may be mounted there (Linux 5.11 on, with userxattr), else
// fuse-overlayfs (Debian's package), found once per process by trying the
// kernel's first. CAIRN_OVERLAY=fuse-overlayfs skips the try (the tests
// use it where the kernel's works).

// fuseType is the Type of a Mount made by fuse-overlayfs.
const fuseType = "fuse.fuse-overlayfs"

var userNSDriver = sync.OnceValues(func() (string, error) {
	if os.Getenv("CAIRN_OVERLAY") == "fuse-overlayfs" {
		return fuseDriver(nil)
	}
	err := probeOverlay()
	if err == nil {
		return "overlay", nil
	}
	return fuseDriver(err)
})

// probeOverlay mounts the kernel's overlayfs, as a rootless store would,
// on an empty directory of the system's temporary directory.
func probeOverlay() error {
	dir, err := os.MkdirTemp("", "cairn-overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s/l,upperdir=%s/u,workdir=%s/w,userxattr,redirect_dir=nofollow,metacopy=off,index=off", dir, dir, dir)
	if err := unix.Mount("overlay", filepath.Join(dir, "m"), "overlay", 0, opts); err != nil {
		return err
	}
	return unix.Unmount(filepath.Join(dir, "m"), unix.MNT_DETACH)
}

// fuseDriver is fuse-overlayfs, if it can work here; native is why the
// kernel's overlayfs cannot (nil: not tried).
func fuseDriver(native error) (string, error) {
	why := ""
	if native != nil {
		why = fmt.Sprintf("the kernel's overlayfs cannot be mounted in this user namespace (%v; Linux 5.11 and later can), and ", native)
	}
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		return "", fmt.Errorf("%sfuse-overlayfs is not installed (Debian's package fuse-overlayfs)", why)
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		return "", fmt.Errorf("%sfuse-overlayfs cannot open /dev/fuse (%v): as root, chmod 0666 /dev/fuse (Debian's own mode)", why, err)
	} else {
		f.Close()
	}
	return "fuse-overlayfs", nil
}

// Driver is how this process mounts overlays: "overlay" (the kernel's) or,
// in a user namespace without it, "fuse-overlayfs".
func Driver() (string, error) {
	if !userns.RunningInUserNS() {
		return "overlay", nil
	}
	return userNSDriver()
}

// userNSOptions are the options of an overlay mounted in a user namespace
// by driver, after the lowerdir: the kernel's overlayfs keeps its opaque
// marks in user.overlay.* xattrs with userxattr, and takes redirect_dir=off
// for "follow" and refuses it there, where "nofollow" is as strict (no
// redirect is made or followed); fuse-overlayfs makes none of them.
func userNSOptions(driver string) []string {
	if driver == "fuse-overlayfs" {
		return nil
	}
	return []string{"redirect_dir=nofollow", "metacopy=off", "index=off", "userxattr"}
}

// mountFuse mounts m with fuse-overlayfs, which serves it from a process
// of its own until it is unmounted.
func mountFuse(m Mount, target string) error {
	// Its output goes to a file, not a pipe: the process that stays keeps it.
	log, err := os.CreateTemp("", "cairn-fuse-overlayfs-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := exec.Command("fuse-overlayfs", "-o", strings.Join(m.Options, ","), target)
	cmd.Dir, cmd.Stdout, cmd.Stderr = m.Dir, log, log
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf("fuse-overlayfs on %s: %w: %s", target, err, strings.TrimSpace(string(out)))
	}
	return nil
}
