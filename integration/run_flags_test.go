package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// rfImage is the image the flag tests run, in cairn and, loaded from
// cairn's save, in the test Docker engine.
const rfImage = "cairn-test/run-flags:1"

// rfDocker returns the test Docker engine with rfImage loaded from s, or
// nil when there is none (testutil's skip policy decides in a subtest: a
// comparison that cannot run is skipped or, under CI, fails).
func rfDocker(t *testing.T, s *store) *testutil.DockerEngine {
	t.Helper()
	var docker *testutil.DockerEngine
	t.Run("docker", func(t *testing.T) {
		d := testutil.Docker(t)
		archive := filepath.Join(t.TempDir(), "image.tar")
		s.ok("save", "-o", archive, rfImage)
		d.Run(t, "load", "-i", archive)
		docker = d
	})
	if docker != nil {
		t.Cleanup(func() { docker.RunErr("rmi", "-f", rfImage) })
	}
	return docker
}

// rfStore is a store with rfImage, the busybox rootfs.
func rfStore(t *testing.T) *store {
	s := newStore(t)
	s.busybox()
	s.ok("tag", "busybox", rfImage)
	return s
}

// rfDockerRun runs `docker run --rm --network none args...` and returns its
// stdout and exit code.
func rfDockerRun(t *testing.T, docker *testutil.DockerEngine, args ...string) (string, string, int) {
	t.Helper()
	out, errOut, err := docker.RunErr(append([]string{"run", "--rm", "--network", "none"}, args...)...)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out, errOut, ee.ExitCode()
	case err != nil:
		t.Fatalf("docker run %v: %v", args, err)
	}
	return out, errOut, 0
}

// mountinfoOf is a shell command printing, for each mount point given, its
// line of /proc/self/mountinfo without the numbers that differ between two
// runs: mount point, options, type, super options.
func mountinfoOf(points ...string) string {
	var cmds []string
	for _, p := range points {
		cmds = append(cmds, fmt.Sprintf(`awk '$5=="%s"{for(i=7;i<=NF;i++) if($i=="-") break; print $5,$6,$(i+1),$(i+3)}' /proc/self/mountinfo`, p))
	}
	return "{ " + strings.Join(cmds, "; ") + "; }"
}

// hostBlockDevice is a block device of this host under /dev (a disk, not a
// loop or zram device if there is one), or "".
func hostBlockDevice() string {
	entries, _ := os.ReadDir("/sys/block")
	var found string
	for _, e := range entries {
		p := "/dev/" + e.Name()
		st, err := os.Stat(p)
		if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
			continue
		}
		if !strings.HasPrefix(e.Name(), "loop") && !strings.HasPrefix(e.Name(), "zram") && !strings.HasPrefix(e.Name(), "ram") {
			return p
		}
		if found == "" {
			found = p
		}
	}
	return found
}

// hasCap reports whether this test process has capability n (CapEff).
func hasCap(n uint) bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps&(1<<n) != 0
		}
	}
	return false
}

// rfCase is a container run with some of run's flags: cairn's output must
// match want (a regular expression), and, unless noDocker says why not,
// the real Docker's output and exit code must be the same.
type rfCase struct {
	name     string
	args     []string // flags before the image
	cmd      string   // run by sh -c
	want     string
	noDocker string
}

// Each flag of run does what Docker's does, checked from inside the
// container — limits, cgroup values, mounts, devices, sysctls, namespaces,
// the init — and compared with the real Docker's container where Docker can
// run the same here (--network none).
func TestRunFlags(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("data\n"), 0o644)
	hostname, _ := os.Hostname()
	init1, _ := os.ReadFile("/proc/1/comm")
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	hostUser, _ := os.Readlink("/proc/self/ns/user")
	profile := writeFile(t, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`))
	// /dev/fuse's numbers, which no default rule allows.
	fuse := `mknod /tmp/f c 10 229; (: < /tmp/f) 2>/dev/null && echo opened || echo denied`
	zombie := `(sh -c "sleep 0.1 &"; sleep 1; echo zombies $(ps -o stat | grep -c "^Z")) & exec sleep 2`
	cases := []rfCase{
		{name: "ulimit", args: []string{"--ulimit", "nofile=100:200", "--ulimit", "nproc=500"},
			cmd: `grep -E "^Max (open files|processes) " /proc/self/limits`, want: `(?m)^Max processes +500 +500 .*\nMax open files +100 +200 `},
		{name: "oom-score-adj", args: []string{"--oom-score-adj", "500"}, cmd: "cat /proc/self/oom_score_adj", want: `^500\n$`},
		{name: "shm-size", args: []string{"--shm-size", "1m"}, cmd: mountinfoOf("/dev/shm"), want: `^/dev/shm rw,nosuid,nodev,noexec,relatime tmpfs rw,size=1024k\n$`},
		{name: "shm default", cmd: mountinfoOf("/dev/shm"), want: `^/dev/shm rw,nosuid,nodev,noexec,relatime tmpfs rw,size=65536k\n$`},
		{name: "tmpfs and mount tmpfs", args: []string{"--tmpfs", "/t1", "--tmpfs", "/t2:size=1m,mode=700,exec", "--mount", "type=tmpfs,dst=/t3,tmpfs-size=2m,tmpfs-mode=1770"},
			cmd:  mountinfoOf("/t1", "/t2", "/t3") + "; stat -c '%n %A' /t1 /t2 /t3",
			want: `^/t1 rw,nosuid,nodev,noexec,relatime tmpfs rw\n/t2 rw,nosuid,nodev,relatime tmpfs rw,size=1024k,mode=700\n/t3 rw,nosuid,nodev,noexec,relatime tmpfs rw,size=2048k,mode=1770\n/t1 drwxrwxrwt\n/t2 drwx------\n/t3 drwxrwx--T\n$`},
		{name: "mount bind and -v", args: []string{"--mount", "type=bind,src=" + src + ",dst=/b,readonly", "-v", src + ":/c"},
			cmd: "cat /b/f /c/f; " + mountinfoOf("/b", "/c") + " | cut -d' ' -f1,2", want: `^data\ndata\n/b ro,relatime\n/c rw,relatime\n$`},
		{name: "mount volume", args: []string{"--mount", "type=volume,dst=/usr/sbin"}, cmd: "ls /usr/sbin | wc -l", want: `^[1-9][0-9]*\n$`},
		{name: "mount volume-nocopy", args: []string{"--mount", "type=volume,dst=/usr/sbin,volume-nocopy"}, cmd: "ls /usr/sbin | wc -l", want: `^0\n$`},
		{name: "device", args: []string{"--device", "/dev/zero:/dev/xzero", "--device", "/dev/kmsg:/dev/xkmsg:r"},
			cmd:  `stat -c '%n %A %t %T' /dev/xzero /dev/xkmsg; head -c 2 /dev/xzero | od -An -c; (echo x > /dev/xkmsg) 2>/dev/null; echo write $?`,
			want: `^/dev/xzero crw-rw-rw- 1 5\n/dev/xkmsg c[rw-]{9} 1 b\n +\\0 +\\0\nwrite 1\n$`},
		{name: "device-cgroup-rule", args: []string{"--device-cgroup-rule", "c 10:229 rwm"}, cmd: fuse, want: `^opened\n$`},
		{name: "no device-cgroup-rule", cmd: fuse, want: `^denied\n$`},
		{name: "sysctl", args: []string{"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1000000", "--sysctl", "fs.mqueue.msg_max=100"},
			cmd: "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max", want: `^1\n1000000\n100\n$`},
		{name: "uts host", args: []string{"--uts", "host"}, cmd: "hostname", want: "^" + regexp.QuoteMeta(hostname) + "\n$"},
		{name: "pid host", args: []string{"--pid", "host"}, cmd: "cat /proc/1/comm; test $(ps -o pid | wc -l) -gt 5 && echo many", want: "^" + regexp.QuoteMeta(string(init1)) + "many\n$"},
		{name: "ipc host", args: []string{"--ipc", "host"}, cmd: "readlink /proc/self/ns/ipc; " + mountinfoOf("/dev/shm") + " | cut -d' ' -f1", want: "^" + regexp.QuoteMeta(hostIPC) + "\n/dev/shm\n$"},
		{name: "ipc none", args: []string{"--ipc", "none"}, cmd: "grep -c ' /dev/shm ' /proc/self/mountinfo; [ $(readlink /proc/self/ns/ipc) != " + hostIPC + " ] && echo its own", want: `^0\nits own\n$`},
		{name: "cgroupns private", args: []string{"--cgroupns", "private"}, cmd: "cat /proc/self/cgroup; grep -vc ':/$' /proc/self/cgroup || true", want: `(?s):memory:/\n.*\n0\n$`},
		{name: "userns host", args: []string{"--userns", "host"}, cmd: "readlink /proc/self/ns/user", want: "^" + regexp.QuoteMeta(hostUser) + "\n$"},
		{name: "group-add", args: []string{"--group-add", "3456", "--group-add", "nogroup"}, cmd: "id", want: `^uid=0\(root\) gid=0\(root\) groups=0\(root\),3456,65534\(nogroup\)\n$`},
		{name: "no-new-privileges=false", args: []string{"--security-opt", "no-new-privileges=false"}, cmd: "grep NoNewPrivs /proc/self/status", want: `^NoNewPrivs:\s+0\n$`},
		{name: "no-new-privileges", args: []string{"--security-opt", "no-new-privileges"}, cmd: "grep NoNewPrivs /proc/self/status", want: `^NoNewPrivs:\s+1\n$`},
		{name: "seccomp unconfined", args: []string{"--security-opt", "seccomp=unconfined"}, cmd: "grep '^Seccomp:' /proc/self/status", want: `^Seccomp:\s+0\n$`},
		{name: "seccomp default", cmd: "grep '^Seccomp:' /proc/self/status", want: `^Seccomp:\s+2\n$`},
		{name: "seccomp profile", args: []string{"--security-opt", "seccomp=" + profile}, cmd: "mkdir /tmp/x 2>&1; echo $?", want: `Operation not permitted\n1\n$`},
		{name: "systempaths unconfined", args: []string{"--security-opt", "systempaths=unconfined"}, cmd: "grep -c ' /proc/keys ' /proc/self/mountinfo || true", want: `^0\n$`},
		{name: "systempaths masked", cmd: "grep -c ' /proc/keys ' /proc/self/mountinfo || true", want: `^1\n$`},
		{name: "cpu", args: []string{"--cpu-shares", "512", "--cpuset-cpus", "0", "--cpu-period", "50000", "--cpu-quota", "25000"},
			cmd:  "cd /sys/fs/cgroup; cat cpu/cpu.shares cpuset/cpuset.cpus cpu/cpu.cfs_period_us cpu/cpu.cfs_quota_us; grep Cpus_allowed_list /proc/self/status",
			want: `^512\n0\n50000\n25000\nCpus_allowed_list:\s+0\n$`},
		{name: "cpus", args: []string{"--cpus", "0.5"}, cmd: "cat /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us", want: `^100000\n50000\n$`},
		{name: "memory", args: []string{"--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "128m", "--memory-swappiness", "10", "--oom-kill-disable"},
			cmd:  "cd /sys/fs/cgroup/memory; cat memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes memory.swappiness; grep oom_kill_disable memory.oom_control",
			want: `^67108864\n33554432\n134217728\n10\noom_kill_disable 1\n$`},
		{name: "memory swap twice", args: []string{"--memory", "64m"}, cmd: "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", want: `^134217728\n$`},
		{name: "memory swap unlimited", args: []string{"--memory", "64m", "--memory-swap", "-1"}, cmd: "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", want: `^9223372036854771712\n$`},
		{name: "pids-limit", args: []string{"--pids-limit", "50"}, cmd: "cat /sys/fs/cgroup/pids/pids.max", want: `^50\n$`},
		{name: "init", args: []string{"--init"}, cmd: `cat /proc/1/cmdline | tr '\0' ' '; echo`, want: `^/sbin/docker-init -- sh -c cat /proc/1/cmdline`},
		{name: "init reaps", args: []string{"--init"}, cmd: zombie, want: `^zombies 0\n$`},
		{name: "no init: a zombie", cmd: zombie, want: `^zombies 1\n$`},
		{name: "read-only tmpfs", args: []string{"--read-only", "--tmpfs", "/tmp"}, cmd: "touch /x 2>/dev/null; echo $?; touch /tmp/x && echo ok", want: `^1\nok\n$`},
	}
	if dev := hostBlockDevice(); dev != "" {
		cases = append(cases, rfCase{name: "blkio throttle", args: []string{"--device-read-bps", dev + ":1mb", "--device-write-iops", dev + ":100", "--device-write-bps", dev + ":2mb", "--device-read-iops", dev + ":50"},
			cmd:  "cd /sys/fs/cgroup/blkio; cat blkio.throttle.read_bps_device blkio.throttle.write_bps_device blkio.throttle.read_iops_device blkio.throttle.write_iops_device",
			want: `^\d+:\d+ 1048576\n\d+:\d+ 2097152\n\d+:\d+ 50\n\d+:\d+ 100\n$`})
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err == nil {
		cases = append(cases, rfCase{name: "cpu-rt", args: []string{"--cpu-rt-period", "100000", "--cpu-rt-runtime", "10000"},
			cmd: "cat /sys/fs/cgroup/cpu/cpu.rt_runtime_us /sys/fs/cgroup/cpu/cpu.rt_period_us", want: `^10000\n100000\n$`,
			noDocker: "Docker's daemon gives its cgroup parent no real-time budget unless started with --cpu-rt-runtime: its container fails"})
	}
	if weights, _ := filepath.Glob("/sys/fs/cgroup/blkio/*/blkio*.weight"); len(weights) > 0 {
		cases = append(cases, rfCase{name: "blkio-weight", args: []string{"--blkio-weight", "300"},
			cmd: "cat /sys/fs/cgroup/blkio/blkio.weight /sys/fs/cgroup/blkio/blkio.bfq.weight 2>/dev/null; true", want: `^300\n$`,
			noDocker: "Docker looks for the weight at the blkio root, where BFQ has none, and drops it with a warning"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append(slices.Clone(c.args), rfImage), "sh", "-c", c.cmd)
			r := s.run(nil, append([]string{"run", "--rm", "--network", "none"}, args...)...)
			if r.Code != 0 || !regexp.MustCompile(c.want).MatchString(r.Stdout) {
				t.Fatalf("cairn run %s: exit %d\n%s\nstderr: %s\nwant %s", strings.Join(c.args, " "), r.Code, r.Stdout, r.Stderr, c.want)
			}
			if docker == nil || c.noDocker != "" {
				return
			}
			out, errOut, code := rfDockerRun(t, docker, args...)
			if code != r.Code || out != r.Stdout {
				t.Errorf("run %s:\ncairn  (exit %d): %q\ndocker (exit %d): %q %s", strings.Join(c.args, " "), r.Code, r.Stdout, code, out, errOut)
			}
		})
	}
}

// What cairn cannot do on this host, or does not do, is refused by name
// with the reason (exit 125), never ignored; what Docker itself refuses,
// cairn refuses too.
func TestRunFlagsRefused(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	var limit, ownAdj string
	b, _ := os.ReadFile("/proc/self/limits")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "Max open files") && len(f) > 4 {
			limit = f[4]
		}
	}
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		ownAdj = strings.TrimSpace(string(b))
	}
	type refusal struct {
		args   []string
		want   string
		docker bool // Docker refuses it too
	}
	cases := []refusal{
		{args: []string{"--userns", "remap"}, want: "--userns remap: user namespace remapping is not supported"},
		{args: []string{"--isolation", "hyperv"}, want: "Linux only supports 'default'", docker: true},
		{args: []string{"--runtime", "crun"}, want: "--runtime crun", docker: true},
		{args: []string{"--volume-driver", "nfs"}, want: "--volume-driver nfs"},
		{args: []string{"--log-driver", "syslog"}, want: "--log-driver syslog"},
		{args: []string{"--log-opt", "bogus=1"}, want: "unknown log opt 'bogus'", docker: true},
		{args: []string{"--log-opt", "max-file=2"}, want: "max-file needs max-size"},
		{args: []string{"--sysctl", "kernel.hostname=x"}, want: "not namespaced", docker: true},
		{args: []string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, want: "network namespace of its own"},
		{args: []string{"--restart", "always", "--rm"}, want: "Conflicting options: --restart and --rm", docker: true},
		{args: []string{"--restart", "sometimes"}, want: "invalid restart policy", docker: true},
		{args: []string{"--no-healthcheck", "--health-cmd", "true"}, want: "--no-healthcheck conflicts with --health-* options", docker: true},
		{args: []string{"--mount", "type=bind,src=/nonexistent-cairn,dst=/x"}, want: "bind source path does not exist", docker: true},
		{args: []string{"--mount", "type=tmpfs,dst=/x,bind-propagation=shared"}, want: "cannot mix", docker: true},
		{args: []string{"--uts", "host", "-h", "foo"}, want: "Conflicting options: hostname and the UTS mode", docker: true},
		{args: []string{"--memory", "20m", "--memory-swap", "10m"}, want: "Minimum memoryswap limit should be larger than memory limit", docker: true},
		{args: []string{"--memory-swappiness", "101"}, want: "valid memory swappiness range is 0-100", docker: true},
		{args: []string{"--cpus", "1", "--cpu-quota", "50000"}, want: "Conflicting options: Nano CPUs and CPU Quota", docker: true},
		{args: []string{"--ipc", "container:nonexistent"}, want: "No such container", docker: true},
		{args: []string{"--ipc", "bogus"}, want: "invalid IPC mode", docker: true},
		{args: []string{"-a", "stdin", "-d"}, want: "Conflicting options: -a and -d", docker: true},
		{args: []string{"-a", "bogus"}, want: "valid streams are STDIN, STDOUT and STDERR", docker: true},
		{args: []string{"--device", "/dev/nonexistent-cairn"}, want: "/dev/nonexistent-cairn", docker: true},
		{args: []string{"--device-cgroup-rule", "c 1:9 rwx"}, want: "invalid device cgroup rule"},
		{args: []string{"--disable-content-trust=false"}, want: "--disable-content-trust: cairn does not verify Docker Content Trust"},
		{args: []string{"--kernel-memory", "10m"}, want: "--kernel-memory: kernel memory limits are deprecated"},
		{args: []string{"--link", "other"}, want: "--link: legacy container links"},
		{args: []string{"--security-opt", "bogus=1"}, want: "--security-opt", docker: true},
		{args: []string{"--ulimit", "nofile=200:100"}, want: "ulimit soft limit must be less than or equal to hard limit", docker: true},
		{args: []string{"--stop-signal", "NOPE"}, want: "invalid signal", docker: true},
	}
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err != nil || !strings.HasPrefix(string(b), "Y") {
		cases = append(cases, refusal{args: []string{"--security-opt", "apparmor=docker-default"}, want: "AppArmor is not enabled on this host"})
	}
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
		cases = append(cases, refusal{args: []string{"--security-opt", "label=type:svirt_t"}, want: "SELinux is not enabled on this host"})
	}
	if !hasCap(24) { // CAP_SYS_RESOURCE
		if n, err := strconv.ParseUint(limit, 10, 64); err == nil {
			cases = append(cases, refusal{args: []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", n+1, n+1)}, want: "CAP_SYS_RESOURCE"})
		}
		if adj, err := strconv.Atoi(ownAdj); err == nil && adj > -1000 {
			cases = append(cases, refusal{args: []string{"--oom-score-adj", strconv.Itoa(adj - 1)}, want: "CAP_SYS_RESOURCE"})
		}
	}
	if dev := hostBlockDevice(); dev != "" {
		sched, _ := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/queue/scheduler")
		if !strings.Contains(string(sched), "[bfq]") && !strings.Contains(string(sched), "[cfq]") {
			cases = append(cases, refusal{args: []string{"--blkio-weight-device", dev + ":200"}, want: "weights per device need BFQ"})
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err != nil {
		cases = append(cases, refusal{args: []string{"--cpu-rt-runtime", "1000"}, want: "real-time group scheduling"})
	}
	for _, c := range cases {
		args := append(append([]string{"run", "--rm", "--network", "none"}, c.args...), rfImage, "true")
		r := s.run(nil, args...)
		if r.Code != 125 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("cairn %s: exit %d, stderr %q; want 125 and %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.want)
		}
		// (Docker's exit code depends on its client: 125, or 1 or 127 from
		// docker 28's.)
		if docker != nil && c.docker {
			if _, errOut, code := rfDockerRun(t, docker, append(slices.Clone(c.args), rfImage, "true")...); code == 0 {
				t.Errorf("docker %s: accepted (%s), and cairn refuses it", strings.Join(c.args, " "), errOut)
			}
		}
	}
	// Their only values, or what is so anyway, are accepted.
	for _, ok := range [][]string{{"--isolation", "default"}, {"--runtime", "runc"}, {"--volume-driver", "local"}, {"--disable-content-trust"},
		{"--userns", "host"}, {"--security-opt", "label=disable"}, {"--security-opt", "apparmor=unconfined"}, {"--platform", "linux/amd64", "--pull", "never"},
		{"--sig-proxy=false"}, {"--detach-keys", "ctrl-x"}, {"-q"}} {
		s.ok(append(append([]string{"run", "--rm", "--network", "none"}, ok...), rfImage, "true")...)
	}
}

// The namespaces and volumes of another container: --ipc shareable and
// container:, --pid container:, --volumes-from.
func TestRunFlagsJoin(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("lent\n"), 0o644)
	type engine struct {
		name string
		run  func(args ...string) (string, string, int)
	}
	engines := []engine{{"cairn", func(args ...string) (string, string, int) {
		r := s.run(nil, args...)
		return r.Stdout, r.Stderr, r.Code
	}}}
	if docker != nil {
		engines = append(engines, engine{"docker", func(args ...string) (string, string, int) {
			out, errOut, err := docker.RunErr(args...)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return out, errOut, ee.ExitCode()
			}
			return out, errOut, 0
		}})
	}
	results := map[string][]string{}
	for _, e := range engines {
		must := func(args ...string) string {
			out, errOut, code := e.run(args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", e.name, strings.Join(args, " "), code, errOut)
			}
			return out
		}
		donor := strings.TrimSpace(must("run", "-d", "--network", "none", "--ipc", "shareable", rfImage, "sh", "-c", "echo shared > /dev/shm/x; exec sleep 60"))
		lender := strings.TrimSpace(must("create", "--network", "none", "-v", src+":/src", "--mount", "type=volume,dst=/vol", rfImage, "true"))
		defer e.run("rm", "-f", "-v", donor, lender)
		waitFor(t, 10*time.Second, "the donor's /dev/shm/x", func() bool {
			_, _, code := e.run("exec", donor, "test", "-e", "/dev/shm/x")
			return code == 0
		})
		var outs []string
		for _, args := range [][]string{
			{"--ipc", "container:" + donor, rfImage, "sh", "-c", "cat /dev/shm/x; readlink /proc/self/ns/ipc > /tmp/ns; cat /proc/1/cmdline | tr '\\0' ' '; echo"},
			{"--pid", "container:" + donor, rfImage, "sh", "-c", "ps -o comm > /tmp/p; sort /tmp/p"},
			{"--volumes-from", lender + ":ro", rfImage, "sh", "-c", "cat /src/f; touch /src/g 2>/dev/null || echo read-only; " + mountinfoOf("/src", "/vol") + " | cut -d' ' -f1,2"},
			{"--volumes-from", lender, rfImage, "sh", "-c", "touch /vol/x && echo written; " + mountinfoOf("/src") + " | cut -d' ' -f1,2"},
		} {
			outs = append(outs, must(append([]string{"run", "--rm", "--network", "none"}, args...)...))
		}
		// The joiner's IPC namespace is the donor's.
		donorNS := must("exec", donor, "readlink", "/proc/self/ns/ipc")
		joined := must("run", "--rm", "--network", "none", "--ipc", "container:"+donor, rfImage, "readlink", "/proc/self/ns/ipc")
		if joined != donorNS {
			t.Errorf("%s: --ipc container: is in %q, the donor in %q", e.name, joined, donorNS)
		}
		if _, errOut, code := e.run("run", "--rm", "--network", "none", "--ipc", "container:"+lender, rfImage, "true"); code == 0 {
			t.Errorf("%s: joined the IPC of a container that does not run: %s", e.name, errOut)
		}
		results[e.name] = outs
	}
	want := []string{"shared\nsh -c cat /dev/shm/x", "COMMAND\nps\nsh\nsleep\n", "lent\nread-only\n/src ro,relatime\n/vol ro,relatime\n", "written\n/src rw,relatime\n"}
	for i, out := range results["cairn"] {
		if !strings.HasPrefix(out, want[i]) {
			t.Errorf("cairn %d: %q, want %q", i, out, want[i])
		}
	}
	if d, ok := results["docker"]; ok && !reflect.DeepEqual(d, results["cairn"]) {
		t.Errorf("cairn and Docker differ:\ncairn  %q\ndocker %q", results["cairn"], d)
	}
}

// --cidfile, --cgroup-parent, --stop-timeout, --stop-signal and -a: what
// they leave, where the container's cgroups are, how stop waits.
func TestRunFlagsLifecycle(t *testing.T) {
	s := rfStore(t)
	cid := filepath.Join(t.TempDir(), "cid")
	id := strings.TrimSpace(s.ok("create", "--cidfile", cid, "--network", "none", rfImage, "true"))
	if b, err := os.ReadFile(cid); err != nil || string(b) != id {
		t.Fatalf("cidfile: %q %v, want %q", b, err, id)
	}
	s.fails(125, "Container ID file found, make sure the other container isn't running or delete "+cid, "create", "--cidfile", cid, rfImage, "true")
	// A container that is not made leaves no cidfile.
	other := filepath.Join(t.TempDir(), "cid")
	s.fails(125, "Unable to find image", "create", "--cidfile", other, "--pull", "never", "cairn-test/no-such-image:1", "true")
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cidfile of a container not made: %v", err)
	}

	parent := fmt.Sprintf("cairn-test-parent-%d", os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	out := s.ok("run", "--rm", "--network", "none", "--cgroup-parent", parent, rfImage, "grep", ":memory:", "/proc/self/cgroup")
	if !regexp.MustCompile(`^\d+:memory:/` + parent + `/[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("--cgroup-parent: %q", out)
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/memory/" + parent + "/*/"); len(dirs) > 0 {
		t.Errorf("the container's cgroup is left under its parent: %v", dirs)
	}

	// sleep as PID 1 ignores SIGTERM: stop waits --stop-timeout, not 10 s.
	id = strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--stop-timeout", "1", rfImage, "sleep", "60"))
	start := time.Now()
	s.ok("stop", id)
	if d := time.Since(start); d < time.Second || d > 6*time.Second {
		t.Errorf("stop of a --stop-timeout 1 container took %v", d)
	}
	// With --init, tini passes SIGTERM on to sleep, which ends at once.
	id = strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--init", rfImage, "sleep", "60"))
	start = time.Now()
	s.ok("stop", id)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop of an --init container took %v: tini did not pass SIGTERM on", d)
	}
	// --stop-signal is what stop sends.
	id = strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--stop-signal", "USR1", "--init", rfImage, "sh", "-c", "trap 'echo got USR1; exit 3' USR1; while :; do sleep 0.1; done"))
	time.Sleep(500 * time.Millisecond)
	s.ok("stop", "-t", "5", id)
	if code := strings.TrimSpace(s.ok("inspect", "-f", "{{.State.ExitCode}}", id)); code != "3" {
		t.Errorf("--stop-signal USR1: exit code %s, logs %q", code, s.ok("logs", id))
	}
}

// What inspect shows of the new HostConfig and Config fields is what Docker
// shows, with Docker's names, for the same flags.
func TestRunFlagsInspectMatchesDocker(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	if docker == nil {
		return
	}
	labels := writeFile(t, []byte("# labels\nfrom.file=1\nbare\n"))
	args := []string{"--network", "none", "--restart", "on-failure:3", "--ulimit", "nofile=100:200", "--tmpfs", "/t:size=1m", "--sysctl", "net.ipv4.ip_forward=1",
		"--oom-score-adj", "500", "--cpu-shares", "512", "--memory", "64m", "--memory-reservation", "32m", "--memory-swappiness", "10", "--pids-limit", "50",
		"--shm-size", "1m", "--group-add", "3456", "--ipc", "shareable", "--init", "--stop-signal", "USR1", "--stop-timeout", "3",
		"--health-cmd", "true", "--health-interval", "2s", "--health-retries", "2", "--health-timeout", "1s", "--health-start-period", "3s",
		"--label-file", labels, "--label", "l=2", "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
		"--device", "/dev/zero:/dev/xzero:r", "--device-cgroup-rule", "c 1:9 rwm", "--security-opt", "no-new-privileges", "--cgroupns", "private",
		"--cpuset-cpus", "0", "--cpu-period", "50000", "--cpu-quota", "20000", "-a", "stdout", "-i", "--oom-kill-disable", "--uts", "host", "--pid", "host",
		"--userns", "host", "--memory-swap", "256m", rfImage, "true"}
	cid := strings.TrimSpace(s.ok(append([]string{"create"}, args...)...))
	did := strings.TrimSpace(docker.Run(t, append([]string{"create"}, args...)...))
	defer docker.RunErr("rm", "-f", did)
	type inspect struct {
		HostConfig map[string]any
		Config     map[string]any
	}
	var c, d []inspect
	json.Unmarshal([]byte(s.ok("inspect", cid)), &c)
	json.Unmarshal([]byte(docker.Run(t, "inspect", did)), &d)
	if len(c) != 1 || len(d) != 1 {
		t.Fatalf("inspect: %d, %d records", len(c), len(d))
	}
	// null and empty are the same here: Docker has [] and {} where cairn
	// may have null.
	norm := func(v any) string {
		switch x := v.(type) {
		case []any:
			if len(x) == 0 {
				v = nil
			}
		case map[string]any:
			if len(x) == 0 {
				v = nil
			}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	for _, k := range []string{"RestartPolicy", "Ulimits", "Tmpfs", "Sysctls", "OomScoreAdj", "CpuShares", "Memory", "MemorySwap", "MemoryReservation",
		"MemorySwappiness", "PidsLimit", "ShmSize", "GroupAdd", "IpcMode", "Init", "LogConfig", "Devices", "DeviceCgroupRules", "SecurityOpt",
		"CgroupnsMode", "CpusetCpus", "CpusetMems", "CpuPeriod", "CpuQuota", "Runtime", "UTSMode", "PidMode", "UsernsMode", "VolumeDriver", "VolumesFrom",
		"OomKillDisable", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "CpuRealtimeRuntime", "ContainerIDFile", "Isolation",
		"ReadonlyRootfs", "AutoRemove", "Privileged"} {
		if cv, dv := norm(c[0].HostConfig[k]), norm(d[0].HostConfig[k]); cv != dv {
			t.Errorf("HostConfig.%s: cairn %s, docker %s", k, cv, dv)
		}
	}
	for _, k := range []string{"StopSignal", "StopTimeout", "Healthcheck", "Labels", "AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "StdinOnce", "Tty"} {
		if cv, dv := norm(c[0].Config[k]), norm(d[0].Config[k]); cv != dv {
			t.Errorf("Config.%s: cairn %s, docker %s", k, cv, dv)
		}
	}
}

// update sets new limits on a running container's cgroups at once, and
// records them; on a stopped one it only records them, for its next start.
// The same update in Docker gives the same cgroup values.
func TestUpdate(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	read := "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares cpuset/cpuset.cpus pids/pids.max"
	update := []string{"--memory", "128m", "--memory-swap", "256m", "--memory-reservation", "64m", "--cpus", "0.5", "--cpu-shares", "100", "--cpuset-cpus", "0", "--pids-limit", "20", "--restart", "on-failure:2"}
	want := "134217728\n268435456\n67108864\n50000\n100\n0\n20\n"

	id := strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--memory", "64m", rfImage, "sleep", "60"))
	if out := s.ok(append(append([]string{"update"}, update...), id)...); strings.TrimSpace(out) != id {
		t.Fatalf("update printed %q", out)
	}
	if out := s.ok("exec", id, "sh", "-c", read); out != want {
		t.Errorf("after update, in the container:\n%s\nwant\n%s", out, want)
	}
	rec := s.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", id)
	if rec != "134217728 268435456 67108864 500000000 100 0 20 on-failure:2\n" {
		t.Errorf("recorded: %q", rec)
	}
	s.ok("update", "--pids-limit", "-1", id)
	if out := s.ok("exec", id, "cat", "/sys/fs/cgroup/pids/pids.max"); out != "max\n" {
		t.Errorf("--pids-limit -1: %q", out)
	}
	if weights, _ := filepath.Glob("/sys/fs/cgroup/blkio/cairn/" + id + "/blkio*.weight"); len(weights) > 0 {
		s.ok("update", "--blkio-weight", "300", id)
		if b, _ := os.ReadFile(weights[0]); strings.TrimSpace(string(b)) != "300" {
			t.Errorf("--blkio-weight 300: %s has %q", weights[0], b)
		}
	}
	// Refused, and nothing changes.
	s.fails(1, "Memory limit should be smaller than already set memoryswap limit", "update", "--memory", "512m", id)
	s.fails(1, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set", "update", "--cpu-quota", "10000", id)
	s.fails(125, "you must provide one or more flags", "update", id)
	if out := s.ok("exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); out != "134217728\n" {
		t.Errorf("a refused update changed the limit: %q", out)
	}
	s.ok("rm", "-f", id)

	// A stopped container: recorded, applied at its next start.
	id = strings.TrimSpace(s.ok("create", "--network", "none", rfImage, "sleep", "60"))
	s.ok("update", "--memory", "100m", "--cpu-shares", "300", id)
	s.ok("start", id)
	if out := s.ok("exec", id, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares"); out != "104857600\n300\n" {
		t.Errorf("a stopped container's update at its start: %q", out)
	}
	s.ok("rm", "-f", id)
	rm := strings.TrimSpace(s.ok("create", "--rm", "--network", "none", rfImage, "true"))
	s.fails(1, "Restart policy cannot be updated because AutoRemove is enabled for the container", "update", "--restart", "always", rm)

	if docker == nil {
		return
	}
	did := strings.TrimSpace(docker.Run(t, "run", "-d", "--network", "none", "--memory", "64m", rfImage, "sleep", "60"))
	defer docker.RunErr("rm", "-f", did)
	docker.Run(t, append(append([]string{"update"}, update...), did)...)
	if out := docker.Run(t, "exec", did, "sh", "-c", read); out != want {
		t.Errorf("docker, after the same update:\n%s\ncairn's\n%s", out, want)
	}
}

// A log rotates as Docker's json-file does (max-size, max-file) and `logs`
// reads across its files, oldest first, following into the new ones; the
// none driver keeps nothing, and `logs` says so as Docker does.
func TestLogsRotated(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	script := `i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done`
	// consecutive checks that the lines are "line N".."line 99", none
	// missing, and returns how many.
	consecutive := func(who, out string) int {
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		first, err := strconv.Atoi(strings.TrimPrefix(lines[0], "line "))
		if err != nil || first == 0 {
			t.Errorf("%s: the oldest lines should be gone: %q", who, lines[0])
			return 0
		}
		for i, l := range lines {
			if l != fmt.Sprintf("line %d", first+i) {
				t.Fatalf("%s: line %d is %q:\n%s", who, i, l, out)
			}
		}
		if first+len(lines) != 100 {
			t.Errorf("%s: the last line is %q", who, lines[len(lines)-1])
		}
		return len(lines)
	}
	id := strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", rfImage, "sh", "-c", script))
	s.ok("wait", id)
	path := strings.TrimSpace(s.ok("inspect", "-f", "{{.LogPath}}", id))
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Errorf("max-file 3: %v", files)
	}
	n := consecutive("cairn", s.ok("logs", id))
	if out := s.ok("logs", "--tail", "2", id); out != "line 98\nline 99\n" {
		t.Errorf("--tail 2: %q", out)
	}
	if docker != nil {
		did := strings.TrimSpace(docker.Run(t, "run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", rfImage, "sh", "-c", script))
		defer docker.RunErr("rm", "-f", did)
		docker.Run(t, "wait", did)
		dpath := strings.TrimSpace(docker.Run(t, "inspect", "-f", "{{.LogPath}}", did))
		dfiles, _ := filepath.Glob(dpath + "*")
		if len(dfiles) != len(files) {
			t.Errorf("docker keeps %d files, cairn %d", len(dfiles), len(files))
		}
		// Entries differ in length by their time stamps: a line or two may
		// fall on the other side of a rotation.
		if dn := consecutive("docker", docker.Run(t, "logs", did)); dn < n-3 || dn > n+3 {
			t.Errorf("docker logs %d lines, cairn %d", dn, n)
		}
	}

	// Followed while it rotates: every line, once, in order.
	id = strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=5", rfImage,
		"sh", "-c", `sleep 1; i=0; while [ $i -lt 150 ]; do echo line $i; i=$((i+1)); sleep 0.01; done`))
	follow := s.start("logs", "-f", id)
	if code := follow.wait(t, time.Minute); code != 0 {
		t.Fatalf("logs -f: exit %d: %s", code, follow.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(follow.stdout.String(), "\n"), "\n")
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("logs -f across rotations: line %d is %q (of %d)", i, l, len(lines))
		}
	}
	if len(lines) != 150 {
		t.Errorf("logs -f: %d lines", len(lines))
	}
	if files, _ := filepath.Glob(s.root + "/containers/" + id + "/*-json.log.*"); len(files) == 0 {
		t.Errorf("the followed log did not rotate")
	}
}

func TestLogsDrivers(t *testing.T) {
	s := rfStore(t)
	docker := rfDocker(t, s)
	id := strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--log-driver", "none", rfImage, "echo", "hi"))
	s.ok("wait", id)
	s.fails(1, "configured logging driver does not support reading", "logs", id)
	if files, _ := filepath.Glob(s.root + "/containers/" + id + "/*-json.log*"); len(files) > 0 {
		t.Errorf("--log-driver none wrote %v", files)
	}
	// A foreground run with none still shows its output.
	if out := s.ok("run", "--network", "none", "--log-driver", "none", rfImage, "echo", "shown"); out != "shown\n" {
		t.Errorf("foreground with none: %q", out)
	}
	if docker != nil {
		did := strings.TrimSpace(docker.Run(t, "run", "-d", "--network", "none", "--log-driver", "none", rfImage, "echo", "hi"))
		defer docker.RunErr("rm", "-f", did)
		docker.Run(t, "wait", did)
		if _, errOut, err := docker.RunErr("logs", did); err == nil || !strings.Contains(errOut, "configured logging driver does not support reading") {
			t.Errorf("docker logs of none: %v %s", err, errOut)
		}
	}
	// local: a json-file log rotated at 20m, 5 files, as Docker's defaults.
	id = strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--log-driver", "local", rfImage, "echo", "local"))
	s.ok("wait", id)
	if out := s.ok("logs", id); out != "local\n" {
		t.Errorf("local: %q", out)
	}
	var lc struct {
		Type   string
		Config map[string]string
	}
	if err := json.Unmarshal([]byte(s.ok("inspect", "-f", "{{json .HostConfig.LogConfig}}", id)), &lc); err != nil || lc.Type != "local" || lc.Config == nil || len(lc.Config) != 0 {
		t.Errorf("local's LogConfig: %+v %v", lc, err)
	}
}
