package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name: "ps", Usage: "List containers",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display container IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "don't truncate output"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the latest created container"},
			&cli.StringFlag{Name: "format", Usage: "format output using a Go template"},
		},
		Action: runPs,
	}
}

// psRow is one line of `cairn ps`, with the fields --format sees.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, Status, State, Names, Labels, Mounts, Networks, Size string
}

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Ports": "PORTS", "Status": "STATUS", "State": "STATE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
	"Networks": "NETWORKS", "Size": "SIZE",
}

func runPs(cliContext *cli.Context) error {
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	list, err := s.containers.List(cliContext.Context)
	if err != nil {
		return err
	}
	noTrunc := cliContext.Bool("no-trunc")
	var rows []any
	for _, c := range list {
		if !cliContext.Bool("all") && !cliContext.Bool("latest") && c.State.Status != runtime.Running && c.State.Status != runtime.Paused {
			continue
		}
		rows = append(rows, containerRow(c, noTrunc))
		if cliContext.Bool("latest") {
			break
		}
	}
	format := cliContext.String("format")
	switch {
	case cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "":
		format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: psHeaders}.write(rows)
}

func containerRow(c *runtime.Container, noTrunc bool) psRow {
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	r := psRow{
		ID: runtime.ShortID(c.ID), Image: c.Config.Image, Command: strconv.Quote(ellipsis(cmd, 20)),
		CreatedAt:  c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(c.Created)) + " ago",
		Status:     status(c), State: c.State.Status, Names: c.Name, Networks: c.Host.NetworkMode,
	}
	if noTrunc {
		r.ID, r.Command = c.ID, strconv.Quote(cmd)
	}
	var labels, mounts []string
	for k, v := range c.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	for _, m := range c.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		mounts = append(mounts, ellipsis(name, 15))
	}
	r.Labels, r.Mounts = strings.Join(labels, ","), strings.Join(mounts, ",")
	return r
}

// status is the STATUS column of `docker ps`.
func status(c *runtime.Container) string {
	switch c.State.Status {
	case runtime.Running:
		return "Up " + units.HumanDuration(time.Since(c.State.StartedAt))
	case runtime.Paused:
		return "Up " + units.HumanDuration(time.Since(c.State.StartedAt)) + " (Paused)"
	case runtime.Exited:
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(time.Since(c.State.FinishedAt)))
	}
	return "Created"
}

// containerInspect is `docker inspect`'s shape for a container.
type containerInspect struct {
	ID              string `json:"Id"`
	Created         time.Time
	Path            string
	Args            []string
	State           stateInspect
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
	GraphDriver     struct {
		Data map[string]string
		Name string
	}
	Mounts          []mountInspect
	Config          runtime.Config
	NetworkSettings struct {
		Networks map[string]struct{}
	}
}

type stateInspect struct {
	Status                                       string
	Running, Paused, Restarting, OOMKilled, Dead bool
	Pid, ExitCode                                int
	Error                                        string
	StartedAt, FinishedAt                        time.Time
}

type mountInspect struct {
	Type        string
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}

func (s *stores) inspectContainer(c *runtime.Container) *containerInspect {
	dir := filepath.Join(s.root, "containers", c.ID)
	v := &containerInspect{
		ID: c.ID, Created: c.Created, Path: c.Path, Args: c.Args, Image: c.ImageID.String(),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"), HostnamePath: filepath.Join(dir, "hostname"),
		HostsPath: filepath.Join(dir, "hosts"), LogPath: s.containers.LogPath(c.ID),
		Name: "/" + c.Name, Driver: "overlay", Platform: "linux",
		HostConfig: c.Host, Config: c.Config, Mounts: []mountInspect{},
	}
	if v.Args == nil {
		v.Args = []string{}
	}
	st := c.State
	v.State = stateInspect{
		Status: st.Status, Running: st.Status == runtime.Running || st.Status == runtime.Paused, Paused: st.Status == runtime.Paused,
		OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
	}
	v.GraphDriver.Name = "overlay"
	v.GraphDriver.Data = map[string]string{
		"UpperDir": s.containers.Upper(c.ID), "WorkDir": filepath.Join(dir, "work"), "MergedDir": s.containers.RootFS(c.ID),
	}
	lowers := []string{s.containers.InitLayer()}
	if chain, err := s.snapshots.Chain(c.Chain); err == nil && c.Chain != "" {
		for _, info := range chain {
			lowers = append(lowers, s.snapshots.FS(info.ChainID))
		}
	}
	v.GraphDriver.Data["LowerDir"] = strings.Join(lowers, ":")
	for _, m := range c.Mounts {
		mi := mountInspect{Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination, RW: m.RW, Propagation: "rprivate"}
		if m.Type == "volume" {
			mi.Driver, mi.Propagation = "local", ""
		}
		if !m.RW {
			mi.Mode = "ro"
		}
		v.Mounts = append(v.Mounts, mi)
	}
	v.NetworkSettings.Networks = map[string]struct{}{c.Host.NetworkMode: {}}
	return v
}

// inspectCommand is `docker inspect`: containers first, then images.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "Return low-level information on containers and images", ArgsUsage: "NAME|ID [NAME|ID...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format output using a Go template"},
			&cli.StringFlag{Name: "type", Usage: "return JSON for the specified type (container or image)"},
		},
		Action: func(cliContext *cli.Context) error {
			typ := cliContext.String("type")
			if typ != "" && typ != "container" && typ != "image" {
				return usage("%q is not a valid value for --type", typ)
			}
			return inspectEach(func(cliContext *cli.Context, s *stores, ref string) (any, error) {
				if typ != "image" {
					c, err := s.containers.Get(cliContext.Context, ref)
					if err == nil {
						return s.inspectContainer(c), nil
					} else if !errors.Is(err, runtime.ErrNotFound) {
						return nil, err
					}
				}
				if typ != "container" {
					v, err := s.inspectImage(ref)
					if err == nil || !errors.Is(err, image.ErrNotFound) {
						return v, err
					}
				}
				return nil, errors.New("No such object: " + ref)
			})(cliContext)
		},
	}
}
