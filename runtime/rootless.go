package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moby/sys/userns"
	"github.com/opencontainers/cgroups"
)

// ErrRootless is what a rootless container cannot have on this host; the
// message says what and why.
var ErrRootless = errors.New("rootless")

// The rootless cgroups: a container run in an unprivileged user's namespace
// (package rootless) gets no cgroup of its own on cgroup v1 or a hybrid
// host, which delegate nothing to a user: libcontainer joins none it cannot
// write. So a rootless container there has no limits and no freezer; cairn
// refuses the limits, as it refuses any limit the host cannot enforce, and
// commits it without pausing, saying so. On a cgroup v2 host the limits
// go to libcontainer, which makes the cgroup where the user's subtree is
// delegated (systemd's user@.service) and fails, saying so, where it is
// not; no host here has cgroup v2, so that path is untested.

// cgroupsDelegated reports whether this process may have cgroups of its
// own: it is root on the host, or the host is cgroup v2 (whose delegation
// libcontainer finds, or fails on, when it makes the cgroup).
func cgroupsDelegated() bool { return !userns.RunningInUserNS() || cgroups.IsCgroup2UnifiedMode() }

// CanFreeze reports whether containers of this store can be paused.
func (s *Store) CanFreeze() bool { return cgroupsDelegated() }

// errNoFreezer says why container id cannot be paused here.
func errNoFreezer(id string) error {
	return fmt.Errorf("%w: cannot pause container %s: a rootless container has no freezer cgroup on cgroup v1 (pause needs cgroup v2 with delegation)", ErrRootless, ShortID(id))
}

// checkRootlessLimits refuses h's limits where the user's cgroups are not
// delegated, naming the flags.
func checkRootlessLimits(h *HostConfig) error {
	if cgroupsDelegated() {
		return nil
	}
	var set []string
	for _, f := range []struct {
		on   bool
		flag string
	}{
		{h.Memory > 0, "--memory"}, {h.MemorySwap > 0, "--memory-swap"}, {h.MemoryReservation > 0, "--memory-reservation"},
		{h.MemorySwappiness != nil && *h.MemorySwappiness >= 0, "--memory-swappiness"}, {h.OomKillDisable, "--oom-kill-disable"},
		{h.NanoCPUs > 0, "--cpus"}, {h.CpuShares > 0, "--cpu-shares"}, {h.CpuPeriod > 0, "--cpu-period"}, {h.CpuQuota > 0, "--cpu-quota"},
		{h.CpuRealtimePeriod > 0 || h.CpuRealtimeRuntime > 0, "--cpu-rt-period/--cpu-rt-runtime"},
		{h.CpusetCpus != "", "--cpuset-cpus"}, {h.CpusetMems != "", "--cpuset-mems"},
		{h.BlkioWeight > 0, "--blkio-weight"}, {len(h.BlkioWeightDevice) > 0, "--blkio-weight-device"},
		{len(h.BlkioDeviceReadBps)+len(h.BlkioDeviceWriteBps)+len(h.BlkioDeviceReadIOps)+len(h.BlkioDeviceWriteIOps) > 0, "--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops"},
		{h.PidsLimit > 0, "--pids-limit"}, {h.CgroupParent != "", "--cgroup-parent"},
	} {
		if f.on {
			set = append(set, f.flag)
		}
	}
	if len(set) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: resource limits of a rootless container need cgroup v2 with the user's cgroups delegated; this host has cgroup v1, which gives a user none (run as root to limit it, or leave the limits out)",
		ErrRootless, strings.Join(set, ", "))
}

// dropUnmappedIDs removes the uid= and gid= options of spec's mounts
// whose ID this user namespace does not map (devpts's gid=5 where the user
// has no subordinate IDs), which the kernel refuses, as runc's rootless
// spec does: the files are then the namespace root's.
func dropUnmappedIDs(spec *specs.Spec) {
	uids, _ := user.CurrentProcessUIDMap()
	gids, _ := user.CurrentProcessGIDMap()
	mapped := func(maps []user.IDMap, v string) bool {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return true // not ours to judge: the kernel says
		}
		for _, m := range maps {
			if id >= m.ID && id < m.ID+m.Count {
				return true
			}
		}
		return false
	}
	for i := range spec.Mounts {
		spec.Mounts[i].Options = slices.DeleteFunc(slices.Clone(spec.Mounts[i].Options), func(o string) bool {
			if v, ok := strings.CutPrefix(o, "uid="); ok {
				return !mapped(uids, v)
			}
			if v, ok := strings.CutPrefix(o, "gid="); ok {
				return !mapped(gids, v)
			}
			return false
		})
	}
}

// CommitLower is commit.Source.Lower for container c: the directories
// below its upper directory (its init layer, then the image's snapshots
// that its mount stacks) where fuse-overlayfs mounts it; nil where the kernel's overlayfs does.
func (s *Store) CommitLower(c *Container) ([]string, error) {
	if d, err := snapshot.Driver(); err != nil || d != "fuse-overlayfs" {
		return nil, nil
	}
	out := []string{s.initLayer}
	if c.Chain == "" {
		return out, nil
	}
	chain, err := s.snaps.Lowers(c.Chain)
	if err != nil {
		return nil, err
	}
	for _, info := range chain {
		out = append(out, s.snaps.FS(info.ChainID))
	}
	return out, nil
}
