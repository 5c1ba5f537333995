package main

import (
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

func init() {
	commandGroups = append(commandGroups, containerGroup)
}

// containerSubcommands are the commands of `cairn container`, as Docker's
// `docker container` has them, each the top-level command of that name: a
// command that does not exist (yet) is left out. ls (ps), inspect (of
// containers only) and prune are the group's own.
var containerSubcommands = []string{
	"attach", "commit", "cp", "create", "diff", "exec", "export", "kill", "logs", "pause", "port",
	"rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "update", "wait",
}

// containerGroup is `cairn container`, made of the top-level commands all.
func containerGroup(all []*cli.Command) *cli.Command {
	byName := map[string]*cli.Command{}
	for _, c := range all {
		byName[c.Name] = c
	}
	ls := psCommand()
	ls.Name, ls.Aliases = "ls", []string{"ps", "list"}
	inspect := &cli.Command{
		Name: "inspect", Usage: "Display detailed information on one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format output using a Go template"}},
		Action: inspectEach(func(cliContext *cli.Context, e *engine.Engine, ref string) (any, error) {
			return e.InspectContainer(cliContext.Context, ref) // "No such container", as Docker's
		}),
	}
	subs := []*cli.Command{ls, inspect, containerPruneCommand()}
	for _, name := range containerSubcommands {
		if c, ok := byName[name]; ok {
			sub := *c // a command of its own: the group's help and names are not the top-level one's
			sub.Aliases = nil
			subs = append(subs, &sub)
		}
	}
	slices.SortFunc(subs, func(a, b *cli.Command) int { return strings.Compare(a.Name, b.Name) })
	return &cli.Command{Name: "container", Usage: "Manage containers", Subcommands: subs}
}
