package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/internal/failpoint"

	"github.com/cairn-runtime/cairn/internal/lockfile"
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
	failpoint.Hit("volume-staged")
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
	// Over the empty directory, not into it, as a container's (remove).
	if err := syscall.Rename(s.volumeDir(name), trash); err != nil {
		os.Remove(trash)
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	failpoint.Hit("volume-trashed")
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
