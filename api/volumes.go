package api

// Volumes: the routes of `docker volume`, calling the engine functions of
// the CLI's commands (cmd/cairn/volumes.go).

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeRoutes() {
	s.handle("GET /volumes", s.listVolumes)
	s.handle("GET /volumes/{$}", s.listVolumes)
	s.handle("GET /volumes/{name}", s.inspectVolume)
	s.handle("POST /volumes/create", s.createVolume)
	s.handle("POST /volumes/prune", s.pruneVolumes)
	s.handle("DELETE /volumes/{name}", s.removeVolume)
}

// volumeError gives a missing volume dockerd's words (statusOf and
// writeError answer the store's other refusals).
func volumeError(err error, name string) error {
	switch {
	case errors.Is(err, runtime.ErrVolumeNotFound):
		return &apiError{status: http.StatusNotFound, err: fmt.Errorf("get %s: no such volume%w", name, silent{err})}
	}
	return err
}

// volumeOf is v as dockerd 20.10 shows it: its time in seconds, no labels
// or options as null.
func volumeOf(v *runtime.Volume) volume.Volume {
	out := volume.Volume{Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Scope: v.Scope,
		CreatedAt: v.CreatedAt.Local().Format(time.RFC3339)}
	if len(v.Labels) > 0 {
		out.Labels = v.Labels
	}
	if len(v.Options) > 0 {
		out.Options = v.Options
	}
	return out
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	vols, err := s.e.ListVolumes(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Volumes  []volume.Volume
		Warnings []string
	}{Volumes: []volume.Volume{}}
	for _, v := range vols {
		out.Volumes = append(out.Volumes, volumeOf(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v, err := s.e.Containers.VolumeInspect(name)
	if err != nil {
		return volumeError(err, name)
	}
	return writeJSON(w, http.StatusOK, volumeOf(v))
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Driver != "" && req.Driver != "local" {
		return &apiError{status: http.StatusNotFound, err: fmt.Errorf("create %s: error looking up volume plugin %s: plugin %q not found", req.Name, req.Driver, req.Driver)}
	}
	if len(req.DriverOpts) > 0 {
		return badRequest("create %s: invalid option: %q: cairn's local volumes are directories, mounted with no options", req.Name, slices.Sorted(maps.Keys(req.DriverOpts))[0])
	}
	if req.ClusterVolumeSpec != nil {
		return badRequest("create %s: cluster volumes are swarm's, which cairn does not have", req.Name)
	}
	// An empty name makes a volume with a generated one, as `volume create`.
	v, err := s.e.CreateVolume(r.Context(), req.Name, req.Labels)
	if err != nil {
		return volumeError(err, req.Name)
	}
	return writeJSON(w, http.StatusCreated, volumeOf(v))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.e.RemoveVolume(r.Context(), name, boolParam(r, "force")); err != nil {
		return volumeError(err, name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes is POST /volumes/prune: API 1.41's, which removes every
// volume no container uses, named or not (dockerd 20.10; only 1.42 keeps
// named ones unless told "all").
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	rep, err := s.e.PruneVolumes(r.Context(), engine.PruneOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	out := volume.PruneReport{VolumesDeleted: rep.Deleted, SpaceReclaimed: uint64(rep.SpaceReclaimed)}
	if out.VolumesDeleted == nil {
		out.VolumesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, out)
}
