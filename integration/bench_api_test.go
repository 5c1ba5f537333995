package integration

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// BenchmarkAPIRunVsDockerd times `docker run --rm --network none busybox
// true` through cairn's socket against the same through dockerd, with the
// same client, alternately in the same run (the medians are reported).
func BenchmarkAPIRunVsDockerd(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	sock, _ := s.apiService("0")
	tag := "cairn-bench/busybox:api"
	archive := filepath.Join(b.TempDir(), "bb.tar")
	s.ok("save", "-o", archive, "busybox")
	docker.Run(b, "load", "-i", archive)
	docker.Run(b, "tag", "busybox:latest", tag)
	defer docker.RunErr("rmi", tag)
	s.ok("tag", "busybox", tag)
	run := []string{"run", "--rm", "--network", "none", tag, "true"}
	cairnArgs := append([]string{"-H", "unix://" + sock}, run...)
	dockerArgs := append([]string{"-H", docker.Host}, run...)
	timed(b, "docker", cairnArgs...)
	timed(b, "docker", dockerArgs...)
	var tc, td []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc = append(tc, timed(b, "docker", cairnArgs...))
		b.StopTimer()
		td = append(td, timed(b, "docker", dockerArgs...))
		b.StartTimer()
	}
	b.ReportMetric(ms(median(tc)), "cairn-ms")
	b.ReportMetric(ms(median(td)), "dockerd-ms")
	b.ReportMetric(median(td).Seconds()/median(tc).Seconds(), "x-faster-than-dockerd")
}

// BenchmarkAPIListings times `docker ps -a` on 100 containers and `docker
// images` on 100 images through cairn's socket (with dockerd's on its own
// store beside, whatever it holds), and reports the service's resident
// memory at rest after them.
func BenchmarkAPIListings(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	dir := b.TempDir()
	for i := 0; i < 100; i++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := []byte(strconv.Itoa(i))
		tw.WriteHeader(&tar.Header{Name: "n", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)})
		tw.Write(body)
		tw.Close()
		p := filepath.Join(dir, fmt.Sprintf("%d.tar", i))
		os.WriteFile(p, buf.Bytes(), 0o644)
		s.ok("import", p, fmt.Sprintf("bench-img-%d:1", i))
	}
	for i := 0; i < 100; i++ {
		s.ok("create", "--network", "none", "--name", fmt.Sprintf("bench-ctr-%d", i), "busybox", "true")
	}
	sock, bg := s.apiService("0")
	cairnH := []string{"-H", "unix://" + sock}
	for _, args := range [][]string{{"ps", "-a"}, {"images"}} {
		if out, _, _ := dockerAt(b, "docker", sock, args...); strings.Count(out, "\n") < 101 {
			b.Fatalf("docker %s: %d lines", args, strings.Count(out, "\n"))
		}
	}
	var tps, timg, dps, dimg []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tps = append(tps, timed(b, "docker", append(cairnH, "ps", "-a")...))
		timg = append(timg, timed(b, "docker", append(cairnH, "images")...))
		b.StopTimer()
		dps = append(dps, timed(b, "docker", "-H", docker.Host, "ps", "-a"))
		dimg = append(dimg, timed(b, "docker", "-H", docker.Host, "images"))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(median(tps)), "ps-100-ms")
	b.ReportMetric(ms(median(timg)), "images-100-ms")
	b.ReportMetric(ms(median(dps)), "dockerd-ps-ms")
	b.ReportMetric(ms(median(dimg)), "dockerd-images-ms")
	time.Sleep(2 * time.Second)
	b.ReportMetric(float64(residentKiB(b, bg.cmd.Process.Pid))/1024, "service-rss-MiB")
	s.ok(append([]string{"rm", "-f"}, strings.Fields(s.ok("ps", "-aq"))...)...)
}

// residentKiB is VmRSS of process pid.
func residentKiB(b *testing.B, pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
