package main

import (
	"fmt"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

type volumeRow struct{ Driver, Name, Mountpoint, Scope, Labels string }

var volumeHeaders = map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS"}

func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "Manage volumes",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "Create a volume", ArgsUsage: "[VOLUME]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "specify volume name"},
					&cli.StringSliceFlag{Name: "label", Usage: "set metadata for a volume"},
				},
				Action: func(cliContext *cli.Context) error {
					if cliContext.NArg() > 1 {
						return argsError(cliContext, "at most 1 argument")
					}
					name := cliContext.Args().First()
					if n := cliContext.String("name"); n != "" {
						if name != "" && name != n {
							return usage("conflicting options: either specify --name or provide positional arg, not both")
						}
						name = n
					}
					var labels map[string]string
					for _, l := range cliContext.StringSlice("label") {
						k, v, _ := strings.Cut(l, "=")
						if labels == nil {
							labels = map[string]string{}
						}
						labels[k] = v
					}
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					v, err := e.CreateVolume(cliContext.Context, name, labels)
					if err != nil {
						return err
					}
					fmt.Fprintln(cliContext.App.Writer, v.Name)
					return nil
				},
			},
			{
				Name: "ls", Aliases: []string{"list"}, Usage: "List volumes",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display volume names"},
					&cli.StringFlag{Name: "format", Usage: "format output using a Go template"},
				},
				Action: func(cliContext *cli.Context) error {
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					vols, err := e.Containers.Volumes()
					if err != nil {
						return err
					}
					var rows []any
					for _, v := range vols {
						var labels []string
						for k, val := range v.Labels {
							labels = append(labels, k+"="+val)
						}
						rows = append(rows, volumeRow{Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope, Labels: strings.Join(labels, ",")})
					}
					format := cliContext.String("format")
					switch {
					case cliContext.Bool("quiet"):
						format = "{{.Name}}"
					case format == "":
						format = "table {{.Driver}}\t{{.Name}}"
					}
					return table{w: cliContext.App.Writer, format: format, headers: volumeHeaders}.write(rows)
				},
			},
			{
				Name: "inspect", Usage: "Display detailed information on one or more volumes", ArgsUsage: "VOLUME [VOLUME...]",
				Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format output using a Go template"}},
				Action: inspectEach(func(cliContext *cli.Context, e *engine.Engine, name string) (any, error) {
					return e.Containers.VolumeInspect(name)
				}),
			},
			{
				Name: "rm", Aliases: []string{"remove"}, Usage: "Remove one or more volumes", ArgsUsage: "VOLUME [VOLUME...]",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not fail for a volume that does not exist"}},
				Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, name string) error {
					return e.RemoveVolume(cliContext.Context, name, cliContext.Bool("force"))
				}),
			},
			{
				Name: "prune", Usage: "Remove unused anonymous volumes (all unused volumes with -a)",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all unused volumes, not just anonymous ones"},
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not prompt for confirmation (cairn never prompts)"},
				},
				Action: func(cliContext *cli.Context) error {
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					rep, err := e.PruneVolumes(cliContext.Context, engine.PruneOptions{All: cliContext.Bool("all")})
					if len(rep.Deleted) > 0 {
						fmt.Fprintln(cliContext.App.Writer, "Deleted Volumes:")
						for _, n := range rep.Deleted {
							fmt.Fprintln(cliContext.App.Writer, n)
						}
					}
					return err
				},
			},
		},
	}
}
