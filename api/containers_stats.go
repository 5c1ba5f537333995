package api

// What a container runs and uses: top (the host's ps, as `cairn top`) and
// stats (the runtime's samples, as `cairn stats`, in Docker's
// StatsResponse).

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) topContainer(w http.ResponseWriter, r *http.Request) error {
	p, err := s.e.Containers.Top(r.Context(), r.PathValue("id"), strings.Fields(r.URL.Query().Get("ps_args")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, container.TopResponse{Titles: p.Titles, Processes: p.Rows})
}

// statsInterval is how often a stream of stats sends a sample, as
// dockerd's collector and `cairn stats`.
const statsInterval = time.Second

// containerStats serves a container's samples as dockerd does: with
// stream (the default) one a second until the client goes or the container
// stops; without, one, a second after a first so that its CPU figures are
// a rate (precpu_stats), or at once with one-shot. A container that does
// not run has one empty sample.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	stream := !r.URL.Query().Has("stream") || boolParam(r, "stream")
	oneShot := boolParam(r, "one-shot")
	sample := func() (*runtime.Stats, error) { return s.e.Containers.Stats(ctx, c.ID) }
	cur, err := sample()
	if err != nil {
		return err
	}
	var prev *runtime.Stats
	if !stream && !oneShot && cur.Running {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
		prev = cur
		if cur, err = sample(); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		if err := enc.Encode(statsResponse(c, prev, cur)); err != nil {
			return nil // the client has gone
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if !stream || !cur.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		prev = cur
		if cur, err = sample(); err != nil {
			return nil // removed meanwhile: the stream ends, as the container's
		}
	}
}

// statsResponse is sample cur of container c in Docker's shape, with prev
// (nil: none) as its precpu_stats: the fields the docker client's stats
// formatter reads. Memory is the runtime's usage without the inactive page
// cache, so no cache figure is given to subtract; the block I/O and the
// network are the totals, one entry each (a container in the host's
// network, another's, or none, has no networks, as with dockerd).
func statsResponse(c *runtime.Container, prev, cur *runtime.Stats) container.StatsResponse {
	v := container.StatsResponse{ID: c.ID, Name: "/" + c.Name}
	if !cur.Running {
		return v
	}
	cpu := func(st *runtime.Stats) container.CPUStats {
		return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: st.CPU}, SystemUsage: st.SystemCPU, OnlineCPUs: uint32(st.OnlineCPUs)}
	}
	v.Read, v.CPUStats = cur.Read, cpu(cur)
	if prev != nil && prev.Running {
		v.PreRead, v.PreCPUStats = prev.Read, cpu(prev)
	}
	v.MemoryStats = container.MemoryStats{Usage: cur.Memory, Limit: cur.MemoryLimit, Stats: map[string]uint64{}}
	v.PidsStats.Current = cur.PIDs
	v.BlkioStats = container.BlkioStats{
		IoServiceBytesRecursive: []container.BlkioStatEntry{{Op: "read", Value: cur.BlockRead}, {Op: "write", Value: cur.BlockWrite}},
		IoServicedRecursive:     []container.BlkioStatEntry{}, IoQueuedRecursive: []container.BlkioStatEntry{},
		IoServiceTimeRecursive: []container.BlkioStatEntry{}, IoWaitTimeRecursive: []container.BlkioStatEntry{},
		IoMergedRecursive: []container.BlkioStatEntry{}, IoTimeRecursive: []container.BlkioStatEntry{}, SectorsRecursive: []container.BlkioStatEntry{},
	}
	if m := c.Host.NetworkMode; m != runtime.ModeHost && m != runtime.ModeNone && !strings.HasPrefix(m, runtime.ModeContainer) {
		v.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: cur.NetRx, TxBytes: cur.NetTx}}
	}
	return v
}
