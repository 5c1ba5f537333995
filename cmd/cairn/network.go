package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/network"
	"github.com/urfave/cli/v2"
)

type networkRow struct{ ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt string }

var networkHeaders = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED"}

// networkError gives the network store's refusals Docker's exit codes: a
// usage error for a bad argument, 1 for the rest.
func networkError(err error) error {
	if errors.Is(err, network.ErrInvalid) || errors.Is(err, engine.ErrInvalid) {
		return usage("%v", err)
	}
	return err
}

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "Manage networks",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "Create a network", ArgsUsage: "NETWORK",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "bridge", Usage: "driver to manage the network (bridge)"},
					&cli.StringFlag{Name: "subnet", Usage: "subnet in CIDR format that represents a network segment"},
					&cli.StringFlag{Name: "gateway", Usage: "IPv4 gateway for the subnet"},
					&cli.BoolFlag{Name: "internal", Usage: "restrict external access to the network"},
					&cli.StringSliceFlag{Name: "label", Usage: "set metadata on a network"},
				},
				Action: func(cliContext *cli.Context) error {
					if cliContext.NArg() != 1 {
						return argsError(cliContext, "exactly 1 argument")
					}
					if d := cliContext.String("driver"); d != "bridge" {
						return usage("network driver %q is not supported: cairn has the bridge driver", d)
					}
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					n, err := e.CreateNetwork(cliContext.Context, network.CreateOptions{
						Name: cliContext.Args().First(), Subnet: cliContext.String("subnet"), Gateway: cliContext.String("gateway"),
						Internal: cliContext.Bool("internal"), Labels: labels(cliContext.StringSlice("label")),
					})
					if err != nil {
						return networkError(err)
					}
					fmt.Fprintln(cliContext.App.Writer, n.ID)
					return nil
				},
			},
			{
				Name: "ls", Aliases: []string{"list"}, Usage: "List networks",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display network IDs"},
					&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate the output"},
					&cli.StringFlag{Name: "format", Usage: "pretty-print networks using a Go template"},
				},
				Action: func(cliContext *cli.Context) error {
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					list, err := e.Networks.List()
					if err != nil {
						return err
					}
					var rows []any
					for _, n := range list {
						r := networkRow{ID: n.ID[:12], Name: n.Name, Driver: n.Driver, Scope: "local", IPv6: "false", Internal: fmt.Sprint(n.Internal)}
						if cliContext.Bool("no-trunc") {
							r.ID = n.ID
						}
						var ls []string
						for k, v := range n.Labels {
							ls = append(ls, k+"="+v)
						}
						r.Labels = strings.Join(ls, ",")
						if !n.Created.IsZero() {
							r.CreatedAt = n.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
						}
						rows = append(rows, r)
					}
					format := cliContext.String("format")
					switch {
					case cliContext.Bool("quiet"):
						format = "{{.ID}}"
					case format == "":
						format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
					}
					return table{w: cliContext.App.Writer, format: format, headers: networkHeaders}.write(rows)
				},
			},
			{
				Name: "inspect", Usage: "Display detailed information on one or more networks", ArgsUsage: "NETWORK [NETWORK...]",
				Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format the output using the given Go template"}},
				Action: inspectEach(func(cliContext *cli.Context, e *engine.Engine, ref string) (any, error) {
					return e.InspectNetwork(ref)
				}),
			},
			{
				Name: "rm", Aliases: []string{"remove"}, Usage: "Remove one or more networks", ArgsUsage: "NETWORK [NETWORK...]",
				Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
					return networkError(e.RemoveNetwork(cliContext.Context, ref))
				}),
			},
			{
				Name: "prune", Usage: "Remove all unused networks",
				Flags: []cli.Flag{forceFlag()},
				Action: func(cliContext *cli.Context) error {
					if !confirm(cliContext, networksWarning) {
						return nil
					}
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					removed, err := e.PruneNetworks(cliContext.Context)
					if len(removed) > 0 {
						fmt.Fprintln(cliContext.App.Writer, "Deleted Networks:")
						for _, n := range removed {
							fmt.Fprintln(cliContext.App.Writer, n)
						}
					}
					return err
				},
			},
			{
				Name: "connect", Usage: "Connect a container to a network", ArgsUsage: "NETWORK CONTAINER",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "alias", Usage: "add network-scoped alias for the container"},
					&cli.StringFlag{Name: "ip", Usage: "IPv4 address (e.g., 172.30.100.104)"},
				},
				Action: func(cliContext *cli.Context) error {
					if cliContext.NArg() != 2 {
						return argsError(cliContext, "exactly 2 arguments")
					}
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					return networkError(e.Connect(cliContext.Context, cliContext.Args().Get(0), cliContext.Args().Get(1),
						engine.ConnectOptions{Aliases: cliContext.StringSlice("alias"), IP: cliContext.String("ip")}))
				},
			},
			{
				Name: "disconnect", Usage: "Disconnect a container from a network", ArgsUsage: "NETWORK CONTAINER",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force the container to disconnect from a network"}},
				Action: func(cliContext *cli.Context) error {
					if cliContext.NArg() != 2 {
						return argsError(cliContext, "exactly 2 arguments")
					}
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					return networkError(e.Disconnect(cliContext.Context, cliContext.Args().Get(0), cliContext.Args().Get(1)))
				},
			},
			{
				Name: "reload", Usage: "Put back the firewall rules of every container's network (after a firewall flush)",
				Action: func(cliContext *cli.Context) error {
					e, err := openEngine(cliContext)
					if err != nil {
						return err
					}
					n, err := e.Networks.Reload(cliContext.Context)
					if err != nil {
						return err
					}
					fmt.Fprintf(cliContext.App.Writer, "Reloaded the networks of %d containers\n", n)
					return nil
				},
			},
		},
	}
}

// labels parses --label k=v flags.
func labels(list []string) map[string]string {
	var out map[string]string
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

func portCommand() *cli.Command {
	return &cli.Command{
		Name: "port", Usage: "List port mappings or a specific mapping for the container", ArgsUsage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
		Action: func(cliContext *cli.Context) error {
			if n := cliContext.NArg(); n < 1 || n > 2 {
				return argsError(cliContext, "at least 1 and at most 2 arguments")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			ref := cliContext.Args().First()
			ports, err := e.Ports(cliContext.Context, ref)
			if err != nil {
				return err
			}
			if want := cliContext.Args().Get(1); want != "" {
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				found := false
				for _, p := range ports {
					if p.Port == want {
						fmt.Fprintf(cliContext.App.Writer, "%s:%s\n", p.HostIP, p.Host)
						found = true
					}
				}
				if !found {
					return fmt.Errorf("No public port '%s' published for %s", want, ref)
				}
				return nil
			}
			for _, p := range ports {
				fmt.Fprintf(cliContext.App.Writer, "%s -> %s:%s\n", p.Port, p.HostIP, p.Host)
			}
			return nil
		},
	}
}
