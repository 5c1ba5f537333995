package runtime

// A container's mounts: -v, --mount, --tmpfs and --volumes-from turned
// into its record's Mounts, and made ready (volumes created and filled from
// the image) before it starts.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/rootfs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// mountSources are what a new container's mounts come from: -v arguments
// ("/host:/ctr[:ro|rw]" binds a host path, "name:/ctr[:ro]" mounts a named
// volume, "/ctr" an anonymous one, named now so that the record says which),
// the image's VOLUME paths (anonymous too), --mount, --tmpfs, --volumes-from.
type mountSources struct {
	binds        []string          // -v, as given
	specs        []MountSpec       // --mount
	tmpfs        map[string]string // --tmpfs: mount points only take their places here
	from         []Mount           // --volumes-from: the other containers' mounts, modes applied
	imageVolumes map[string]struct{}
}

// containerMounts makes a new container's mounts with Docker's precedence:
// those of --volumes-from, replaced by a -v or --mount at the same place;
// -v and --mount (and --tmpfs) must not share a place; an image's VOLUME
// gets an anonymous volume unless something else is mounted there. They
// come out parents first, so that a mount inside another lands in it.
func containerMounts(src mountSources) ([]Mount, error) {
	var out []Mount
	at := map[string]int{}        // destination → index in out
	explicit := map[string]bool{} // destinations of -v, --mount, --tmpfs
	add := func(m Mount, spec string, replace bool) error {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("%w: invalid volume specification: '%s': invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute", ErrInvalid, spec, m.Type, m.Destination)
		}
		m.Destination = filepath.Clean(m.Destination)
		if m.Destination == "/" {
			return fmt.Errorf("%w: invalid volume specification: '%s': invalid mount config for type \"%s\": invalid specification: destination can't be '/'", ErrInvalid, spec, m.Type)
		}
		if i, ok := at[m.Destination]; ok {
			if !replace || explicit[m.Destination] {
				return fmt.Errorf("%w: Duplicate mount point: %s", ErrInvalid, m.Destination)
			}
			out[i] = m
		} else {
			at[m.Destination] = len(out)
			out = append(out, m)
		}
		if replace {
			explicit[m.Destination] = true
		}
		return nil
	}
	for _, m := range src.from {
		if err := add(m, m.Destination, false); err != nil {
			return nil, err
		}
	}
	for _, b := range src.binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(m, b, true); err != nil {
			return nil, err
		}
	}
	for _, ms := range src.specs {
		m, err := specMount(ms)
		if err != nil {
			return nil, err
		}
		if err := add(m, ms.Target, true); err != nil {
			return nil, err
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(src.tmpfs)) {
		if !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("%w: invalid tmpfs: mount path must be absolute: %s", ErrInvalid, dst)
		}
		d := filepath.Clean(dst)
		if d == "/" {
			return nil, fmt.Errorf("%w: invalid tmpfs: destination can't be '/'", ErrInvalid)
		}
		if explicit[d] {
			return nil, fmt.Errorf("%w: Duplicate mount point: %s", ErrInvalid, d)
		}
		if i, ok := at[d]; ok { // one of --volumes-from's: the tmpfs takes its place
			out = slices.Delete(out, i, i+1)
			delete(at, d)
			for k, j := range at {
				if j > i {
					at[k] = j - 1
				}
			}
		}
		explicit[d] = true
	}
	for _, p := range slices.Sorted(maps.Keys(src.imageVolumes)) {
		d := filepath.Clean(p)
		if _, ok := at[d]; ok || explicit[d] {
			continue
		}
		if err := add(Mount{Type: "volume", Destination: p, Name: newID(), Anonymous: true, RW: true}, p, false); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b Mount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	return out, nil
}

// Propagation modes of a bind mount, as Docker names them.
var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// parseBind parses one -v: HOST:CTR[:MODES], NAME:CTR[:MODES] or CTR;
// MODES are ro or rw, nocopy, a propagation, and z or Z (SELinux
// relabeling, a no-op without SELinux, as in Docker).
func parseBind(b string) (Mount, error) {
	parts := strings.Split(b, ":")
	m := Mount{RW: true}
	switch len(parts) {
	case 1:
		m.Type, m.Destination, m.Anonymous, m.Name = "volume", parts[0], true, newID()
		return m, nil
	case 2, 3:
		m.Source, m.Destination = parts[0], parts[1]
	default:
		return m, fmt.Errorf("%w: invalid volume specification: '%s'", ErrInvalid, b)
	}
	switch {
	case m.Source == "":
		return m, fmt.Errorf("%w: invalid volume specification: '%s'", ErrInvalid, b)
	case filepath.IsAbs(m.Source):
		m.Type, m.Source = "bind", filepath.Clean(m.Source)
	case !validVolumeName(m.Source):
		return m, fmt.Errorf("%w: create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", ErrInvalid, m.Source, m.Source)
	default:
		m.Type, m.Name, m.Source = "volume", m.Source, ""
	}
	if len(parts) == 3 {
		rw := 0
		for _, o := range strings.Split(parts[2], ",") {
			switch {
			case o == "ro":
				m.RW = false
				rw++
			case o == "rw":
				rw++
			case o == "z", o == "Z":
			case o == "nocopy" && m.Type == "volume":
				m.NoCopy = true
			case slices.Contains(propagations, o) && m.Type == "bind" && m.Propagation == "":
				m.Propagation = o
			default:
				return m, fmt.Errorf("%w: invalid mode: %s", ErrInvalid, parts[2])
			}
		}
		if rw > 1 {
			return m, fmt.Errorf("%w: invalid mode: %s", ErrInvalid, parts[2])
		}
	}
	return m, nil
}

// specMount is the mount of one --mount, checked as Docker's daemon checks
// it: a bind's source must exist; a volume without a source is anonymous;
// a tmpfs has no source.
func specMount(ms MountSpec) (Mount, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: invalid mount config for type %q: %s", ErrInvalid, ms.Type, fmt.Sprintf(format, args...))
	}
	if ms.Target == "" {
		return Mount{}, bad("field Target must not be empty")
	}
	m := Mount{Type: ms.Type, Destination: ms.Target, RW: !ms.ReadOnly}
	if ms.BindOptions != nil && ms.Type != "bind" {
		return m, bad("field BindOptions must not be specified")
	}
	if ms.VolumeOptions != nil && ms.Type != "volume" {
		return m, bad("field VolumeOptions must not be specified")
	}
	if ms.TmpfsOptions != nil && ms.Type != "tmpfs" {
		return m, bad("field TmpfsOptions must not be specified")
	}
	switch ms.Type {
	case "bind":
		if ms.Source == "" {
			return m, bad("field Source must not be empty")
		}
		if !filepath.IsAbs(ms.Source) {
			return m, bad("invalid mount path: '%s' mount path must be absolute", ms.Source)
		}
		if _, err := os.Stat(ms.Source); err != nil {
			return m, bad("bind source path does not exist: %s", ms.Source)
		}
		m.Source = filepath.Clean(ms.Source)
		if o := ms.BindOptions; o != nil && o.Propagation != "" {
			if !slices.Contains(propagations, o.Propagation) {
				return m, bad("invalid propagation mode: %s", o.Propagation)
			}
			m.Propagation = o.Propagation
		}
	case "volume":
		switch {
		case ms.Source == "":
			m.Name, m.Anonymous = newID(), true
		case !validVolumeName(ms.Source):
			return m, bad("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", ms.Source)
		default:
			m.Name = ms.Source
		}
		if o := ms.VolumeOptions; o != nil {
			m.NoCopy, m.Labels = o.NoCopy, o.Labels
		}
	case "tmpfs":
		if ms.Source != "" {
			return m, bad("field Source must not be specified")
		}
		var opts []string
		if o := ms.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return m, bad("invalid tmpfs size: %d", o.SizeBytes)
			}
			if o.Mode != 0 {
				// Mode holds the bits as chmod(2) has them, as Docker's API does.
				opts = append(opts, fmt.Sprintf("mode=%o", uint32(o.Mode)))
			}
			if o.SizeBytes > 0 {
				opts = append(opts, "size="+tmpfsSize(o.SizeBytes))
			}
		}
		m.Data = strings.Join(opts, ",")
	case "":
		return m, fmt.Errorf("%w: invalid mount config: mount type must be specified", ErrInvalid)
	default:
		return m, fmt.Errorf("%w: invalid mount config: mount type unknown: %q (cairn mounts bind, volume and tmpfs)", ErrInvalid, ms.Type)
	}
	return m, nil
}

// tmpfsSize writes a size for tmpfs's size= as Docker does: in the largest
// unit that divides it.
func tmpfsSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return fmt.Sprint(n)
}

// volumesFrom are the mounts container c lends with --volumes-from
// c[:mode]: all of its mounts, read-only with ro, read-write with rw, else
// as they are; its anonymous volumes are not the borrower's to remove.
func volumesFrom(c *Container, mode string) []Mount {
	var out []Mount
	for _, m := range c.Mounts {
		m.Anonymous = false
		switch mode {
		case "ro":
			m.RW = false
		case "rw":
			m.RW = true
		}
		m.NoCopy = true // it has its content already
		out = append(out, m)
	}
	return out
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
		v, err := s.volumeCreate(ctx, m.Name, m.Labels, m.Anonymous)
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
			if m.NoCopy {
				continue
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
	return os.Chmod(vol, fileMode(st.Mode)) // its permissions and setuid, setgid, sticky bits
}
