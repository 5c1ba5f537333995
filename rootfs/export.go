package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteTree writes every file under root (root itself excluded) to w as
// one tar stream, with its end, as [TarWriter] describes: parents before
// their children, names sorted bytewise within a directory, so that the
// same tree always gives the same bytes. ctx is checked before each entry
// and while copying file data.
//
// A file that changes or vanishes while the tree is written does not stop
// it: the stream is finished and valid, and WriteTree returns an error
// wrapping [ErrChanged] that names the first such file. On any other error
// the stream is left unfinished, without its end.
func WriteTree(ctx context.Context, w io.Writer, root string, opts TarOptions) error {
	t := NewTarWriter(w, opts)
	err := t.tree(ctx, root)
	if err != nil && !errors.Is(err, ErrChanged) {
		t.dirs.close()
		return err
	}
	if cerr := t.Close(); cerr != nil {
		return cerr
	}
	return err
}

// tree writes the entries below root, depth first. The fds of the
// directories on the way are those of t.dirs, so that a deep tree holds
// a bounded number of them.
func (t *TarWriter) tree(ctx context.Context, root string) error {
	if err := t.dirs.setRoot(root); err != nil {
		return err
	}
	var changed error
	nchanged := 0
	vanished := func(name string, err error) bool {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrChanged) {
			return false
		}
		if !errors.Is(err, ErrChanged) {
			err = fmt.Errorf("%w: %w", err, ErrChanged)
		}
		if nchanged++; changed == nil {
			changed = fmt.Errorf("tar entry %q: %w", name, err)
		}
		return true
	}

	type frame struct {
		names []string // sorted entries of the directory
		next  int
	}
	var comps []string // the directory whose entries are being written
	names, err := t.list(comps)
	if err != nil {
		return fmt.Errorf("list %s: %w", root, err)
	}
	stack := []frame{{names: names}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == len(f.names) {
			stack = stack[:len(stack)-1]
			if len(comps) > 0 {
				comps = comps[:len(comps)-1]
			}
			continue
		}
		base := f.names[f.next]
		f.next++
		if err := ctx.Err(); err != nil {
			return err
		}
		name := base
		if len(comps) > 0 {
			name = strings.Join(comps, "/") + "/" + base
		}
		pfd, err := t.dirs.open(comps)
		typ := uint32(0)
		if err == nil {
			typ, err = t.entry(ctx, pfd, base, name)
		}
		if err != nil {
			if !t.dirty && vanished(name, err) {
				continue
			}
			return t.fail(name, err)
		}
		if typ != unix.S_IFDIR {
			continue
		}
		comps = append(comps, base)
		names, err := t.list(comps)
		if err != nil {
			comps = comps[:len(comps)-1]
			if vanished(name, err) {
				continue
			}
			return fmt.Errorf("tar entry %q: list: %w", name, err)
		}
		stack = append(stack, frame{names: names})
	}
	if nchanged > 1 {
		return fmt.Errorf("%w (and %d more)", changed, nchanged-1)
	}
	return changed
}

// list returns the names in the directory comps, sorted bytewise.
func (t *TarWriter) list(comps []string) ([]string, error) {
	fd, err := t.dirs.open(comps)
	if err != nil {
		return nil, err
	}
	if t.buf == nil {
		t.buf = make([]byte, copyBuffer)
	}
	return ReadNames(fd, t.buf)
}

// ReadNames lists the directory open as fd, from its start, sorted
// bytewise; buf is the getdents buffer.
func ReadNames(fd int, buf []byte) ([]string, error) {
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}
