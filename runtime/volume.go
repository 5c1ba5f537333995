package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/rootfs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Volume is a named or anonymous volume: a directory, <root>/volumes/<name>/_data,
// that containers mount and that outlives them. Its JSON is Docker's.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Scope      string            `json:"Scope"`
	Options    map[string]string `json:"Options"`
	Anonymous  bool              `json:"-"`
}

type volumeMeta struct {
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"`
}

// ErrVolumeNotFound is returned for a volume that does not exist.
var ErrVolumeNotFound = errors.New("no such volume")

// validVolumeName is Docker's rule for local volume names.
func validVolumeName(n string) bool { return len(n) > 1 && validName(n) }

func (s *Store) volumeDir(name string) string { return filepath.Join(s.volumes, name) }

// VolumeCreate makes a named volume, or returns it if it exists; an empty
// name makes a volume with a generated name.
func (s *Store) VolumeCreate(ctx context.Context, name string, labels map[string]string) (*Volume, error) {
	if name != "" && !validVolumeName(name) {
		return nil, fmt.Errorf("%w: create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", ErrInvalid, name, name)
	}
	return s.volumeCreate(ctx, name, labels, false)
}

func (s *Store) volumeCreate(ctx context.Context, name string, labels map[string]string, anonymous bool) (*Volume, error) {
	if name == "" {
		name = newID()
	}
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "volumes.lock"))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if v, err := s.VolumeInspect(name); err == nil {
		return v, nil
	}
	// Made aside, then renamed: a volume exists whole or not at all.
	tmp, err := os.MkdirTemp(s.volumes, ".new-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Mkdir(filepath.Join(tmp, "_data"), 0o755); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(volumeMeta{CreatedAt: now(), Labels: labels, Anonymous: anonymous})
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, s.volumeDir(name)); err != nil {
		return nil, err
	}
	return s.VolumeInspect(name)
}

// VolumeInspect returns the volume name.
func (s *Store) VolumeInspect(name string) (*Volume, error) {
	if !validVolumeName(name) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeNotFound, name)
	}
	b, err := os.ReadFile(filepath.Join(s.volumeDir(name), "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeNotFound, name)
	} else if err != nil {
		return nil, err
	}
	var m volumeMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	labels := m.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return &Volume{Name: name, Driver: "local", Scope: "local", Mountpoint: filepath.Join(s.volumeDir(name), "_data"),
		CreatedAt: m.CreatedAt, Labels: labels, Options: map[string]string{}, Anonymous: m.Anonymous}, nil
}

// Volumes lists the volumes, by name.
func (s *Store) Volumes() ([]*Volume, error) {
	entries, err := os.ReadDir(s.volumes)
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, e := range entries {
		if v, err := s.VolumeInspect(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// volumeUsers returns the containers that mount volume name.
func (s *Store) volumeUsers(name string) ([]string, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range recs {
		if slices.ContainsFunc(c.Mounts, func(m Mount) bool { return m.Type == "volume" && m.Name == name }) {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// VolumeRemove removes a volume that no container uses. With force, a
// volume that does not exist is not an error.
func (s *Store) VolumeRemove(ctx context.Context, name string, force bool) error {
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "volumes.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock()
	if _, err := s.VolumeInspect(name); err != nil {
		if force && errors.Is(err, ErrVolumeNotFound) {
			return nil
		}
		return err
	}
	users, err := s.volumeUsers(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: remove %s: volume is in use - [%s]", ErrConflict, name, strings.Join(users, ", "))
	}
	return s.dropVolume(name)
}

// dropVolume removes a volume's directory: renamed out of sight first, so it
// disappears at once even if the removal of its content is cut short.
func (s *Store) dropVolume(name string) error {
	trash, err := os.MkdirTemp(s.tmp, "volume-")
	if err != nil {
		return err
	}
	if err := os.Rename(s.volumeDir(name), filepath.Join(trash, "v")); err != nil {
		os.Remove(trash)
		return err
	}
	return os.RemoveAll(trash)
}

// VolumePrune removes the anonymous volumes no container uses (all unused
// volumes with all), as `docker volume prune` does, and returns their names.
func (s *Store) VolumePrune(ctx context.Context, all bool) ([]string, error) {
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "volumes.lock"))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	vols, err := s.Volumes()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vols {
		if !v.Anonymous && !all {
			continue
		}
		if users, err := s.volumeUsers(v.Name); err != nil || len(users) > 0 {
			continue
		}
		if err := s.dropVolume(v.Name); err != nil {
			return removed, err
		}
		removed = append(removed, v.Name)
	}
	return removed, nil
}

// parseVolumes turns -v arguments and the image's VOLUME paths into mounts:
// "/host:/ctr[:ro|rw]" binds a host path, "name:/ctr[:ro]" mounts a named
// volume, "/ctr" and the image's VOLUME paths an anonymous one (named now, so
// that the record says which).
func parseVolumes(binds []string, imageVolumes map[string]struct{}) ([]Mount, error) {
	var out []Mount
	taken := map[string]bool{}
	add := func(m Mount, spec string) error {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("%w: invalid volume specification: '%s': invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute", ErrInvalid, spec, m.Type, m.Destination)
		}
		m.Destination = filepath.Clean(m.Destination)
		if m.Destination == "/" {
			return fmt.Errorf("%w: invalid volume specification: '%s': invalid mount config for type \"%s\": invalid specification: destination can't be '/'", ErrInvalid, spec, m.Type)
		}
		if taken[m.Destination] {
			return fmt.Errorf("%w: Duplicate mount point: %s", ErrInvalid, m.Destination)
		}
		taken[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, b := range binds {
		parts := strings.Split(b, ":")
		m := Mount{RW: true}
		switch len(parts) {
		case 1:
			m.Type, m.Destination, m.Anonymous, m.Name = "volume", parts[0], true, newID()
		case 2, 3:
			m.Source, m.Destination = parts[0], parts[1]
			if len(parts) == 3 {
				for _, o := range strings.Split(parts[2], ",") {
					switch o {
					case "ro":
						m.RW = false
					case "rw", "z", "Z", "nocopy":
					default:
						return nil, fmt.Errorf("%w: invalid mode: %s", ErrInvalid, o)
					}
				}
			}
			switch {
			case m.Source == "":
				return nil, fmt.Errorf("%w: invalid volume specification: '%s'", ErrInvalid, b)
			case filepath.IsAbs(m.Source):
				m.Type, m.Source = "bind", filepath.Clean(m.Source)
			case !validVolumeName(m.Source):
				return nil, fmt.Errorf("%w: create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", ErrInvalid, m.Source, m.Source)
			default:
				m.Type, m.Name, m.Source = "volume", m.Source, ""
			}
		default:
			return nil, fmt.Errorf("%w: invalid volume specification: '%s'", ErrInvalid, b)
		}
		if err := add(m, b); err != nil {
			return nil, err
		}
	}
	var paths []string
	for p := range imageVolumes {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if !taken[filepath.Clean(p)] {
			if err := add(Mount{Type: "volume", Destination: p, Name: newID(), Anonymous: true, RW: true}, p); err != nil {
				return nil, err
			}
		}
	}
	// Parents before children, so that a mount inside another lands in it.
	slices.SortStableFunc(out, func(a, b Mount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	return out, nil
}

// createVolumes makes the volumes a new container's mounts name, and fills in
// their sources. It returns a function that drops the anonymous ones again,
// for a Create that fails after it.
func (s *Store) createVolumes(ctx context.Context, c *Container) (undo func(), err error) {
	var made []string
	undo = func() {
		for _, name := range made {
			s.dropVolume(name)
		}
	}
	for i := range c.Mounts {
		m := &c.Mounts[i]
		if m.Type != "volume" {
			continue
		}
		v, err := s.volumeCreate(ctx, m.Name, nil, m.Anonymous)
		if err != nil {
			undo()
			return nil, err
		}
		if m.Anonymous {
			made = append(made, v.Name)
		}
		m.Source = v.Mountpoint
	}
	return undo, nil
}

// prepareMounts readies a starting container's mounts, its root mounted on
// rootfs: a missing host directory of a bind is made, as Docker does, and an
// empty volume gets the image's content at its mount point, with that
// directory's owner and mode.
func (s *Store) prepareMounts(ctx context.Context, c *Container, rootfs string) error {
	for _, m := range c.Mounts {
		switch m.Type {
		case "bind":
			if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return fmt.Errorf("bind source path %s: %w", m.Source, err)
				}
			}
		case "volume":
			if _, err := os.Stat(m.Source); err != nil {
				return fmt.Errorf("volume %s: %w", m.Name, err)
			}
			if err := copyImageContent(ctx, rootfs, m.Destination, m.Source); err != nil {
				return fmt.Errorf("volume %s: copy the image's content at %s: %w", m.Name, m.Destination, err)
			}
		}
	}
	return nil
}

// copyImageContent copies the tree at dest inside rootfs, if it is a
// directory, into the volume directory vol if vol is empty, keeping owners,
// modes, times, xattrs, links and holes (through a tar stream: the same code
// that writes and applies layers, and just as safe inside a hostile tree).
func copyImageContent(ctx context.Context, rootfsDir, dest, vol string) error {
	if entries, err := os.ReadDir(vol); err != nil || len(entries) > 0 {
		return err // a volume with content keeps it
	}
	src, err := securejoin.SecureJoin(rootfsDir, dest)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // nothing there, or not a directory: the volume stays empty
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := rootfs.WriteTree(ctx, pw, src, rootfs.TarOptions{})
		pw.CloseWithError(err)
		done <- err
	}()
	_, err = rootfs.Apply(ctx, vol, pr)
	pr.CloseWithError(err)
	if werr := <-done; err == nil && werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		err = werr
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(vol, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(vol, os.FileMode(st.Mode&0o777)|unixModeBits(st.Mode))
}

func unixModeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}
