package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// uniqueWord is a word of a test of its own, for the names and labels it
// gives objects in the test Docker engine, which every test binary shares.
func testWord() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dockerRun runs docker and returns what it did, as store.run does for cairn.
func dockerResult(t testing.TB, d *testutil.DockerEngine, stdin []byte, args ...string) result {
	t.Helper()
	out, errOut, err := d.RunErrIn(stdin, args...)
	r := result{Stdout: out, Stderr: errOut}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// lines is the non-empty lines of s, sorted.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, " "); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// columns is a table's header line split at its column gaps (Docker's
// tabwriter leaves three spaces at least).
func headerColumns(table string) []string {
	header, _, _ := strings.Cut(table, "\n")
	var out []string
	for _, c := range strings.Split(header, "   ") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// jsonKeys is the sorted keys of each JSON object of output, one a line;
// Platform, which clients after Docker 20.10 add, left out.
func listJSONKeys(t testing.TB, output string) []string {
	t.Helper()
	var out []string
	for _, l := range sortedLines(output) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON object: %q: %v", l, err)
		}
		delete(m, "Platform")
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out = append(out, strings.Join(keys, ","))
	}
	return out
}

// datedImage is an image both engines load alike (docker load, cairn
// load), with a creation time of its own.
type datedImage struct {
	Names   []string
	Layers  [][]byte
	Labels  map[string]string
	Created time.Time
}

// datedArchive writes images as `docker save` (legacy format) does.
func datedArchive(t testing.TB, imgs ...datedImage) string {
	t.Helper()
	var fixtures []fixtureImage
	for _, d := range imgs {
		fixtures = append(fixtures, d.fixture())
	}
	return writeFile(t, dockerArchive(t, fixtures...))
}

func (d datedImage) fixture() fixtureImage {
	return fixtureImage{Names: d.Names, Layers: d.Layers, Cmd: []string{"sh"}, Labels: d.Labels, Created: d.Created}
}

// bothEngines loads the images into a new cairn store and into the test
// Docker engine, which removes them (and the containers labelled label)
// when the test ends.
func bothEngines(t *testing.T, label string, imgs ...datedImage) (*store, *testutil.DockerEngine) {
	t.Helper()
	d := testutil.Docker(t)
	s := newStore(t)
	archive := datedArchive(t, imgs...)
	s.ok("load", "-i", archive)
	t.Cleanup(func() {
		if ids := strings.Fields(d.Run(t, "ps", "-aq", "--filter", "label="+label)); len(ids) > 0 {
			d.RunErr(append([]string{"rm", "-f"}, ids...)...)
		}
		for _, img := range imgs {
			_, id := img.fixture().config()
			d.RunErr("rmi", "-f", id.String())
		}
	})
	d.Run(t, "load", "-i", archive)
	return s, d
}

// roleLayer is a small layer of its own for an image: its one file, role,
// holds the word.
func roleLayer(t testing.TB, word string) []byte {
	return layerTar(t, file("role", word))
}

// `cairn images` lists, filters and formats as `docker images` does, on
// the same images (loaded from one archive into both, so with the same
// IDs): one row per name, <none> for an image without one, the filters
// dangling, label (all must match), before, since and reference (shell
// patterns, as the argument is), Docker's JSON keys, headers and errors.
func TestImagesMatchesDocker(t *testing.T) {
	w := testWord()
	label := "cairn-test-images-" + w
	repo := "cairn-test/images-" + w
	base := time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)
	bb := busyboxTar(t)
	imgs := []datedImage{
		{Names: []string{repo + ":1", repo + ":2", repo + "-other:latest"}, Layers: [][]byte{bb, roleLayer(t, "a")}, Labels: map[string]string{label: "", "role": "a"}, Created: base},
		{Names: []string{repo + "-b:1"}, Layers: [][]byte{bb, roleLayer(t, "b")}, Labels: map[string]string{label: "", "role": "b"}, Created: base.Add(time.Hour)},
		{Layers: [][]byte{bb, roleLayer(t, "c")}, Labels: map[string]string{label: "", "role": "c"}, Created: base.Add(2 * time.Hour)},
	}
	s, d := bothEngines(t, label, imgs...)
	_, idA := imgs[0].fixture().config()

	format := "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedAt}}"
	cases := [][]string{
		{},
		{"--filter", "dangling=true"},
		{"--filter", "dangling=false"},
		{"--filter", "label=role=a"},
		{"--filter", "label=role"},
		{"--filter", "label=role=a", "--filter", "label=role=b"},
		{"--filter", "before=" + repo + "-b:1"},
		{"--filter", "since=" + repo + ":1"},
		{"--filter", "since=" + idA.Encoded()[:12]},
		{"--filter", "reference=" + repo + "*"},
		{"--filter", "reference=" + repo + ":*"},
		{"--filter", "reference=" + repo + ":[2]", "--filter", "reference=*/*-b"},
		{"--filter", "reference=cairn-test/*:latest"},
		{"--filter", "reference=docker.io/" + repo},
		{repo},
		{repo + ":2"},
		{"cairn-test/images-" + w + "*"},
		{"--filter", "reference=" + repo + ":1", repo + "-b"},
		{"-a", "--filter", "dangling=true"},
	}
	for _, args := range cases {
		full := append([]string{"images", "--format", format, "--filter", "label=" + label}, args...)
		got, want := s.run(nil, full...), dockerResult(t, d, nil, full...)
		if got.Code != 0 || want.Code != 0 || strings.Join(sortedLines(got.Stdout), "\n") != strings.Join(sortedLines(want.Stdout), "\n") {
			t.Errorf("images %s:\ncairn  (exit %d):\n%s%s\ndocker (exit %d):\n%s%s", strings.Join(args, " "), got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
		}
	}

	// The columns of the tables, and the keys of {{json .}} (and of cairn's
	// --format json, the shorthand later clients have).
	for _, args := range [][]string{{}, {"--digests"}, {"--format", "table {{.ID}}\t{{.Repository}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.VirtualSize}}\t{{.Containers}}\t{{.CreatedAt}}\t{{.Digest}}"}} {
		full := append([]string{"images", "--filter", "label=" + label}, args...)
		if got, want := headerColumns(s.ok(full...)), headerColumns(d.Run(t, full...)); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("images %s: columns %q, docker's %q", strings.Join(args, " "), got, want)
		}
	}
	want := listJSONKeys(t, d.Run(t, "images", "--filter", "label="+label, "--format", "{{json .}}"))
	for _, f := range []string{"{{json .}}", "json"} {
		if got := listJSONKeys(t, s.ok("images", "--filter", "label="+label, "--format", f)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("images --format %s: keys\n%s\ndocker's\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// The values of the columns that do not depend on when it runs.
	cols := "{{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.Containers}} {{.SharedSize}} {{.UniqueSize}}"
	for _, args := range [][]string{{"--format", cols}, {"--format", cols, "--no-trunc"}, {"-q"}, {"-q", "--no-trunc"}} {
		full := append([]string{"images", "--filter", "label=" + label}, args...)
		if got, want := sortedLines(s.ok(full...)), sortedLines(d.Run(t, full...)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("images %s:\ncairn\n%s\ndocker\n%s", strings.Join(args, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// Errors: a key Docker does not know, a bad value, an image that is
	// not there (exit 1, the daemon's words), a filter without "=" (125).
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--filter", "x=1"}, 1, "Invalid filter 'x'"},
		{[]string{"--filter", "dangling=x"}, 1, "Invalid filter 'dangling=[x]'"},
		{[]string{"--filter", "before=nosuch-" + w}, 1, "No such image: nosuch-" + w + ":latest"},
		{[]string{"--filter", "x"}, 125, "bad format of filter (expected name=value)"},
	} {
		full := append([]string{"images"}, c.args...)
		got, dr := s.run(nil, full...), dockerResult(t, d, nil, full...)
		if got.Code != c.code || dr.Code != c.code || !strings.Contains(got.Stderr, c.want) || !strings.Contains(dr.Stderr, c.want) {
			t.Errorf("images %s: want exit %d and %q\ncairn  (exit %d): %s\ndocker (exit %d): %s", strings.Join(c.args, " "), c.code, c.want, got.Code, got.Stderr, dr.Code, dr.Stderr)
		}
	}
}
