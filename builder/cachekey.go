package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
)

// key is the build cache key of a step over the image so far.
func (s *stageState) key(parts ...string) digest.Digest {
	h := sha256.New()
	parent := "scratch"
	if s.parent != nil {
		parent = s.parent.Manifest.Digest.String()
	}
	fmt.Fprintf(h, "cairn build step\x00%s", parent)
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}

// configKey is what of a config a step's image depends on beyond its
// parent: all of it.
func configKey(c *image.Config) string {
	cc := c.Config
	return fmt.Sprintf("%q %q %q %v %q %q %v %v %q %v %q %q", cc.Env, cc.Entrypoint, cc.Cmd, sortedKeys(cc.ExposedPorts), cc.User,
		cc.WorkingDir, sortedKeys(cc.Volumes), sortedMap(cc.Labels), cc.StopSignal, cc.Healthcheck, cc.OnBuild, cc.Shell) + c.Author
}

func sortedKeys(m map[string]struct{}) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortedMap(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
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
				if err := hashFile(h, p); err != nil {
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

// hashFile writes the size and the contents of the regular file p to h,
// as its runs of data (rootfs.DataRuns), each with its offset and length:
// the holes of a sparse file cost nothing to hash (a 10 GiB file of one
// hole took 20 s to hash whole). The same bytes with other holes hash
// otherwise: at worst a miss of the cache, never a wrong hit.
func hashFile(h io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "size %d\x00", st.Size())
	err = rootfs.DataRuns(int(f.Fd()), st.Size(), func(off, n int64) error {
		fmt.Fprintf(h, "%d %d\x00", off, n)
		_, err := io.Copy(h, io.NewSectionReader(f, off, n))
		return err
	})
	fmt.Fprintf(h, "end\x00")
	return err
}

// copyKey is the history of a COPY or ADD of srcs to dest, as Docker's
// classic builder writes it, and the step's cache key: what the sources
// hash to (fromID: the image of --from, if any), the flags and the config.
func (s *stageState) copyKey(srcs []source, fromID, dest string, f copyFlags) (createdBy string, key digest.Digest, err error) {
	kind, hash, err := hashSources(srcs, fromID)
	if err != nil {
		return "", "", err
	}
	// Docker's classic builder writes the flags right against the hash.
	flags := ""
	if f.chown != "" {
		flags += "--chown=" + f.chown
	}
	if f.chmod != "" {
		flags += "--chmod=" + f.chmod
	}
	createdBy = fmt.Sprintf("%s #(nop) %s %s%s:%s in %s ", strings.Join(s.shell(), " "), f.verb, flags, kind, hash, dest)
	return createdBy, s.key(f.verb, createdBy, f.chown, f.chmod, configKey(&s.cfg)), nil
}

// runKey is the history of a RUN of argv, as Docker's classic builder
// writes it — the build arguments the command sees before it, but the
// proxy ones no ARG declared — and the step's cache key (script: a heredoc
// that runs as a file of its own).
func (s *stageState) runKey(argv []string, script string) (createdBy string, key digest.Digest) {
	createdBy = strings.Join(argv, " ")
	if args := s.argEnv(); len(args) > 0 {
		var shown []string
		for _, kv := range args {
			if k, _, _ := strings.Cut(kv, "="); !slices.Contains(proxyArgs, k) || slices.Contains(s.argKeys, k) {
				shown = append(shown, kv)
			}
		}
		sort.Strings(shown)
		if len(shown) > 0 {
			createdBy = fmt.Sprintf("|%d %s %s", len(shown), strings.Join(shown, " "), createdBy)
		}
	}
	return createdBy, s.key("run", createdBy, script)
}
