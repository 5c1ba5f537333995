package integration

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// psSetup makes, in cairn and in the test Docker engine, the same
// containers of one image, one after the other: running, exited 3 (with a
// file of 3 bytes written), exited 0, created, created with a bind mount.
// It returns the store, the engine, the containers' name prefix, their
// label and the image's name.
func psSetup(t *testing.T) (*store, *testutil.DockerEngine, string, string, string) {
	t.Helper()
	w := testWord()
	label := "cairn-test-ps-" + w
	tag := "cairn-test/ps-" + w + ":1"
	img := datedImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Labels: map[string]string{"from": "image"}, Created: time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)}
	s, d := bothEngines(t, label, img)
	p := "ps" + w
	steps := [][]string{
		{"run", "-d", "--name", p + "-run", "--label", "role=run", tag, "sleep", "300"},
		{"run", "--name", p + "-exit3", "--label", "role=exit3", tag, "sh", "-c", "echo hi > /f; exit 3"},
		{"run", "--name", p + "-exit0", "--label", "role=exit0", tag, "true"},
		{"create", "--name", p + "-created", "--label", "role=created", tag, "true"},
		{"create", "--name", p + "-bind", "--label", "role=bind", "-v", "/tmp:/hosttmp:ro", tag, "ls", "/hosttmp"},
	}
	for _, step := range steps {
		// The test Docker engine has no bridge: both run with --network none.
		args := append([]string{step[0], "--network", "none", "--label", label}, step[1:]...)
		want := 0
		if strings.HasSuffix(step[2], "-exit3") {
			want = 3
		}
		if r := s.run(nil, args...); r.Code != want {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
		if r := dockerResult(t, d, nil, args...); r.Code != want {
			t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
		time.Sleep(10 * time.Millisecond) // a creation time of its own
	}
	return s, d, p, label, tag
}

// `cairn ps` selects, orders and shows containers as `docker ps` does on
// the same containers: every filter Docker has (alone and together, the
// values of one key as alternatives, label's all required), -a, -n, -l,
// the columns and their values, -s, {{json .}}'s keys, and the errors.
func TestPsMatchesDocker(t *testing.T) {
	s, d, p, label, tag := psSetup(t)
	imageID := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", tag))
	cases := [][]string{
		{},
		{"-a"},
		{"--filter", "status=exited"},
		{"--filter", "status=exited", "--filter", "status=created"},
		{"--filter", "status=running"},
		{"--filter", "status=paused"},
		{"-a", "--filter", "label=role=exit3"},
		{"-a", "--filter", "label=role"},
		{"-a", "--filter", "label=role=exit3", "--filter", "label=role=run"},
		{"-a", "--filter", "name=" + p + "-exit"},
		{"-a", "--filter", "name=^" + p + "-r"},
		{"-a", "--filter", "name=^/" + p + "-c"},
		{"-a", "--filter", "name=" + p + "-run", "--filter", "name=" + p + "-created"},
		{"-a", "--filter", "name=" + p + "-exit", "--filter", "label=role=exit0"},
		{"-a", "--filter", "exited=3"},
		{"-a", "--filter", "exited=0"},
		{"-a", "--filter", "exited=3", "--filter", "exited=0"},
		{"--filter", "exited=3"},
		{"-a", "--filter", "exited=3", "--filter", "status=running"},
		{"-a", "--filter", "ancestor=" + tag},
		{"-a", "--filter", "ancestor=" + strings.TrimPrefix(imageID, "sha256:")[:12]},
		{"-a", "--filter", "ancestor=" + strings.TrimSuffix(tag, ":1")},
		{"-a", "--filter", "before=" + p + "-created"},
		{"--filter", "before=" + p + "-created"},
		{"-a", "--filter", "since=" + p + "-run"},
		{"--filter", "since=" + p + "-run"},
		{"-a", "--filter", "since=" + p + "-exit3", "--filter", "status=created"},
		{"-a", "--filter", "before=/" + p + "-bind", "--filter", "since=" + p + "-run"},
		{"-n", "2"},
		{"-n=3"},
		{"-n", "-1"},
		{"-l"},
		{"-n", "1", "--filter", "status=running"},
		{"-a", "--filter", "volume=/hosttmp"},
		{"-a", "--filter", "volume=/tmp"},
		{"-a", "--filter", "network=none"},
		{"-a", "--filter", "health=none"},
		{"-a", "--filter", "is-task=false"},
		{"-a", "--filter", "is-task=true"},
		{"-a", "--filter", "publish=80"},
		{"-a", "--filter", "Name=" + p + "-run"},
		{"-a", "--filter", "isolation=default"},
	}
	for _, args := range cases {
		full := append([]string{"ps", "--format", "{{.Names}}", "--filter", "label=" + label}, args...)
		got, want := s.run(nil, full...), dockerResult(t, d, nil, full...)
		if got.Code != 0 || want.Code != 0 || got.Stdout != want.Stdout {
			t.Errorf("ps %s:\ncairn  (exit %d):\n%s%s\ndocker (exit %d):\n%s%s", strings.Join(args, " "), got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
		}
	}
	// id= is a prefix of each one's own ID.
	for _, e := range []struct {
		name string
		run  func(args ...string) string
	}{{"cairn", s.ok}, {"docker", func(args ...string) string { return d.Run(t, args...) }}} {
		id := strings.TrimSpace(e.run("ps", "-aq", "--no-trunc", "--filter", "name="+p+"-exit0"))
		if out := e.run("ps", "-a", "--format", "{{.Names}}", "--filter", "id="+id[:5]); !strings.Contains(out, p+"-exit0\n") {
			t.Errorf("%s: ps --filter id=%s: %q", e.name, id[:5], out)
		}
		if out := e.run("ps", "-a", "--format", "{{.Names}}", "--filter", "id="+id[2:14]); out != "" {
			t.Errorf("%s: id= is a prefix, not a substring: %q", e.name, out)
		}
	}

	// The columns, and the values that do not depend on when it runs.
	for _, args := range [][]string{{}, {"-s"}, {"--format", "table {{.Names}}\t{{.Label \"role\"}}\t{{.LocalVolumes}}\t{{.Mounts}}\t{{.State}}\t{{.Networks}}\t{{.CreatedAt}}"}} {
		full := append([]string{"ps", "-a", "--filter", "label=" + label}, args...)
		if got, want := headerColumns(s.ok(full...)), headerColumns(d.Run(t, full...)); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("ps %s: columns %q, docker's %q", strings.Join(args, " "), got, want)
		}
	}
	values := `{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Networks}}|{{.Mounts}}|{{.LocalVolumes}}|{{.Ports}}|{{.Label "role"}}|{{.Labels}}`
	status := regexp.MustCompile(`^(Up|Exited \(\d+\)|Created)`)
	for _, args := range [][]string{{"--format", values}, {"--format", values, "--no-trunc"}, {"--format", "{{.Names}} {{.Status}}"}, {"-s", "--format", "{{.Names}} {{.Size}}"}} {
		full := append([]string{"ps", "-a", "--filter", "label=" + label}, args...)
		norm := func(out string) string {
			var ls []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				name, rest, _ := strings.Cut(l, " ")
				switch {
				case strings.Contains(l, "|"):
					// Docker joins labels in no order: sort them.
					f := strings.Split(l, "|")
					labels := strings.Split(f[len(f)-1], ",")
					sort.Strings(labels)
					f[len(f)-1] = strings.Join(labels, ",")
					l = strings.Join(f, "|")
				case strings.Contains(rest, "virtual"):
					// The layer's own size; the image's as Docker and cairn count it.
					rw, _, _ := strings.Cut(rest, " (virtual ")
					l = name + " " + rw + " (virtual …)"
				default:
					l = name + " " + status.FindString(rest)
				}
				ls = append(ls, l)
			}
			return strings.Join(ls, "\n")
		}
		if got, want := norm(s.ok(full...)), norm(d.Run(t, full...)); got != want {
			t.Errorf("ps %s:\ncairn\n%s\ndocker\n%s", strings.Join(args, " "), got, want)
		}
	}
	want := listJSONKeys(t, d.Run(t, "ps", "-a", "--filter", "label="+label, "--format", "{{json .}}"))
	for _, f := range []string{"{{json .}}", "json"} {
		if got := listJSONKeys(t, s.ok("ps", "-a", "--filter", "label="+label, "--format", f)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("ps --format %s: keys\n%s\ndocker's\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// {{json .}} shows the size, as Docker 20.10's CLI asks for it then.
	if out := s.ok("ps", "-a", "--filter", "name="+p+"-exit3", "--format", "{{json .}}"); !strings.Contains(out, `"Size":"3B (virtual `) {
		t.Errorf("ps {{json .}} of a container that wrote 3 bytes: %s", out)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--filter", "x=1"}, 1, "Invalid filter 'x'"},
		{[]string{"--filter", "x"}, 125, "bad format of filter (expected name=value)"},
		{[]string{"--filter", "status=foo"}, 1, "Invalid filter 'status=foo'"},
		{[]string{"--filter", "exited=x"}, 1, `strconv.Atoi: parsing "x": invalid syntax`},
		{[]string{"--filter", "before=nosuch-" + p}, 1, "no such container nosuch-" + p},
		{[]string{"--filter", "health=x"}, 1, "Unrecognised filter value for health: x"},
		{[]string{"--filter", "is-task=x"}, 1, "Invalid filter 'is-task=[x]'"},
		{[]string{"--filter", "publish=1:2"}, 1, "filter for 'publish' should not contain ':': 1:2"},
		{[]string{"--filter", "publish=5-3"}, 1, "error while looking up for publish 5-3: Invalid range specified for the Port: 5-3"},
		{[]string{"--filter", "expose=abc"}, 1, `error while looking up for expose abc: strconv.ParseUint: parsing "abc": invalid syntax`},
	} {
		full := append([]string{"ps"}, c.args...)
		got, dr := s.run(nil, full...), dockerResult(t, d, nil, full...)
		if got.Code != c.code || dr.Code != c.code || !strings.Contains(got.Stderr, c.want) || !strings.Contains(dr.Stderr, c.want) {
			t.Errorf("ps %s: want exit %d and %q\ncairn  (exit %d): %s\ndocker (exit %d): %s", strings.Join(c.args, " "), c.code, c.want, got.Code, got.Stderr, dr.Code, dr.Stderr)
		}
	}
}

// The IMAGE column shows the name a container was made from while it
// names the image, and the image's short ID once the name has moved to
// another image or is gone, as Docker does; -s shows what the container
// wrote.
func TestPsImageAndSize(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("tag", "busybox", "cairn-test/moving:1")
	s.ok("run", "--network", "none", "--name", "writer", "cairn-test/moving:1", "sh", "-c", "head -c 1000 /dev/zero > /k")
	if out := s.ok("ps", "-a", "--format", "{{.Image}}"); out != "cairn-test/moving:1\n" {
		t.Fatalf("ps IMAGE: %q", out)
	}
	if out := s.ok("ps", "-as", "--format", "{{.Size}}"); !strings.HasPrefix(out, "1kB (virtual ") {
		t.Errorf("ps -s: %q", out)
	}
	// As Docker 20.10's CLI: a --format wins over -q.
	if out := s.ok("ps", "-aq", "--format", "{{.Names}}"); out != "writer\n" {
		t.Errorf("ps -q --format: %q", out)
	}
	// The name now names another image.
	s.ok("import", busyboxRootfs(t), "cairn-test/moving:1")
	id := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", "busybox"))
	if out := s.ok("ps", "-a", "--format", "{{.Image}}"); out != strings.TrimPrefix(id, "sha256:")[:12]+"\n" {
		t.Errorf("ps IMAGE of a container whose image lost its name: %q (image %s)", out, id)
	}
	if out := s.ok("ps", "-a", "--no-trunc", "--format", "{{.Image}}"); out != id+"\n" {
		t.Errorf("ps --no-trunc IMAGE: %q", out)
	}
}

// `cairn rename` gives Docker's errors in Docker's words and exit codes,
// and renames by name or ID prefix.
func TestRenameMatchesDocker(t *testing.T) {
	w := testWord()
	label := "cairn-test-rename-" + w
	tag := "cairn-test/rename-" + w + ":1"
	s, d := bothEngines(t, label, datedImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Created: time.Date(2023, 11, 14, 10, 0, 0, 0, time.UTC)})
	p := "rn" + w
	for _, n := range []string{"1", "2"} {
		args := []string{"create", "--network", "none", "--label", label, "--name", p + "-" + n, tag, "true"}
		s.ok(args...)
		d.Run(t, args...)
	}
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{p + "-1", p + "-2"}, 1, []string{`Error when allocating new name: Conflict. The container name "/` + p + `-2" is already in use by container "`, "You have to remove (or rename) that container to be able to reuse that name.", "Error: failed to rename container named " + p + "-1"}},
		{[]string{p + "-1", p + "-1"}, 1, []string{"Renaming a container with the same name as its current name"}},
		{[]string{p + "-1", "bad name"}, 1, []string{"Error when allocating new name: Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}},
		{[]string{p + "-1", "x"}, 1, []string{"Invalid container name (/x)"}},
		{[]string{p + "-1", "_x"}, 1, []string{"Invalid container name (/_x)"}},
		{[]string{"nosuch-" + p, "y"}, 1, []string{"No such container: nosuch-" + p}},
		{[]string{p + "-1", ""}, 1, []string{"Error: Neither old nor new names may be empty"}},
		{[]string{"", p + "-3"}, 1, []string{"Error: Neither old nor new names may be empty"}},
		{[]string{p + "-1", "/" + p + "-3"}, 0, nil},
	} {
		full := append([]string{"rename"}, c.args...)
		got, dr := s.run(nil, full...), dockerResult(t, d, nil, full...)
		ok := got.Code == c.code && dr.Code == c.code
		for _, want := range c.want {
			ok = ok && strings.Contains(got.Stderr, want) && strings.Contains(dr.Stderr, want)
		}
		if !ok {
			t.Errorf("rename %q: want exit %d and %q\ncairn  (exit %d): %s\ndocker (exit %d): %s", c.args, c.code, c.want, got.Code, got.Stderr, dr.Code, dr.Stderr)
		}
	}
	// By an ID prefix, each its own.
	id := strings.TrimSpace(s.ok("ps", "-aq", "--no-trunc", "--filter", "name="+p+"-2"))
	s.ok("rename", id[:8], p+"-4")
	did := strings.TrimSpace(d.Run(t, "ps", "-aq", "--no-trunc", "--filter", "name="+p+"-2"))
	d.Run(t, "rename", did[:8], p+"-4")
	if got, want := sortedLines(s.ok("ps", "-a", "--format", "{{.Names}}", "--filter", "label="+label)), sortedLines(d.Run(t, "ps", "-a", "--format", "{{.Names}}", "--filter", "label="+label)); strings.Join(got, " ") != strings.Join(want, " ") || strings.Join(got, " ") != p+"-3 "+p+"-4" {
		t.Errorf("names after the renames: cairn %q, docker %q", got, want)
	}
	if out := s.ok("inspect", "--format", "{{.Name}}", id); out != "/"+p+"-4\n" {
		t.Errorf("inspect of the renamed container: %q", out)
	}
	// The new name is the container's: the old one is free again.
	s.ok("create", "--network", "none", "--name", p+"-2", tag, "true")
}

// Renames take the names lock that create takes: of concurrent renames
// (and a create) to one name, exactly one gets it.
func TestRenameConcurrent(t *testing.T) {
	s := newStore(t)
	s.busybox()
	const n = 6
	for i := 0; i < n; i++ {
		s.ok("create", "--network", "none", "--name", fmt.Sprintf("c%d", i), "busybox", "true")
	}
	var wg sync.WaitGroup
	codes := make([]int, n+1)
	for i := 0; i <= n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == n {
				codes[i] = s.run(nil, "create", "--network", "none", "--name", "same", "busybox", "true").Code
				return
			}
			codes[i] = s.run(nil, "rename", fmt.Sprintf("c%d", i), "same").Code
		}(i)
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		if c == 0 {
			won++
		}
	}
	if out := s.ok("ps", "-a", "--filter", "name=^same$", "--format", "{{.Names}}"); won != 1 || out != "same\n" {
		t.Fatalf("%d of the renames and the create got the name (exit codes %v); ps: %q", won, codes, out)
	}
	if all := sortedLines(s.ok("ps", "-aq")); len(all) != n+1 && len(all) != n {
		t.Fatalf("%d containers", len(all))
	}
}

// A container on a user network that is renamed is known by its new name
// to its peers at once (their /etc/hosts), to those that start later, and
// after it starts again.
func TestRenameOnUserNetwork(t *testing.T) {
	s := nwStore(t)
	s.ok("network", "create", "renamenet")
	s.ok("run", "-d", "--network", "renamenet", "--name", "first", "busybox", "sleep", "300")
	s.ok("run", "-d", "--network", "renamenet", "--name", "peer", "busybox", "sleep", "300")
	hosts := func() string { return s.ok("exec", "peer", "cat", "/etc/hosts") }
	has := func(h, name string) bool { return regexp.MustCompile(`\s` + name + `(\s|$)`).MatchString(h) }
	if h := hosts(); !has(h, "first") {
		t.Fatalf("the peer does not know first:\n%s", h)
	}
	s.ok("rename", "first", "second")
	if h := hosts(); !has(h, "second") || has(h, "first") {
		t.Errorf("after the rename, the peer's /etc/hosts:\n%s", h)
	}
	if r := s.run(nil, "exec", "peer", "ping", "-c1", "-W2", "second"); r.Code != 0 {
		t.Errorf("ping second: %+v", r)
	}
	if out := s.ok("run", "--rm", "--network", "renamenet", "busybox", "cat", "/etc/hosts"); !has(out, "second") || has(out, "first") {
		t.Errorf("a new peer's /etc/hosts:\n%s", out)
	}
	s.ok("restart", "-t", "1", "second")
	if h := hosts(); !has(h, "second") || has(h, "first") {
		t.Errorf("after a restart, the peer's /etc/hosts:\n%s", h)
	}
}

// publish= matches a container by a port it publishes on the host, expose=
// by a port of its own, published or only exposed (as Docker's daemon
// matches them); ranges and protocols as Docker takes them.
func TestPsPortFilters(t *testing.T) {
	s := nwStore(t)
	port := nwFreePorts(t, 1)
	s.ok("run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port), "--expose", "9000", "busybox", "sleep", "300")
	s.ok("run", "-d", "--name", "plain", "busybox", "sleep", "300")
	for f, want := range map[string]string{
		fmt.Sprintf("publish=%d", port):              "web\n",
		fmt.Sprintf("publish=%d/tcp", port):          "web\n",
		fmt.Sprintf("publish=%d/udp", port):          "",
		fmt.Sprintf("publish=%d-%d", port-1, port+1): "web\n",
		"publish=80":           "",
		"expose=80":            "web\n",
		"expose=9000":          "web\n",
		"expose=8999-9001/tcp": "web\n",
		"expose=81":            "",
		"publish=abc":          "",
	} {
		r := s.run(nil, "ps", "--format", "{{.Names}}", "--filter", f)
		if f == "publish=abc" {
			if r.Code != 1 || !strings.Contains(r.Stderr, `error while looking up for publish abc: strconv.ParseUint: parsing "abc": invalid syntax`) {
				t.Errorf("ps --filter %s: %+v", f, r)
			}
			continue
		}
		if r.Code != 0 || r.Stdout != want {
			t.Errorf("ps --filter %s: %+v, want %q", f, r, want)
		}
	}
}
