package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/network"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// containerSummary is a row of GET /containers/json: Docker's, with the
// networks as inspect shows them.
type containerSummary struct {
	container.Summary
	NetworkSettings struct {
		Networks map[string]*engine.EndpointInspect
	}
}

func (s *Server) containerRoutes() {
	s.handle("GET /containers/json", s.listContainers)
	s.handle("GET /containers/{id}/json", s.inspectContainer)
	s.handle("POST /containers/{id}/stop", s.stopContainer)
	s.handle("POST /containers/{id}/restart", s.restartContainer)
	s.handle("POST /containers/{id}/kill", s.killContainer)
	s.handle("POST /containers/{id}/pause", s.pauseContainer)
	s.handle("POST /containers/{id}/unpause", s.unpauseContainer)
	s.handle("POST /containers/{id}/rename", s.renameContainer)
	s.handle("POST /containers/{id}/update", s.updateContainer)
	s.handle("DELETE /containers/{id}", s.removeContainer)
	s.handle("POST /containers/prune", s.pruneContainers)
	s.handle("GET /containers/{id}/top", s.topContainer)
	s.handle("GET /containers/{id}/stats", s.containerStats)
	s.handle("GET /containers/{id}/changes", s.containerChanges)
	s.handle("GET /containers/{id}/export", s.exportContainer)
	s.handle("HEAD /containers/{id}/archive", s.statArchive)
	s.handle("GET /containers/{id}/archive", s.getArchive)
	s.handleUpload("PUT /containers/{id}/archive", s.putArchive)
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	o := engine.ListOptions{All: boolParam(r, "all"), Size: boolParam(r, "size"), Filters: f}
	if v := r.URL.Query().Get("limit"); v != "" {
		if o.Limit, err = strconv.Atoi(v); err != nil {
			return badRequest("invalid limit %q: %v", v, err)
		}
	}
	list, err := s.e.ContainerSummaries(r.Context(), o)
	if err != nil {
		return err
	}
	out := make([]containerSummary, 0, len(list))
	nets := s.e.NetworkLookup()
	for _, c := range list {
		out = append(out, s.summary(c, nets))
	}
	return writeJSON(w, http.StatusOK, out)
}

// summary is c's row, its networks found through nets (a lookup of the
// request's, see engine.NetworkLookup).
func (s *Server) summary(c engine.ContainerSummary, nets func(string) (*network.Network, error)) containerSummary {
	var v containerSummary
	v.ID, v.Names, v.Image, v.ImageID = c.ID, []string{"/" + c.Name}, c.Image, c.ImageID.String()
	v.Command = engine.CommandLine(c.Container)
	v.Created = c.Created.Unix()
	v.Labels = c.Config.Labels
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	v.State, v.Status = container.ContainerState(c.State.Status), c.Status
	v.SizeRw, v.SizeRootFs = c.SizeRw, c.SizeRootFs
	v.HostConfig.NetworkMode = c.Host.NetworkMode
	v.Ports = []container.PortSummary{}
	for _, p := range c.Bindings {
		num, proto, _ := strings.Cut(p.Port, "/")
		private, _ := strconv.ParseUint(num, 10, 16)
		public, _ := strconv.ParseUint(p.Host, 10, 16)
		ip, _ := netip.ParseAddr(p.HostIP)
		v.Ports = append(v.Ports, container.PortSummary{IP: ip, PrivatePort: uint16(private), PublicPort: uint16(public), Type: proto})
	}
	v.NetworkSettings.Networks = s.e.NetworkSettingsWith(c.Container, nets).Networks
	v.Mounts = []container.MountPoint{}
	for _, m := range engine.ContainerMounts(c.Container) {
		v.Mounts = append(v.Mounts, container.MountPoint{
			Type: mount.Type(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: mount.Propagation(m.Propagation),
		})
	}
	return v
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	v, err := s.e.InspectContainer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
