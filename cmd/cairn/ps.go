package main

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name: "ps", Usage: "List containers",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
			filterFlag("filter output based on conditions provided"),
			&cli.StringFlag{Name: "format", Usage: "pretty-print containers using a Go template, or json"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Value: -1, Usage: "show n last created containers (includes all states)"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the latest created container (includes all states)"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "don't truncate output"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display container IDs"},
			&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "display total file sizes"},
		},
		Action: runPs,
	}
}

// psRow is one line of `cairn ps`, with the fields --format sees.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, Status, State, Names, Labels, Mounts, Networks, Size, LocalVolumes string

	labels map[string]string
}

// Label is `{{.Label "name"}}`: the value of one of its labels.
func (r psRow) Label(name string) string { return r.labels[name] }

// MarshalJSON is `{{json .}}`: Docker 20.10's keys.
func (r psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Command": r.Command, "CreatedAt": r.CreatedAt, "ID": r.ID, "Image": r.Image, "Labels": r.Labels,
		"LocalVolumes": r.LocalVolumes, "Mounts": r.Mounts, "Names": r.Names, "Networks": r.Networks, "Ports": r.Ports,
		"RunningFor": r.RunningFor, "Size": r.Size, "State": r.State, "Status": r.Status,
	})
}

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Ports": "PORTS", "Status": "STATUS", "State": "STATE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
	"Networks": "NETWORKS", "Size": "SIZE", "LocalVolumes": "LOCAL VOLUMES",
}

func runPs(cliContext *cli.Context) error {
	oneShot()
	if cliContext.NArg() != 0 {
		return argsError(cliContext, "no arguments")
	}
	filters, err := parseFilters(cliContext)
	if err != nil {
		return err
	}
	format := cliContext.String("format")
	size := cliContext.Bool("size")
	// As Docker 20.10's CLI: a --format wins over -q.
	switch {
	case format == "" && cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "" && size:
		format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
	case format == "":
		format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	default:
		// As Docker's CLI: a format that shows the size asks for it.
		size = size || usesField(format, "Size")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	list, err := e.ContainerSummaries(cliContext.Context, engine.ListOptions{
		All: cliContext.Bool("all"), Latest: cliContext.Bool("latest"), Limit: cliContext.Int("last"),
		Filters: filters, Size: size,
	})
	if err != nil {
		return err
	}
	noTrunc := cliContext.Bool("no-trunc")
	var rows []any
	for _, c := range list {
		rows = append(rows, containerRow(c, noTrunc))
	}
	return table{w: cliContext.App.Writer, format: format, headers: psHeaders}.write(rows)
}

// psImage is the IMAGE column as Docker's CLI shows it: truncated, an ID
// in its short form and a name in its familiar form without a digest.
func psImage(img, id string, trunc bool) string {
	if img == "" {
		return "<no image>"
	}
	if !trunc {
		return img
	}
	short := func(s string) string {
		if i := strings.IndexRune(s, ':'); i >= 0 {
			s = s[i+1:]
		}
		return runtime.ShortID(s)
	}
	if short(id) == short(img) {
		return short(img)
	}
	if image.IsFamiliar(img) {
		return img // as image.FamiliarName: what the parse gives back (a thousand rows: 5 ms)
	}
	return familiarImage(img)
}

// familiarImage is the familiar form of the name img, without a digest.
func familiarImage(img string) string {
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if nt, ok := ref.(reference.NamedTagged); ok {
		if t, err := reference.WithTag(reference.TrimNamed(nt), nt.Tag()); err == nil {
			return reference.FamiliarString(t)
		}
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

func containerRow(c engine.ContainerSummary, noTrunc bool) psRow {
	cmd := engine.CommandLine(c.Container)
	r := psRow{
		ID: runtime.ShortID(c.ID), Image: psImage(c.Image, c.ImageID.String(), !noTrunc), Command: strconv.Quote(ellipsis(cmd, 20)),
		CreatedAt:  c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Now().UTC().Sub(c.Created)) + " ago",
		Status:     c.Status, State: c.State.Status, Names: c.Name, Networks: strings.Join(c.Networks, ","), Ports: c.Ports,
		labels: c.Config.Labels,
	}
	if c.State.Restarting {
		r.State = "restarting"
	}
	if noTrunc {
		r.ID, r.Command = c.ID, strconv.Quote(cmd)
	}
	var labels, mounts []string
	for k, v := range c.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	volumes := 0
	for _, m := range c.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if !noTrunc {
			name = ellipsis(name, 15)
		}
		mounts = append(mounts, name)
		if m.Type == "volume" {
			volumes++
		}
	}
	r.Labels, r.Mounts, r.LocalVolumes = strings.Join(labels, ","), strings.Join(mounts, ","), strconv.Itoa(volumes)
	r.Size = humanSize(c.SizeRw)
	if c.SizeRootFs > 0 {
		r.Size += " (virtual " + humanSize(c.SizeRootFs) + ")"
	}
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
			return inspectOf(typ)(cliContext)
		},
	}
}

// inspectOf is the action of an inspect of objects of kind typ
// ("container", "image", or "" for either).
func inspectOf(typ string) cli.ActionFunc {
	return inspectEach(func(cliContext *cli.Context, e *engine.Engine, ref string) (any, error) {
		return e.Inspect(cliContext.Context, ref, typ)
	})
}
