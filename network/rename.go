package network

import "context"

// Rename records that container id is now called name, and writes again
// the /etc/hosts of the containers that share a user network with it,
// which know it by its name. A container without a record (one that does
// not run) has nothing to change: its next Attach takes the name it is
// given.
func (s *Store) Rename(ctx context.Context, id, name string) error {
	if r, err := s.read(id); err == nil && r == nil {
		return nil // not running: nothing to take the lock for
	}
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	r, err := s.read(id)
	if err != nil || r == nil {
		return err
	}
	if r.Name == name {
		return nil
	}
	r.Name = name
	if err := s.write(r); err != nil {
		return err
	}
	return s.writeHosts(r)
}
