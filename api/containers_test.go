package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/container"
)

// testServer is the API of an engine on an empty store of the test's.
func testServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	e, err := engine.Open(engine.Options{Root: filepath.Join(dir, "root"), Run: filepath.Join(dir, "run"), NetworkRun: filepath.Join(dir, "net")})
	if err != nil {
		t.Skipf("no engine here: %v", err)
	}
	return New(e)
}

// Bad parameters are 400s that name what is wrong, whether or not the
// container exists; a missing container is dockerd's 404.
func TestContainerRoutesRefuse(t *testing.T) {
	s := testServer(t)
	for _, c := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", "/v1.41/containers/nosuch/kill?signal=FOO", "", 400, "Invalid signal: FOO"},
		{"POST", "/containers/nosuch/kill?signal=0", "", 400, "Invalid signal: 0"},
		{"POST", "/containers/nosuch/kill", "", 404, "Cannot kill container: nosuch: No such container: nosuch"},
		{"POST", "/containers/nosuch/stop?t=abc", "", 400, `invalid value "abc" for query parameter t`},
		{"POST", "/containers/nosuch/restart?t=1.5", "", 400, `invalid value "1.5" for query parameter t`},
		{"POST", "/containers/nosuch/stop", "", 404, "No such container: nosuch"},
		{"POST", "/containers/nosuch/rename?name=", "", 400, "Neither old nor new names may be empty"},
		{"POST", "/containers/nosuch/rename?name=other", "", 404, "No such container: nosuch"},
		{"POST", "/containers/nosuch/update", "{not json", 400, "invalid JSON"},
		{"POST", "/containers/nosuch/update", `{"CpuRealtimeRuntime":5}`, 400, "CpuRealtimeRuntime"},
		{"POST", "/containers/nosuch/update", `{"Memory":1000000}`, 404, "No such container: nosuch"},
		{"DELETE", "/containers/nosuch?force=1", "", 404, "No such container: nosuch"},
		{"POST", "/containers/prune?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", "", 400, "Invalid filter 'colour'"},
		{"GET", "/containers/nosuch/top", "", 404, "No such container: nosuch"},
		{"GET", "/containers/nosuch/stats?stream=0", "", 404, "No such container: nosuch"},
		{"GET", "/containers/nosuch/changes", "", 404, "No such container: nosuch"},
		{"GET", "/containers/nosuch/export", "", 404, "No such container: nosuch"},
		{"GET", "/containers/nosuch/archive", "", 400, "path cannot be empty"},
		{"GET", "/containers/nosuch/archive?path=/etc", "", 404, "No such container: nosuch"},
		{"PUT", "/containers/nosuch/archive?path=/tmp", "", 404, "No such container: nosuch"},
		{"POST", "/containers/nosuch/pause", "", 404, "No such container: nosuch"},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
		var body struct{ Message string }
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != c.status || !strings.Contains(body.Message, c.message) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, rec.Code, rec.Body.String(), c.status, c.message)
		}
	}
	// Pruning nothing: dockerd's shape, nothing deleted.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/containers/prune", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"ContainersDeleted":null,"SpaceReclaimed":0}` {
		t.Errorf("prune: %d %s", rec.Code, rec.Body.String())
	}
	// HEAD of a path of no container: a 404 without a body.
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("HEAD", "/containers/nosuch/archive?path=/etc", nil))
	if rec.Code != 404 || rec.Header().Get(pathStatHeader) != "" {
		t.Errorf("HEAD archive: %d %v", rec.Code, rec.Header())
	}
}

// The runtime's errors lose the sentinel's words, never its status.
func TestDockerError(t *testing.T) {
	for _, c := range []struct {
		err    error
		msg    string
		status int
	}{
		{fmt.Errorf("%w: Container abc is not running", runtime.ErrConflict), "Container abc is not running", 409},
		{fmt.Errorf("%w: Container abc is not running", runtime.ErrNotRunning), "Container abc is not running", 409},
		{fmt.Errorf("%w: Conflicting options: Nano CPUs cannot be updated", runtime.ErrInvalid), "Conflicting options: Nano CPUs cannot be updated", 400},
		{fmt.Errorf("%w: nosuch", runtime.ErrNotFound), "No such container: nosuch", 404},
		{fmt.Errorf("disk on fire"), "disk on fire", 500},
	} {
		err := dockerError(c.err)
		if err.Error() != c.msg || statusOf(err) != c.status {
			t.Errorf("dockerError(%v) = %q, %d; want %q, %d", c.err, err, statusOf(err), c.msg, c.status)
		}
	}
}

// The docker client sends every field of UpdateConfig: the zero ones
// change nothing, the others become the runtime's options.
func TestUpdateOptions(t *testing.T) {
	var u container.UpdateConfig
	// What `docker update --memory 100m --memory-swap -1 --pids-limit 50 --restart on-failure:3` sends.
	body := `{"BlkioWeight":0,"CpuShares":0,"Memory":104857600,"NanoCpus":0,"CpusetCpus":"","MemorySwap":-1,"PidsLimit":50,` +
		`"Devices":null,"Ulimits":null,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}`
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatal(err)
	}
	o, err := updateOptions(u)
	if err != nil {
		t.Fatal(err)
	}
	if o.Memory == nil || *o.Memory != 104857600 || o.MemorySwap == nil || *o.MemorySwap != -1 || o.PidsLimit == nil || *o.PidsLimit != 50 {
		t.Errorf("limits: %+v", o)
	}
	if o.NanoCPUs != nil || o.CpuShares != nil || o.CpusetCpus != nil || o.BlkioWeight != nil || o.MemoryReservation != nil || o.CpuQuota != nil {
		t.Errorf("zero fields set: %+v", o)
	}
	if o.RestartPolicy == nil || o.RestartPolicy.Name != "on-failure" || o.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("restart policy: %+v", o.RestartPolicy)
	}
	if _, err := updateOptions(container.UpdateConfig{Resources: container.Resources{BlkioWeight: 5}}); statusOf(err) != 400 || !strings.Contains(err.Error(), "blkio weight") {
		t.Errorf("blkio weight 5: %v", err)
	}
	if o, err := updateOptions(container.UpdateConfig{}); err != nil || o != (runtime.UpdateOptions{}) {
		t.Errorf("empty update: %+v, %v", o, err)
	}
}

// A sample is what the docker client's stats formatter reads: CPU with its
// previous sample, memory and its limit, block I/O by op, pids, and the
// network of a container that has one of its own.
func TestStatsResponse(t *testing.T) {
	now := time.Now()
	prev := &runtime.Stats{Read: now.Add(-time.Second), Running: true, CPU: 1e9, SystemCPU: 100e9, OnlineCPUs: 4}
	cur := &runtime.Stats{Read: now, Running: true, CPU: 1.5e9, SystemCPU: 102e9, OnlineCPUs: 4, Memory: 1 << 20, MemoryLimit: 1 << 30,
		NetRx: 10, NetTx: 20, BlockRead: 4096, BlockWrite: 8192, PIDs: 3}
	c := &runtime.Container{ID: "abc", Name: "web"}
	c.Host.NetworkMode = "bridge"
	v := statsResponse(c, prev, cur)
	b, _ := json.Marshal(v)
	var back container.StatsResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != "/web" || back.ID != "abc" || back.CPUStats.CPUUsage.TotalUsage != 1.5e9 || back.PreCPUStats.SystemUsage != 100e9 ||
		back.CPUStats.OnlineCPUs != 4 || back.MemoryStats.Usage != 1<<20 || back.MemoryStats.Limit != 1<<30 || back.PidsStats.Current != 3 {
		t.Errorf("sample: %s", b)
	}
	if n := back.Networks["eth0"]; n.RxBytes != 10 || n.TxBytes != 20 || len(back.Networks) != 1 {
		t.Errorf("networks: %v", back.Networks)
	}
	if io := back.BlkioStats.IoServiceBytesRecursive; len(io) != 2 || io[0].Op != "read" || io[0].Value != 4096 || io[1].Op != "write" || io[1].Value != 8192 {
		t.Errorf("blkio: %v", io)
	}
	c.Host.NetworkMode = "none"
	if v := statsResponse(c, nil, cur); v.Networks != nil || !v.PreRead.IsZero() {
		t.Errorf("no network, no previous sample: %+v", v)
	}
	if v := statsResponse(c, prev, &runtime.Stats{Read: now}); v.CPUStats.CPUUsage.TotalUsage != 0 || !v.Read.IsZero() || v.Name != "/web" {
		t.Errorf("stopped: %+v", v)
	}
}
