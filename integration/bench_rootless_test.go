package integration

import (
	"os/exec"
	"testing"
	"time"
)

// BenchmarkRootlessRun times `cairn run --rm --network none busybox true`,
// start to exit, as an unprivileged user (made for the benchmark, with
// subordinate IDs) against the same as root, and against rootless
// `podman run --rm --runtime runc --network none` of the same image as
// that user (Debian's podman 4.3; crun refuses this hybrid cgroup host),
// alternately in the same run. It reports the medians and the ratios
// x-rootless-over-root (the target: at most 1.5) and
// x-podman-over-rootless (the target: above 1).
func BenchmarkRootlessRun(b *testing.B) {
	u := newRootlessUser(b, "cairn-rl-bench", true)
	env := u.env()
	tag := "cairn-bench/rootless:1"
	archive := u.file("busybox.tar", dockerArchive(b, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(b)}, Cmd: []string{"sh"}}))
	s := newStore(b)
	s.ok("load", "-i", archive)
	u.ok(env, "load", "-i", archive)
	podman, err := exec.LookPath("podman")
	if err == nil {
		if r := u.command(env, nil, podman, "load", "-i", archive); r.Code != 0 {
			b.Logf("podman is not measured: podman load: %s", r.Stderr)
			podman = ""
		}
	} else {
		b.Logf("podman is not measured: %v (hack/bench installs Debian's)", err)
	}
	args := []string{"run", "--rm", "--network", "none", tag, "true"}
	podmanArgs := []string{"run", "--rm", "--runtime", "runc", "--network", "none", tag, "true"}
	as := func(name string, args ...string) time.Duration {
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		if r := u.command(env, nil, name, args...); r.Code != 0 {
			b.Fatalf("%s %v as %s: exit %d: %s", name, args, u.name, r.Code, r.Stderr)
		}
		return time.Since(start)
	}
	// One of each first: caches warm, the user's namespace made.
	timed(b, cairnBin, append([]string{"--root", s.root}, args...)...)
	as(u.bin, args...)
	if podman != "" {
		as(podman, podmanArgs...)
	}
	var root, rootless, pod []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rootless = append(rootless, as(u.bin, args...))
		b.StopTimer()
		root = append(root, timed(b, cairnBin, append([]string{"--root", s.root}, args...)...))
		if podman != "" {
			pod = append(pod, as(podman, podmanArgs...))
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(median(root)), "root-ms")
	b.ReportMetric(ms(median(rootless)), "rootless-ms")
	b.ReportMetric(median(rootless).Seconds()/median(root).Seconds(), "x-rootless-over-root")
	if len(pod) > 0 {
		b.ReportMetric(ms(median(pod)), "podman-rootless-ms")
		b.ReportMetric(median(pod).Seconds()/median(rootless).Seconds(), "x-podman-over-rootless")
	}
}
