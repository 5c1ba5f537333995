package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/engine"
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
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	list, err := e.ContainerSummaries(cliContext.Context, engine.ListOptions{All: cliContext.Bool("all"), Latest: cliContext.Bool("latest")})
	if err != nil {
		return err
	}
	noTrunc := cliContext.Bool("no-trunc")
	var rows []any
	for _, c := range list {
		rows = append(rows, containerRow(c, noTrunc))
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

func containerRow(c engine.ContainerSummary, noTrunc bool) psRow {
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	r := psRow{
		ID: runtime.ShortID(c.ID), Image: c.Config.Image, Command: strconv.Quote(ellipsis(cmd, 20)),
		CreatedAt:  c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(c.Created)) + " ago",
		Status:     c.Status, State: c.State.Status, Names: c.Name, Networks: strings.Join(c.Networks, ","), Ports: c.Ports,
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
			return inspectEach(func(cliContext *cli.Context, e *engine.Engine, ref string) (any, error) {
				return e.Inspect(cliContext.Context, ref, typ)
			})(cliContext)
		},
	}
}
