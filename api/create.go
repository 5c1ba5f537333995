package api

// POST /containers/create: Docker's container config, host config and
// networking config (API 1.41's shape) onto the options the CLI's run
// gives the engine.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
)

// createRequest is the body of a create. The container's config and its
// host config are cairn's records' own types, whose JSON is Docker's.
type createRequest struct {
	runtime.Config
	MacAddress       string // API < 1.44: the endpoint's MAC address
	NetworkDisabled  bool
	HostConfig       *runtime.HostConfig
	NetworkingConfig *struct {
		EndpointsConfig map[string]*endpointConfig
	}
}

// refusedHost are the host config's fields cairn has no use for, refused
// by name when set rather than ignored (as the CLI refuses their flags).
type refusedHost struct {
	Links              []string
	KernelMemory       int64
	KernelMemoryTCP    int64
	StorageOpt         map[string]string
	DeviceRequests     []json.RawMessage
	CpuCount           int64
	CpuPercent         int64
	IOMaximumIOps      uint64
	IOMaximumBandwidth uint64
	Mounts             []struct {
		BindOptions *struct {
			NonRecursive bool
		}
		VolumeOptions *struct {
			Subpath      string
			DriverConfig *struct {
				Name    string
				Options map[string]string
			}
		}
	}
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return err
	}
	if len(raw) == 0 {
		return badRequest("config cannot be empty in order to create a container")
	}
	var req createRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return badRequest("invalid JSON in the request body: %v", err)
	}
	var refused struct{ HostConfig *refusedHost }
	if err := json.Unmarshal(raw, &refused); err != nil {
		return badRequest("invalid JSON in the request body: %v", err)
	}
	if err := checkRefused(refused.HostConfig); err != nil {
		return err
	}
	o, err := createOptions(r.URL.Query().Get("name"), &req)
	if err != nil {
		return err
	}
	// The image is not pulled here: a missing one is a 404, and the
	// docker CLI pulls it (POST /images/create) and asks again.
	c, err := s.e.Create(r.Context(), engine.CreateOptions{CreateOptions: o, Pull: engine.PullNever})
	if errors.Is(err, image.ErrNotFound) {
		return &apiError{status: http.StatusNotFound, err: fmt.Errorf("No such image: %s", familiar(o.Image))}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: []string{}})
}

// familiar is ref as Docker's errors name an image: busybox:latest.
func familiar(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(n))
}

func checkRefused(h *refusedHost) error {
	if h == nil {
		return nil
	}
	for _, f := range []struct {
		set         bool
		field, what string
	}{
		{len(h.Links) > 0, "Links", "legacy container links: use a user-defined network, where containers resolve each other by name and alias"},
		{h.KernelMemory != 0 || h.KernelMemoryTCP != 0, "KernelMemory", "kernel memory limits are deprecated in Docker and no longer enforced by the kernel"},
		{len(h.StorageOpt) > 0, "StorageOpt", "cairn's overlay snapshots have no per-container size or storage options"},
		{len(h.DeviceRequests) > 0, "DeviceRequests", "cairn has no GPU support; map device nodes with Devices"},
		{h.CpuCount != 0 || h.CpuPercent != 0 || h.IOMaximumIOps != 0 || h.IOMaximumBandwidth != 0, "CpuCount, CpuPercent, IOMaximumIOps, IOMaximumBandwidth", "Windows only"},
	} {
		if f.set {
			return badRequest("HostConfig.%s: %s", f.field, f.what)
		}
	}
	for _, m := range h.Mounts {
		switch {
		case m.BindOptions != nil && m.BindOptions.NonRecursive:
			return badRequest("HostConfig.Mounts: BindOptions.NonRecursive: cairn binds recursively, as Docker does by default")
		case m.VolumeOptions != nil && m.VolumeOptions.Subpath != "":
			return badRequest("HostConfig.Mounts: VolumeOptions.Subpath %s: cairn mounts whole volumes only", m.VolumeOptions.Subpath)
		case m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil &&
			(m.VolumeOptions.DriverConfig.Name != "" && m.VolumeOptions.DriverConfig.Name != "local" || len(m.VolumeOptions.DriverConfig.Options) > 0):
			return badRequest("HostConfig.Mounts: VolumeOptions.DriverConfig: cairn has the local volume driver only, without options")
		}
	}
	return nil
}

// createOptions maps a create's body onto the options `run` fills from
// its flags.
func createOptions(name string, req *createRequest) (runtime.CreateOptions, error) {
	var o runtime.CreateOptions
	cfg := &req.Config
	if cfg.Image == "" {
		return o, badRequest("Config.Image: no image given")
	}
	if req.NetworkDisabled {
		return o, badRequest("Config.NetworkDisabled: use the network mode none")
	}
	o.Name, o.Image = name, cfg.Image
	o.Args, o.Env, o.Labels = cfg.Cmd, cfg.Env, cfg.Labels
	if len(cfg.Entrypoint) > 0 {
		o.Entrypoint = cfg.Entrypoint // [""] clears the image's
	}
	o.WorkingDir, o.User, o.Hostname = cfg.WorkingDir, cfg.User, cfg.Hostname
	o.Tty, o.OpenStdin = cfg.Tty, cfg.OpenStdin
	o.AttachStdin, o.AttachStdout, o.AttachStderr = cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr
	o.StopSignal, o.StopTimeout, o.Healthcheck = cfg.StopSignal, cfg.StopTimeout, cfg.Healthcheck
	if req.HostConfig != nil {
		o.Host = *req.HostConfig
	}
	h := &o.Host
	// -v's binds, then the anonymous volumes of Config.Volumes that no
	// bind already mounts.
	o.Volumes = slices.Clone(h.Binds)
	bound := map[string]bool{}
	for _, b := range h.Binds {
		if parts := strings.Split(b, ":"); len(parts) > 1 {
			bound[parts[1]] = true
		}
	}
	for _, v := range slices.Sorted(maps.Keys(cfg.Volumes)) {
		if !bound[v] {
			o.Volumes = append(o.Volumes, v)
		}
	}
	n := &o.Network
	n.Mode, n.Domainname, n.MAC = h.NetworkMode, cfg.Domainname, req.MacAddress
	n.DNS = network.DNS{Servers: h.Dns, Search: h.DnsSearch, Options: h.DnsOptions}
	n.ExtraHosts, n.PublishAll = h.ExtraHosts, h.PublishAllPorts
	n.Expose = slices.Sorted(maps.Keys(cfg.ExposedPorts))
	ports, err := network.BindingsOf(h.PortBindings)
	if err != nil {
		return o, badRequest("HostConfig.PortBindings: %v", dockerError(err))
	}
	n.Ports = ports
	if req.NetworkingConfig != nil {
		eps := req.NetworkingConfig.EndpointsConfig
		if len(eps) > 1 {
			names := slices.Sorted(maps.Keys(eps))
			return o, badRequest("Container cannot be connected to network endpoints: %s", strings.Join(names, ", "))
		}
		for name, ep := range eps {
			if n.Mode == "" || n.Mode == "default" {
				n.Mode = name
			}
			if ep == nil {
				continue
			}
			if err := ep.check("NetworkingConfig.EndpointsConfig[" + name + "]"); err != nil {
				return o, err
			}
			n.Aliases = ep.Aliases
			if ep.IPAMConfig != nil {
				n.IP = ep.IPAMConfig.IPv4Address
			}
			if ep.MacAddress != "" {
				n.MAC = ep.MacAddress
			}
		}
	}
	return o, nil
}
