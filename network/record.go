package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
)

// Record is what a container has of the network, written before any of it
// is made: the truth Detach undoes, whatever step its maker reached.
type Record struct {
	ID   string `json:"id"`
	Name string `json:"name"` // the container's name, for its peers' /etc/hosts
	Root string `json:"root"` // the cairn root the container is in
	// NetNS is the network namespace's file (/run/netns/cairn-<id12>).
	NetNS      string        `json:"netns"`
	Hostname   string        `json:"hostname"`
	Domainname string        `json:"domainname,omitempty"`
	HostsPath  string        `json:"hostsPath"`
	ResolvPath string        `json:"resolvPath"`
	ExtraHosts []string      `json:"extraHosts,omitempty"` // host:ip, host-gateway resolved
	Endpoints  []Endpoint    `json:"endpoints"`
	Ports      []PortBinding `json:"ports,omitempty"`
	// Rules says the container's firewall lines may exist.
	Rules bool `json:"rules,omitempty"`
	// Pasta is the pid of the pasta process of a rootless container's
	// network (see usermode.go).
	Pasta int `json:"pasta,omitempty"`
}

// Endpoint is a container's interface on one network.
type Endpoint struct {
	NetworkID   string       `json:"networkID"`
	NetworkName string       `json:"networkName"`
	Bridge      string       `json:"bridge"`
	Subnet      netip.Prefix `json:"subnet"`
	Gateway     netip.Addr   `json:"gateway"`
	Internal    bool         `json:"internal,omitempty"`
	// User is set for a user network: its containers resolve each other.
	User     bool       `json:"user,omitempty"`
	IP       netip.Addr `json:"ip"`
	MAC      string     `json:"mac"`
	Aliases  []string   `json:"aliases,omitempty"`
	HostVeth string     `json:"hostVeth"` // on the host, in the bridge
	IfName   string     `json:"ifName"`   // in the container: eth0, eth1…
	// Made says the veth pair may exist.
	Made bool `json:"made,omitempty"`
}

// Endpoint is the record's endpoint on network netID, or nil.
func (r *Record) Endpoint(netID string) *Endpoint {
	for i := range r.Endpoints {
		if r.Endpoints[i].NetworkID == netID {
			return &r.Endpoints[i]
		}
	}
	return nil
}

func (s *Store) recordPath(id string) string { return filepath.Join(s.run, "containers", id+".json") }

// write replaces the record atomically; the caller holds the lock. It is
// runtime state, on a tmpfs: atomic, not synced.
func (s *Store) write(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(s.recordPath(r.ID), b, 0o600)
}

// read returns container id's record, or nil if it has none.
func (s *Store) read(id string) (*Record, error) {
	b, err := os.ReadFile(s.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("network record of %s: %w", short(id), err)
	}
	return &r, nil
}

// records reads every record.
func (s *Store) records() ([]*Record, error) {
	entries, err := os.ReadDir(filepath.Join(s.run, "containers"))
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		r, err := s.read(id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// State returns what container id has of the network now (nil when it has
// nothing: not running, or on none or host).
func (s *Store) State(id string) (*Record, error) { return s.read(id) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
