package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runcBundle prepares an OCI bundle of the busybox rootfs for runc(8), with
// the isolation cairn gives a container: the same namespaces, Docker's
// capabilities, no_new_privs, masked and read-only paths, and Docker's
// seccomp profile. Its rootfs is a plain directory: runc pays no overlay mount.
func runcBundle(b *testing.B, args ...string) string {
	b.Helper()
	testutil.RequiresTool(b, "runc")
	dir := b.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	os.Mkdir(rootfs, 0o755)
	if out, err := exec.Command("tar", "-xf", busyboxRootfs(b), "-C", rootfs).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("runc", "spec", "-b", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v %s", err, out)
	}
	var spec specs.Spec
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	spec.Process.Args, spec.Process.Terminal, spec.Process.NoNewPrivileges = args, false, true
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	spec.Process.Rlimits = nil
	spec.Root.Readonly = false
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}}
	profile, err := seccomp.GetDefaultProfile(&spec)
	if err != nil {
		b.Fatal(err)
	}
	if !x32Kernel() {
		// As cairn does (see runtime/spec.go): no x32 rules where the kernel runs no x32 call.
		profile.Architectures = slices.DeleteFunc(profile.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
	}
	spec.Linux.Seccomp = profile
	out, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// timed runs a command and returns how long it took. It first lets the work
// a previous command left to the kernel (the teardown of its network
// namespace, above all) end, so that no tool pays for another's.
// x32Kernel reports whether the kernel runs x32 system calls (getpid as one).
func x32Kernel() bool {
	if goruntime.GOARCH != "amd64" {
		return false
	}
	_, _, errno := syscall.Syscall(0x40000000|39, 0, 0, 0)
	return errno != syscall.ENOSYS
}

func timed(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

// BenchmarkRunVsRuncAndDocker times `cairn run --rm --network none busybox
// /bin/true`, start to exit, against `runc run` of a bundle with the same
// isolation (runcBundle: its own network namespace, with nothing in it) and
// `docker run --rm --network none` of the same image, alternately in the
// same run. It also times cairn's default network (a veth on the bridge,
// an address, /etc/hosts and resolv.conf), which runc's bundle does not
// have: bridge-ms, and what it adds to a start, bridge-add-ms.
func BenchmarkRunVsRuncAndDocker(b *testing.B) {
	docker := testutil.Docker(b)
	s := newStore(b)
	s.busybox()
	tag := "cairn-bench/busybox:run"
	archive := filepath.Join(b.TempDir(), "bb.tar")
	s.ok("save", "-o", archive, "busybox")
	docker.Run(b, "load", "-i", archive)
	docker.Run(b, "tag", "busybox:latest", tag)
	defer docker.RunErr("rmi", tag)
	bundle := runcBundle(b, "/bin/true")
	dockerArgs := []string{"-H", docker.Host, "run", "--rm", "--network", "none", tag, "/bin/true"}
	cairnNone := []string{"--root", s.root, "run", "--rm", "--network", "none", "busybox", "/bin/true"}
	cairnBridge := []string{"--root", s.root, "run", "--rm", "busybox", "/bin/true"}
	// One of each first: caches warm for all, the bridge made.
	timed(b, cairnBin, cairnNone...)
	timed(b, cairnBin, cairnBridge...)
	timed(b, "runc", "run", "-b", bundle, "cairn-bench-warm")
	timed(b, "docker", dockerArgs...)

	var tc, tb, tr, td time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc += timed(b, cairnBin, cairnNone...)
		b.StopTimer()
		tr += timed(b, "runc", "run", "-b", bundle, fmt.Sprintf("cairn-bench-%d", i))
		tb += timed(b, cairnBin, cairnBridge...)
		td += timed(b, "docker", dockerArgs...)
		b.StartTimer()
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / n }
	b.ReportMetric(ms(tc), "cairn-ms")
	b.ReportMetric(ms(tr), "runc-ms")
	b.ReportMetric(ms(td), "docker-ms")
	b.ReportMetric(ms(tb), "bridge-ms")
	b.ReportMetric(ms(tb)-ms(tc), "bridge-add-ms")
	b.ReportMetric(tc.Seconds()/tr.Seconds(), "x-runc-time")
	b.ReportMetric(td.Seconds()/tc.Seconds(), "x-faster-than-docker")
}

// BenchmarkExecVsRunc times `cairn exec` of /bin/true into a running
// container against `runc exec` into an equivalent runc container.
func BenchmarkExecVsRunc(b *testing.B) {
	s := newStore(b)
	s.busybox()
	s.ok("run", "-d", "--name", "bench-exec", "busybox", "sleep", "100000")
	defer s.run(nil, "rm", "-f", "bench-exec")
	bundle := runcBundle(b, "sleep", "100000")
	id := "cairn-bench-exec"
	// Detached, the container keeps runc's stdio: /dev/null, not our pipes.
	if err := exec.Command("runc", "run", "-d", "-b", bundle, id).Run(); err != nil {
		b.Fatalf("runc run -d: %v", err)
	}
	defer exec.Command("runc", "delete", "-f", id).Run()
	timed(b, cairnBin, "--root", s.root, "exec", "bench-exec", "/bin/true")
	timed(b, "runc", "exec", id, "/bin/true")

	var tc, tr time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc += timed(b, cairnBin, "--root", s.root, "exec", "bench-exec", "/bin/true")
		b.StopTimer()
		tr += timed(b, "runc", "exec", id, "/bin/true")
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(tc.Seconds()*1000/n, "cairn-ms")
	b.ReportMetric(tr.Seconds()*1000/n, "runc-ms")
	b.ReportMetric(tc.Seconds()/tr.Seconds(), "x-runc-time")
}
