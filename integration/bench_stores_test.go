package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// benchLabel marks what BenchmarkBigStore makes in the test engine, so that
// its prunes and its clean-up touch nothing else there.
const benchLabel = "cairn.bench=bigstore"

// bigStoreSize is the number of images and of containers of
// BenchmarkBigStore: CAIRN_BENCH_STORE_SIZE, 1,000 by default.
func bigStoreSize(b *testing.B) int {
	n := 1000
	if v := os.Getenv("CAIRN_BENCH_STORE_SIZE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("CAIRN_BENCH_STORE_SIZE=%q: a number of 10 or more", v)
		}
	}
	return n
}

// benchImages is a docker-archive of n one-layer images of distinct content
// (distinct IDs), each with the bench's label, named by name(i) ("": none).
func benchImages(b *testing.B, n int, salt string, name func(i int) []string) string {
	var imgs []fixtureImage
	for i := 0; i < n; i++ {
		imgs = append(imgs, fixtureImage{
			Names: name(i), Layers: [][]byte{layerTar(b, file("n", fmt.Sprintf("%s %d", salt, i)))},
			Labels: map[string]string{"cairn.bench": "bigstore"},
		})
	}
	return writeFile(b, dockerArchive(b, imgs...))
}

// cleanDocker removes from the test engine what the bench made there:
// containers, then images, by its label.
func cleanDocker(b *testing.B, docker *testutil.DockerEngine) {
	ids, _, _ := docker.RunErr("ps", "-aq", "--filter", "label="+benchLabel)
	all := strings.Fields(ids)
	for len(all) > 0 {
		n := min(len(all), 200)
		docker.RunErr(append([]string{"rm", "-f"}, all[:n]...)...)
		all = all[n:]
	}
	docker.RunErr("image", "prune", "-a", "-f", "--filter", "label="+benchLabel)
}

// inParallel runs do(i) for i in [0, n) on four workers, failing the bench
// on the first error.
func inParallel(b *testing.B, n int, do func(i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBigStore times `images`, `ps -a`, `inspect NAME`, `image prune`
// and `image prune -a`, each a whole process, on a store of 1,000 images of
// distinct content (loaded from one archive) and 1,000 containers made
// (not started) from them, one each; then `images` on a store of one image
// with 1,000 tags. The peer is the test Docker engine, given the same
// images and containers, each command alternately in the same run; the
// prunes (of the bench's label only, there) each remove three dangling
// images made for them and keep every image a container uses. It reports
// the medians and Docker's over cairn's.
func BenchmarkBigStore(b *testing.B) {
	docker := testutil.Docker(b)
	slow := *docker
	slow.Timeout = 15 * time.Minute // a load of a thousand images
	n := bigStoreSize(b)
	cleanDocker(b, docker)
	b.Cleanup(func() { cleanDocker(b, docker) })

	s := newStore(b)
	name := func(i int) []string { return []string{fmt.Sprintf("cairn-bench/big%04d:1", i)} }
	archive := benchImages(b, n, "distinct", name)
	s.ok("load", "-i", archive)
	slow.Run(b, "load", "-q", "-i", archive)
	container := func(i int) string { return fmt.Sprintf("cairn-bench-c%04d", i) }
	inParallel(b, n, func(i int) error {
		if r := s.run(nil, "create", "--network", "none", "--label", benchLabel, "--name", container(i), name(i)[0], "true"); r.Code != 0 {
			return fmt.Errorf("cairn create: %s", r.Stderr)
		}
		_, stderr, err := docker.RunErr("create", "--network", "none", "--label", benchLabel, "--name", container(i), name(i)[0], "true")
		if err != nil {
			return fmt.Errorf("docker create: %v: %s", err, stderr)
		}
		return nil
	})
	for _, args := range [][]string{{"images", "-q"}, {"ps", "-aq"}} {
		if got := strings.Count(s.ok(args...), "\n"); got != n {
			b.Fatalf("cairn %s: %d lines, want %d", args, got, n)
		}
	}
	cairn := func(args ...string) []string { return append([]string{"--root", s.root}, args...) }
	peer := func(args ...string) []string { return append([]string{"-H", docker.Host}, args...) }
	label := []string{"--filter", "label=" + benchLabel}
	commands := []struct {
		metric string
		args   []string
	}{
		{"images", []string{"images"}},
		{"ps", []string{"ps", "-a"}},
		{"inspect", []string{"inspect", container(n / 2)}},
		{"prune", append([]string{"image", "prune", "-f"}, label...)},
		{"prune-all", append([]string{"image", "prune", "-a", "-f"}, label...)},
	}
	round := 0
	b.Run("distinct", func(b *testing.B) {
		times := map[string][]time.Duration{}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			// Three dangling images for each prune to remove.
			round++
			dangling := benchImages(b, 3, fmt.Sprintf("dangling %d", round), func(int) []string { return nil })
			s.ok("load", "-i", dangling)
			docker.Run(b, "load", "-q", "-i", dangling)
			b.StartTimer()
			for _, c := range commands {
				times[c.metric] = append(times[c.metric], timed(b, cairnBin, cairn(c.args...)...))
				b.StopTimer()
				times["docker-"+c.metric] = append(times["docker-"+c.metric], timed(b, "docker", peer(c.args...)...))
				b.StartTimer()
			}
		}
		b.StopTimer()
		for _, c := range commands {
			b.ReportMetric(ms(median(times[c.metric])), c.metric+"-ms")
			b.ReportMetric(ms(median(times["docker-"+c.metric])), "docker-"+c.metric+"-ms")
			b.ReportMetric(median(times["docker-"+c.metric]).Seconds()/median(times[c.metric]).Seconds(), "x-"+c.metric)
		}
	})
	// What was measured was what was made: nothing the prunes had to keep went.
	for _, args := range [][]string{{"images", "-q"}, {"ps", "-aq"}} {
		if got := strings.Count(s.ok(args...), "\n"); got != n {
			b.Fatalf("after the prunes, cairn %s: %d lines, want %d", args, got, n)
		}
	}
	s.cleanup()
	cleanDocker(b, docker)

	// One image under n tags.
	t := newStore(b)
	tags := benchImages(b, 1, "tags", func(int) []string {
		var names []string
		for i := 0; i < n; i++ {
			names = append(names, fmt.Sprintf("cairn-bench/tag%04d:1", i))
		}
		return names
	})
	t.ok("load", "-i", tags)
	slow.Run(b, "load", "-q", "-i", tags)
	if got := strings.Count(t.ok("images", "-q"), "\n"); got != n {
		b.Fatalf("cairn images: %d lines, want %d", got, n)
	}
	b.Run("tags", func(b *testing.B) {
		var tc, td []time.Duration
		for i := 0; i < b.N; i++ {
			tc = append(tc, timed(b, cairnBin, "--root", t.root, "images"))
			b.StopTimer()
			td = append(td, timed(b, "docker", peer("images")...))
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(ms(median(tc)), "images-ms")
		b.ReportMetric(ms(median(td)), "docker-images-ms")
		b.ReportMetric(median(td).Seconds()/median(tc).Seconds(), "x-images")
	})
}
