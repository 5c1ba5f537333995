package api

// Networks (and, registered from here, volumes, events and disk usage):
// the routes of `docker network`, each calling the engine function of the
// CLI's command (cmd/cairn/network.go).

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/network"
)

func (s *Server) networkRoutes() {
	s.handle("GET /networks", s.listNetworks)
	s.handle("GET /networks/{$}", s.listNetworks)
	s.handle("GET /networks/{id}", s.inspectNetwork)
	s.handle("POST /networks/create", s.createNetwork)
	s.handle("POST /networks/prune", s.pruneNetworks)
	s.handle("POST /networks/{id}/connect", s.connectNetwork)
	s.handle("POST /networks/{id}/disconnect", s.disconnectNetwork)
	s.handle("DELETE /networks/{id}", s.removeNetwork)
	s.volumeRoutes()
	s.handle("GET /events", s.events)
	s.handle("GET /system/df", s.diskUsage)
}

// silent wraps an error for errors.Is without adding to the text.
type silent struct{ err error }

func (s silent) Error() string { return "" }
func (s silent) Unwrap() error { return s.err }

// networkError gives the network store's refusals dockerd 20.10's statuses
// (writeError gives them its words): 403 for what may not be done to a network (a predefined one,
// one in use, an endpoint that exists), 500 for a container that is not
// connected, as dockerd answers them.
func networkError(err error) error {
	for _, c := range []struct {
		sentinel error
		status   int
	}{
		{network.ErrNotFound, http.StatusNotFound},
		{network.ErrPredefined, http.StatusForbidden},
		{network.ErrInUse, http.StatusForbidden},
		{network.ErrExists, http.StatusForbidden},
		{network.ErrNotConnected, http.StatusInternalServerError},
		{network.ErrInvalid, http.StatusBadRequest},
		{engine.ErrInvalid, http.StatusBadRequest},
	} {
		if errors.Is(err, c.sentinel) {
			return &apiError{status: c.status, err: err}
		}
	}
	return err
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	list, err := s.e.ListNetworks(f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	v, err := s.e.InspectNetwork(r.PathValue("id"))
	if err != nil {
		return networkError(err)
	}
	return writeJSON(w, http.StatusOK, v)
}

// networkCreate is the body of POST /networks/create: Docker's
// network.CreateRequest, with the fields older clients send
// (CheckDuplicate, EnableIPv6 as a bool) and the addresses as text, so
// that a bad one is named rather than failing the JSON.
type networkCreate struct {
	Name           string
	CheckDuplicate bool
	Driver         string
	Scope          string
	EnableIPv4     *bool
	EnableIPv6     *bool
	IPAM           *struct {
		Driver  string
		Options map[string]string
		Config  []struct {
			Subnet, IPRange, Gateway string
			AuxAddress               map[string]string `json:"AuxiliaryAddresses"`
		}
	}
	Internal, Attachable, Ingress, ConfigOnly bool
	ConfigFrom                                *struct{ Network string }
	Options                                   map[string]string
	Labels                                    map[string]string
}

// bridgeOptions are the options of Docker's bridge driver that a cairn
// network has, with the value it has them with; any other is refused
// rather than ignored.
var bridgeOptions = map[string]string{
	"com.docker.network.bridge.enable_icc":           "true",
	"com.docker.network.bridge.enable_ip_masquerade": "true",
	"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
}

// createOptions checks req and returns what network.Create is given: one
// IPv4 subnet of a local bridge network.
func (req *networkCreate) createOptions() (network.CreateOptions, error) {
	o := network.CreateOptions{Name: req.Name, Internal: req.Internal, Labels: req.Labels, Attachable: req.Attachable}
	if req.Name == "" {
		return o, badRequest("a network needs a name")
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return o, badRequest("network driver %q is not supported: cairn has the bridge driver", req.Driver)
	}
	if req.Scope != "" && req.Scope != "local" {
		return o, badRequest("network scope %q is not supported: cairn's networks are local", req.Scope)
	}
	switch {
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		return o, badRequest("network %s: IPv6 is not supported: cairn's networks are IPv4 only", req.Name)
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return o, badRequest("network %s: a network without IPv4 is not supported", req.Name)
	case req.Ingress || req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "":
		return o, badRequest("network %s: ingress and config-only networks are swarm's, which cairn does not have", req.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(req.Options)) {
		if want, ok := bridgeOptions[k]; !ok || req.Options[k] != want || k == "com.docker.network.bridge.enable_ip_masquerade" && req.Internal {
			return o, badRequest("network option %s=%s is not supported by cairn", k, req.Options[k])
		}
	}
	if len(req.Options) > 0 {
		o.Options = req.Options
	}
	if ipam := req.IPAM; ipam != nil {
		switch {
		case ipam.Driver != "" && ipam.Driver != "default":
			return o, badRequest("IPAM driver %q is not supported: cairn has the default one", ipam.Driver)
		case len(ipam.Options) > 0:
			return o, badRequest("IPAM options are not supported: %v", ipam.Options)
		case len(ipam.Config) > 1:
			return o, badRequest("network %s: a cairn network has one IPv4 subnet, not %d", req.Name, len(ipam.Config))
		}
		for _, c := range ipam.Config {
			if c.IPRange != "" && c.IPRange != c.Subnet {
				return o, badRequest("network %s: an IP range within the subnet (%s) is not supported", req.Name, c.IPRange)
			}
			if len(c.AuxAddress) > 0 {
				return o, badRequest("network %s: auxiliary addresses are not supported", req.Name)
			}
			o.Subnet, o.Gateway = c.Subnet, c.Gateway
		}
	}
	return o, nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req networkCreate
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	o, err := req.createOptions()
	if err != nil {
		return err
	}
	// Names are unique in cairn, with or without CheckDuplicate.
	n, err := s.e.CreateNetwork(r.Context(), o)
	switch {
	case errors.Is(err, network.ErrExists):
		return &apiError{status: http.StatusConflict, err: err}
	case errors.Is(err, network.ErrPredefined):
		return &apiError{status: http.StatusForbidden, err: fmt.Errorf("operation is not permitted on predefined %s network", req.Name)}
	case err != nil:
		return networkError(err)
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"Id": n.ID, "Warning": ""})
}

// endpointConfig is what a container asks of a network, at create
// (NetworkingConfig) or connect (EndpointConfig): Docker's
// EndpointSettings, of which cairn takes the aliases, the IPv4 address and,
// at create, the MAC address.
type endpointConfig struct {
	IPAMConfig *struct {
		IPv4Address, IPv6Address string
		LinkLocalIPs             []string
	}
	Links      []string
	Aliases    []string
	DriverOpts map[string]string
	MacAddress string
}

// check refuses what cairn does not do of an endpoint, by its name
// (where: the field that holds ep).
func (ep *endpointConfig) check(where string) error {
	switch {
	case len(ep.Links) > 0:
		return badRequest("%s.Links: legacy container links: use a user-defined network, where containers reach each other by name and alias", where)
	case len(ep.DriverOpts) > 0:
		return badRequest("%s.DriverOpts: endpoint driver options are not supported", where)
	case ep.IPAMConfig != nil && (ep.IPAMConfig.IPv6Address != "" || len(ep.IPAMConfig.LinkLocalIPs) > 0):
		return badRequest("%s.IPAMConfig: cairn's networks are IPv4 only, without link-local addresses", where)
	}
	return nil
}

func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Container      string
		EndpointConfig *endpointConfig
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return badRequest("no container given to connect")
	}
	var o engine.ConnectOptions
	if ep := req.EndpointConfig; ep != nil {
		if err := ep.check("EndpointConfig"); err != nil {
			return err
		}
		if ep.MacAddress != "" {
			return badRequest("EndpointConfig.MacAddress: a MAC address is given at run (--mac-address), not at connect")
		}
		o.Aliases = ep.Aliases
		if c := ep.IPAMConfig; c != nil {
			o.IP = c.IPv4Address
		}
	}
	if err := s.e.Connect(r.Context(), r.PathValue("id"), req.Container, o); err != nil {
		return networkError(err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Container string
		Force     bool // a running container is disconnected anyway
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return badRequest("no container given to disconnect")
	}
	if err := s.e.Disconnect(r.Context(), r.PathValue("id"), req.Container); err != nil {
		return networkError(err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.RemoveNetwork(r.Context(), r.PathValue("id")); err != nil {
		return networkError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	removed, err := s.e.PruneNetworksFiltered(r.Context(), f)
	if err != nil {
		return networkError(err)
	}
	if removed == nil {
		removed = []string{}
	}
	return writeJSON(w, http.StatusOK, map[string][]string{"NetworksDeleted": removed})
}
