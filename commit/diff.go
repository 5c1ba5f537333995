package commit

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/rootfs"
	"golang.org/x/sys/unix"
)

// Kind is the kind of a change, as `docker diff` prints it.
type Kind byte

// Kinds of changes.
const (
	Added    Kind = 'A'
	Changed  Kind = 'C'
	Deleted  Kind = 'D'
	dirFlags      = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// PathChange is one path a container changed: an entry of `docker diff`.
type PathChange struct {
	Kind Kind
	Path string // absolute, as in the container
}

func (c PathChange) String() string { return string(c.Kind) + " " + c.Path }

// Diff lists what a container changed, from its upper directory alone,
// in the order `docker diff` prints it (by path): every entry of the upper
// directory is added (A) or changed (C), as base — a read-only view of what
// the container stands on — has the path or not, but for the kernel's
// whiteouts, which are deletions (D). A directory made anew (opaque) is
// changed, its entries added. base is only looked at along the paths of the
// changes: the cost is that of the change, not of the image.
func Diff(ctx context.Context, upper, base string) ([]PathChange, error) {
	ufd, err := unix.Open(upper, dirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", upper, err)
	}
	defer unix.Close(ufd)
	bfd, err := unix.Open(base, dirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", base, err)
	}
	defer unix.Close(bfd)
	var out []PathChange
	buf := make([]byte, 64<<10)
	var walk func(ufd, bfd int, dir string) error
	walk = func(ufd, bfd int, dir string) error {
		names, err := rootfs.ReadNames(ufd, buf)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if rootfs.IsOverlayMark(name) {
				continue
			}
			p := dir + "/" + name
			var st unix.Stat_t
			if err := unix.Fstatat(ufd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("stat %s: %w", p, err)
			}
			inBase := bfd >= 0 && unix.Fstatat(bfd, name, new(unix.Stat_t), unix.AT_SYMLINK_NOFOLLOW) == nil
			switch {
			case st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0:
				if inBase {
					out = append(out, PathChange{Deleted, p})
				}
				continue
			case inBase:
				out = append(out, PathChange{Changed, p})
			default:
				out = append(out, PathChange{Added, p})
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			sub, err := unix.Openat(ufd, name, dirFlags, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			bsub := -1
			if inBase && !rootfs.IsOpaque(sub) {
				bsub, _ = unix.Openat(bfd, name, dirFlags, 0) // -1 unless a directory there too
			}
			err = walk(sub, bsub, p)
			unix.Close(sub)
			if bsub >= 0 {
				unix.Close(bsub)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(ufd, bfd, ""); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b PathChange) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}
