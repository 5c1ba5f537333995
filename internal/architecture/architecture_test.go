package architecture

import (
	"bufio"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/cairn-runtime/cairn"

// A room is a top-level package of the module (cmd/cairn counts as "cmd"),
// with the rooms it may import, as the table "Rooms and arrows" of
// docs/architecture.md says.
type room struct {
	name   string
	mayUse []string
}

// rooms reads the table: rows of "| `name` | `a`, `b` | ... |" between the
// markers <!-- arrows --> and <!-- /arrows -->.
func rooms(t *testing.T, repo string) map[string]room {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, "docs", "architecture.md"))
	if err != nil {
		t.Fatalf("the map: %v", err)
	}
	defer f.Close()
	out := map[string]room{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "<!-- arrows -->":
			in = true
			continue
		case line == "<!-- /arrows -->":
			in = false
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			t.Fatalf("docs/architecture.md: a row without its arrows: %s", line)
		}
		r := room{name: strings.Trim(strings.TrimSpace(cells[0]), "`")}
		for _, u := range strings.Split(cells[1], ",") {
			if u = strings.Trim(strings.TrimSpace(u), "`"); u != "" && u != "—" {
				r.mayUse = append(r.mayUse, u)
			}
		}
		out[r.name] = r
	}
	if len(out) < 5 {
		t.Fatalf("docs/architecture.md: the table of rooms between <!-- arrows --> markers has %d rows", len(out))
	}
	return out
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod two levels up: %v", err)
	}
	return dir
}

// pkg is one package of the module as go/build reads it.
type pkg struct {
	path    string // import path, without the module
	imports []string
	tests   []string // imports of its tests
}

// packages lists every package of the module, with the build tags the
// project builds with.
func packages(t *testing.T, repo string) []pkg {
	ctx := build.Default
	ctx.BuildTags = append(ctx.BuildTags, "seccomp")
	var out []pkg
	err := filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(repo, path)
		if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "docs" || name == "hack") {
			return filepath.SkipDir
		}
		p, err := ctx.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			t.Fatalf("read package %s: %v", rel, err)
		}
		out = append(out, pkg{path: filepath.ToSlash(rel), imports: p.Imports, tests: append(p.TestImports, p.XTestImports...)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// roomOf is the room a package of the module is in: its top directory
// ("cmd" for cmd/cairn), or "internal/x" for a shared internal package.
func roomOf(path string) string {
	parts := strings.Split(path, "/")
	if parts[0] == "internal" && len(parts) > 1 {
		return "internal/" + parts[1]
	}
	return parts[0]
}

// The rooms exist, every package is in one, and every import of the
// module's own packages is an arrow the map draws.
func TestImportsFollowTheMap(t *testing.T) {
	repo := repoRoot(t)
	want := rooms(t, repo)
	pkgs := packages(t, repo)
	found := map[string]bool{}
	for _, p := range pkgs {
		r := roomOf(p.path)
		found[r] = true
		allowed, ok := want[r]
		if !ok {
			t.Errorf("package %s is in no room of docs/architecture.md: add its row, with its arrows", p.path)
			continue
		}
		for _, imp := range p.imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := roomOf(strings.TrimPrefix(imp, module+"/"))
			if to == r || slices.Contains(allowed.mayUse, to) {
				continue
			}
			t.Errorf("%s imports %s: docs/architecture.md draws no arrow from %s to %s", p.path, imp, r, to)
		}
	}
	var missing []string
	for name := range want {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("room %s of docs/architecture.md is missing from the repository", name)
	}
}

// Tests' own helpers stay in tests, and nothing imports the end-to-end tests.
func TestTestOnlyPackages(t *testing.T) {
	for _, p := range packages(t, repoRoot(t)) {
		for _, imp := range p.imports {
			for _, only := range []string{"/internal/testutil", "/internal/tartest", "/integration"} {
				if imp == module+only {
					t.Errorf("%s imports %s outside its tests", p.path, imp)
				}
			}
		}
		for _, imp := range p.tests {
			if imp == module+"/integration" {
				t.Errorf("the tests of %s import the end-to-end tests", p.path)
			}
		}
	}
}

// libcontainer is runtime's alone: every other room reaches containers
// through runtime's API.
func TestLibcontainerOnlyInRuntime(t *testing.T) {
	for _, p := range packages(t, repoRoot(t)) {
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, "github.com/opencontainers/runc/libcontainer") && roomOf(p.path) != "runtime" {
				t.Errorf("%s imports %s: only runtime/ may", p.path, imp)
			}
		}
	}
}

// The front ends open no store themselves: engine.Open is the one way in,
// and they never import the snapshot store or the lock files.
func TestFrontEndsOpenNoStore(t *testing.T) {
	repo := repoRoot(t)
	for _, p := range packages(t, repo) {
		if r := roomOf(p.path); r != "cmd" && r != "api" {
			continue
		}
		for _, imp := range p.imports {
			for _, store := range []string{"/snapshot", "/internal/lockfile"} {
				if imp == module+store {
					t.Errorf("%s imports %s: a front end reaches the stores through engine", p.path, imp)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(repo, p.path, "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			stores := map[string]bool{}
			for _, is := range f.Imports {
				path := strings.Trim(is.Path.Value, `"`)
				if path == module+"/image" || path == module+"/runtime" || path == module+"/snapshot" {
					name := filepath.Base(path)
					if is.Name != nil {
						name = is.Name.Name
					}
					stores[name] = true
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Open" {
					if id, ok := sel.X.(*ast.Ident); ok && stores[id.Name] {
						t.Errorf("%s calls %s.Open: a front end opens the stores with engine.Open", file, id.Name)
					}
				}
				return true
			})
		}
	}
}
