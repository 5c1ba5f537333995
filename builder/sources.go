package builder

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/rootfs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// source is one thing a COPY or ADD copies.
type source struct {
	path     string   // on the host: in the context, a stage's view, or a download
	unpacked bool     // a directory an ADD archive was unpacked into: its own mode and times are not copied
	rel      string   // relative to its root, for .dockerignore
	ignore   *ignorer // the context's .dockerignore; nil for other roots
	name     string   // the base name it lands under in a directory
	data     *string
	mtime    time.Time
	archive  bool // ADD of a local archive: unpacked
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
	sr := source{path: p, name: name}
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
