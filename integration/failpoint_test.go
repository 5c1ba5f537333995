package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// A writer is a command that changes the store, the set-up it needs, and
// what it may take away: TestKilledAtEveryFailpoint kills it at each
// failpoint it passes.
type writer struct {
	name  string
	setup func(t *testing.T, s *store, w *fpWorld) // beyond the base (see fpBase)
	args  func(w *fpWorld) []string
	// takes are the names (images, containers, volumes, networks) the
	// command removes: they need not be intact after it.
	takes []string
	// done reports whether the command's effect is whole already, so that
	// running it again may be refused (a name taken, a thing gone).
	done func(s *store) bool
}

// fpWorld is what the cases share: the test registry and the files they load.
type fpWorld struct {
	reg, pullRef, pushRef string
	archive, rootfsTar    string
	context               string // a build context
}

// fpBase is the store every case starts from: busybox, tagged keep too; a
// container kc (created) and cc (exited, with a change); a volume kv.
func fpBase(t *testing.T, s *store) {
	s.busybox()
	s.ok("tag", "busybox", "keep")
	s.ok("create", "--network", "none", "--name", "kc", "keep", "true")
	s.ok("run", "--network", "none", "--name", "cc", "busybox", "sh", "-c", "echo change > /change")
	s.ok("volume", "create", "kv")
}

func hasImage(name string) func(s *store) bool {
	return func(s *store) bool { return s.run(nil, "image", "inspect", name).Code == 0 }
}

func lacks(kind, name string) func(s *store) bool {
	return func(s *store) bool { return s.run(nil, kind, "inspect", name).Code != 0 }
}

var writers = []writer{
	{name: "load", args: func(w *fpWorld) []string { return []string{"load", "-i", w.archive} }, done: hasImage("loaded:1")},
	{name: "import", args: func(w *fpWorld) []string { return []string{"import", w.rootfsTar, "imported:1"} }, done: hasImage("imported:1")},
	{name: "pull", args: func(w *fpWorld) []string { return []string{"pull", w.pullRef} }, done: hasImage("")},
	{name: "push", setup: func(t *testing.T, s *store, w *fpWorld) { s.ok("tag", "busybox", w.pushRef) },
		args: func(w *fpWorld) []string { return []string{"push", w.pushRef} }},
	{name: "commit", args: func(*fpWorld) []string { return []string{"commit", "cc", "committed:1"} }, done: hasImage("committed:1")},
	{name: "build", args: func(w *fpWorld) []string { return []string{"build", "-t", "built:1", w.context} }, done: hasImage("built:1")},
	{name: "tag", args: func(*fpWorld) []string { return []string{"tag", "busybox", "tagged:1"} }},
	{name: "rmi", setup: func(t *testing.T, s *store, w *fpWorld) { s.ok("import", w.rootfsTar, "victim:1") },
		args: func(*fpWorld) []string { return []string{"rmi", "victim:1"} }, takes: []string{"victim:1"}, done: lacks("image", "victim:1")},
	{name: "image prune", setup: func(t *testing.T, s *store, w *fpWorld) {
		s.ok("import", w.rootfsTar, "dangling:1")
		s.ok("load", "-i", w.archive)
		s.ok("tag", "loaded:1", "dangling:1") // the import is left without a name
	}, args: func(*fpWorld) []string { return []string{"image", "prune", "-f"} }},
	{name: "run", args: func(*fpWorld) []string { return []string{"run", "--network", "none", "busybox", "echo", "hi"} }},
	{name: "run -d", args: func(*fpWorld) []string {
		return []string{"run", "-d", "--network", "none", "busybox", "sleep", "1000"}
	}},
	{name: "create", args: func(*fpWorld) []string { return []string{"create", "--network", "none", "busybox", "true"} }},
	{name: "rm", args: func(*fpWorld) []string { return []string{"rm", "cc"} }, takes: []string{"cc"}, done: lacks("container", "cc")},
	{name: "volume create", args: func(*fpWorld) []string { return []string{"volume", "create", "v1"} }},
	{name: "volume rm", args: func(*fpWorld) []string { return []string{"volume", "rm", "kv"} }, takes: []string{"kv"}, done: lacks("volume", "kv")},
	{name: "network create", args: func(*fpWorld) []string { return []string{"network", "create", "n1"} }, done: func(s *store) bool { return s.run(nil, "network", "inspect", "n1").Code == 0 }},
	{name: "network rm", setup: func(t *testing.T, s *store, w *fpWorld) { s.ok("network", "create", "n0") },
		args: func(*fpWorld) []string { return []string{"network", "rm", "n0"} }, takes: []string{"n0"}, done: lacks("network", "n0")},
	{name: "network connect", setup: func(t *testing.T, s *store, w *fpWorld) {
		s.ok("network", "create", "n0")
		s.ok("network", "create", "n1")
		s.ok("run", "-d", "--network", "n0", "--name", "web", "busybox", "sleep", "1000")
	}, args: func(*fpWorld) []string { return []string{"network", "connect", "n1", "web"} }, done: func(s *store) bool {
		return strings.Contains(s.ok("inspect", "--format", "{{json .NetworkSettings.Networks}}", "web"), `"n1"`)
	}},
}

// intact is what the store held before a command, that the command did not
// take: each name's image with the bytes of its blobs and snapshots' records,
// the containers, volumes and networks by name.
func (s *store) intact(takes []string) map[string]string {
	s.t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s.ok("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] == "<none>:<none>" || slices.Contains(takes, f[0]) {
			continue
		}
		out["image "+f[0]] = f[1]
	}
	for _, kind := range []string{"ps -a", "volume ls", "network ls"} {
		args := append(strings.Fields(kind), "--format", "{{.Name}}")
		if kind == "ps -a" {
			args = append(strings.Fields(kind), "--format", "{{.Names}}")
		}
		for _, n := range strings.Fields(s.ok(args...)) {
			if !slices.Contains(takes, n) {
				out[kind+" "+n] = "present"
			}
		}
	}
	// The bytes of every blob and snapshot record there is: the command may
	// add some, and take those of what it takes, but change none.
	for _, dir := range []string{"images/blobs/sha256", "snapshots"} {
		filepath.WalkDir(filepath.Join(s.root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (dir == "snapshots" && d.Name() != "meta.json") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil {
				sum := sha256.Sum256(b)
				out["file "+p] = hex.EncodeToString(sum[:])
			}
			return nil
		})
	}
	return out
}

// checkIntact fails unless what before holds is there, as it was; files
// may be gone (a prune of what the command took, or of garbage) but not
// changed.
func (s *store) checkIntact(t *testing.T, before map[string]string) {
	t.Helper()
	after := s.intact(nil)
	for k, v := range before {
		got, ok := after[k]
		switch {
		case strings.HasPrefix(k, "file ") && !ok:
		case !ok:
			t.Errorf("%s is gone", k)
		case got != v:
			t.Errorf("%s changed: %s, was %s", k, got, v)
		}
	}
}

// failpointsOf runs the failpoints build of cairn with args, noting the
// failpoints it (and what it starts) passes, in order, each once.
func (s *store) failpointsOf(t *testing.T, bin string, args []string) []string {
	trace := filepath.Join(t.TempDir(), "trace")
	if r := s.nkRun(bin, []string{"CAIRN_FAILPOINT_TRACE=" + trace}, args...); r.Code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatalf("%s passes no failpoint: %v", strings.Join(args, " "), err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !slices.Contains(out, sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// Every writer, killed with SIGKILL at each failpoint it passes (in
// itself or in the monitor it starts), leaves a store that `system check`
// finds sound or repairs to sound; what was there before is intact; the
// same command run again succeeds (unless what it did is whole already);
// and once its containers are removed, no mount, cgroup, process,
// network namespace or firewall line of the store is left.
func TestKilledAtEveryFailpoint(t *testing.T) {
	bin := failpointsCairn(t)
	reg := testutil.Registry(t)
	w := &fpWorld{reg: reg}
	dirT := t.TempDir()
	w.archive = writeFile(t, dockerArchive(t, fixtureImage{Names: []string{"loaded:1"}, Layers: [][]byte{layerTar(t, file("loaded/a", "a"), file("loaded/b", "b"))}}))
	w.rootfsTar = writeFile(t, layerTar(t, dir("etc"), file("etc/imported", "i"), file("bin/x", "x")))
	w.context = filepath.Join(dirT, "ctx")
	writeOrFail(t, filepath.Join(w.context, "Dockerfile"), "FROM busybox\nRUN echo built > /built\nCOPY f /f\n")
	writeOrFail(t, filepath.Join(w.context, "f"), "f\n")
	seed := registryStore(t, "", "")
	seed.busybox()
	w.pullRef = uniqueRepo(t, reg) + ":pull"
	seed.ok("tag", "busybox", w.pullRef)
	seed.ok("push", w.pullRef)
	for i := range writers {
		if writers[i].name == "pull" {
			writers[i].done = hasImage(w.pullRef)
		}
	}

	pairs, survived := 0, 0
	for _, c := range writers {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			fresh := func() *store {
				s := registryStore(t, "", "")
				fpBase(t, s)
				if c.setup != nil {
					c.setup(t, s, w)
				}
				return s
			}
			w.pushRef = uniqueRepo(t, reg) + ":push"
			probe := fresh()
			fps := probe.failpointsOf(t, bin, c.args(w))
			probe.cleanup()
			t.Logf("%s passes %d failpoints: %s", c.name, len(fps), strings.Join(fps, " "))
			for _, fp := range fps {
				pairs++
				ok := t.Run(fp, func(t *testing.T) {
					s := fresh()
					before := s.intact(c.takes)
					// Killed there, in itself or in the monitor it starts:
					// how it exits is not the point.
					s.nkRun(bin, []string{"CAIRN_FAILPOINT=" + fp}, c.args(w)...)
					// What the killed process started (a monitor) goes on
					// or dies; wait for every cairn of the store but the
					// monitors of running containers to be gone.
					waitFor(t, 30*time.Second, "the store's other cairn processes to end", func() bool {
						for _, pid := range processesOf(s.root) {
							if !slices.Contains(processesOf(monitorName, s.root), pid) {
								return false
							}
						}
						return true
					})
					if r := s.run(nil, "system", "check"); r.Code != 0 {
						if r := s.run(nil, "system", "check", "--repair"); r.Code != 0 {
							t.Fatalf("killed at %s: system check --repair: exit %d\n%s%s", fp, r.Code, r.Stdout, r.Stderr)
						}
						if r := s.run(nil, "system", "check"); r.Code != 0 {
							t.Fatalf("killed at %s: not sound after the repair:\n%s%s", fp, r.Stdout, r.Stderr)
						}
					}
					s.checkIntact(t, before)
					if c.done == nil || !c.done(s) {
						if r := s.run(nil, c.args(w)...); r.Code != 0 {
							t.Fatalf("killed at %s, then run again: exit %d\n%s%s", fp, r.Code, r.Stdout, r.Stderr)
						}
					}
					if ids := strings.Fields(s.ok("ps", "-aq", "--no-trunc")); len(ids) > 0 {
						s.ok(append([]string{"rm", "-f"}, ids...)...)
					}
					if r := s.run(nil, "system", "check"); r.Code != 0 {
						t.Fatalf("killed at %s, after the rerun and rm -f: %s%s", fp, r.Stdout, r.Stderr)
					}
					if tr := s.traces(); len(tr) > 0 {
						t.Fatalf("killed at %s: left %v", fp, tr)
					}
					if pids := processesOf(s.root); len(pids) > 0 {
						t.Fatalf("killed at %s: processes left: %v", fp, pids)
					}
				})
				if ok {
					survived++
				}
			}
		})
	}
	t.Logf("(command, failpoint) pairs survived: %d/%d", survived, pairs)
	if pairs < 2*len(writers) {
		t.Fatalf("only %d pairs for %d commands: a failpoint is not where it should be", pairs, len(writers))
	}
}
