package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/lockfile"
)

// renameError is an error of Rename in Docker's words alone, which is
// still one of the runtime's sentinels for errors.Is.
type renameError struct {
	msg  string
	kind error
}

func (e *renameError) Error() string { return e.msg }
func (e *renameError) Unwrap() error { return e.kind }

// Rename gives container ref the name newName (a leading "/" is dropped),
// as `docker rename` does. It holds the names lock, as Create does, from
// the check that no other container has the name to the write of the
// record, so that no two containers ever get one name. A container that
// runs on user networks is known by its new name to its peers at once:
// its network record and their /etc/hosts are written again.
func (s *Store) Rename(ctx context.Context, ref, newName string) error {
	id, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(newName, "/")
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "names.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock()
	c, err := s.read(id)
	if err != nil {
		return err
	}
	if c.Name == name {
		return &renameError{"Renaming a container with the same name as its current name", ErrInvalid}
	}
	// Docker's rule for container names: two characters at least.
	if !validName(name) || len(name) < 2 {
		return &renameError{fmt.Sprintf("Error when allocating new name: Invalid container name (/%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name), ErrInvalid}
	}
	heads, err := s.heads()
	if err != nil {
		return err
	}
	for _, other := range heads {
		if other.Name == name && other.ID != id {
			return &renameError{fmt.Sprintf("Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other.ID), ErrConflict}
		}
	}
	old := c.Name
	c, err = s.update(ctx, id, func(c *Container) error {
		c.Name = name
		return nil
	})
	if err != nil {
		return err
	}
	if s.nets != nil {
		if err := s.nets.Rename(ctx, id, name); err != nil {
			return fmt.Errorf("container %s renamed, but its peers still know it as %s: %w", ShortID(id), old, err)
		}
	}
	s.emit(c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}
