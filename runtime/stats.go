package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
)

// Stats are what a container uses, read as `docker stats` reads them: from
// its cgroups (v1 or v2, through libcontainer's cgroup manager) and from
// its network interfaces. A container that does not run uses nothing.
//
// CPU and SystemCPU are counters: a percentage is between two samples
// (CPUPercent).
type Stats struct {
	Read    time.Time // when the sample was taken
	Running bool      // false: the container runs no process, and every figure is 0
	// CPU is the CPU time of the container's processes, SystemCPU the
	// host's CPU time, busy or idle, of every CPU (/proc/stat), both in
	// nanoseconds; OnlineCPUs is the number of the host's CPUs.
	CPU, SystemCPU uint64
	OnlineCPUs     int
	// Memory is what the container uses but the inactive page cache (the
	// cgroup's usage less its inactive_file, as Docker counts it);
	// MemoryLimit its limit, or the host's memory when it has none.
	Memory, MemoryLimit uint64
	// NetRx and NetTx are the bytes received and sent on its interfaces
	// (its loopback excepted); none in the host's network or another
	// container's.
	NetRx, NetTx uint64
	// BlockRead and BlockWrite are the bytes its processes read from and
	// wrote to block devices.
	BlockRead, BlockWrite uint64
	PIDs                  uint64 // the number of its processes (and threads)
}

// CPUPercent is the share of the host's CPUs container used between two
// of its samples, as `docker stats` shows it: 100 is one CPU busy all the
// time. It is 0 when nothing can be said (a first sample, a stopped
// container).
func CPUPercent(prev, cur *Stats) float64 {
	if prev == nil || cur == nil || !cur.Running {
		return 0
	}
	cpu := float64(cur.CPU) - float64(prev.CPU)
	system := float64(cur.SystemCPU) - float64(prev.SystemCPU)
	if cpu <= 0 || system <= 0 {
		return 0
	}
	return cpu / system * float64(cur.OnlineCPUs) * 100
}

// MemoryPercent is Memory as a share of MemoryLimit, in percent.
func (st *Stats) MemoryPercent() float64 {
	if st.MemoryLimit == 0 {
		return 0
	}
	return float64(st.Memory) / float64(st.MemoryLimit) * 100
}

// Stats samples what container ref uses now.
func (s *Store) Stats(ctx context.Context, ref string) (*Stats, error) {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	st := &Stats{Read: time.Now()}
	if c.State.Status != Running && c.State.Status != Paused {
		return st, nil
	}
	lc, err := libcontainer.Load(s.state, c.ID)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return st, nil // it has just stopped
	} else if err != nil {
		return nil, fmt.Errorf("container %s: %w", ShortID(c.ID), err)
	}
	ls, err := lc.Stats()
	if err != nil {
		if !s.alive(c.ID) {
			return st, nil
		}
		return nil, fmt.Errorf("stats of container %s: %w", ShortID(c.ID), err)
	}
	st.Running = true
	if st.SystemCPU, st.OnlineCPUs, err = systemCPU(); err != nil {
		return nil, err
	}
	cg := ls.CgroupStats
	if cg != nil {
		st.CPU = cg.CpuStats.CpuUsage.TotalUsage
		if st.OnlineCPUs == 0 {
			st.OnlineCPUs = len(cg.CpuStats.CpuUsage.PercpuUsage)
		}
		st.Memory = memoryUsed(cg.MemoryStats)
		st.MemoryLimit = cg.MemoryStats.Usage.Limit
		if total := HostMemory(); total > 0 && (st.MemoryLimit == 0 || st.MemoryLimit > total) {
			st.MemoryLimit = total
		}
		for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
			switch strings.ToLower(e.Op) {
			case "read":
				st.BlockRead += e.Value
			case "write":
				st.BlockWrite += e.Value
			}
		}
		st.PIDs = cg.PidsStats.Current
	}
	if m := c.Host.NetworkMode; m != ModeHost && !strings.HasPrefix(m, ModeContainer) && c.State.Pid > 0 {
		st.NetRx, st.NetTx = netDev(c.State.Pid)
	}
	return st, nil
}

// memoryUsed is Docker's "usage without cache": the usage less the
// inactive page cache (total_inactive_file on cgroup v1, inactive_file on
// v2), which the kernel reclaims first.
func memoryUsed(m cgroups.MemoryStats) uint64 {
	usage := m.Usage.Usage
	if v, ok := m.Stats["total_inactive_file"]; ok && v < usage {
		return usage - v
	}
	if v, ok := m.Stats["inactive_file"]; ok && v < usage {
		return usage - v
	}
	return usage
}

// systemCPU is the host's CPU time from /proc/stat — user, nice, system,
// idle, iowait, irq and softirq of every CPU, in nanoseconds, as Docker
// counts it — and the number of its CPUs.
func systemCPU() (uint64, int, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	const clockTicks = 100 // USER_HZ: what /proc/stat counts in, on every Linux
	var total uint64
	cpus := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		if len(f) < 8 {
			return 0, 0, fmt.Errorf("/proc/stat: %d fields on the cpu line", len(f))
		}
		for _, v := range f[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			total += n
		}
	}
	return total * uint64(time.Second) / clockTicks, cpus, nil
}

// HostMemory is the host's memory in bytes (MemTotal), 0 if unknown.
func HostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024 // in kB
			}
		}
	}
	return 0
}

// netDev sums the bytes received and sent on the interfaces of the network
// namespace of process pid, but its loopback.
func netDev(pid int) (rx, tx uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	return parseNetDev(b)
}

// parseNetDev sums the bytes received and sent of a /proc/net/dev, but
// loopback's.
func parseNetDev(b []byte) (rx, tx uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue // the header lines
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx, tx = rx+r, tx+t
		}
	}
	return rx, tx
}

// CgroupVersion is the version of the cgroup hierarchy containers are put
// in: "2" on a unified hierarchy, "1" otherwise (a hybrid one included).
func CgroupVersion() string {
	if cgroups.IsCgroup2UnifiedMode() {
		return "2"
	}
	return "1"
}

// CgroupDriver is how containers' cgroups are made: by writing the cgroup
// filesystem, never through systemd.
const CgroupDriver = "cgroupfs"
