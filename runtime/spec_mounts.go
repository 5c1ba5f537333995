package runtime

// The mounts of a container's spec beyond its root: /dev/shm (its own or
// shared through --ipc), volumes, binds and tmpfs (--mount, -v, --tmpfs).

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultShmSize is the size of /dev/shm without --shm-size, as Docker's.
const DefaultShmSize = 64 << 20

func shmSize(h *HostConfig) int64 {
	if h.ShmSize > 0 {
		return h.ShmSize
	}
	return DefaultShmSize
}

// donor is running container ref, whose namespace ns ("IPC", "PID")
// container c joins.
func (s *Store) donor(c *Container, ref, ns string) (*Container, error) {
	other, err := s.Get(context.Background(), ref)
	if err != nil {
		return nil, err
	}
	if other.State.Status != Running && other.State.Status != Paused || other.State.Pid == 0 {
		return nil, fmt.Errorf("%w: cannot join %s of a non running container: %s", ErrConflict, ns, other.ID)
	}
	if ns == "IPC" && other.Host.IpcMode != "shareable" && other.Host.IpcMode != "host" {
		return nil, fmt.Errorf("%w: cannot join IPC of container %s: non-shareable IPC (hint: use --ipc shareable for the donor container)", ErrConflict, ShortID(other.ID))
	}
	return other, nil
}

// mountShareableDev mounts, on the host, a container's /dev (as the
// runtime would: a small tmpfs for the device nodes) and its /dev/shm, of
// size bytes, under its root (the init layer has both directories).
func mountShareableDev(rootfs string, size int64) error {
	dev := filepath.Join(rootfs, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount the shareable /dev: %w", err)
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("mount the shareable /dev/shm: %w", err)
	}
	return nil
}

// userMounts are the runtime-spec mounts of c's volumes, binds and tmpfs
// (--tmpfs's and --mount's), parents first.
func (s *Store) userMounts(c *Container) ([]specs.Mount, error) {
	type entry struct {
		m     specs.Mount
		depth int
	}
	var out []entry
	for _, m := range c.Mounts {
		var sm specs.Mount
		switch m.Type {
		case "tmpfs":
			opts, err := tmpfsOptions(m.Data, !m.RW)
			if err != nil {
				return nil, err
			}
			sm = specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts}
		default:
			prop := m.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			if strings.Contains(prop, "shared") || strings.Contains(prop, "slave") {
				if err := checkPropagation(m.Source, prop); err != nil {
					return nil, err
				}
			}
			opts := []string{"rbind", prop}
			if !m.RW {
				opts = append(opts, "ro")
			}
			sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts}
		}
		out = append(out, entry{sm, strings.Count(m.Destination, "/")})
	}
	for _, dst := range slices.Sorted(maps.Keys(c.Host.Tmpfs)) {
		opts, err := tmpfsOptions(c.Host.Tmpfs[dst], false)
		if err != nil {
			return nil, err
		}
		d := filepath.Clean(dst)
		out = append(out, entry{specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts}, strings.Count(d, "/")})
	}
	slices.SortStableFunc(out, func(a, b entry) int { return a.depth - b.depth })
	ms := make([]specs.Mount, len(out))
	for i, e := range out {
		ms[i] = e.m
	}
	return ms, nil
}

// tmpfsOptions are the mount options of a tmpfs as Docker makes them:
// noexec, nosuid and nodev, then the user's (data, which may undo them:
// "exec"), a later one of a pair winning.
func tmpfsOptions(data string, readonly bool) ([]string, error) {
	opts := []string{"noexec", "nosuid", "nodev"}
	if readonly {
		opts = append(opts, "ro")
	}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	return mergeTmpfsOptions(opts)
}

// tmpfsFlags are the flags a tmpfs option may set, each with its opposite.
var tmpfsFlags = map[string]string{
	"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid", "dev": "nodev", "nodev": "dev",
	"ro": "rw", "rw": "ro", "atime": "noatime", "noatime": "atime", "diratime": "nodiratime", "nodiratime": "diratime",
	"relatime": "norelatime", "norelatime": "relatime", "strictatime": "nostrictatime", "nostrictatime": "strictatime",
	"sync": "async", "async": "sync", "dirsync": "", "mand": "nomand", "nomand": "mand",
}

// tmpfsData are the tmpfs options that take a value.
var tmpfsData = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge", "inode64", "noswap"}

// mergeTmpfsOptions keeps the last of each flag and its opposite, and of
// each key=value, in the order they were first given (Docker's
// MergeTmpfsOptions); an option tmpfs does not have is an error.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	var out []string
	index := map[string]int{}
	for _, o := range opts {
		if o == "" {
			continue
		}
		key, _, hasValue := strings.Cut(o, "=")
		var id string
		switch {
		case hasValue && slices.Contains(tmpfsData, key):
			id = key
		case !hasValue && key == "inode64", !hasValue && key == "noswap":
			id = key
		case !hasValue:
			opp, ok := tmpfsFlags[key]
			if !ok {
				return nil, fmt.Errorf("%w: invalid tmpfs option %q", ErrInvalid, o)
			}
			id = min(key, opp)
			if opp == "" {
				id = key
			}
		default:
			return nil, fmt.Errorf("%w: invalid tmpfs option %q", ErrInvalid, o)
		}
		if i, ok := index[id]; ok {
			out[i] = o
			continue
		}
		index[id] = len(out)
		out = append(out, o)
	}
	return out, nil
}

// checkPropagation checks that the mount the bind source src is on can
// propagate as prop asks: shared for rshared/shared, shared or slave for
// rslave/slave, as Docker's daemon does.
func checkPropagation(src, prop string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("bind source path %s: %w", src, err)
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return err
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if (real == m.Mountpoint || m.Mountpoint == "/" || strings.HasPrefix(real, m.Mountpoint+"/")) &&
			(best == nil || len(m.Mountpoint) >= len(best.Mountpoint)) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("bind source path %s: no mount", src)
	}
	shared := strings.Contains(best.Optional, "shared:")
	slave := strings.Contains(best.Optional, "master:")
	if strings.Contains(prop, "shared") && !shared {
		return fmt.Errorf("%w: path %s is mounted on %s but it is not a shared mount", ErrInvalid, src, best.Mountpoint)
	}
	if strings.Contains(prop, "slave") && !shared && !slave {
		return fmt.Errorf("%w: path %s is mounted on %s but it is not a shared or slave mount", ErrInvalid, src, best.Mountpoint)
	}
	return nil
}
