package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// BenchmarkBuildCached rebuilds a ten-step Dockerfile whose every step is in
// the cache, with cairn and with the real Docker engine (its classic
// builder, cache warm), alternately.
func BenchmarkBuildCached(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	base := "cairn-bench/build-base:1"
	s.ok("tag", "busybox", base)
	baseTar := filepath.Join(b.TempDir(), "base.tar")
	s.ok("save", "-o", baseTar, base)
	docker.Run(b, "load", "-i", baseTar)
	defer docker.RunErr("rmi", "-f", base, "cairn-bench/built:1")
	ctx := buildContext(b, map[string]string{
		"Dockerfile": "FROM " + base + "\nENV APP=/app\nWORKDIR /app\nCOPY conf.txt /app/\nCOPY src /app/src/\n" +
			"RUN echo built > /app/stamp\nRUN ls -R /app > /app/listing\nLABEL stage=bench\nEXPOSE 8080\nCMD [\"cat\", \"/app/stamp\"]\n",
		"conf.txt": "conf", "src/main.c": "int main() { return 0; }\n", "src/lib/util.c": "void util(void) {}\n",
	})
	build := func(ok func(args ...string) string) time.Duration {
		start := time.Now()
		out := ok("build", "-t", "cairn-bench/built:1", ctx)
		d := time.Since(start)
		if n := strings.Count(out, "Using cache"); n != 9 {
			b.Fatalf("%d of 9 steps from the cache:\n%s", n, out)
		}
		return d
	}
	s.ok("build", "-t", "cairn-bench/built:1", ctx)
	docker.Run(b, "build", "--network", "none", "-t", "cairn-bench/built:1", ctx)
	dockerOK := func(args ...string) string {
		return docker.Run(b, append(args[:1], append([]string{"--network", "none"}, args[1:]...)...)...)
	}
	var tc, td []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc = append(tc, build(s.ok))
		b.StopTimer()
		td = append(td, build(dockerOK))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(median(tc)), "cairn-ms")
	b.ReportMetric(ms(median(td)), "docker-ms")
	b.ReportMetric(median(td).Seconds()/median(tc).Seconds(), "x-faster-than-docker")
}
