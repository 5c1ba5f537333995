package engine

// `cp`: what Docker's CLI does around the daemon's archive endpoints
// (cli/command/container/cp.go and the archive package's copy rules), over
// the container store's StatPath, ArchivePath and ExtractToDir.
//
// The path rules, Docker's:
//
//   - SRC a file: to a DEST that does not exist, the file is saved as DEST
//     (its parent must exist); to a DEST that ends with "/" and does not
//     exist, "no such directory"; to an existing file, it is overwritten; to
//     an existing directory, it is copied into it under its own name.
//   - SRC a directory: to a DEST that does not exist, DEST is made and gets
//     the contents; to an existing file, "cannot copy directory"; to an
//     existing directory, SRC is copied into it, or with SRC ending in
//     "/.", SRC's contents are.
//   - A symlink SRC is copied as a symlink, unless -L (then its target,
//     under SRC's name), or SRC ends with "/" or "/.". A symlink DEST is
//     followed.
//   - "-" as DEST writes the tar of SRC to stdout; as SRC, reads a tar from
//     stdin and extracts it into DEST, which must be a directory.
//
// Host paths are the caller's: resolved as the host resolves them. Paths
// of a container are resolved inside it (see runtime's copy.go).

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/runtime"
)

// Errors of the path rules of a copy; the messages are Docker's.
var (
	// ErrCopyNotDirectory: the parent of a destination is not a directory.
	ErrCopyNotDirectory = errors.New("not a directory")
	// ErrCopyNoSuchDirectory: a file copied to a directory (DEST ending
	// with "/") that does not exist.
	ErrCopyNoSuchDirectory = errors.New("no such directory")
	// ErrCopyDirectoryToFile: a directory copied onto an existing file.
	ErrCopyDirectoryToFile = errors.New("cannot copy directory")
)

// CopyOptions are those of `cp`.
type CopyOptions struct {
	FollowLink bool // -L: a symlink SRC_PATH is followed
	CopyUIDGID bool // -a: into a container run with a user, the files are that user's
}

// CopyFromContainer copies srcPath of container ref to dstPath on this
// host, or with dstPath "-" writes its tar to stdout, as `docker cp
// CONTAINER:SRC DEST` does. The files made are the caller's; modes and
// times are kept. It returns the size of the tar stream copied.
func (e *Engine) CopyFromContainer(ctx context.Context, ref, srcPath, dstPath string, stdout io.Writer, o CopyOptions) (int64, error) {
	if dstPath != "-" {
		var err error
		if dstPath, err = resolveLocalPath(dstPath); err != nil {
			return 0, err
		}
	}
	if err := validateOutputPath(dstPath); err != nil {
		return 0, err
	}
	var rebaseName string
	if o.FollowLink {
		st, err := e.Containers.StatPath(ctx, ref, srcPath)
		if err == nil && st.Mode&os.ModeSymlink != 0 {
			target := st.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			target, rebaseName = getRebaseName(srcPath, target)
			srcPath = target
		}
	}
	var n int64
	err := e.Containers.ArchivePath(ctx, ref, srcPath, func(st runtime.PathStat, content io.Reader) error {
		cr := &countReader{r: content}
		defer func() { n = cr.n }()
		if dstPath == "-" {
			_, err := io.Copy(stdout, cr)
			return err
		}
		src := copyInfo{Path: srcPath, Exists: true, IsDir: st.Mode.IsDir(), RebaseName: rebaseName}
		var pre io.Reader = cr
		if rebaseName != "" {
			_, srcBase := splitPathDirEntry(src.Path)
			rc := rebaseArchiveEntries(cr, srcBase, rebaseName)
			defer rc.Close()
			pre = rc
		}
		return copyTo(ctx, pre, src, dstPath)
	})
	return n, err
}

// CopyToContainer copies srcPath of this host into container ref at
// dstPath, or with srcPath "-" extracts the tar stdin holds into the
// directory dstPath, as `docker cp SRC CONTAINER:DEST` does. Owners are
// kept (see CopyOptions.CopyUIDGID). It returns the size of the tar
// stream copied.
func (e *Engine) CopyToContainer(ctx context.Context, ref, srcPath, dstPath string, stdin io.Reader, o CopyOptions) (int64, error) {
	if srcPath != "-" {
		var err error
		if srcPath, err = resolveLocalPath(srcPath); err != nil {
			return 0, err
		}
	}
	// What the destination is: a symlink is followed (once: its target is
	// the whole path resolved in the container).
	dst := copyInfo{Path: dstPath}
	st, err := e.Containers.StatPath(ctx, ref, dstPath)
	if err == nil && st.Mode&os.ModeSymlink != 0 {
		target := st.LinkTarget
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(dstPath)
			target = filepath.Join(parent, target)
		}
		dst.Path = target
		st, err = e.Containers.StatPath(ctx, ref, target)
	}
	if verr := validateOutputPathFileMode(st.Mode); verr != nil {
		return 0, fmt.Errorf("destination \"%s:%s\" must be a directory or a regular file: %w", ref, dstPath, verr)
	}
	// Another error is left to the extraction: a destination that does
	// not exist in a parent that does is made.
	if err == nil {
		dst.Exists, dst.IsDir = true, st.Mode.IsDir()
	}
	var content io.Reader
	var dstDir string
	if srcPath == "-" {
		if !dst.IsDir {
			return 0, fmt.Errorf("destination \"%s:%s\" must be a directory", ref, dstPath)
		}
		content, dstDir = stdin, dst.Path
	} else {
		src, err := copyInfoSourcePath(srcPath, o.FollowLink)
		if err != nil {
			return 0, err
		}
		archive, err := tarResource(ctx, src)
		if err != nil {
			return 0, err
		}
		defer archive.Close()
		dir, prepared, err := prepareArchiveCopy(archive, src, dst)
		if err != nil {
			return 0, err
		}
		defer prepared.Close()
		content, dstDir = prepared, dir
	}
	cr := &countReader{r: content}
	err = e.Containers.ExtractToDir(ctx, ref, dstDir, cr, runtime.ExtractOptions{CopyUIDGID: o.CopyUIDGID})
	return cr.n, err
}

// countReader counts what is read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// copyInfo is what a copy knows of its source or destination (Docker's
// archive.CopyInfo).
type copyInfo struct {
	Path       string
	Exists     bool
	IsDir      bool
	RebaseName string // the name the source's entries take, if not their own
}

// resolveLocalPath makes a host path absolute, keeping its trailing "/"
// or "/.".
func resolveLocalPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return preserveTrailingDotOrSeparator(abs, p), nil
}

// preserveTrailingDotOrSeparator puts the trailing "/." or "/" of
// original back on cleaned.
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if !specifiesCurrentDir(cleaned) && specifiesCurrentDir(original) {
		if !hasTrailingPathSeparator(cleaned) {
			cleaned += "/"
		}
		cleaned += "."
	}
	if !hasTrailingPathSeparator(cleaned) && hasTrailingPathSeparator(original) {
		cleaned += "/"
	}
	return cleaned
}

// assertsDirectory: a path ending with "/" or "/." says it is a directory.
func assertsDirectory(p string) bool { return hasTrailingPathSeparator(p) || specifiesCurrentDir(p) }

func hasTrailingPathSeparator(p string) bool { return strings.HasSuffix(p, "/") }

func specifiesCurrentDir(p string) bool { return filepath.Base(p) == "." }

// splitPathDirEntry splits a path between its directory and its last
// component, cleaned, but for a last "." that it keeps.
func splitPathDirEntry(p string) (dir, base string) {
	cleaned := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		cleaned += "/."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

// getRebaseName gives resolved the trailing "/." or "/" of p, and says
// the name p's entries must take if resolving changed its last component.
func getRebaseName(p, resolved string) (string, string) {
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += "/."
	}
	if hasTrailingPathSeparator(p) && !hasTrailingPathSeparator(resolved) {
		resolved += "/"
	}
	var rebase string
	if filepath.Base(p) != filepath.Base(resolved) {
		rebase = filepath.Base(p)
	}
	return resolved, rebase
}

// resolveHostSourcePath resolves the symlinks of a host source path: all
// of them with followLink, else only those of its directory part.
func resolveHostSourcePath(p string, followLink bool) (resolved, rebase string, err error) {
	if followLink {
		if resolved, err = filepath.EvalSymlinks(p); err != nil {
			return "", "", err
		}
		resolved, rebase = getRebaseName(p, resolved)
		return resolved, rebase, nil
	}
	dir, base := filepath.Split(p)
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", err
	}
	resolved = rdir + "/" + base
	if hasTrailingPathSeparator(p) && filepath.Base(p) != filepath.Base(resolved) {
		rebase = filepath.Base(p)
	}
	return resolved, rebase, nil
}

// copyInfoSourcePath is what the host source p of a copy is; it must exist.
func copyInfoSourcePath(p string, followLink bool) (copyInfo, error) {
	resolved, rebase, err := resolveHostSourcePath(p, followLink)
	if err != nil {
		return copyInfo{}, err
	}
	st, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{Path: resolved, Exists: true, IsDir: st.IsDir(), RebaseName: rebase}, nil
}

// copyInfoDestinationPath is what the host destination p of a copy is,
// its symlinks followed (the last one too); if it does not exist, its
// parent must be a directory.
func copyInfoDestinationPath(p string) (copyInfo, error) {
	original := p
	st, err := os.Lstat(p)
	if err == nil && st.Mode()&os.ModeSymlink == 0 {
		return copyInfo{Path: p, Exists: true, IsDir: st.IsDir()}, nil
	}
	for n := 0; err == nil && st.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, errors.New("too many symlinks in " + original)
		}
		var target string
		if target, err = os.Readlink(p); err != nil {
			return copyInfo{}, err
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		st, err = os.Lstat(p)
	}
	if err != nil {
		if !os.IsNotExist(err) {
			return copyInfo{}, err
		}
		parent, _ := splitPathDirEntry(p)
		pst, err := os.Stat(parent)
		if err != nil {
			return copyInfo{}, err
		}
		if !pst.IsDir() {
			return copyInfo{}, ErrCopyNotDirectory
		}
		return copyInfo{Path: p}, nil
	}
	return copyInfo{Path: p, Exists: true, IsDir: st.IsDir()}, nil
}

// prepareArchiveCopy returns the directory the source's tar is to be
// extracted into, and the tar with its entries renamed as the copy needs.
func prepareArchiveCopy(content io.Reader, src, dst copyInfo) (string, io.ReadCloser, error) {
	dstDir, dstBase := splitPathDirEntry(dst.Path)
	_, srcBase := splitPathDirEntry(src.Path)
	if src.RebaseName != "" {
		srcBase = src.RebaseName
	}
	switch {
	case dst.Exists && dst.IsDir:
		// Extracted into the destination as it is.
		return dst.Path, io.NopCloser(content), nil
	case dst.Exists && src.IsDir:
		return "", nil, ErrCopyDirectoryToFile
	case dst.Exists:
		// A file over a file: it takes the destination's name.
		return dstDir, rebaseArchiveEntries(content, srcBase, dstBase), nil
	case src.IsDir:
		// A new directory: extracted into the destination's parent, under
		// the destination's name.
		return dstDir, rebaseArchiveEntries(content, srcBase, dstBase), nil
	case assertsDirectory(dst.Path):
		return "", nil, ErrCopyNoSuchDirectory
	}
	// A new file, under the destination's name.
	return dstDir, rebaseArchiveEntries(content, srcBase, dstBase), nil
}

// rebaseArchiveEntries renames the entries of a tar stream: the first
// oldBase of each name (and hard link target) becomes newBase.
func rebaseArchiveEntries(content io.Reader, oldBase, newBase string) io.ReadCloser {
	if oldBase == "/" {
		oldBase = "" // the root: newBase goes in front
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(content)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Format = tar.FormatPAX
			hdr.Name = strings.Replace(hdr.Name, oldBase, newBase, 1)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = strings.Replace(hdr.Linkname, oldBase, newBase, 1)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// tarResource is the tar of the host source of a copy: its entry named as
// its last component (or its RebaseName), and what a directory holds
// below it.
func tarResource(ctx context.Context, src copyInfo) (io.ReadCloser, error) {
	if _, err := os.Lstat(src.Path); err != nil {
		return nil, err
	}
	dirPath, base := splitPathDirEntry(src.Path)
	name := base
	if src.RebaseName != "" {
		name = src.RebaseName
	}
	if base == "." || base == "/" {
		base = "" // the directory itself
	}
	dir, err := os.Open(dirPath)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		err := runtime.TarResource(ctx, pw, dir, base, name)
		dir.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// copyTo extracts the tar of a container's source into the host
// destination p, as the rules say.
func copyTo(ctx context.Context, content io.Reader, src copyInfo, p string) error {
	dst, err := copyInfoDestinationPath(p)
	if err != nil {
		return err
	}
	dir, archive, err := prepareArchiveCopy(content, src, dst)
	if err != nil {
		return err
	}
	defer archive.Close()
	return runtime.Untar(ctx, archive, dir)
}

// validateOutputPath refuses a host destination whose parent does not
// exist, or that is neither a directory nor a regular file.
func validateOutputPath(p string) error {
	if dir := filepath.Dir(filepath.Clean(p)); dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	st, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().IsDir() || st.Mode().IsRegular() {
		return nil
	}
	if err := validateOutputPathFileMode(st.Mode()); err != nil {
		return fmt.Errorf("invalid output path: %q must be a directory or a regular file: %w", p, err)
	}
	return nil
}

func validateOutputPathFileMode(m os.FileMode) error {
	switch {
	case m&os.ModeDevice != 0:
		return errors.New("got a device")
	case m&os.ModeIrregular != 0:
		return errors.New("got an irregular file")
	}
	return nil
}
