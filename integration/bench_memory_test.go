package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// BenchmarkMemory measures the peak resident set of cairn's heavy commands
// on the 1 GiB, 50,000-file, three-layer image of BenchmarkLoadVsDocker: a
// load of its archive, a cold push (gzip) to a registry and a pull back
// (every layer unpacked), a commit of a 500 MiB incompressible change on
// it, and a build whose context holds the same 500 MiB (COPY, then RUN on
// the image). Each figure is wait4's ru_maxrss of the cairn process (the
// largest of it and of the descendants it waited for: a build's RUN), in
// MiB, beside a peer doing the same job in the same run:
//
//   - load, commit, build: Docker. dockerd does the work, and its peak is
//     not the command's: what is reported is the peak of the docker CLI
//     plus how far dockerd's resident set rose above where it stood before
//     the command (its high-water mark, reset through clear_refs, less its
//     resident set before). dockerd keeps freed heap a while, so a command
//     after another may find room already there: the figure is a floor.
//   - push, pull: skopeo copy between the same store layout and a
//     registry of its own, and from the registry into containers-storage
//     (overlay on a tmpfs), which unpacks the layers as cairn does.
//
// It also commits a container holding a 10 GiB sparse file (5 bytes of
// data, then a hole) against one holding a 5-byte file, both on busybox,
// and reports the time and peak of each: neither may grow with the sparse
// file's apparent size; and so with a build whose context holds the sparse
// file, which it COPYs. Docker's commit of the same sparse file, which
// writes its 10 GiB of zeros into the layer, is measured for scale.
//
// Registries and pulled stores live on a tmpfs (as in
// BenchmarkPushPullVsSkopeo); the rest on the disk of the test's temporary
// directory. A tmpfs's pages are not in any process's resident set.
func BenchmarkMemory(b *testing.B) {
	docker := testutil.Docker(b)
	testutil.RequiresTool(b, "skopeo")
	dd := findDockerd(b)
	archive, tag := bigArchive(b, 0)
	data := filepath.Join(benchDir(b), "random-500m")
	if out, err := exec.Command("sh", "-c", "test -s "+data+" || head -c 524288000 /dev/urandom > "+data).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	fs := mountTmpfs(b, "8g")
	ctxDir := bigBuildContext(b, data)
	dockerfile := "FROM " + tag + "\nCOPY . /ctx/\n" +
		`RUN ["/ctx/busybox", "sh", "-c", "/ctx/busybox md5sum /ctx/random-500m > /sum"]` + "\n"
	must(b, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644))

	sparseCtx, smallCtx := b.TempDir(), b.TempDir()
	for _, c := range []struct{ dir, size string }{{sparseCtx, "10G"}, {smallCtx, "5"}} {
		cmd := exec.Command("sh", "-c", "echo head > f && truncate -s "+c.size+" f")
		cmd.Dir = c.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		must(b, os.WriteFile(filepath.Join(c.dir, "Dockerfile"), []byte("FROM busybox\nCOPY f /f\n"), 0o644))
	}
	bb := newStore(b)
	bb.busybox()
	bbArchive := filepath.Join(b.TempDir(), "bb.tar")
	bb.ok("save", "-o", bbArchive, "busybox")
	docker.Run(b, "load", "-q", "-i", bbArchive)
	var dockerNames []string
	defer func() {
		if len(dockerNames) > 0 {
			docker.RunErr(append([]string{"rm", "-f"}, dockerNames...)...)
		}
		docker.RunErr("rmi", "-f", tag, "cairn-bench/mem-built:1")
		docker.RunErr("image", "prune", "-f")
	}()

	m := map[string][]float64{}
	add := func(k string, v float64) { m[k] = append(m[k], v) }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := newStore(b)
		mib, _ := s.measure("load", "-i", archive)
		add("load", mib)
		docker.RunErr("rmi", "-f", tag) // loaded again from nothing
		mib, _ = dd.measure(b, "load", "-q", "-i", archive)
		add("docker-load", mib)

		// Push (cold: the layers gzipped) and pull back, against skopeo.
		reg := testutil.StartRegistry(b, testutil.RegistryOptions{Dir: filepath.Join(fs, "reg")})
		ref := reg.Addr + "/bench/big:1"
		s.ok("tag", tag, ref)
		os.RemoveAll(filepath.Join(s.root, "conversions"))
		mib, _ = s.measure("push", "-q", ref)
		add("push", mib)
		dst := &store{t: b, root: filepath.Join(fs, "dst")}
		mib, _ = dst.measure("pull", "-q", ref)
		add("pull", mib)
		dst.cleanup()
		os.RemoveAll(dst.root)
		reg.Stop()
		os.RemoveAll(reg.Dir)
		reg = testutil.StartRegistry(b, testutil.RegistryOptions{Dir: filepath.Join(fs, "reg-skopeo")})
		sref := "docker://" + reg.Addr + "/bench/big:1"
		mib, _ = measure(b, nil, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+filepath.Join(s.root, "images")+":docker.io/"+tag, sref)
		add("skopeo-push", mib)
		cs := filepath.Join(fs, "containers-storage")
		mib, _ = measure(b, nil, "skopeo", "copy", "--src-tls-verify=false", sref, "containers-storage:[overlay@"+cs+"/root+"+cs+"/run]bench/big:1")
		add("skopeo-pull", mib)
		unmountUnder(b, cs)
		os.RemoveAll(cs)
		reg.Stop()
		os.RemoveAll(reg.Dir)

		// Commit of a 500 MiB change on the big image.
		name := fmt.Sprint("large", i)
		s.ok(append([]string{"run", "--name", name, "-v", data + ":/src:ro"}, bigShell(tag, "$bb cp /src /big")...)...)
		dn := fmt.Sprintf("cairn-bench-mem-large-%d", i)
		dockerNames = append(dockerNames, dn)
		docker.Run(b, append([]string{"run", "--network", "none", "--name", dn, "-v", data + ":/src:ro"}, bigShell(tag, "$bb cp /src /big")...)...)
		exec.Command("sync").Run()
		mib, _ = s.measure("commit", name, "bench/large:1")
		add("commit", mib)
		exec.Command("sync").Run()
		mib, _ = dd.measure(b, "commit", dn, "cairn-bench/mem-large:1")
		add("docker-commit", mib)
		docker.RunErr("rm", "-f", dn)
		docker.RunErr("rmi", "cairn-bench/mem-large:1")

		// Build: COPY of the 500 MiB context, then a RUN on the big image.
		mib, _ = s.measure("build", "-q", "--no-cache", "--network", "none", "-t", "bench/built:1", ctxDir)
		add("build", mib)
		mib, _ = dd.measure(b, "build", "-q", "--no-cache", "--network", "none", "-t", "cairn-bench/mem-built:1", ctxDir)
		add("docker-build", mib)
		docker.RunErr("rmi", "cairn-bench/mem-built:1")

		// Commit of a 10 GiB sparse file against a small one.
		bb.ok("run", "--name", fmt.Sprint("sparse", i), "busybox", "sh", "-c", "echo head > /sparse && truncate -s 10G /sparse")
		bb.ok("run", "--name", fmt.Sprint("small", i), "busybox", "sh", "-c", "echo head > /small")
		mib, d := bb.measure("commit", fmt.Sprint("sparse", i), "bench/sparse:1")
		add("sparse", mib)
		add("sparse-ms", ms(d))
		if out := bb.ok("run", "--rm", "bench/sparse:1", "sh", "-c", "stat -c %s /sparse; head -c 5 /sparse"); out != "10737418240\nhead\n" {
			b.Fatalf("the committed sparse file reads %q", out)
		}
		mib, d = bb.measure("commit", fmt.Sprint("small", i), "bench/small:1")
		add("small", mib)
		add("small-ms", ms(d))
		// And a build that COPYs the sparse file, against one of the small.
		for _, c := range []struct{ name, file string }{{"sparse-build", sparseCtx}, {"small-build", smallCtx}} {
			mib, d = bb.measure("build", "-q", "--no-cache", "--network", "none", "-t", "bench/"+c.name+":1", c.file)
			add(c.name, mib)
			add(c.name+"-ms", ms(d))
		}
		dn = fmt.Sprintf("cairn-bench-mem-sparse-%d", i)
		dockerNames = append(dockerNames, dn)
		docker.Run(b, "run", "--network", "none", "--name", dn, "busybox", "sh", "-c", "echo head > /sparse && truncate -s 10G /sparse")
		mib, d = dd.measure(b, "commit", dn, "cairn-bench/mem-sparse:1")
		add("docker-sparse", mib)
		add("docker-sparse-ms", ms(d))
		docker.RunErr("rm", "-f", dn)
		docker.RunErr("rmi", "cairn-bench/mem-sparse:1")

		s.cleanup()
		os.RemoveAll(s.root)
	}
	b.StopTimer()
	med := func(k string) float64 {
		v := slices.Clone(m[k])
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, k := range []string{"load", "push", "pull", "commit", "build", "sparse", "small", "sparse-build", "small-build"} {
		b.ReportMetric(med(k), k+"-MiB")
	}
	for _, c := range []struct{ cairn, peer string }{
		{"load", "docker-load"}, {"push", "skopeo-push"}, {"pull", "skopeo-pull"},
		{"commit", "docker-commit"}, {"build", "docker-build"},
	} {
		b.ReportMetric(med(c.peer), c.peer+"-MiB")
		b.ReportMetric(med(c.peer)/med(c.cairn), c.cairn+"-x")
	}
	b.ReportMetric(med("docker-sparse"), "docker-sparse-MiB")
	b.ReportMetric(med("sparse-ms"), "sparse-ms")
	b.ReportMetric(med("small-ms"), "small-ms")
	b.ReportMetric(med("docker-sparse-ms"), "docker-sparse-ms")
	b.ReportMetric(med("sparse-build-ms"), "sparse-build-ms")
	b.ReportMetric(med("small-build-ms"), "small-build-ms")
}

// bigBuildContext is a build context of the 500 MiB file data (linked, or
// copied), a static busybox to RUN with, and 2,000 small files.
func bigBuildContext(b *testing.B, data string) string {
	dir := b.TempDir()
	if err := os.Link(data, filepath.Join(dir, "random-500m")); err != nil {
		if out, err := exec.Command("cp", data, filepath.Join(dir, "random-500m")).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(dir, "busybox")).CombinedOutput(); err != nil {
		b.Fatalf("a static busybox for the RUN step: %v %s", err, out)
	}
	for d := 0; d < 20; d++ {
		must(b, os.MkdirAll(filepath.Join(dir, "src", fmt.Sprint(d)), 0o755))
		for f := 0; f < 100; f++ {
			must(b, os.WriteFile(filepath.Join(dir, "src", fmt.Sprint(d), fmt.Sprint(f)), []byte(strings.Repeat("x", 100*f)), 0o644))
		}
	}
	return dir
}

// measure runs cairn on the store, fails the benchmark unless it exits 0,
// and returns its peak resident set in MiB and its time.
func (s *store) measure(args ...string) (float64, time.Duration) {
	s.t.Helper()
	return measure(s.t.(*testing.B), s.env, cairnBin, append([]string{"--root", s.root}, args...)...)
}

// measure runs a program (env added to this process's), bounded in time,
// fails the benchmark unless it exits 0, and returns its peak resident set
// (ru_maxrss, in MiB) and its time.
func measure(b *testing.B, env []string, prog string, args ...string) (float64, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024, d
}

// dockerdProc is the test engine's dockerd, whose resident set a docker
// command makes grow.
type dockerdProc struct {
	pid  int
	host string
}

// findDockerd finds the dockerd of hack/dockerd by its pidfile.
func findDockerd(b *testing.B) *dockerdProc {
	const pidfile = "/run/cairn-test/docker.pid" // hack/dockerd's
	host := testutil.DefaultDockerHost
	if h := os.Getenv("CAIRN_TEST_DOCKER_HOST"); h != "" && h != host {
		b.Skipf("BenchmarkMemory reads the memory of hack/dockerd's engine, not of %s", h)
	}
	raw, err := os.ReadFile(pidfile)
	if err != nil {
		b.Fatalf("dockerd's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatalf("dockerd's pid in %s: %v", pidfile, err)
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "dockerd" {
		b.Fatalf("pid %d of %s is no dockerd", pid, pidfile)
	}
	return &dockerdProc{pid: pid, host: host}
}

// measure runs a docker command and returns the peak resident set of the
// CLI plus how far dockerd's rose meanwhile, in MiB, and its time.
func (d *dockerdProc) measure(b *testing.B, args ...string) (float64, time.Duration) {
	b.Helper()
	before := d.status(b, "VmRSS")
	// "5" resets the high-water mark (VmHWM) to the resident set now.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.pid), []byte("5"), 0); err != nil {
		b.Fatalf("reset dockerd's peak: %v", err)
	}
	cli, t := measure(b, []string{"DOCKER_CLI_HINTS=false"}, "docker", append([]string{"-H", d.host}, args...)...)
	return cli + max(0, d.status(b, "VmHWM")-before), t
}

// status reads a field of dockerd's /proc status, in MiB.
func (d *dockerdProc) status(b *testing.B, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid))
	if err != nil {
		b.Fatalf("dockerd's status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field+":" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no %s in dockerd's status", field)
	return 0
}
