package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// The patterns of a .dockerignore, as Docker reads them: comments, a
// leading "/" or "./", "*" within one directory, "**" across them, a
// directory excluding what is below it, and "!" exceptions, the last
// matching line winning.
func TestDockerignorePatterns(t *testing.T) {
	dir := writeContext(t, map[string]string{".dockerignore": `# a comment
*.log
!keep.log
/build
./tmp/
**/*.bak
docs/*.md
!docs/README.md
`})
	ig, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"a.log": true, "keep.log": false, "sub/a.log": false,
		"build": true, "build/x/y": true, "sub/build": false, "builder": false,
		"tmp": true, "tmp/x": true,
		"x.bak": true, "a/b/x.bak": true, "x.bak2": false,
		"docs/a.md": true, "docs/README.md": false, "docs/sub/a.md": false, "docs": false,
		"# a comment": false, ".": false, "": false,
	} {
		ignored, skipDir := ig.ignored(rel)
		if ignored != want {
			t.Errorf("%q: ignored %v, want %v", rel, ignored, want)
		}
		if skipDir {
			t.Errorf("%q: with exceptions, nothing below an excluded directory may be skipped", rel)
		}
	}
}

// With no exception, an excluded directory is skipped whole; with no
// .dockerignore, nothing is excluded; a pattern that does not parse fails
// the build as Docker's does.
func TestDockerignoreDirectoriesAndErrors(t *testing.T) {
	ig, err := readDockerignore(writeContext(t, map[string]string{".dockerignore": "node_modules\n*/cache\n"}))
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string][2]bool{
		"node_modules": {true, true}, "node_modules/x": {true, true},
		"a/cache": {true, true}, "a/cache/b": {true, true}, "a/b/cache": {false, false}, "cache": {false, false},
	} {
		if ignored, skipDir := ig.ignored(rel); ignored != want[0] || skipDir != want[1] {
			t.Errorf("%q: ignored, skipDir %v %v, want %v", rel, ignored, skipDir, want)
		}
	}

	none, err := readDockerignore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ignored, _ := none.ignored("anything"); ignored {
		t.Errorf("no .dockerignore excludes something")
	}

	b := testBuilder(t)
	_, _, out, err := tryBuild(t, b, map[string]string{"Dockerfile": "FROM scratch\n", ".dockerignore": "[\n"}, Options{})
	if !errors.Is(err, ErrContext) || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("a bad pattern: %v\n%s", err, out)
	}
}

// What .dockerignore excludes is not in the context: COPY of it fails,
// wildcards do not find it, and a directory's hash leaves it out; an
// exception brings a file back.
func TestDockerignoreInCopy(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	files := map[string]string{
		".dockerignore": "*.log\n!keep.log\nsecret/\nsrc/**/*.o\n",
		"Dockerfile":    "FROM base:1\n",
		"a.log":         "a", "keep.log": "k", "other.txt": "o",
		"secret/key": "s", "src/main.c": "c", "src/obj/main.o": "o",
	}
	dir := writeContext(t, files)
	for _, src := range []string{"a.log", "secret/key", "secret", "src/obj/main.o"} {
		_, _, err := tryCopyStep(t, b, dir, "FROM base:1\nCOPY "+src+" /x\n", nil)
		if !errors.Is(err, ErrContext) || !strings.Contains(err.Error(), "excluded by .dockerignore") {
			t.Errorf("COPY %s: %v", src, err)
		}
	}
	s, cmd := stageOf(t, b, dir, "FROM base:1\nCOPY *.log /x/\n", nil)
	srcs, cleanup, err := s.sources(context.Background(), dir, s.bs.ignore, cmd.(*instructions.CopyCommand).SourcesAndDest, copyFlags{verb: "COPY"})
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, src := range srcs {
		names = append(names, src.name)
	}
	if !slices.Equal(names, []string{"keep.log"}) {
		t.Errorf("COPY *.log: %q, want keep.log alone", names)
	}

	df := "FROM base:1\nCOPY . /x/\n"
	_, ref := copyStep(t, b, dir, df, nil)
	for _, p := range []string{"a.log", "secret/key", "src/obj/main.o"} {
		d := writeContext(t, files)
		must(t, os.WriteFile(filepath.Join(d, p), []byte("changed"), 0o644))
		if _, key := copyStep(t, b, d, df, nil); key != ref {
			t.Errorf("a change of %s, excluded, changes the key of COPY .", p)
		}
	}
	for _, p := range []string{"keep.log", "other.txt", "src/main.c"} {
		d := writeContext(t, files)
		must(t, os.WriteFile(filepath.Join(d, p), []byte("changed"), 0o644))
		if _, key := copyStep(t, b, d, df, nil); key == ref {
			t.Errorf("a change of %s keeps the key of COPY .", p)
		}
	}
}

// The Dockerfile and the .dockerignore, as Docker handles them: the build
// reads the Dockerfile even if .dockerignore excludes it, but then neither
// file is in the context that COPY sees; if not excluded, both are.
func TestDockerignoreBuildFiles(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	df := "FROM base:1\nCOPY . /x/\n"

	excluded := map[string]string{"Dockerfile": "FROM base:1\nLABEL read=yes\n", ".dockerignore": "Dockerfile\n.dockerignore\n", "a": "a"}
	dir := writeContext(t, excluded)
	if _, cfg, _ := build(t, b, nil, Options{Context: dir}); cfg.Config.Labels["read"] != "yes" {
		t.Errorf("the excluded Dockerfile was not read: %v", cfg.Config.Labels)
	}
	for _, src := range []string{"Dockerfile", ".dockerignore"} {
		if _, _, err := tryCopyStep(t, b, dir, "FROM base:1\nCOPY "+src+" /x\n", nil); !errors.Is(err, ErrContext) {
			t.Errorf("COPY %s, excluded: %v", src, err)
		}
	}
	_, ref := copyStep(t, b, dir, df, nil)
	other := writeContext(t, excluded)
	must(t, os.WriteFile(filepath.Join(other, "Dockerfile"), []byte("FROM base:1\nLABEL read=again\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(other, ".dockerignore"), []byte("Dockerfile\n.dockerignore\n# another\n"), 0o644))
	if _, key := copyStep(t, b, other, df, nil); key != ref {
		t.Errorf("excluded, the Dockerfile and .dockerignore change the key of COPY .")
	}

	kept := map[string]string{"Dockerfile": df, ".dockerignore": "a\n", "a": "a"}
	dir = writeContext(t, kept)
	for _, src := range []string{"Dockerfile", ".dockerignore"} {
		if _, _, err := tryCopyStep(t, b, dir, "FROM base:1\nCOPY "+src+" /x\n", nil); err != nil {
			t.Errorf("COPY %s: %v", src, err)
		}
	}
	_, ref = copyStep(t, b, dir, df, nil)
	for name, body := range map[string]string{"Dockerfile": df + "# another Dockerfile\n", ".dockerignore": "a\n# another\n"} {
		d := writeContext(t, kept)
		must(t, os.WriteFile(filepath.Join(d, name), []byte(body), 0o644))
		if _, key := copyStep(t, b, d, df, nil); key == ref {
			t.Errorf("a change of %s, not excluded, keeps the key of COPY .", name)
		}
	}

	// A Dockerfile given with -f, in a directory .dockerignore excludes.
	dir = writeContext(t, map[string]string{"build/Df": "FROM base:1\nLABEL from=df\n", ".dockerignore": "build\n"})
	if _, cfg, _ := build(t, b, nil, Options{Context: dir, Dockerfile: filepath.Join(dir, "build/Df")}); cfg.Config.Labels["from"] != "df" {
		t.Errorf("the Dockerfile in an excluded directory was not read: %v", cfg.Config.Labels)
	}
}
