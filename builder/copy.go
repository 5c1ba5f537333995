package builder

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// ignorer is a context's .dockerignore.
type ignorer struct {
	pm *patternmatcher.PatternMatcher
}

func readDockerignore(ctxDir string) (*ignorer, error) {
	f, err := os.Open(filepath.Join(ctxDir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return &ignorer{}, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", ErrContext, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", ErrContext, err)
	}
	return &ignorer{pm: pm}, nil
}

// below reports whether the entry rel of a source (relative to the source,
// "." for itself) is excluded, and whether nothing below it can come back.
func (s source) below(rel string) (ignored, skipDir bool) {
	if s.ignore == nil || rel == "." {
		return false, false
	}
	return s.ignore.ignored(path.Join(s.rel, rel))
}

// ignored reports whether rel, a slash path relative to the context, is
// excluded; skipDir, whether nothing below it can be included again.
func (ig *ignorer) ignored(rel string) (ignored, skipDir bool) {
	if ig == nil || ig.pm == nil || rel == "." || rel == "" {
		return false, false
	}
	m, err := ig.pm.MatchesOrParentMatches(rel)
	if err != nil || !m {
		return false, false
	}
	return true, !ig.pm.Exclusions()
}

type copyFlags struct {
	chown, chmod, from, verb string
	add                      bool // ADD: URLs are fetched, local archives unpacked
}

// source is one thing a COPY or ADD copies.
type source struct {
	path     string   // on the host: in the context, a stage's view, or a download
	unpacked bool     // a directory an ADD archive was unpacked into: its own mode and times are not copied
	rel      string   // relative to its root, for .dockerignore
	ignore   *ignorer // the context's .dockerignore; nil for other roots
	name     string   // the base name it lands under in a directory
	data     *string
	url      bool
	mtime    time.Time
	archive  bool // ADD of a local archive: unpacked
}

// copy runs COPY or ADD: its sources are resolved (and, for the cache,
// hashed: their content, not their times) before anything is made.
func (s *stageState) copy(ctx context.Context, sd instructions.SourcesAndDest, f copyFlags) error {
	if err := sd.Expand(s.expand); err != nil {
		return fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	var err error
	if f.chown, err = s.expand(f.chown); err != nil {
		return err
	}
	var mode *os.FileMode
	if f.chmod != "" {
		m, err := strconv.ParseUint(f.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("%w: invalid --chmod %q: an octal mode", ErrDockerfile, f.chmod)
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	dest := joinDest(s.cfg.Config.WorkingDir, sd.DestPath)
	run := func(root string, ignore *ignorer, fromID string) error {
		srcs, cleanup, err := s.sources(ctx, root, ignore, sd, f)
		defer cleanup()
		if err != nil {
			return err
		}
		if len(srcs) > 1 && !strings.HasSuffix(dest, "/") {
			return fmt.Errorf("%w: When using %s with more than one source file, the destination must be a directory and end with a /", ErrDockerfile, f.verb)
		}
		kind, hash, err := hashSources(srcs, fromID)
		if err != nil {
			return err
		}
		// Docker's classic builder writes the flags right against the hash.
		flags := ""
		if f.chown != "" {
			flags += "--chown=" + f.chown
		}
		if f.chmod != "" {
			flags += "--chmod=" + f.chmod
		}
		createdBy := fmt.Sprintf("%s #(nop) %s %s%s:%s in %s ", strings.Join(s.shell(), " "), f.verb, flags, kind, hash, dest)
		key := s.key(f.verb, createdBy, f.chown, f.chmod, configKey(&s.cfg))
		if s.cached(key) {
			return nil
		}
		next := s.cfg
		return s.layer(ctx, key, createdBy, &next, func(target string) error {
			owner, err := chownIDs(target, f.chown)
			if err != nil {
				return err
			}
			return copyInto(ctx, target, dest, srcs, owner, f.chown != "", mode, s.bs.b.Tmp)
		})
	}
	if f.from == "" {
		return run(s.bs.contextDir, s.bs.ignore, "")
	}
	// --from: a stage before, or an image of the store, read through a view.
	var from image.Image
	if st, ok := s.bs.stageByName(f.from); ok && st.parent != nil {
		from = *st.parent
	} else {
		from, err = s.bs.b.Images.Lookup(f.from)
		if errors.Is(err, image.ErrNotFound) && s.bs.b.Pull != nil {
			if err = s.bs.b.Pull(ctx, f.from); err == nil {
				from, err = s.bs.b.Images.Lookup(f.from)
			}
		}
		if err != nil {
			return fmt.Errorf("--from=%s: %w", f.from, err)
		}
	}
	chains, err := s.bs.b.Images.EnsureSnapshots(ctx, from)
	if err != nil {
		return err
	}
	if len(chains) == 0 {
		return fmt.Errorf("%w: --from=%s has no files", ErrDockerfile, f.from)
	}
	return s.bs.b.Snapshots.View(ctx, chains[len(chains)-1], func(root string) error {
		return run(root, nil, from.ID.String())
	})
}

// sources resolves the sources of a COPY or ADD inside root: wildcards
// expanded, symlinks followed as if root were "/" (nothing outside it is
// ever read), what .dockerignore excludes missing, URLs downloaded.
func (s *stageState) sources(ctx context.Context, root string, ignore *ignorer, sd instructions.SourcesAndDest, f copyFlags) ([]source, func(), error) {
	var out []source
	var temps []string
	cleanup := func() {
		for _, t := range temps {
			os.RemoveAll(t)
		}
	}
	for _, c := range sd.SourceContents {
		data := c.Data
		if c.Expand { // <<EOF, not <<"EOF": variables expand, quotes stay, as in BuildKit
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			var err error
			if data, _, err = lex.ProcessWord(data, shell.EnvsFromSlice(s.expandEnv())); err != nil {
				return nil, cleanup, fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
		}
		out = append(out, source{name: c.Path, data: &data})
	}
	for _, src := range sd.SourcePaths {
		if f.add && isURL(src) {
			dl, err := s.download(ctx, src)
			if err != nil {
				return nil, cleanup, err
			}
			temps = append(temps, filepath.Dir(dl.path))
			out = append(out, dl)
			continue
		}
		if isURL(src) {
			return nil, cleanup, fmt.Errorf("%w: source can't be a URL for %s", ErrDockerfile, f.verb)
		}
		clean := filepath.Clean(src)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, cleanup, fmt.Errorf("%w: forbidden path outside the build context: %s", ErrContext, src)
		}
		clean = strings.TrimPrefix(clean, "/")
		var names []string
		if strings.ContainsAny(clean, "*?[") {
			matches, err := filepath.Glob(filepath.Join(root, clean))
			if err != nil {
				return nil, cleanup, fmt.Errorf("%w: %s: %w", ErrDockerfile, src, err)
			}
			for _, m := range matches {
				rel, err := filepath.Rel(root, m)
				if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
					if ig, _ := ignore.ignored(rel); !ig {
						names = append(names, rel)
					}
				}
			}
			if len(names) == 0 {
				return nil, cleanup, fmt.Errorf("%w: %s failed: no source files were specified", ErrContext, f.verb)
			}
		} else {
			names = []string{clean}
		}
		for _, rel := range names {
			if ig, _ := ignore.ignored(rel); ig {
				return nil, cleanup, fmt.Errorf("%w: %s failed: file not found in build context or excluded by .dockerignore: %s", ErrContext, f.verb, src)
			}
			p, err := securejoin.SecureJoin(root, rel)
			if err != nil {
				return nil, cleanup, err
			}
			st, err := os.Lstat(p)
			if err != nil {
				return nil, cleanup, fmt.Errorf("%w: %s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", ErrContext, f.verb, src)
			}
			r, _ := filepath.Rel(root, p)
			sr := source{path: p, rel: filepath.ToSlash(r), ignore: ignore, name: path.Base(filepath.ToSlash(rel))}
			if f.add && st.Mode().IsRegular() {
				sr.archive = isArchive(p)
			}
			out = append(out, sr)
		}
	}
	return out, cleanup, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// download fetches an ADD URL into a temporary file: mode 0600 as Docker
// gives it, dated by the server's Last-Modified.
func (s *stageState) download(ctx context.Context, raw string) (source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, fmt.Errorf("%w: %s: %w", ErrDockerfile, raw, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return source{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return source{}, fmt.Errorf("%s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return source{}, fmt.Errorf("%w: failed to GET %s with status %s", ErrContext, raw, resp.Status)
	}
	dir, err := os.MkdirTemp(s.bs.b.Tmp, "download-")
	if err != nil {
		return source{}, err
	}
	p := filepath.Join(dir, "file")
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = io.Copy(out, resp.Body)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return source{}, fmt.Errorf("%s: %w", raw, err)
	}
	sr := source{path: p, name: name, url: true}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		sr.mtime = lm
	}
	return sr, nil
}

// isArchive reports whether a file is a tar archive, plain or compressed.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case rootfs.DetectCompression(head) != rootfs.Uncompressed, bytes.HasPrefix(head, []byte("BZh")):
		return true
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return true
	}
	return n >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
}

// hashSources is what the history shows of the sources ("file:", "dir:" or
// "multi:" and a hash) and what the cache keys on: their names, modes,
// targets and contents, never their times. Sources from another image are
// that image, and their paths.
func hashSources(srcs []source, fromID string) (kind, hash string, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "from %s\x00", fromID)
	kind = "multi"
	for _, s := range srcs {
		fmt.Fprintf(h, "source %s\x00", s.name)
		if s.data != nil {
			fmt.Fprintf(h, "data %d:%s\x00", len(*s.data), *s.data)
			continue
		}
		if fromID != "" {
			fmt.Fprintf(h, "path %s\x00", s.rel)
			continue
		}
		if err := filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(s.path, p)
			if ig, skip := s.below(filepath.ToSlash(rel)); ig {
				if skip && d.IsDir() {
					return filepath.SkipDir
				}
				if !d.IsDir() {
					return nil
				}
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %o\x00", filepath.ToSlash(rel), info.Mode())
			switch {
			case info.Mode().IsRegular():
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				if _, err := io.Copy(h, f); err != nil {
					return err
				}
			case info.Mode()&fs.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				fmt.Fprintf(h, "-> %s", t)
			}
			h.Write([]byte{0})
			return nil
		}); err != nil {
			return "", "", err
		}
	}
	if len(srcs) == 1 {
		kind = "file"
		if srcs[0].data == nil {
			if st, err := os.Stat(srcs[0].path); err == nil && st.IsDir() {
				kind = "dir"
			}
		}
	}
	return kind, hex.EncodeToString(h.Sum(nil)), nil
}

// ids is an owner to give copied files.
type ids struct{ uid, gid int }

// chownIDs reads --chown: names are looked up in the image's own
// /etc/passwd and /etc/group; without a group, the group is the user's
// number, as in Docker. No --chown: root.
func chownIDs(root, spec string) (*ids, error) {
	if spec == "" {
		return &ids{0, 0}, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	lookup := func(file string, name string, isUser bool) (int, error) {
		if n, err := strconv.Atoi(name); err == nil {
			return n, nil
		}
		p, err := securejoin.SecureJoin(root, file)
		if err != nil {
			return 0, err
		}
		f, err := os.Open(p)
		if err != nil {
			return 0, fmt.Errorf("%w: unable to convert %q: %s: %w", ErrDockerfile, spec, file, err)
		}
		defer f.Close()
		if isUser {
			users, err := user.ParsePasswdFilter(f, func(x user.User) bool { return x.Name == name })
			if err != nil || len(users) == 0 {
				return 0, fmt.Errorf("%w: unable to find user %s in %s", ErrDockerfile, name, file)
			}
			return users[0].Uid, nil
		}
		groups, err := user.ParseGroupFilter(f, func(x user.Group) bool { return x.Name == name })
		if err != nil || len(groups) == 0 {
			return 0, fmt.Errorf("%w: unable to find group %s in %s", ErrDockerfile, name, file)
		}
		return groups[0].Gid, nil
	}
	uid, err := lookup("/etc/passwd", u, true)
	if err != nil {
		return nil, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookup("/etc/group", g, false); err != nil {
			return nil, err
		}
	}
	return &ids{uid, gid}, nil
}

// copyInto copies srcs to dest inside root, as COPY and ADD do: a file to
// dest (or into it, if it is a directory: it ends with "/" or is one), a
// directory's contents into dest, an ADD archive unpacked into dest.
// Missing directories on the way are made, mode 0755. Every path inside
// root is resolved as if root were "/".
func copyInto(ctx context.Context, root, dest string, srcs []source, owner *ids, chowned bool, mode *os.FileMode, tmp string) error {
	destIsDir := strings.HasSuffix(dest, "/")
	if !destIsDir {
		if p, err := securejoin.SecureJoin(root, dest); err == nil {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				destIsDir = true
			}
		}
	}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := dest
		if destIsDir {
			if s.name == "" {
				return fmt.Errorf("%w: cannot determine a file name from the URL: give ADD a file destination", ErrDockerfile)
			}
			target = path.Join(dest, s.name)
		}
		switch {
		case s.data != nil:
			if err := writeFile(root, target, bytes.NewReader([]byte(*s.data)), 0o644, owner, mode, time.Time{}); err != nil {
				return err
			}
		case s.archive:
			if err := unpackInto(ctx, root, dest, s.path, tmp, owner, !chowned); err != nil {
				return err
			}
		default:
			st, err := os.Lstat(s.path)
			if err != nil {
				return err
			}
			if st.IsDir() {
				if err := copyTree(ctx, root, s, strings.TrimSuffix(dest, "/"), owner, mode, false); err != nil {
					return err
				}
				continue
			}
			if err := copyEntry(root, s.path, target, st, owner, mode, s.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies the contents of the directory src to dir inside root.
// With keepOwner (an ADD archive), owners come from the source.
func copyTree(ctx context.Context, root string, src source, dir string, owner *ids, mode *os.FileMode, keepOwner bool) error {
	type dirTime struct {
		target string
		st     fs.FileInfo
	}
	var dirs []dirTime
	err := filepath.WalkDir(src.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.path, p)
		rel = filepath.ToSlash(rel)
		if ig, skip := src.below(rel); ig {
			if skip && d.IsDir() {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		target := path.Join(dir, rel)
		o := owner
		if keepOwner {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				o = &ids{int(sys.Uid), int(sys.Gid)}
			}
		}
		if st.IsDir() {
			if err := mkdirAll(root, target, o, true); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, st})
			return nil
		}
		return copyEntry(root, p, target, st, o, mode, time.Time{})
	})
	if err != nil {
		return err
	}
	if src.unpacked && len(dirs) > 0 && dirs[0].target == dir {
		dirs = dirs[1:] // the destination keeps its own (0755, made by mkdirAll)
	}
	// Directory modes and times last, once their entries are made.
	for i := len(dirs) - 1; i >= 0; i-- {
		p, err := securejoin.SecureJoin(root, dirs[i].target)
		if err != nil {
			return err
		}
		m := dirs[i].st.Mode()
		if mode != nil {
			m = m&^fs.ModePerm | *mode
		}
		if err := os.Chmod(p, m&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := os.Chtimes(p, dirs[i].st.ModTime(), dirs[i].st.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one file, symlink or special file to target in root.
func copyEntry(root, src, target string, st fs.FileInfo, owner *ids, mode *os.FileMode, mtime time.Time) error {
	if mtime.IsZero() {
		mtime = st.ModTime()
	}
	switch {
	case st.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return writeFile(root, target, bufio.NewReaderSize(f, 256<<10), st.Mode(), owner, mode, mtime)
	case st.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, p); err != nil {
			return err
		}
		if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	case st.Mode()&fs.ModeNamedPipe != 0:
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := unix.Mkfifo(p, uint32(st.Mode().Perm())); err != nil {
			return err
		}
		return os.Lchown(p, owner.uid, owner.gid)
	case st.Mode()&fs.ModeDevice != 0:
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || st.Mode()&fs.ModeCharDevice != 0 && sys.Rdev == 0 {
			return nil // an archive's whiteout, as the layer applier made it: not a file to copy
		}
		p, err := prepare(root, target, owner)
		if err != nil {
			return err
		}
		if err := unix.Mknod(p, sys.Mode, int(sys.Rdev)); err != nil {
			return err
		}
		return os.Lchown(p, owner.uid, owner.gid)
	}
	return nil // sockets mean nothing in an image
}

// prepare makes the parents of target inside root and removes what is at
// target, but a directory; it returns target's path on the host.
func prepare(root, target string, owner *ids) (string, error) {
	dir, base := path.Split(path.Clean("/" + target))
	if err := mkdirAll(root, dir, owner, false); err != nil {
		return "", err
	}
	pd, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(pd, base)
	if st, err := os.Lstat(p); err == nil {
		if st.IsDir() {
			return "", fmt.Errorf("%w: cannot overwrite directory %q with a file", ErrDockerfile, target)
		}
		if err := os.Remove(p); err != nil {
			return "", err
		}
	}
	return p, nil
}

// writeFile writes a regular file at target inside root.
func writeFile(root, target string, r io.Reader, srcMode fs.FileMode, owner *ids, mode *os.FileMode, mtime time.Time) error {
	p, err := prepare(root, target, owner)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
		return err
	}
	m := srcMode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if mode != nil {
		m = *mode
	}
	if err := os.Chmod(p, m); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return os.Chtimes(p, mtime, mtime)
	}
	return nil
}

// mkdirAll makes dir and its missing parents inside root, mode 0755 and
// owned by owner (nil: root), resolving what exists as if root were "/".
// With exact, an existing directory at dir is kept as it is.
func mkdirAll(root, dir string, owner *ids, exact bool) error {
	if owner == nil {
		owner = &ids{0, 0}
	}
	comps := strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/")
	cur := "/"
	for _, c := range comps {
		if c == "" {
			continue
		}
		cur = path.Join(cur, c)
		p, err := securejoin.SecureJoin(root, cur)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			continue
		case err == nil:
			if !exact {
				return fmt.Errorf("%w: %s is not a directory", ErrDockerfile, cur)
			}
			if err := os.Remove(p); err != nil {
				return err
			}
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(p, owner.uid, owner.gid); err != nil {
			return err
		}
	}
	return nil
}

// unpackInto unpacks a local archive (tar, plain or gzip, zstd, bzip2) into
// dest inside root, as ADD does: into a fresh directory first, by the layer
// applier (nothing lands outside it), then copied over, owners kept.
func unpackInto(ctx context.Context, root, dest, archive, tmp string, owner *ids, keepOwner bool) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	br := bufio.NewReader(f)
	if head, _ := br.Peek(6); bytes.HasPrefix(head, []byte("BZh")) {
		r = bzip2.NewReader(br)
	} else if bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		return fmt.Errorf("%w: ADD of an xz archive: cairn unpacks tar, gzip, zstd and bzip2", ErrDockerfile)
	} else {
		r = br
	}
	dec, _, err := rootfs.Decompress(r)
	if err != nil {
		return err
	}
	defer dec.Close()
	dir, err := os.MkdirTemp(tmp, "add-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := rootfs.Apply(ctx, dir, dec); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(archive), err)
	}
	return copyTree(ctx, root, source{path: dir, unpacked: true}, strings.TrimSuffix(dest, "/"), owner, nil, keepOwner)
}
