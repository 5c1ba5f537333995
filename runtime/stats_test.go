package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
)

func TestCPUPercent(t *testing.T) {
	prev := &Stats{Running: true, CPU: 1_000_000_000, SystemCPU: 100_000_000_000, OnlineCPUs: 4}
	cur := &Stats{Running: true, CPU: 1_500_000_000, SystemCPU: 102_000_000_000, OnlineCPUs: 4}
	// Half a CPU-second over two seconds of four CPUs' time: 0.5/2*4 = 100%.
	if got := CPUPercent(prev, cur); got != 100 {
		t.Errorf("CPUPercent = %v, want 100", got)
	}
	for _, c := range []struct {
		prev, cur *Stats
	}{{nil, cur}, {cur, prev}, {prev, &Stats{}}, {prev, prev}} {
		if got := CPUPercent(c.prev, c.cur); got != 0 {
			t.Errorf("CPUPercent(%+v, %+v) = %v, want 0", c.prev, c.cur, got)
		}
	}
	if got := (&Stats{Memory: 16 << 20, MemoryLimit: 64 << 20}).MemoryPercent(); got != 25 {
		t.Errorf("MemoryPercent = %v", got)
	}
	if got := (&Stats{Memory: 1}).MemoryPercent(); got != 0 {
		t.Errorf("MemoryPercent without a limit = %v", got)
	}
}

// Docker's memory usage: the inactive page cache does not count.
func TestMemoryUsed(t *testing.T) {
	m := func(usage uint64, stats map[string]uint64) cgroups.MemoryStats {
		return cgroups.MemoryStats{Usage: cgroups.MemoryData{Usage: usage}, Stats: stats}
	}
	for _, c := range []struct {
		m    cgroups.MemoryStats
		want uint64
	}{
		{m(1000, map[string]uint64{"total_inactive_file": 300, "inactive_file": 100}), 700}, // v1
		{m(1000, map[string]uint64{"inactive_file": 100}), 900},                             // v2
		{m(1000, map[string]uint64{"total_inactive_file": 3000}), 1000},
		{m(1000, nil), 1000},
	} {
		if got := memoryUsed(c.m); got != c.want {
			t.Errorf("memoryUsed(%+v) = %d, want %d", c.m, got, c.want)
		}
	}
}

func TestSystemCPU(t *testing.T) {
	total, cpus, err := systemCPU()
	if err != nil || total == 0 || cpus < 1 {
		t.Fatalf("systemCPU = %d, %d, %v", total, cpus, err)
	}
	if HostMemory() == 0 {
		t.Fatal("HostMemory is 0")
	}
}

// Top keeps the rows of the container's pids, and the thread rows (ps -m)
// under them, the command whole in the last column.
func TestParsePS(t *testing.T) {
	out := `  PID TTY      STAT   TIME COMMAND
    1 ?        Ss     0:01 /sbin/init splash
  100 ?        S      0:00 sleep 1000
    - -        S      0:00 -
  200 pts/0    R+     0:00 sh -c while :; do :; done
    - -        R+     0:00 -
`
	p, err := parsePS([]byte(out), []int{100})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Titles, "|") != "PID|TTY|STAT|TIME|COMMAND" || len(p.Rows) != 2 ||
		strings.Join(p.Rows[0], "|") != "100|?|S|0:00|sleep 1000" || p.Rows[1][0] != "-" {
		t.Fatalf("parsePS: %+v", p)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot sh\n"), []int{1}); err == nil {
		t.Fatal("ps output without a PID column parsed")
	}
	if got := pidsArg([]int{1, 22, 333}); got != "-q1,22,333" {
		t.Fatalf("pidsArg: %q", got)
	}
}

func TestValidatePSArgs(t *testing.T) {
	for _, ok := range []string{"-ef", "aux", "-o pid,comm", "-o pid=PID"} {
		if err := validatePSArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if err := validatePSArgs("-o ppid=PID"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a renamed PID column: %v", err)
	}
}

func TestParseNetDev(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      700       8    0    0    0     0       0          0
  eth1:     500       2    0    0    0     0          0         0      300       1    0    0    0     0       0          0
`
	if rx, tx := parseNetDev([]byte(dev)); rx != 2000 || tx != 1000 {
		t.Fatalf("parseNetDev = %d, %d; want 2000, 1000 (lo left out)", rx, tx)
	}
	if rx, tx := netDev(-1); rx != 0 || tx != 0 {
		t.Fatalf("a process that does not exist: %d %d", rx, tx)
	}
}
