package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The soak's knobs: how long the workers go on (CAIRN_SOAK, a Go
// duration) and the seed of their choices (CAIRN_SOAK_SEED).
const (
	soakWorkers     = 8
	soakDefault     = time.Minute
	soakDefaultSeed = 1
	// soakCallTimeout bounds one cairn call of a worker: a call that takes
	// longer is a hang, not load.
	soakCallTimeout = 2 * time.Minute
	// soakNames is how many names a worker keeps, about.
	soakNames = 12
)

// The operations a worker chooses among, with their weights.
var soakOps = []struct {
	name   string
	weight int
}{
	{"run-rm", 3}, {"run-d", 2}, {"commit", 3}, {"build", 2}, {"tag", 1},
	{"rmi", 4}, {"prune", 1}, {"push", 1}, {"pull", 1},
}

// Eight processes at once on one store, for a bounded time, doing a seeded
// random mix of run, exec, commit, build, tag, rmi, image prune, push and
// pull. Every error is classified: the ones a concurrent mix may produce
// (rmi of an image another worker's container uses; a run of another
// worker's image that its owner removed meanwhile) are counted, anything
// else fails. At the end the store is sound (system check), every name
// that was acknowledged and not removed is there with its ID, every image
// runs, and no container is left.
func TestSoak(t *testing.T) {
	d, seed := soakDefault, int64(soakDefaultSeed)
	if v := os.Getenv("CAIRN_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CAIRN_SOAK=%q: %v", v, err)
		}
	}
	if v := os.Getenv("CAIRN_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("CAIRN_SOAK_SEED=%q: %v", v, err)
		}
	}
	t.Logf("soak: %d workers for %v, seed %d (CAIRN_SOAK_SEED=%d replays the choices, not their timing)", soakWorkers, d, seed, seed)

	reg := testutil.Registry(t)
	s := registryStore(t, "", "")
	s.busybox()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &soak{
		t: t, s: s, ctx: ctx, cancel: cancel,
		repo:   fmt.Sprintf("%s/cairn-test/soak-%d-%d", reg, seed, time.Now().UnixNano()),
		images: map[string]*soakImage{},
		counts: map[string]map[string]int{},
	}
	deadline := time.Now().Add(d)
	workers := make([]*soakWorker, soakWorkers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &soakWorker{soak: k, n: i, rng: rand.New(rand.NewSource(seed + int64(i))), dir: t.TempDir()}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				w.step()
			}
		}()
	}
	wg.Wait()
	defer k.report()
	defer func() {
		if t.Failed() {
			// What every worker did last, for the interleaving.
			for _, w := range workers {
				t.Logf("worker %d's last commands:\n  %s", w.n, strings.Join(w.history, "\n  "))
			}
		}
	}()
	if t.Failed() {
		return
	}

	// The containers the test left running go; then none is left (each
	// container is named after the worker and step that made it).
	for _, w := range workers {
		if w.long != "" {
			s.ok("rm", "-f", w.long)
		}
	}
	if out := s.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Status}}"); out != "" {
		t.Fatalf("containers left after the soak:\n%s", out)
	}
	soakSystemCheck(t, s)

	// Every name acknowledged and not removed is there with its ID, and
	// no other name is there.
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s.ok("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			listed[f[0]] = f[1]
		}
	}
	for name, img := range k.images {
		if got, ok := listed[name]; !ok {
			t.Errorf("acknowledged image %s (%s, worker %d) is missing", name, img.id, img.owner)
		} else if got != img.id {
			t.Errorf("acknowledged image %s is %s, want %s (worker %d)", name, got, img.id, img.owner)
		}
	}
	for name, id := range listed {
		// An image can lose its last name and stay: a pull moved the name
		// to its manifest from the registry, and a container uses the old
		// one or a named manifest shares its ID (prune keeps both).
		if _, ok := k.images[name]; !ok && name != "busybox:latest" && name != "<none>:<none>" {
			t.Errorf("image %s (%s) is named, but no worker made it or it was removed", name, id)
		}
	}

	// Every image left runs.
	ids := strings.Fields(s.ok("images", "-q", "--no-trunc"))
	slices.Sort(ids)
	ids = slices.Compact(ids)
	jobs := make(chan string)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if r := s.run(nil, "run", "--rm", "--network", "none", "--pull", "never", id, "true"); r.Code != 0 {
					t.Errorf("image %s does not run: exit %d: %s", id, r.Code, r.Stderr)
				}
			}
		}()
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	t.Logf("soak: %d names, %d images at the end; every one runs", len(listed), len(ids))
	if tr := s.traces(); len(tr) > 0 {
		t.Fatalf("the soak left: %v", tr)
	}
}

// soakSystemCheck runs `cairn system check`, which must find the store
// sound, and checkConsistent, which reads the store itself.
func soakSystemCheck(t *testing.T, s *store) {
	t.Helper()
	if r := s.run(nil, "system", "check"); r.Code != 0 {
		t.Fatalf("cairn system check: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	s.checkConsistent()
}

// soak is what the workers share: the store, the names they made, the
// counts of what happened.
type soak struct {
	t      *testing.T
	s      *store
	ctx    context.Context
	cancel context.CancelFunc // the first failure stops every worker
	repo   string             // the registry repository prefix of this run

	mu     sync.Mutex
	images map[string]*soakImage     // full name → image, every name acknowledged and not removed
	counts map[string]map[string]int // operation → outcome → count
}

// soakImage is a name a worker made (commit, build, tag, pull) and cairn
// acknowledged.
type soakImage struct {
	id       string
	owner    int
	removing bool // its owner's rmi is under way
}

func (k *soak) count(op, outcome string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.counts[op] == nil {
		k.counts[op] = map[string]int{}
	}
	k.counts[op][outcome]++
}

// report logs the counts, one line per operation and a summary.
func (k *soak) report() {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ops []string
	for op := range k.counts {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	total := 0
	var summary []string
	for _, op := range ops {
		var outs []string
		for o, n := range k.counts[op] {
			outs = append(outs, fmt.Sprintf("%s=%d", o, n))
			total += n
		}
		slices.Sort(outs)
		k.t.Logf("soak: %-7s %s", op, strings.Join(outs, " "))
		summary = append(summary, op+" "+strings.Join(outs, ","))
	}
	k.t.Logf("soak: %d operations: %s", total, strings.Join(summary, "; "))
}

// expected reports whether name is acknowledged and not being removed;
// busybox always is.
func (k *soak) expected(name string) bool {
	if name == "busybox" {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	img, ok := k.images[name]
	return ok && !img.removing
}

// soakWorker runs one cairn at a time, its choices drawn from its own rng.
type soakWorker struct {
	*soak
	n       int
	rng     *rand.Rand
	dir     string // its build contexts
	seq     int
	names   []string // the names it made that are acknowledged and not removed
	pushed  []soakPushed
	long    string   // its long-running container, for commits ("" when none)
	history []string // its last commands, for a failure's report
}

type soakPushed struct{ ref, id string }

func (w *soakWorker) next() int { w.seq++; return w.seq }

func (w *soakWorker) token() string { return fmt.Sprintf("w%d-%d", w.n, w.next()) }

// cairn runs one cairn command on the store, bounded by soakCallTimeout.
// A call that cannot be run or that times out gets code -1.
func (w *soakWorker) cairn(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), soakCallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, append([]string{"--root", w.s.root}, args...)...)
	cmd.Env = append(os.Environ(), w.s.env...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Code, r.Stderr = -1, r.Stderr+fmt.Sprintf("\n(killed: no answer after %v)", soakCallTimeout)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		r.Code, r.Stderr = -1, err.Error()
	}
	w.history = append(w.history, fmt.Sprintf("%s cairn %s → exit %d (%v)", start.Format("15:04:05.000"), strings.Join(args, " "), r.Code, time.Since(start).Round(time.Millisecond)))
	if len(w.history) > 20 {
		w.history = w.history[1:]
	}
	return r
}

// fail reports an outcome no concurrent mix explains, and stops the soak.
func (w *soakWorker) fail(op, what string, r result) {
	w.count(op, "fail")
	w.t.Errorf("worker %d, %s: %s: exit %d\nstdout: %s\nstderr: %s\nthe worker's last commands:\n  %s",
		w.n, op, what, r.Code, r.Stdout, r.Stderr, strings.Join(w.history, "\n  "))
	w.cancel()
}

// vanished reports whether a command about img failed because img is not
// there, and its owner removed it meanwhile (or is removing it).
func (w *soakWorker) vanished(img string, r result) bool {
	return r.Code == 125 && strings.Contains(r.Stderr, "No such image") && !w.expected(img)
}

// ack records that cairn made name, image id, for this worker.
func (w *soakWorker) ack(name, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.images[name]; !ok {
		w.names = append(w.names, name)
	}
	w.images[name] = &soakImage{id: id, owner: w.n}
}

// anyImage is an image to run: busybox or any acknowledged name, of any
// worker.
func (w *soakWorker) anyImage() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	all := []string{"busybox"}
	for name, img := range w.images {
		if !img.removing {
			all = append(all, name)
		}
	}
	slices.Sort(all) // the map's order is not the seed's
	return all[w.rng.Intn(len(all))]
}

// ownImage is one of the worker's own names ("" when it has none).
func (w *soakWorker) ownImage() string {
	if len(w.names) == 0 {
		return ""
	}
	return w.names[w.rng.Intn(len(w.names))]
}

func (w *soakWorker) idOf(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.images[name].id
}

// step runs one operation, drawn by weight; one whose object is missing (a
// tag with no image of its own, a pull before any push) builds instead, and
// a worker with many names often removes one instead.
func (w *soakWorker) step() {
	total := 0
	for _, o := range soakOps {
		total += o.weight
	}
	n := w.rng.Intn(total)
	op := ""
	for _, o := range soakOps {
		if n -= o.weight; n < 0 {
			op = o.name
			break
		}
	}
	if (op == "tag" || op == "rmi" || op == "push") && len(w.names) == 0 || op == "pull" && len(w.pushed) == 0 {
		op = "build"
	}
	// A worker keeps about soakNames names: the store stays of one size
	// however long the soak, and so does the final check.
	if len(w.names) > soakNames && w.rng.Intn(2) == 0 {
		op = "rmi"
	}
	switch op {
	case "run-rm":
		w.runRm()
	case "run-d":
		w.runDetached()
	case "commit":
		w.commit()
	case "build":
		w.build()
	case "tag":
		src := w.ownImage()
		name := fmt.Sprintf("soak-w%d-t:%d", w.n, w.next())
		if r := w.cairn("tag", src, name); r.Code != 0 {
			w.fail(op, "tag "+src+" "+name, r)
			return
		}
		w.ack(name, w.idOf(src))
		w.count(op, "ok")
	case "rmi":
		w.rmi(op, w.ownImage())
	case "prune":
		if r := w.cairn("image", "prune", "-f"); r.Code != 0 {
			w.fail(op, "image prune -f", r)
			return
		}
		w.count(op, "ok")
	case "push":
		w.push()
	case "pull":
		w.pull()
	}
}

func (w *soakWorker) runRm() {
	img, tok := w.anyImage(), w.token()
	r := w.cairn("run", "--rm", "--name", "soak-"+tok, "--network", "none", "--pull", "never", img, "echo", tok)
	switch {
	case r.Code == 0 && r.Stdout == tok+"\n":
		w.count("run-rm", "ok")
	case w.vanished(img, r):
		w.count("run-rm", "vanished")
	default:
		w.fail("run-rm", "run --rm "+img+" echo "+tok, r)
	}
}

var soakID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// startDetached starts a container of img that sleeps; "" when img
// vanished (counted under op) or on a failure (reported).
func (w *soakWorker) startDetached(op, img string) string {
	r := w.cairn("run", "-d", "--name", "soak-"+w.token(), "--network", "none", "--pull", "never", img, "sleep", "3600")
	id := strings.TrimSpace(r.Stdout)
	switch {
	case r.Code == 0 && soakID.MatchString(id):
		return id
	case w.vanished(img, r):
		w.count(op, "vanished")
	default:
		w.fail(op, "run -d "+img, r)
	}
	return ""
}

// exec writes a token into container id and reads it back.
func (w *soakWorker) exec(op, id, path string) bool {
	tok := w.token()
	r := w.cairn("exec", id, "sh", "-c", fmt.Sprintf("echo %s > %s && cat %s", tok, path, path))
	if r.Code != 0 || r.Stdout != tok+"\n" {
		w.fail(op, "exec "+id, r)
		return false
	}
	return true
}

func (w *soakWorker) runDetached() {
	id := w.startDetached("run-d", w.anyImage())
	if id == "" || !w.exec("run-d", id, "/tmp/soak") {
		return
	}
	if r := w.cairn("rm", "-f", id); r.Code != 0 {
		w.fail("run-d", "rm -f "+id, r)
		return
	}
	w.count("run-d", "ok")
}

// commit commits a change of the worker's long-running container (started
// first if it has none) to a new name; now and then the container goes
// after, so that the next one stands on another image.
func (w *soakWorker) commit() {
	if w.long == "" {
		if w.long = w.startDetached("commit", w.anyImage()); w.long == "" {
			return
		}
	}
	if !w.exec("commit", w.long, fmt.Sprintf("/commit-%d", w.seq+1)) {
		return
	}
	name := fmt.Sprintf("soak-w%d-c:%d", w.n, w.next())
	r := w.cairn("commit", w.long, name)
	id := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !soakID.MatchString(strings.TrimPrefix(id, "sha256:")) {
		w.fail("commit", "commit "+w.long+" "+name, r)
		return
	}
	if r.Stderr != "" {
		w.t.Logf("worker %d: commit %s: %s", w.n, name, r.Stderr)
	}
	w.ack(name, id)
	w.count("commit", "ok")
	if w.rng.Intn(3) == 0 {
		if r := w.cairn("rm", "-f", w.long); r.Code != 0 {
			w.fail("commit", "rm -f "+w.long, r)
			return
		}
		w.long = ""
	}
}

// build builds FROM busybox or one of the worker's own images (never
// another's: a FROM that is gone would be pulled from Docker Hub), a RUN of
// few variants, so that some builds hit the cache, others' too.
func (w *soakWorker) build() {
	from := "busybox"
	if own := w.ownImage(); own != "" && w.rng.Intn(2) == 0 {
		from = own
	}
	df := fmt.Sprintf("FROM %s\nRUN echo %d > /built\n", from, w.rng.Intn(4))
	if err := os.WriteFile(filepath.Join(w.dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		w.fail("build", err.Error(), result{})
		return
	}
	name := fmt.Sprintf("soak-w%d-b:%d", w.n, w.next())
	r := w.cairn("build", "-q", "--network", "none", "-t", name, w.dir)
	id := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !soakID.MatchString(strings.TrimPrefix(id, "sha256:")) {
		w.fail("build", "build -t "+name+" of "+strings.ReplaceAll(df, "\n", "; "), r)
		return
	}
	w.ack(name, id)
	w.count("build", "ok")
}

// rmi removes one of the worker's own names, counted under op. A
// container's image cannot lose its last name: that conflict is expected.
func (w *soakWorker) rmi(op, name string) {
	w.mu.Lock()
	w.images[name].removing = true
	w.mu.Unlock()
	r := w.cairn("rmi", name)
	conflict := fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container ", name)
	switch {
	case r.Code == 0 && strings.Contains(r.Stdout, "Untagged: "):
		w.mu.Lock()
		delete(w.images, name)
		w.mu.Unlock()
		w.names = slices.DeleteFunc(w.names, func(x string) bool { return x == name })
		w.count(op, "ok")
	case r.Code == 1 && strings.Contains(r.Stderr, conflict) && strings.Contains(r.Stderr, " is using its referenced image "):
		w.mu.Lock()
		w.images[name].removing = false
		w.mu.Unlock()
		w.count(op, "conflict")
	default:
		w.fail(op, "rmi "+name, r)
	}
}

// push names one of the worker's images in the registry and pushes it.
func (w *soakWorker) push() {
	src := w.ownImage()
	ref := fmt.Sprintf("%s-w%d:%d", w.repo, w.n, w.next())
	if r := w.cairn("tag", src, ref); r.Code != 0 {
		w.fail("push", "tag "+src+" "+ref, r)
		return
	}
	id := w.idOf(src)
	w.ack(ref, id)
	if r := w.cairn("push", ref); r.Code != 0 || !strings.Contains(r.Stdout, "digest: sha256:") {
		w.fail("push", "push "+ref, r)
		return
	}
	w.pushed = append(w.pushed, soakPushed{ref, id})
	w.count("push", "ok")
}

// pull pulls back something the worker pushed, most often after removing
// its name here, and checks that it is the image that was pushed.
func (w *soakWorker) pull() {
	p := w.pushed[w.rng.Intn(len(w.pushed))]
	if slices.Contains(w.names, p.ref) && w.rng.Intn(4) != 0 {
		w.rmi("rmi", p.ref)
		if w.ctx.Err() != nil {
			return
		}
	}
	if r := w.cairn("pull", p.ref); r.Code != 0 || !strings.Contains(r.Stdout, "Digest: sha256:") {
		w.fail("pull", "pull "+p.ref, r)
		return
	}
	r := w.cairn("image", "inspect", "--format", "{{.Id}}", p.ref)
	if got := strings.TrimSpace(r.Stdout); r.Code != 0 || got != p.id {
		w.fail("pull", fmt.Sprintf("image inspect %s: want ID %s", p.ref, p.id), r)
		return
	}
	w.ack(p.ref, p.id)
	w.count("pull", "ok")
}
