package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// pruneLines is a prune's output with each container ID replaced by the
// name ids gives it, its lines sorted (Docker prunes images in no order).
func pruneLines(out string, ids map[string]string) string {
	for id, name := range ids {
		out = strings.ReplaceAll(out, id, "<"+name+">")
	}
	return strings.Join(sortedLines(out), "\n")
}

// containerIDs maps the full ID of every container labelled label to its
// name.
func containerIDs(out string) map[string]string {
	ids := map[string]string{}
	for _, l := range sortedLines(out) {
		if id, name, ok := strings.Cut(l, " "); ok {
			ids[id] = name
		}
	}
	return ids
}

// both runs the same command in cairn and in Docker and fails the test
// unless both exit with code and their outputs, made comparable by norm,
// are the same.
func bothSame(t *testing.T, s *store, d *testutil.DockerEngine, stdin []byte, code int, norm func(string) string, args ...string) string {
	t.Helper()
	got, want := s.run(stdin, args...), dockerResult(t, d, stdin, args...)
	if got.Code != code || want.Code != code || norm(got.Stdout) != norm(want.Stdout) {
		t.Errorf("%s:\ncairn  (exit %d):\n%s%s\ndocker (exit %d):\n%s%s", strings.Join(args, " "), got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
	}
	return got.Stdout
}

// `cairn image prune` removes what `docker image prune` removes, on the
// same images (loaded from one archive into both, so with the same IDs
// and layers): the dangling images no container uses, with -a every image
// no container uses (an image in use loses its names but the last, as in
// Docker), as the filters until, label and label! say; it prints the same
// lines (the layers deleted by their chain IDs) and the same reclaimed
// space, and the same images remain.
func TestPruneImagesMatchesDocker(t *testing.T) {
	w := testWord()
	label := "cairn-test-prune-" + w
	repo := "cairn-test/prune-" + w
	bb := busyboxTar(t)
	at := time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)
	img := func(role string, created time.Time, names ...string) datedImage {
		return datedImage{Names: names, Layers: [][]byte{bb, roleLayer(t, role+"-"+w)}, Labels: map[string]string{label: "", "role": role}, Created: created}
	}
	imgs := []datedImage{
		img("t1", at, repo+":t1"),
		img("d1", at.Add(time.Minute)),
		img("d2", at.Add(2*time.Minute)),
		img("t2", at.Add(3*time.Minute), repo+":t2a", repo+":t2b"),
		img("d3", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	s, d := bothEngines(t, label, imgs...)
	_, d2 := imgs[2].fixture().config()
	for _, ref := range []string{d2.String(), repo + ":t2a"} {
		args := []string{"create", "--network", "none", "--label", label, ref, "true"}
		s.ok(args...)
		d.Run(t, args...)
	}
	remaining := func() {
		t.Helper()
		bothSame(t, s, d, nil, 0, func(s string) string { return strings.Join(sortedLines(s), "\n") }, "images", "-a", "--filter", "label="+label, "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	}
	same := func(s string) string { return strings.Join(sortedLines(s), "\n") }

	// Asked, and not told yes: nothing goes.
	bothSame(t, s, d, []byte("\n"), 0, func(string) string { return "" }, "image", "prune", "--filter", "label="+label)
	if out := s.run([]byte("n\n"), "image", "prune", "--filter", "label="+label).Stdout; out != "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] Total reclaimed space: 0B\n" {
		t.Errorf("image prune, declined: %q", out)
	}
	remaining()
	// until: only what was made before.
	out := bothSame(t, s, d, nil, 0, same, "image", "prune", "-f", "--filter", "label="+label, "--filter", "until=2020-06-01T00:00:00Z")
	_, d3 := imgs[4].fixture().config()
	if !strings.Contains(out, "deleted: "+d3.String()+"\n") || !strings.HasSuffix(out, fmt.Sprintf("\nTotal reclaimed space: %dB\n", len("d3-"+w))) {
		t.Errorf("prune until 2020:\n%s", out)
	}
	// The dangling images no container uses; told yes on stdin.
	out = bothSame(t, s, d, []byte("y\n"), 0, same, "image", "prune", "--filter", "label="+label)
	_, d1 := imgs[1].fixture().config()
	if !strings.Contains(out, "deleted: "+d1.String()+"\n") || strings.Contains(out, d2.String()) {
		t.Errorf("prune of the dangling images:\n%s", out)
	}
	remaining()
	// -a, but not what label! keeps: the image in use loses one name.
	out = bothSame(t, s, d, nil, 0, same, "image", "prune", "-a", "-f", "--filter", "label="+label, "--filter", "label!=role=t1")
	if out != "Deleted Images:\nuntagged: "+repo+":t2a\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -a of an image in use:\n%s", out)
	}
	remaining()
	out = bothSame(t, s, d, nil, 0, same, "image", "prune", "-a", "-f", "--filter", "label="+label)
	_, t1 := imgs[0].fixture().config()
	if !strings.Contains(out, "untagged: "+repo+":t1\n") || !strings.Contains(out, "deleted: "+t1.String()+"\n") {
		t.Errorf("prune -a:\n%s", out)
	}
	remaining()
	bothSame(t, s, d, nil, 0, same, "image", "prune", "-a", "-f", "--filter", "label="+label)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "x=1"}, "Invalid filter 'x'"},
		{[]string{"--filter", "until=garbage"}, `failed to parse value as time or duration: "garbage"`},
		{[]string{"--filter", "until=1h", "--filter", "until=2h"}, "more than one until filter specified"},
	} {
		args := append([]string{"image", "prune", "-f"}, c.args...)
		got, dr := s.run(nil, args...), dockerResult(t, d, nil, args...)
		if got.Code != 1 || dr.Code != 1 || !strings.Contains(got.Stderr, c.want) || !strings.Contains(dr.Stderr, c.want) {
			t.Errorf("%s: want exit 1 and %q\ncairn  (exit %d): %s\ndocker (exit %d): %s", strings.Join(args, " "), c.want, got.Code, got.Stderr, dr.Code, dr.Stderr)
		}
	}
	s.checkConsistent()
}

// `cairn container prune` removes the containers that do not run, as the
// filters say, and says so as Docker does: their IDs and the space their
// writable layers held.
func TestPruneContainersMatchesDocker(t *testing.T) {
	w := testWord()
	label := "cairn-test-cprune-" + w
	tag := "cairn-test/cprune-" + w + ":1"
	s, d := bothEngines(t, label, datedImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Created: time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)})
	p := "cp" + w
	for _, step := range [][]string{
		{"run", "--name", p + "-writer", tag, "sh", "-c", "echo hi > /f"},
		{"create", "--name", p + "-created", tag, "true"},
		{"run", "-d", "--name", p + "-running", tag, "sleep", "300"},
		{"run", "--name", p + "-kept", "--label", "keep=1", tag, "true"},
	} {
		args := append([]string{step[0], "--network", "none", "--label", label}, step[1:]...)
		s.ok(args...)
		d.Run(t, args...)
	}
	ids := containerIDs(s.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"))
	for id, name := range containerIDs(d.Run(t, "ps", "-a", "--no-trunc", "--filter", "label="+label, "--format", "{{.ID}} {{.Names}}")) {
		ids[id] = name
	}
	norm := func(out string) string { return pruneLines(out, ids) }
	names := func() {
		t.Helper()
		bothSame(t, s, d, nil, 0, norm, "ps", "-a", "--filter", "label="+label, "--format", "{{.Names}}")
	}

	bothSame(t, s, d, []byte("\n"), 0, func(string) string { return "" }, "container", "prune", "--filter", "label="+label)
	if out := s.run(nil, "container", "prune", "--filter", "label="+label).Stdout; out != "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] Total reclaimed space: 0B\n" {
		t.Errorf("container prune, not told yes: %q", out)
	}
	names()
	if out := bothSame(t, s, d, nil, 0, norm, "container", "prune", "-f", "--filter", "label="+label, "--filter", "until=2020-01-01"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("container prune until 2020: %q", out)
	}
	out := bothSame(t, s, d, nil, 0, norm, "container", "prune", "-f", "--filter", "label="+label, "--filter", "label!=keep")
	if got := norm(out); got != norm("\nDeleted Containers:\n<"+p+"-created>\n<"+p+"-writer>\nTotal reclaimed space: 3B") {
		t.Errorf("container prune:\n%s", out)
	}
	names()
	bothSame(t, s, d, nil, 1, norm, "container", "prune", "-f", "--filter", "dangling=true")
	if r := s.run(nil, "container", "prune", "-f", "--filter", "dangling=true"); !strings.Contains(r.Stderr, "Invalid filter 'dangling'") {
		t.Errorf("container prune with a filter it does not take: %+v", r)
	}
}

// `cairn system prune` asks as Docker 20.10 asks, refuses what it is not
// told yes to (stdin, terminal or not, as Docker), and with -f removes
// what container, network, image and (with -a) build cache prune remove,
// one part after the other, as Docker prints them.
func TestPruneSystemMatchesDocker(t *testing.T) {
	w := testWord()
	label := "cairn-test-sprune-" + w
	tag := "cairn-test/sprune-" + w + ":1"
	bb := busyboxTar(t)
	at := time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)
	dangling := datedImage{Layers: [][]byte{bb, roleLayer(t, "dangling-"+w)}, Labels: map[string]string{label: ""}, Created: at}
	s, d := bothEngines(t, label, datedImage{Names: []string{tag}, Layers: [][]byte{bb}, Labels: map[string]string{label: ""}, Created: at}, dangling)
	p := "sp" + w
	for _, step := range [][]string{
		{"run", "--name", p + "-exited", tag, "sh", "-c", "echo hello > /f"},
		{"run", "-d", "--name", p + "-running", tag, "sleep", "300"},
	} {
		args := append([]string{step[0], "--network", "none", "--label", label}, step[1:]...)
		s.ok(args...)
		d.Run(t, args...)
	}
	ids := containerIDs(s.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"))
	for id, name := range containerIDs(d.Run(t, "ps", "-a", "--no-trunc", "--filter", "label="+label, "--format", "{{.ID}} {{.Names}}")) {
		ids[id] = name
	}
	norm := func(out string) string { return pruneLines(out, ids) }

	want := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - all dangling build cache\n\n" +
		"  Items to be pruned will be filtered with:\n  - label=" + label + "\n\nAre you sure you want to continue? [y/N] "
	if r := s.run([]byte("\n"), "system", "prune", "--filter", "label="+label); r.Code != 0 || r.Stdout != want {
		t.Errorf("system prune, not told yes: exit %d\n%q\nwant\n%q", r.Code, r.Stdout, want)
	}
	want = "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all volumes not used by at least one container\n" +
		"  - all images without at least one container associated to them\n  - all build cache\n\nAre you sure you want to continue? [y/N] "
	if r := s.run(nil, "system", "prune", "-a", "--volumes"); r.Code != 0 || r.Stdout != want {
		t.Errorf("system prune -a --volumes, not told yes: exit %d\n%q\nwant\n%q", r.Code, r.Stdout, want)
	}
	bothSame(t, s, d, []byte("\n"), 0, func(string) string { return "" }, "system", "prune", "--filter", "label="+label)
	bothSame(t, s, d, nil, 0, norm, "ps", "-a", "--filter", "label="+label, "--format", "{{.Names}}")

	out := bothSame(t, s, d, nil, 0, norm, "system", "prune", "-f", "--filter", "label="+label)
	_, id := dangling.fixture().config()
	if got := norm(out); !strings.Contains(got, "<"+p+"-exited>") || !strings.Contains(got, "deleted: "+id.String()) || !regexp.MustCompile(`Total reclaimed space: \d+B`).MatchString(got) {
		t.Errorf("system prune -f:\n%s", out)
	}
	bothSame(t, s, d, nil, 0, norm, "ps", "-a", "--filter", "label="+label, "--format", "{{.Names}}")
	bothSame(t, s, d, nil, 0, norm, "images", "-a", "--filter", "label="+label, "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--volumes", "--filter", "until=1h"}, `ERROR: The "until" filter is not supported with "--volumes"`},
		{[]string{"-f", "--filter", "x=1"}, "Invalid filter 'x'"},
	} {
		args := append([]string{"system", "prune"}, c.args...)
		got, dr := s.run(nil, args...), dockerResult(t, d, nil, args...)
		if got.Code != 1 || dr.Code != 1 || !strings.Contains(got.Stderr, c.want) || !strings.Contains(dr.Stderr, c.want) {
			t.Errorf("%s: want exit 1 and %q\ncairn  (exit %d): %s\ndocker (exit %d): %s", strings.Join(args, " "), c.want, got.Code, got.Stderr, dr.Code, dr.Stderr)
		}
	}
}

// `cairn system prune -a --volumes -f` on a store that has a bit of
// everything leaves what a running container uses, and nothing else;
// without -a it leaves tagged images and the build cache, without
// --volumes the volumes.
func TestPruneSystemAll(t *testing.T) {
	s := nwStore(t)
	s.ok("import", busyboxRootfs(t), "unused:1")
	s.ok("import", busyboxRootfs(t)) // dangling
	s.ok("network", "create", "usednet")
	s.ok("network", "create", "idlenet")
	s.ok("volume", "create", "idlevol")
	s.ok("volume", "create", "usedvol")
	s.ok("run", "-d", "--name", "up", "--network", "usednet", "-v", "usedvol:/data", "busybox", "sleep", "300")
	s.ok("run", "--network", "none", "--name", "down", "-v", "/anon", "busybox", "true")
	ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo built > /built\n"})
	s.ok("build", "--network", "none", "-t", "built:1", ctx)

	out := s.ok("system", "prune", "-f")
	for _, want := range []string{"Deleted Containers:\n", "Deleted Networks:\nidlenet\n", "Deleted Images:\ndeleted: sha256:", "Total reclaimed space: "} {
		if !strings.Contains(out, want) {
			t.Errorf("system prune -f lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "build cache") || strings.Contains(out, "Volumes") || strings.Contains(out, "untagged") {
		t.Errorf("system prune -f went too far:\n%s", out)
	}
	if out := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Join(sortedLines(out), " ") != "built:1 busybox:latest unused:1" {
		t.Errorf("images after system prune -f: %q", out)
	}
	if vols := sortedLines(s.ok("volume", "ls", "-q")); len(vols) != 3 {
		t.Errorf("volumes after system prune -f: %q", vols)
	}

	out = s.ok("system", "prune", "-a", "--volumes", "-f")
	for _, want := range []string{"Deleted Volumes:\n", "idlevol\n", "Deleted Images:\n", "untagged: unused:1\n", "untagged: built:1\n", "Deleted build cache entries: "} {
		if !strings.Contains(out, want) {
			t.Errorf("system prune -a --volumes -f lacks %q:\n%s", want, out)
		}
	}
	if out := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); out != "busybox:latest\n" {
		t.Errorf("images after system prune -a: %q", out)
	}
	if out := s.ok("ps", "-a", "--format", "{{.Names}}"); out != "up\n" {
		t.Errorf("containers after system prune: %q", out)
	}
	if out := s.ok("volume", "ls", "-q"); out != "usedvol\n" {
		t.Errorf("volumes after system prune -a --volumes: %q", out)
	}
	if out := s.ok("network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "usednet\n") || strings.Contains(out, "idlenet") {
		t.Errorf("networks after system prune: %q", out)
	}
	s.checkConsistent()
	// The store works on: the build runs its step again, from no cache.
	if out := s.ok("build", "--network", "none", "-t", "built:2", ctx); strings.Contains(out, "Using cache") {
		t.Errorf("the build cache survived system prune -a:\n%s", out)
	}
}

// An image pushed and pulled back has two manifests of one config, so two
// rows of one ID. When the local one has lost its names, it is not
// dangling: image prune keeps the image under the pulled name (removing
// the ID took the named image, and left the unnamed one).
func TestPruneKeepsNamedImageOfDanglingID(t *testing.T) {
	reg := testutil.Registry(t)
	s := registryStore(t, "", "")
	s.busybox()
	repo := uniqueRepo(t, reg)
	c := strings.TrimSpace(s.ok("create", "--network", "none", "busybox", "true"))
	id := strings.TrimSpace(s.ok("commit", c, "local:1"))
	s.ok("rm", c)
	s.ok("tag", "local:1", repo+":1")
	s.ok("push", repo+":1")
	s.ok("rmi", repo+":1")
	s.ok("pull", repo+":1")
	// local:1 moves to the pulled manifest, and leaves its own unnamed.
	s.ok("tag", repo+":1", "local:1")
	s.ok("rmi", "local:1")
	if n := strings.Count(s.ok("images", "-q", "--no-trunc"), id); n != 2 {
		t.Fatalf("%d rows of %s, want 2 (the pulled image and the unnamed one)", n, id)
	}
	s.ok("image", "prune", "-f")
	if got := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", repo+":1")); got != id {
		t.Fatalf("after prune, %s is %q, want %s", repo, got, id)
	}
	s.ok("run", "--rm", "--network", "none", repo+":1", "true")
	s.checkConsistent()
}
