package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// ms is d in milliseconds, as the benchmarks report times.
func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// BenchmarkCommitOneFile commits a one-file change on the 1 GiB, 50,000-file
// image and on busybox, and reports the ratio of the medians: the cost of a
// commit must not grow with the image. Docker's commit of the same change on
// busybox is measured too, for scale.
func BenchmarkCommitOneFile(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	archive, big := bigArchive(b, 0)
	s.ok("load", "-i", archive)
	bbArchive := filepath.Join(b.TempDir(), "bb.tar")
	s.ok("save", "-o", bbArchive, "busybox")
	docker.Run(b, "load", "-i", bbArchive)
	var tBig, tBB, tDocker []time.Duration
	var dockerNames []string
	defer func() {
		if len(dockerNames) > 0 {
			docker.RunErr(append([]string{"rm", "-f"}, dockerNames...)...)
		}
		docker.RunErr("image", "prune", "-f")
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		change := fmt.Sprintf("echo %d > /changed", i)
		s.ok(append([]string{"run", "--name", fmt.Sprint("big", i)}, bigShell(big, change)...)...)
		s.ok("run", "--name", fmt.Sprint("bb", i), "busybox", "sh", "-c", change)
		dn := fmt.Sprintf("cairn-bench-commit-%d", i)
		dockerNames = append(dockerNames, dn)
		docker.Run(b, "run", "--network", "none", "--name", dn, "busybox", "sh", "-c", change)
		b.StartTimer()

		start := time.Now()
		s.ok("commit", fmt.Sprint("big", i), fmt.Sprintf("bench/big:%d", i))
		tBig = append(tBig, time.Since(start))
		b.StopTimer()
		start = time.Now()
		s.ok("commit", fmt.Sprint("bb", i), fmt.Sprintf("bench/bb:%d", i))
		tBB = append(tBB, time.Since(start))
		start = time.Now()
		docker.Run(b, "commit", dn)
		tDocker = append(tDocker, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(median(tBig)), "big-ms")
	b.ReportMetric(ms(median(tBB)), "busybox-ms")
	b.ReportMetric(ms(median(tDocker)), "docker-busybox-ms")
	b.ReportMetric(median(tBig).Seconds()/median(tBB).Seconds(), "x-big-over-busybox")
}

// bigShell is the run arguments of a shell command in the 1 GiB image, which
// has no shell: the host's /bin, with busybox, is bound over one of its
// directories (so that no mount point is made), and $bb names busybox.
func bigShell(img, cmd string) []string {
	const bb = "/l0/d49/busybox"
	return []string{"-v", "/bin:/l0/d49:ro", "-e", "bb=" + bb, img, bb, "sh", "-c", cmd}
}

// BenchmarkCommitLarge commits a 500 MiB incompressible change with cairn and
// with the real Docker engine, alternately, and reports cairn's speed-up.
func BenchmarkCommitLarge(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	bbArchive := filepath.Join(b.TempDir(), "bb.tar")
	s.ok("save", "-o", bbArchive, "busybox")
	docker.Run(b, "load", "-i", bbArchive)
	// The same incompressible bytes for both: made once, copied in.
	data := filepath.Join(benchDir(b), "random-500m")
	if out, err := exec.Command("sh", "-c", "test -s "+data+" || head -c 524288000 /dev/urandom > "+data).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	var tc, td time.Duration
	var dockerNames []string
	defer func() {
		if len(dockerNames) > 0 {
			docker.RunErr(append([]string{"rm", "-f"}, dockerNames...)...)
		}
		docker.RunErr("image", "prune", "-f")
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprint("large", i)
		s.ok("run", "--name", name, "-v", data+":/src:ro", "busybox", "cp", "/src", "/big")
		dn := fmt.Sprintf("cairn-bench-large-%d", i)
		dockerNames = append(dockerNames, dn)
		docker.Run(b, "run", "--network", "none", "--name", dn, "-v", data+":/src:ro", "busybox", "cp", "/src", "/big")
		exec.Command("sync").Run()
		b.StartTimer()

		start := time.Now()
		s.ok("commit", name, fmt.Sprintf("bench/large:%d", i))
		tc += time.Since(start)

		b.StopTimer()
		exec.Command("sync").Run()
		start = time.Now()
		docker.Run(b, "commit", dn)
		td += time.Since(start)
		s.ok("rm", name)
		s.ok("rmi", fmt.Sprintf("bench/large:%d", i))
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(tc.Seconds()/n, "cairn-s")
	b.ReportMetric(td.Seconds()/n, "docker-s")
	b.ReportMetric(td.Seconds()/tc.Seconds(), "x-faster-than-docker")
}

// BenchmarkDiff times `cairn diff` of a container with 10 changes on the
// 1 GiB, 50,000-file image.
func BenchmarkDiff(b *testing.B) {
	s := newStore(b)
	archive, big := bigArchive(b, 0)
	s.ok("load", "-i", archive)
	var cmds []string
	for i := 0; i < 10; i++ {
		switch i % 3 {
		case 0:
			cmds = append(cmds, fmt.Sprintf("echo %d > /l0/d%02d/new%d", i, i, i))
		case 1:
			cmds = append(cmds, fmt.Sprintf("$bb rm /l1/d%02d/f%05d", i, i*10))
		default:
			cmds = append(cmds, fmt.Sprintf("echo x >> /l2/d%02d/f%05d", i, i*10+1))
		}
	}
	s.ok(append([]string{"run", "--name", "d"}, bigShell(big, strings.Join(cmds, "; "))...)...)
	if n := strings.Count(s.ok("diff", "d"), "\n"); n < 10 {
		b.Fatalf("diff shows %d changes", n)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ok("diff", "d")
	}
}
