package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// step is one command of a scripted docker session.
type step struct {
	args []string
	// sorted: the output's lines are compared in any order.
	sorted bool
	// lines keeps only the output lines that start with one of these
	// (progress lines differ with what a registry already holds).
	lines []string
	// drop takes out the lines that hold it.
	drop string
	// skip: run, but compare only the exit code.
	skip bool
}

var (
	hexID     = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	shortID   = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	sizeField = regexp.MustCompile(`size: [0-9]+`)
)

// normalise takes the IDs, digests and sizes out of a command's output:
// they differ between engines, what the session compares is the rest.
func normalise(out string, st step) string {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = hexID.ReplaceAllString(out, "<id>")
	out = shortID.ReplaceAllString(out, "<short>")
	out = sizeField.ReplaceAllString(out, "size: <n>")
	ls := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if st.lines != nil {
		ls = slices.DeleteFunc(ls, func(l string) bool {
			return !slices.ContainsFunc(st.lines, func(p string) bool { return strings.HasPrefix(l, p) })
		})
	}
	if st.drop != "" {
		ls = slices.DeleteFunc(ls, func(l string) bool { return strings.Contains(l, st.drop) })
	}
	if st.sorted {
		slices.Sort(ls)
	}
	return strings.Join(ls, "\n")
}

// The docker client runs the same scripted session against cairn's socket
// and against the test dockerd, and what it prints (IDs, digests and sizes
// aside) and its exit codes are the same: load, run -d, ps, exec, logs -f,
// cp both ways, diff, commit with changes, history, build, images, tag,
// push to the test registry, rmi, pull, save, load, network and volume
// commands, rm.
func TestAPISessionLikeDockerd(t *testing.T) {
	reg := testutil.Registry(t)
	dockerd := testutil.Docker(t)
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	dir := t.TempDir()
	// The base image under a name of this run's: dockerd's store is
	// shared by the tests, and may hold another busybox.
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	base := "sess-base-" + suffix
	s.ok("tag", "busybox", base)
	archive := filepath.Join(dir, "base.tar")
	s.ok("save", "-o", archive, base)
	ctxDir := filepath.Join(dir, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nCOPY hello /hello\nRUN cat /hello > /copy\nCMD [\"cat\", \"/copy\"]\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "hello"), []byte("hello from the context\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "to-container"), []byte("from the host\n"), 0o644)

	name := "sess-" + suffix
	img := "sess-" + suffix + ":2"
	built := "sess-build-" + suffix + ":1"
	session := func(engine string) []step {
		pushed := reg + "/sess-" + engine + "/app:" + suffix
		out := filepath.Join(dir, engine)
		os.MkdirAll(out, 0o755)
		return []step{
			{args: []string{"load", "-i", archive}},
			{args: []string{"run", "-d", "--network", "none", "--name", name, base, "sh", "-c", "echo started; sleep 1000"}},
			{args: []string{"ps", "--filter", "name=" + name, "--format", "{{.Names}} {{.Image}} {{.Command}} {{.State}}", "--no-trunc"}},
			{args: []string{"exec", name, "sh", "-c", "mkdir -p /d && echo one > /d/a && cat /d/a"}},
			{args: []string{"exec", "-t", name, "tty"}},
			{args: []string{"exec", name, "sh", "-c", "exit 3"}},
			{args: []string{"logs", name}},
			{args: []string{"run", "--network", "none", "--name", name + "-count", base, "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"}},
			{args: []string{"logs", "-f", name + "-count"}},
			{args: []string{"cp", name + ":/d", filepath.Join(out, "d")}},
			{args: []string{"cp", filepath.Join(dir, "to-container"), name + ":/d/b"}},
			{args: []string{"exec", name, "cat", "/d/b"}},
			{args: []string{"diff", name}, sorted: true},
			{args: []string{"commit", "-a", "me <me@example.org>", "-m", "add d", "-c", `CMD ["cat", "/d/a"]`, "-c", "ENV X=1", name, img}},
			{args: []string{"run", "--rm", "--network", "none", img}},
			{args: []string{"inspect", "--format", "{{.Author}}|{{.Comment}}|{{.Config.Cmd}}|{{.Config.Env}}", img}},
			{args: []string{"history", "--format", "{{.CreatedBy}}|{{.Comment}}", "--no-trunc", img}},
			// Docker's classic builder runs a container for a CMD too
			// ("Running in", "Removing intermediate container"); cairn
			// changes the config alone.
			{args: []string{"build", "-t", built, ctxDir}, lines: []string{"Sending build context", "Step ", "Successfully"}},
			{args: []string{"run", "--rm", "--network", "none", built}},
			{args: []string{"images", "--filter", "reference=sess-*" + suffix + "*", "--format", "{{.Repository}}:{{.Tag}}"}, sorted: true},
			{args: []string{"tag", img, pushed}},
			{args: []string{"push", pushed}, lines: []string{"The push refers to", suffix + ": digest:"}},
			// cairn keeps no repository digest of an image it pushed or
			// pulled by tag (docker images --digests shows <none>), so
			// there is no repo@sha256 to untag.
			{args: []string{"rmi", pushed}, drop: "@sha256:"},
			{args: []string{"pull", pushed}, lines: []string{"Status:", suffix + ":"}},
			{args: []string{"run", "--rm", "--network", "none", pushed}},
			{args: []string{"save", "-o", filepath.Join(out, "built.tar"), built}},
			{args: []string{"rmi", built}, lines: []string{"Untagged:"}},
			{args: []string{"load", "-i", filepath.Join(out, "built.tar")}},
			{args: []string{"network", "create", name + "-net"}, skip: true},
			{args: []string{"network", "ls", "--filter", "name=" + name + "-net", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"}},
			{args: []string{"network", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Internal}}", name + "-net"}},
			{args: []string{"network", "rm", name + "-net"}},
			{args: []string{"volume", "create", name + "-vol"}},
			{args: []string{"volume", "ls", "--filter", "name=" + name + "-vol"}},
			{args: []string{"volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", name + "-vol"}},
			{args: []string{"volume", "rm", name + "-vol"}},
			{args: []string{"inspect", "nosuch-" + suffix}},
			{args: []string{"rm", "-f", name, name + "-count"}, sorted: true},
			{args: []string{"rmi", img, pushed, built, base}, lines: []string{"Untagged:"}, drop: "@sha256:", sorted: true},
		}
	}
	for _, bin := range dockerClients(t)[:1] {
		cairnSteps, dockerSteps := session("cairn"), session("docker")
		for i := range cairnSteps {
			st := cairnSteps[i]
			cout, cerr, ccode := dockerAt(t, bin, sock, st.args...)
			dout, derr, dcode := dockerAt(t, bin, strings.TrimPrefix(dockerd.Host, "unix://"), dockerSteps[i].args...)
			if ccode != dcode {
				t.Errorf("docker %s: exit %d through cairn (%s), %d through dockerd (%s)", strings.Join(st.args, " "), ccode, cerr, dcode, derr)
				continue
			}
			if st.skip {
				continue
			}
			c, d := normalise(cout, st), normalise(strings.ReplaceAll(dout, "sess-docker", "sess-cairn"), st)
			if c != d {
				t.Errorf("docker %s:\nthrough cairn:\n%s\nthrough dockerd:\n%s", strings.Join(st.args, " "), c, d)
			}
		}
		if a, b := cpTreeList(t, filepath.Join(dir, "cairn", "d")), cpTreeList(t, filepath.Join(dir, "docker", "d")); !slices.Equal(a, b) {
			t.Errorf("docker cp out: cairn %q, dockerd %q", a, b)
		}
	}
}
