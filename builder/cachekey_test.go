package builder

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
)

// copyStep takes the COPY or ADD that ends df as far as its cache key, as
// copy does: its variables expanded, its sources resolved in the context
// dir (and its .dockerignore) and hashed.
func copyStep(t *testing.T, b *Builder, dir, df string, given map[string]string) (createdBy string, key digest.Digest) {
	t.Helper()
	createdBy, key, err := tryCopyStep(t, b, dir, df, given)
	if err != nil {
		t.Fatal(err)
	}
	return createdBy, key
}

func tryCopyStep(t *testing.T, b *Builder, dir, df string, given map[string]string) (string, digest.Digest, error) {
	t.Helper()
	s, cmd := stageOf(t, b, dir, df, given)
	sd, f, ok := copyCommand(cmd)
	if !ok {
		t.Fatalf("not a COPY or ADD: %s", original(cmd))
	}
	dest, _, err := s.copyArgs(&sd, &f)
	if err != nil {
		return "", "", err
	}
	srcs, cleanup, err := s.sources(context.Background(), dir, s.bs.ignore, sd, f)
	defer cleanup()
	if err != nil {
		return "", "", err
	}
	return s.copyKey(srcs, "", dest, f)
}

// runStep takes the RUN that ends df as far as its cache key, as run does.
func runStep(t *testing.T, b *Builder, df string, given map[string]string) (s *stageState, createdBy string, key digest.Digest) {
	t.Helper()
	s, cmd := stageOf(t, b, t.TempDir(), df, given)
	c, ok := cmd.(*instructions.RunCommand)
	if !ok {
		t.Fatalf("not a RUN: %s", original(cmd))
	}
	argv, script, err := s.runArgs(c)
	if err != nil {
		t.Fatal(err)
	}
	createdBy, key = s.runKey(argv, script)
	return s, createdBy, key
}

// A COPY's key is the same for the same step over the same parent and the
// same contents, in another context directory, with other file times; a
// change of contents, mode, --chown, parent or instruction changes it.
func TestCopyKey(t *testing.T) {
	b := testBuilder(t)
	// Two parents that differ in their history alone.
	baseImage(t, b, "base:1", nil)
	baseImage(t, b, "base:2", nil)
	files := map[string]string{"a.txt": "A", "dir/b": "B", "dir/sub/c": "C"}
	df := "FROM base:1\nCOPY a.txt dir /dest/\n"
	ref := writeContext(t, files)
	refBy, refKey := copyStep(t, b, ref, df, nil)
	if !strings.HasPrefix(refBy, "/bin/sh -c #(nop) COPY multi:") || !strings.HasSuffix(refBy, " in /dest/ ") {
		t.Errorf("created_by: %q", refBy)
	}

	// Another context of the same files, made later, its times moved.
	same := writeContext(t, files)
	old := time.Unix(1000000000, 0)
	for _, p := range []string{"a.txt", "dir/b", "dir/sub", "dir"} {
		if err := os.Chtimes(filepath.Join(same, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if by, key := copyStep(t, b, same, df, nil); by != refBy || key != refKey {
		t.Errorf("same contents, other times: %q %s, want %q %s", by, key, refBy, refKey)
	}
	if _, key := copyStep(t, b, ref, df, nil); key != refKey {
		t.Errorf("the same step twice: %s, then %s", refKey, key)
	}

	changed := map[string]func(t *testing.T) (dir, df string){
		"contents": func(t *testing.T) (string, string) {
			dir := writeContext(t, files)
			must(t, os.WriteFile(filepath.Join(dir, "dir/sub/c"), []byte("C2"), 0o644))
			return dir, df
		},
		"a new file": func(t *testing.T) (string, string) {
			dir := writeContext(t, files)
			must(t, os.WriteFile(filepath.Join(dir, "dir/new"), nil, 0o644))
			return dir, df
		},
		"a name": func(t *testing.T) (string, string) {
			dir := writeContext(t, files)
			must(t, os.Rename(filepath.Join(dir, "dir/b"), filepath.Join(dir, "dir/b2")))
			return dir, df
		},
		"a file's mode": func(t *testing.T) (string, string) {
			dir := writeContext(t, files)
			must(t, os.Chmod(filepath.Join(dir, "a.txt"), 0o755))
			return dir, df
		},
		"a directory's mode": func(t *testing.T) (string, string) {
			dir := writeContext(t, files)
			must(t, os.Chmod(filepath.Join(dir, "dir/sub"), 0o700))
			return dir, df
		},
		"--chown": func(t *testing.T) (string, string) {
			return ref, "FROM base:1\nCOPY --chown=1:2 a.txt dir /dest/\n"
		},
		"--chmod": func(t *testing.T) (string, string) {
			return ref, "FROM base:1\nCOPY --chmod=0755 a.txt dir /dest/\n"
		},
		"the parent": func(t *testing.T) (string, string) {
			return ref, "FROM base:2\nCOPY a.txt dir /dest/\n"
		},
		"the destination": func(t *testing.T) (string, string) {
			return ref, "FROM base:1\nCOPY a.txt dir /other/\n"
		},
		"the sources": func(t *testing.T) (string, string) {
			return ref, "FROM base:1\nCOPY dir a.txt /dest/\n"
		},
		"an ENV before it": func(t *testing.T) (string, string) {
			return ref, "FROM base:1\nENV E=1\nCOPY a.txt dir /dest/\n"
		},
	}
	for name, change := range changed {
		t.Run(name, func(t *testing.T) {
			dir, df := change(t)
			if _, key := copyStep(t, b, dir, df, nil); key == refKey {
				t.Errorf("a change of %s keeps the key", name)
			}
		})
	}
}

// The history of COPY and ADD, as Docker 20.10's classic builder writes
// it: the flags right against the kind of source and its hash; a symlink's
// target is part of what is hashed.
func TestCopyKeyHistory(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	dir := writeContext(t, map[string]string{"a.txt": "A", "d/x": "x"})
	for _, c := range []struct{ df, want string }{
		{"FROM base:1\nCOPY a.txt /a\n", "/bin/sh -c #(nop) COPY file:<hash> in /a "},
		{"FROM base:1\nCOPY d /d/\n", "/bin/sh -c #(nop) COPY dir:<hash> in /d/ "},
		{"FROM base:1\nCOPY a.txt d/x /m/\n", "/bin/sh -c #(nop) COPY multi:<hash> in /m/ "},
		{"FROM base:1\nCOPY --chown=1:2 a.txt /a\n", "/bin/sh -c #(nop) COPY --chown=1:2file:<hash> in /a "},
		{"FROM base:1\nADD a.txt /a\n", "/bin/sh -c #(nop) ADD file:<hash> in /a "},
		{"FROM base:1\nCOPY <<EOF /h\nhi\nEOF\n", "/bin/sh -c #(nop) COPY file:<hash> in /h "},
		{"FROM base:1\nSHELL [\"/bin/bash\", \"-c\"]\nCOPY a.txt /a\n", "/bin/bash -c #(nop) COPY file:<hash> in /a "},
	} {
		if by, _ := copyStep(t, b, dir, c.df, nil); copyHash.ReplaceAllString(by, "$1:<hash>") != c.want {
			t.Errorf("%q: created_by %q, want %q", c.df, by, c.want)
		}
	}

	must(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	_, k1 := copyStep(t, b, dir, "FROM base:1\nCOPY link /l\n", nil)
	must(t, os.Remove(filepath.Join(dir, "link")))
	must(t, os.Symlink("d/x", filepath.Join(dir, "link")))
	if _, k2 := copyStep(t, b, dir, "FROM base:1\nCOPY link /l\n", nil); k1 == k2 {
		t.Errorf("another symlink target keeps the key")
	}
}

// A build argument changes the key of a COPY that expands it, and of no
// other; so does the ENV it expands.
func TestCopyKeyBuildArgs(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	dir := writeContext(t, map[string]string{"one": "1", "two": "2"})
	df := "FROM base:1\nARG SRC=one\nARG OTHER\nCOPY $SRC /x\n"
	_, def := copyStep(t, b, dir, df, nil)
	if _, key := copyStep(t, b, dir, df, map[string]string{"SRC": "one"}); key != def {
		t.Errorf("the default, given: another key")
	}
	if _, key := copyStep(t, b, dir, df, map[string]string{"OTHER": "x"}); key != def {
		t.Errorf("an argument the COPY does not use changes its key")
	}
	if _, key := copyStep(t, b, dir, df, map[string]string{"SRC": "two"}); key == def {
		t.Errorf("SRC=two copies another file, with the same key")
	}
}

// A RUN's key changes with the build arguments it sees, its command and
// its parent; the proxy arguments no ARG declares are out of both its
// history and its key, as in Docker.
func TestRunKey(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	baseImage(t, b, "base:2", nil)
	df := "FROM base:1\nARG V=1\nARG W\nRUN echo $V\n"
	_, by, ref := runStep(t, b, df, nil)
	if by != "|1 V=1 /bin/sh -c echo $V" {
		t.Errorf("created_by %q", by)
	}
	if _, _, key := runStep(t, b, df, nil); key != ref {
		t.Errorf("the same RUN twice: two keys")
	}
	s, by, key := runStep(t, b, df, map[string]string{"http_proxy": "http://proxy:3128", "NO_PROXY": "x"})
	if by != "|1 V=1 /bin/sh -c echo $V" || key != ref {
		t.Errorf("with proxy arguments: %q, another key: %v", by, key != ref)
	}
	if env := s.argEnv(); !slices.Equal(env, []string{"V=1", "http_proxy=http://proxy:3128", "NO_PROXY=x"}) {
		t.Errorf("the RUN's environment: %q", env)
	}
	for name, c := range map[string]struct {
		df     string
		given  map[string]string
		wantBy string
	}{
		"V given":          {df, map[string]string{"V": "2"}, "|1 V=2 /bin/sh -c echo $V"},
		"W given":          {df, map[string]string{"W": ""}, "|2 V=1 W= /bin/sh -c echo $V"},
		"the command":      {"FROM base:1\nARG V=1\nARG W\nRUN echo $V x\n", nil, "|1 V=1 /bin/sh -c echo $V x"},
		"the exec form":    {"FROM base:1\nARG V=1\nARG W\nRUN [\"echo\", \"$V\"]\n", nil, "|1 V=1 echo $V"},
		"the parent":       {"FROM base:2\nARG V=1\nARG W\nRUN echo $V\n", nil, "|1 V=1 /bin/sh -c echo $V"},
		"a declared proxy": {"FROM base:1\nARG V=1\nARG http_proxy\nRUN echo $V\n", map[string]string{"http_proxy": "p"}, "|2 V=1 http_proxy=p /bin/sh -c echo $V"},
		"the shell":        {"FROM base:1\nARG V=1\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo $V\n", nil, "|1 V=1 /bin/bash -c echo $V"},
	} {
		t.Run(name, func(t *testing.T) {
			_, by, key := runStep(t, b, c.df, c.given)
			if by != c.wantBy {
				t.Errorf("created_by %q, want %q", by, c.wantBy)
			}
			if key == ref {
				t.Errorf("the key is the same")
			}
		})
	}
	// An ENV of the same name hides the argument from the RUN.
	if _, by, _ := runStep(t, b, "FROM base:1\nARG V=1\nENV V=env\nRUN echo $V\n", nil); by != "/bin/sh -c echo $V" {
		t.Errorf("under ENV V: created_by %q", by)
	}
}

// The steps that change the config alone come from the cache while the
// parent and the instructions are the same: the same image, every step
// "Using cache"; from a changed step on, nothing does.
func TestConfigStepsCache(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	df := "FROM base:1\nARG V=1\nLABEL v=$V\nENV E=1\nCMD [\"x\"]\n"
	first, _, out := build(t, b, map[string]string{"Dockerfile": df}, Options{})
	if strings.Contains(out, "Using cache") {
		t.Fatalf("the first build used the cache:\n%s", out)
	}
	again, _, out := build(t, b, map[string]string{"Dockerfile": df}, Options{})
	if n := strings.Count(out, " ---> Using cache\n"); n != 4 || again.ID != first.ID {
		t.Errorf("the same build again: %d steps from the cache, want 4; image %s, then %s:\n%s", n, first.ID, again.ID, out)
	}
	// A build argument another LABEL sees: from that step on.
	other, _, out := build(t, b, map[string]string{"Dockerfile": df}, Options{BuildArgs: map[string]string{"V": "2"}})
	if n := strings.Count(out, " ---> Using cache\n"); n != 1 || other.ID == first.ID {
		t.Errorf("with V=2: %d steps from the cache, want 1 (ARG):\n%s", n, out)
	}
	// Another instruction: from it on.
	df2 := strings.Replace(df, "ENV E=1", "ENV E=2", 1)
	if _, _, out := build(t, b, map[string]string{"Dockerfile": df2}, Options{}); strings.Count(out, " ---> Using cache\n") != 2 {
		t.Errorf("ENV changed: want 2 steps from the cache:\n%s", out)
	}
	// --no-cache: none.
	if _, _, out := build(t, b, map[string]string{"Dockerfile": df}, Options{NoCache: true}); strings.Contains(out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out)
	}
}

// copyHash is the hash of what a COPY or ADD copied, in its history.
var copyHash = regexp.MustCompile(`(file|dir|multi):[0-9a-f]{64}`)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A sparse file's key is its contents': the same in another context, other
// after a byte of data or the size changes; its holes are not read.
func TestCopyKeySparse(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	df := "FROM base:1\nCOPY big /big\n"
	const size = 64 << 30 // read whole, minutes
	ctx := func(size int64, data map[int64]string) string {
		dir := t.TempDir()
		sparseFile(t, filepath.Join(dir, "big"), size, data)
		return dir
	}
	data := map[int64]string{0: "head", 40 << 30: "middle"}
	_, ref := copyStep(t, b, ctx(size, data), df, nil)
	if _, key := copyStep(t, b, ctx(size, data), df, nil); key != ref {
		t.Errorf("the same sparse file in another context: %s, want %s", key, ref)
	}
	if _, key := copyStep(t, b, ctx(size, map[int64]string{0: "head", 40 << 30: "midd1e"}), df, nil); key == ref {
		t.Error("a byte of data changed, the same key")
	}
	if _, key := copyStep(t, b, ctx(size+1, data), df, nil); key == ref {
		t.Error("one byte longer, the same key")
	}
}
