package runtime

import (
	"errors"
	"testing"
)

func TestApplyUpdate(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	h := HostConfig{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 5e8, PidsLimit: 10}
	if err := applyUpdate(&h, UpdateOptions{Memory: i64(256 << 20)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("memory over the swap limit: %v", err)
	}
	if err := applyUpdate(&h, UpdateOptions{CpuQuota: i64(50000)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a quota over --cpus: %v", err)
	}
	if err := applyUpdate(&h, UpdateOptions{Memory: i64(96 << 20), PidsLimit: i64(-1), NanoCPUs: i64(1e9)}); err != nil {
		t.Fatal(err)
	}
	if h.Memory != 96<<20 || h.PidsLimit != 0 || h.NanoCPUs != 1e9 || h.MemorySwap != 128<<20 {
		t.Fatalf("%+v", h)
	}
	h.AutoRemove = true
	if err := applyUpdate(&h, UpdateOptions{RestartPolicy: &RestartPolicy{Name: "always"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a restart policy with --rm: %v", err)
	}
}

func TestCheckResources(t *testing.T) {
	for name, h := range map[string]HostConfig{
		"swap without memory":    {MemorySwap: 100 << 20},
		"swap under memory":      {Memory: 100 << 20, MemorySwap: 50 << 20},
		"reservation over limit": {Memory: 10 << 20, MemoryReservation: 20 << 20},
		"swappiness":             {MemorySwappiness: new(int64(101))},
		"cpus and period":        {NanoCPUs: 1e9, CpuPeriod: 100000},
		"small period":           {CpuPeriod: 10},
		"rt runtime over period": {CpuRealtimePeriod: 1000, CpuRealtimeRuntime: 2000},
		"blkio weight":           {BlkioWeight: 5},
		"cpuset":                 {CpusetCpus: "0-100000"},
		"cpuset syntax":          {CpusetCpus: "a"},
	} {
		if err := checkResources(&h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := checkResources(&HostConfig{CpusetCpus: "0"}); (err != nil) == features().cpuset {
		t.Errorf("cpuset 0 on a host with a cpuset cgroup (%v): %v", features().cpuset, err)
	}
	set, err := parseCPUSet("0-2,5")
	if err != nil || len(set) != 4 || !set[5] || set[3] {
		t.Fatalf("%v %v", set, err)
	}
}
