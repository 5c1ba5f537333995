package api

// The routes that change a container's state or record: stop, kill,
// restart, pause and unpause, rename, update, remove and prune. Each calls
// what the CLI's command calls; what the client asked for is done even if
// it hangs up meanwhile (a stop is not left between its SIGTERM and its
// SIGKILL).

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/container"
)

// forever is a stop timeout of -1: wait as long as it takes, as the CLI's.
const forever = 100 * 365 * 24 * time.Hour

// stopTimeout is how long stop and restart wait before SIGKILL: ?t= if
// given (-1: forever), else the container's --stop-timeout, else 10
// seconds, as the CLI's stopTimeoutOf. A bad ?t= is refused before the
// container is looked up, as dockerd reads it first.
func stopTimeout(r *http.Request) (func(*runtime.Container) time.Duration, error) {
	if !r.URL.Query().Has("t") {
		return (*runtime.Container).StopTimeout, nil
	}
	t, err := intParam(r, "t", 10)
	if err != nil {
		return nil, err
	}
	d := time.Duration(t) * time.Second
	if t < 0 {
		d = forever
	}
	return func(*runtime.Container) time.Duration { return d }, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	timeout, err := stopTimeout(r)
	if err != nil {
		return err
	}
	ctx := detached(r.Context())
	c, err := s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.Up() {
		w.WriteHeader(http.StatusNotModified) // dockerd's answer for a container that does not run
		return nil
	}
	if err := s.e.Containers.Stop(ctx, c.ID, timeout(c)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	timeout, err := stopTimeout(r)
	if err != nil {
		return err
	}
	ctx := detached(r.Context())
	c, err := s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.e.Restart(ctx, c.ID, timeout(c)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("id")
	v := r.URL.Query().Get("signal")
	if v == "" {
		v = "KILL"
	}
	sig, err := runtime.ParseSignal(v)
	if err != nil {
		return badRequest("Invalid signal: %s", v)
	}
	if err := s.e.Containers.Kill(detached(r.Context()), name, sig); err != nil {
		// dockerd names the container of every failed kill.
		err = dockerError(err)
		return &dockerWorded{msg: fmt.Sprintf("Cannot kill container: %s: %v", name, err), err: err}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Containers.Pause(detached(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Containers.Unpause(detached(r.Context()), r.PathValue("id")); err != nil {
		if errors.Is(err, runtime.ErrConflict) {
			// dockerd answers "is not paused" with a 500.
			return &apiError{status: http.StatusInternalServerError, err: dockerError(err)}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) error {
	old, name := r.PathValue("id"), r.URL.Query().Get("name")
	if name == "" {
		return badRequest("Neither old nor new names may be empty")
	}
	if err := s.e.Containers.Rename(detached(r.Context()), old, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decodeJSON(r, &u); err != nil {
		return err
	}
	o, err := updateOptions(u)
	if err != nil {
		return err
	}
	if _, err := s.e.Containers.Update(detached(r.Context()), r.PathValue("id"), o); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
}

// updateOptions are the runtime's options of Docker's update body: as
// dockerd reads it, a zero field is one the client leaves as it is (the
// docker client sends every field); a limit cairn does not set is refused
// by name rather than ignored.
func updateOptions(u container.UpdateConfig) (runtime.UpdateOptions, error) {
	var o runtime.UpdateOptions
	unsupported := map[string]bool{
		"BlkioWeightDevice":    len(u.BlkioWeightDevice) > 0,
		"BlkioDeviceReadBps":   len(u.BlkioDeviceReadBps) > 0,
		"BlkioDeviceWriteBps":  len(u.BlkioDeviceWriteBps) > 0,
		"BlkioDeviceReadIOps":  len(u.BlkioDeviceReadIOps) > 0,
		"BlkioDeviceWriteIOps": len(u.BlkioDeviceWriteIOps) > 0,
		"CpuRealtimePeriod":    u.CPURealtimePeriod != 0,
		"CpuRealtimeRuntime":   u.CPURealtimeRuntime != 0,
		"Devices":              len(u.Devices) > 0,
		"DeviceCgroupRules":    len(u.DeviceCgroupRules) > 0,
		"DeviceRequests":       len(u.DeviceRequests) > 0,
		"MemorySwappiness":     u.MemorySwappiness != nil && *u.MemorySwappiness != -1,
		"OomKillDisable":       u.OomKillDisable != nil && *u.OomKillDisable,
		"Ulimits":              len(u.Ulimits) > 0,
		"CgroupParent":         u.CgroupParent != "",
		"CpuCount":             u.CPUCount != 0,
		"CpuPercent":           u.CPUPercent != 0,
		"IOMaximumIOps":        u.IOMaximumIOps != 0,
		"IOMaximumBandwidth":   u.IOMaximumBandwidth != 0,
	}
	for _, name := range []string{"BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
		"BlkioDeviceWriteIOps", "CpuRealtimePeriod", "CpuRealtimeRuntime", "Devices", "DeviceCgroupRules", "DeviceRequests",
		"MemorySwappiness", "OomKillDisable", "Ulimits", "CgroupParent", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"} {
		if unsupported[name] {
			return o, badRequest("cairn does not update %s of a container", name)
		}
	}
	ints := []struct {
		v   int64
		dst **int64
	}{
		{u.NanoCPUs, &o.NanoCPUs}, {u.CPUShares, &o.CpuShares}, {u.CPUPeriod, &o.CpuPeriod}, {u.CPUQuota, &o.CpuQuota},
		{u.Memory, &o.Memory}, {u.MemorySwap, &o.MemorySwap}, {u.MemoryReservation, &o.MemoryReservation},
	}
	for _, f := range ints {
		if f.v != 0 {
			v := f.v
			*f.dst = &v
		}
	}
	for _, f := range []struct {
		v   string
		dst **string
	}{{u.CpusetCpus, &o.CpusetCpus}, {u.CpusetMems, &o.CpusetMems}} {
		if f.v != "" {
			v := f.v
			*f.dst = &v
		}
	}
	o.PidsLimit = u.PidsLimit
	if u.BlkioWeight != 0 {
		if u.BlkioWeight < 10 || u.BlkioWeight > 1000 {
			return o, badRequest("Range of blkio weight is from 10 to 1000")
		}
		bw := u.BlkioWeight
		o.BlkioWeight = &bw
	}
	if u.RestartPolicy.Name != "" {
		o.RestartPolicy = &runtime.RestartPolicy{Name: string(u.RestartPolicy.Name), MaximumRetryCount: u.RestartPolicy.MaximumRetryCount}
	}
	return o, nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	ctx := detached(r.Context())
	if boolParam(r, "link") {
		// cairn has no links; what dockerd says of a name that is not one.
		if _, err := s.e.Containers.Get(ctx, r.PathValue("id")); err != nil {
			return err
		}
		return &apiError{status: http.StatusInternalServerError, err: errors.New("Conflict, cannot remove the default link name of the container")}
	}
	o := runtime.RemoveOptions{Force: boolParam(r, "force"), Volumes: boolParam(r, "v")}
	if err := s.e.Containers.Remove(ctx, r.PathValue("id"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	rep, err := s.e.PruneContainers(detached(r.Context()), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, container.PruneReport{ContainersDeleted: rep.Deleted, SpaceReclaimed: uint64(rep.SpaceReclaimed)})
}
