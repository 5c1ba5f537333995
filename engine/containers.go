package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
)

// CreateOptions are those of `run` and `create`: the container's, and how
// its image is found.
type CreateOptions struct {
	runtime.CreateOptions
	Pull PullPolicy
	// PullOptions are those of the pull the policy asks for.
	PullOptions PullOptions
	// Missing, if not nil, is told before an image the store lacks is
	// pulled (Docker's CLI says "Unable to find image ... locally").
	Missing func(ref string)
}

// Create makes the container o describes, pulling its image first as the
// pull policy says.
func (e *Engine) Create(ctx context.Context, o CreateOptions) (*runtime.Container, error) {
	if o.From == nil {
		if err := e.EnsureImage(ctx, o.Image, o.Pull, o.PullOptions, o.Missing); err != nil {
			return nil, err
		}
	}
	return e.Containers.Create(ctx, o.CreateOptions)
}

// Restart stops container ref (as Stop does, waiting timeout for it) and
// starts it again in the background.
func (e *Engine) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := e.Containers.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	return e.Containers.StartDetached(ctx, ref)
}

// ContainerInspect is `docker inspect`'s shape for a container.
type ContainerInspect struct {
	ID              string `json:"Id"`
	Created         time.Time
	Path            string
	Args            []string
	State           StateInspect
	Image           string
	ResolvConfPath  string
	HostnamePath    string
	HostsPath       string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	MountLabel      string
	ProcessLabel    string
	AppArmorProfile string
	HostConfig      runtime.HostConfig
	GraphDriver     GraphDriver
	Mounts          []MountInspect
	Config          runtime.Config
	NetworkSettings NetworkSettings
}

// StateInspect is the State of a container's inspect.
type StateInspect struct {
	Status                                       string
	Running, Paused, Restarting, OOMKilled, Dead bool
	Pid, ExitCode                                int
	Error                                        string
	StartedAt, FinishedAt                        time.Time
	Health                                       *runtime.Health `json:",omitempty"`
}

// MountInspect is one of a container's Mounts in its inspect.
type MountInspect struct {
	Type        string
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}

// InspectContainer returns what `docker inspect` shows of container ref.
func (e *Engine) InspectContainer(ctx context.Context, ref string) (*ContainerInspect, error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	s := e.Containers
	dir := filepath.Join(e.Root, "containers", c.ID)
	v := &ContainerInspect{
		ID: c.ID, Created: c.Created, Path: c.Path, Args: c.Args, Image: c.ImageID.String(),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"), HostnamePath: filepath.Join(dir, "hostname"),
		HostsPath: filepath.Join(dir, "hosts"), LogPath: s.LogPath(c.ID),
		Name: "/" + c.Name, Driver: "overlay", Platform: "linux",
		HostConfig: c.Host, Config: c.Config, Mounts: []MountInspect{},
	}
	if v.Args == nil {
		v.Args = []string{}
	}
	st := c.State
	// As Docker: a container waiting to be restarted is running, and restarting.
	running := c.Live() || st.Status == runtime.Restarting
	v.State = StateInspect{
		Status: st.Status, Running: running, Paused: st.Status == runtime.Paused, Restarting: st.Status == runtime.Restarting,
		OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
		Health: st.Health,
	}
	v.RestartCount = c.RestartCount
	v.GraphDriver = GraphDriver{Name: "overlay", Data: map[string]string{
		"UpperDir": s.Upper(c.ID), "WorkDir": filepath.Join(dir, "work"), "MergedDir": s.RootFS(c.ID),
	}}
	lowers := []string{s.InitLayer()}
	if chain, err := e.Snapshots.Lowers(c.Chain); err == nil && c.Chain != "" {
		for _, info := range chain {
			lowers = append(lowers, e.Snapshots.FS(info.ChainID))
		}
	}
	v.GraphDriver.Data["LowerDir"] = strings.Join(lowers, ":")
	v.Mounts = ContainerMounts(c)
	v.NetworkSettings = e.ContainerNetworkSettings(c)
	return v, nil
}

// ContainerMounts are the Mounts of c's inspect.
func ContainerMounts(c *runtime.Container) []MountInspect {
	out := []MountInspect{} // [] rather than null, as Docker
	for _, m := range c.Mounts {
		mi := MountInspect{Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination, RW: m.RW, Propagation: "rprivate"}
		if m.Type == "volume" {
			mi.Driver, mi.Propagation = "local", ""
		}
		if !m.RW {
			mi.Mode = "ro"
		}
		out = append(out, mi)
	}
	return out
}

// Inspect is `docker inspect` of ref: a container, else an image. kind
// narrows it to "container" or "image"; empty tries both.
func (e *Engine) Inspect(ctx context.Context, ref, kind string) (any, error) {
	if kind != "image" {
		v, err := e.InspectContainer(ctx, ref)
		if err == nil {
			return v, nil
		} else if !errors.Is(err, runtime.ErrNotFound) {
			return nil, err
		}
	}
	if kind != "container" {
		v, err := e.InspectImage(ref)
		if err == nil || !errors.Is(err, image.ErrNotFound) {
			return v, err
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSuchObject, ref)
}
