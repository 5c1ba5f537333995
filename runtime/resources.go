package runtime

// A container's cgroup resources: from its HostConfig to the spec's, checked
// against what this host's cgroups can do.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupParent is the cgroup under which the container's is made.
func cgroupParent(h *HostConfig) string {
	if p := strings.Trim(h.CgroupParent, "/"); p != "" {
		return "/" + path.Clean(p)
	}
	return "/cairn"
}

// containerCgroupsPath is where container c's cgroups are, under each
// hierarchy: CgroupParent/ID (a relative --cgroup-parent is taken from the
// root, not from cairn's own cgroup).
func containerCgroupsPath(c *Container) string { return path.Join(cgroupParent(&c.Host), c.ID) }

// resources are the runtime-spec cgroup limits of h (device rules aside).
func resources(h *HostConfig) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	ptr := func(v int64) *int64 { return &v }
	mem := &specs.LinuxMemory{}
	if h.Memory > 0 {
		mem.Limit = ptr(h.Memory)
	}
	if h.MemoryReservation > 0 {
		mem.Reservation = ptr(h.MemoryReservation)
	}
	if h.MemorySwap != 0 {
		mem.Swap = ptr(h.MemorySwap)
	}
	if h.MemorySwappiness != nil && *h.MemorySwappiness >= 0 {
		v := uint64(*h.MemorySwappiness)
		mem.Swappiness = &v
	}
	if h.OomKillDisable {
		t := true
		mem.DisableOOMKiller = &t
	}
	if *mem != (specs.LinuxMemory{}) {
		r.Memory = mem
	}
	cpu := &specs.LinuxCPU{Cpus: h.CpusetCpus, Mems: h.CpusetMems}
	if h.CpuShares > 0 {
		v := uint64(h.CpuShares)
		cpu.Shares = &v
	}
	switch {
	case h.NanoCPUs > 0:
		period := uint64(100000)
		cpu.Period, cpu.Quota = &period, ptr(h.NanoCPUs*int64(period)/1e9)
	default:
		if h.CpuPeriod > 0 {
			v := uint64(h.CpuPeriod)
			cpu.Period = &v
		}
		if h.CpuQuota != 0 {
			cpu.Quota = ptr(h.CpuQuota)
		}
	}
	if h.CpuRealtimePeriod > 0 {
		v := uint64(h.CpuRealtimePeriod)
		cpu.RealtimePeriod = &v
	}
	if h.CpuRealtimeRuntime > 0 {
		cpu.RealtimeRuntime = ptr(h.CpuRealtimeRuntime)
	}
	if cpu.Shares != nil || cpu.Period != nil || cpu.Quota != nil || cpu.Cpus != "" || cpu.Mems != "" || cpu.RealtimePeriod != nil || cpu.RealtimeRuntime != nil {
		r.CPU = cpu
	}
	if h.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(h.PidsLimit)}
	}
	bio := &specs.LinuxBlockIO{}
	if h.BlkioWeight > 0 {
		w := h.BlkioWeight
		bio.Weight = &w
	}
	for _, d := range h.BlkioWeightDevice {
		major, minor, err := blockDevice(d.Path, "--blkio-weight-device")
		if err != nil {
			return nil, err
		}
		w := d.Weight
		bio.WeightDevice = append(bio.WeightDevice, specs.LinuxWeightDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Weight: &w})
	}
	for _, t := range []struct {
		name string
		in   []ThrottleDevice
		out  *[]specs.LinuxThrottleDevice
	}{
		{"--device-read-bps", h.BlkioDeviceReadBps, &bio.ThrottleReadBpsDevice},
		{"--device-write-bps", h.BlkioDeviceWriteBps, &bio.ThrottleWriteBpsDevice},
		{"--device-read-iops", h.BlkioDeviceReadIOps, &bio.ThrottleReadIOPSDevice},
		{"--device-write-iops", h.BlkioDeviceWriteIOps, &bio.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			major, minor, err := blockDevice(d.Path, t.name)
			if err != nil {
				return nil, err
			}
			*t.out = append(*t.out, specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: d.Rate})
		}
	}
	if bio.Weight != nil || len(bio.WeightDevice)+len(bio.ThrottleReadBpsDevice)+len(bio.ThrottleWriteBpsDevice)+len(bio.ThrottleReadIOPSDevice)+len(bio.ThrottleWriteIOPSDevice) > 0 {
		r.BlockIO = bio
	}
	return r, nil
}

// blockDevice is the major and minor number of the block device at p.
func blockDevice(p, flag string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, 0, fmt.Errorf("%w: %s %s: %w", ErrInvalid, flag, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("%w: %s %s: not a block device", ErrInvalid, flag, p)
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}

// blockScheduler is the I/O scheduler a block device (or the disk of a
// partition) uses, as /sys says it ("mq-deadline"), or "" if it cannot tell.
func blockScheduler(major, minor int64) string {
	dir := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	for _, p := range []string{dir + "/queue/scheduler", dir + "/../queue/scheduler"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.IndexByte(s, '['); i >= 0 {
			if j := strings.IndexByte(s[i:], ']'); j > 0 {
				return s[i+1 : i+j]
			}
		}
		return strings.TrimSpace(s)
	}
	return ""
}

// cgroupFeatures are what this host's cgroups can limit.
type cgroupFeatures struct {
	v2                                            bool
	swap, swappiness, oomControl                  bool
	cfs, shares, rt, cpuset                       bool
	blkioWeight, blkioWeightDevice, blkioThrottle bool
	pids                                          bool
}

// features probes the cgroups once: on cgroup v1, the files of each
// controller's root; on v2, the controllers of the root.
var features = sync.OnceValue(func() cgroupFeatures {
	var f cgroupFeatures
	if cgroups.IsCgroup2UnifiedMode() {
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		ctl := strings.Fields(string(b))
		has := func(c string) bool { return slices.Contains(ctl, c) }
		f.v2 = true
		f.swap = has("memory")
		f.cfs, f.shares, f.cpuset, f.pids = has("cpu"), has("cpu"), has("cpuset"), has("pids")
		f.blkioWeight, f.blkioWeightDevice, f.blkioThrottle = has("io"), has("io"), has("io")
		return f
	}
	// Some files are only in the cgroups below the root (BFQ's weights):
	// they are looked for in cairn's own, /cairn, too.
	exists := func(subsystem string, files ...string) bool {
		root, err := cgroups.FindCgroupMountpoint("", subsystem)
		if err != nil {
			return false
		}
		own := filepath.Join(root, strings.TrimPrefix(cgroupParent(&HostConfig{}), "/"))
		os.MkdirAll(own, 0o755)
		for _, dir := range []string{root, own} {
			for _, name := range files {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					return true
				}
			}
		}
		return false
	}
	f.swap = exists("memory", "memory.memsw.limit_in_bytes")
	f.swappiness = exists("memory", "memory.swappiness")
	f.oomControl = exists("memory", "memory.oom_control")
	f.cfs = exists("cpu", "cpu.cfs_quota_us")
	f.shares = exists("cpu", "cpu.shares")
	f.rt = exists("cpu", "cpu.rt_runtime_us")
	f.cpuset = exists("cpuset", "cpuset.cpus")
	f.blkioWeight = exists("blkio", "blkio.weight", "blkio.bfq.weight")
	f.blkioWeightDevice = exists("blkio", "blkio.weight_device", "blkio.bfq.weight_device")
	f.blkioThrottle = exists("blkio", "blkio.throttle.read_bps_device")
	f.pids = exists("pids", "pids.max")
	return f
})

// checkResources checks h's limits as Docker's daemon does, and refuses,
// saying why, what this host's cgroups cannot do (where Docker warns and
// drops the limit).
func checkResources(h *HostConfig) error {
	f := features()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case h.Memory < 0, h.Memory > 0 && h.Memory < 6<<20:
		return bad("minimum memory limit allowed is 6MB")
	case h.MemorySwap > 0 && h.Memory == 0:
		return bad("You should always set the Memory limit when using Memoryswap limit, see usage")
	case h.MemorySwap > 0 && h.MemorySwap < h.Memory:
		return bad("Minimum memoryswap limit should be larger than memory limit, see usage")
	case h.MemorySwap < -1:
		return bad("invalid memory swap limit %d: -1 (unlimited), or memory plus swap", h.MemorySwap)
	case h.MemoryReservation < 0, h.MemoryReservation > 0 && h.MemoryReservation < 6<<20:
		return bad("Minimum memory reservation allowed is 6MB")
	case h.Memory > 0 && h.MemoryReservation > h.Memory:
		return bad("Minimum memory limit can not be less than memory reservation limit, see usage")
	case h.MemorySwappiness != nil && (*h.MemorySwappiness < -1 || *h.MemorySwappiness > 100):
		return bad("Invalid value: %d, valid memory swappiness range is 0-100", *h.MemorySwappiness)
	case h.NanoCPUs < 0:
		return bad("range of CPUs is from 0.01 to the number of CPUs available")
	case h.NanoCPUs > 0 && h.CpuPeriod > 0:
		return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case h.NanoCPUs > 0 && h.CpuQuota > 0:
		return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case h.CpuShares < 0:
		return bad("invalid CPU shares %d: a relative weight, 2 to 262144", h.CpuShares)
	case h.CpuPeriod != 0 && (h.CpuPeriod < 1000 || h.CpuPeriod > 1000000):
		return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case h.CpuQuota > 0 && h.CpuQuota < 1000:
		return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case h.CpuRealtimePeriod < 0 || h.CpuRealtimeRuntime < 0:
		return bad("invalid real-time period or runtime: they are microseconds, not negative")
	case h.CpuRealtimePeriod > 0 && h.CpuRealtimeRuntime > h.CpuRealtimePeriod:
		return bad("cpu real-time runtime cannot be higher than cpu real-time period")
	case h.BlkioWeight != 0 && (h.BlkioWeight < 10 || h.BlkioWeight > 1000):
		return bad("Range of blkio weight is from 10 to 1000")
	}
	for _, d := range h.BlkioWeightDevice {
		if d.Weight < 10 || d.Weight > 1000 {
			return bad("invalid weight for device %s: the range is from 10 to 1000", d.Path)
		}
		major, minor, err := blockDevice(d.Path, "--blkio-weight-device")
		if err != nil {
			return err
		}
		if sched := blockScheduler(major, minor); sched != "" && sched != "bfq" && sched != "cfq" {
			return bad("--blkio-weight-device %s: its I/O scheduler is %s: weights per device need BFQ (echo bfq > /sys/dev/block/%d:%d/queue/scheduler)", d.Path, sched, major, minor)
		}
	}
	for _, t := range [][]ThrottleDevice{h.BlkioDeviceReadBps, h.BlkioDeviceWriteBps, h.BlkioDeviceReadIOps, h.BlkioDeviceWriteIOps} {
		for _, d := range t {
			if _, _, err := blockDevice(d.Path, "--device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops"); err != nil {
				return err
			}
		}
	}
	// What this host cannot do.
	switch {
	case h.MemorySwap != 0 && !f.swap:
		return bad("--memory-swap: the kernel does not account swap (no memory.memsw.limit_in_bytes: boot it with swapaccount=1)")
	case h.MemorySwappiness != nil && *h.MemorySwappiness >= 0 && !f.swappiness:
		return bad("--memory-swappiness: the cgroups of this host have no memory.swappiness (cgroup v2 has none)")
	case h.OomKillDisable && !f.oomControl:
		return bad("--oom-kill-disable: the cgroups of this host cannot disable the OOM killer (no memory.oom_control; cgroup v2 cannot)")
	case (h.CpuPeriod != 0 || h.CpuQuota != 0 || h.NanoCPUs != 0) && !f.cfs:
		return bad("--cpus, --cpu-period, --cpu-quota: the kernel has no CFS bandwidth control (cpu.cfs_quota_us)")
	case h.CpuShares != 0 && !f.shares:
		return bad("--cpu-shares: the kernel has no CPU shares (cpu.shares)")
	case (h.CpuRealtimePeriod != 0 || h.CpuRealtimeRuntime != 0) && !f.rt:
		return bad("--cpu-rt-period, --cpu-rt-runtime: the kernel has no real-time group scheduling (no cpu.rt_runtime_us: CONFIG_RT_GROUP_SCHED is off, or cgroup v2)")
	case (h.CpusetCpus != "" || h.CpusetMems != "") && !f.cpuset:
		return bad("--cpuset-cpus, --cpuset-mems: the cpuset cgroup is not mounted")
	case h.BlkioWeight != 0 && !f.blkioWeight:
		return bad("--blkio-weight: the kernel's blkio cgroup has no weight (neither blkio.weight nor blkio.bfq.weight: no CFQ or BFQ group scheduling)")
	case len(h.BlkioWeightDevice) > 0 && !f.blkioWeightDevice:
		return bad("--blkio-weight-device: the kernel's blkio cgroup has no weight per device (neither blkio.weight_device nor blkio.bfq.weight_device: no CFQ or BFQ group scheduling)")
	case len(h.BlkioDeviceReadBps)+len(h.BlkioDeviceWriteBps)+len(h.BlkioDeviceReadIOps)+len(h.BlkioDeviceWriteIOps) > 0 && !f.blkioThrottle:
		return bad("--device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops: the kernel has no block IO throttling (blkio.throttle.*)")
	}
	if h.CpusetCpus != "" {
		if err := checkCPUSet(h.CpusetCpus, "/sys/devices/system/cpu/online", "CPUs"); err != nil {
			return err
		}
	}
	if h.CpusetMems != "" {
		if err := checkCPUSet(h.CpusetMems, "/sys/devices/system/node/online", "memory nodes"); err != nil {
			return err
		}
	}
	return nil
}

// checkCPUSet checks a list of CPUs or memory nodes ("0-2,4") against those
// the host has (in the file online; memory node 0 without it).
func checkCPUSet(list, online, what string) error {
	want, err := parseCPUSet(list)
	if err != nil {
		return fmt.Errorf("%w: invalid value %s for cpuset %s", ErrInvalid, list, what)
	}
	b, err := os.ReadFile(online)
	avail := strings.TrimSpace(string(b))
	if err != nil {
		avail = "0"
	}
	have, err := parseCPUSet(avail)
	if err != nil {
		return err
	}
	for n := range want {
		if !have[n] {
			return fmt.Errorf("%w: Requested %s are not available - requested %s, available: %s", ErrInvalid, what, list, avail)
		}
	}
	return nil
}

// parseCPUSet parses the kernel's list format: "0-3,5".
func parseCPUSet(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid cpuset %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpuset %q", s)
			}
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}

// ensureRealtimeBudget gives the cgroups from the cpu controller's root
// down to parent the real-time budget a container that asks runtime µs
// every period µs needs under parent (what Docker's daemon does with its
// --cpu-rt-runtime): each level gets what its children already have plus
// what the level below it needs, unless it has that already. The budget
// stays, as Docker's: the host's own (the root's cpu.rt_runtime_us) bounds
// it.
func ensureRealtimeBudget(parent string, period, runtime int64) error {
	root, err := cgroups.FindCgroupMountpoint("", "cpu")
	if err != nil {
		return fmt.Errorf("%w: --cpu-rt-runtime: %w", ErrInvalid, err)
	}
	if period <= 0 {
		period = 1000000 // the kernel's default
	}
	var levels []string
	dir := root
	for _, p := range strings.Split(strings.Trim(parent, "/"), "/") {
		dir = filepath.Join(dir, p)
		levels = append(levels, dir)
	}
	read := func(dir, name string) int64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	// scaled is runtime µs every period µs as µs every p µs, rounded up.
	scaled := func(runtime, period, p int64) int64 { return (runtime*p + period - 1) / period }
	for _, l := range levels {
		if err := os.MkdirAll(l, 0o755); err != nil {
			return fmt.Errorf("--cpu-rt-runtime: %w", err)
		}
	}
	// What each level needs, bottom up: its other children's, and the level
	// below's need (at the bottom, the container's).
	need := make([]int64, len(levels))
	childNeed, childPeriod, child := runtime, period, ""
	for i := len(levels) - 1; i >= 0; i-- {
		p := read(levels[i], "cpu.rt_period_us")
		if p <= 0 {
			p = 1000000
		}
		sum := scaled(childNeed, childPeriod, p)
		entries, _ := os.ReadDir(levels[i])
		for _, e := range entries {
			d := filepath.Join(levels[i], e.Name())
			if !e.IsDir() || d == child {
				continue
			}
			if r := read(d, "cpu.rt_runtime_us"); r > 0 {
				sum += scaled(r, max(read(d, "cpu.rt_period_us"), 1), p)
			}
		}
		need[i] = max(sum, read(levels[i], "cpu.rt_runtime_us"))
		childNeed, childPeriod, child = need[i], p, levels[i]
	}
	for i, l := range levels {
		if need[i] <= read(l, "cpu.rt_runtime_us") {
			continue
		}
		if err := os.WriteFile(filepath.Join(l, "cpu.rt_runtime_us"), []byte(strconv.FormatInt(need[i], 10)), 0o644); err != nil {
			return fmt.Errorf("%w: --cpu-rt-runtime %d: the cgroup %s cannot have a real-time budget of %d µs (the host's is %d µs every %d µs, in %s): %w",
				ErrInvalid, runtime, strings.TrimPrefix(l, root), need[i], read(root, "cpu.rt_runtime_us"), read(root, "cpu.rt_period_us"), root, err)
		}
	}
	return nil
}
