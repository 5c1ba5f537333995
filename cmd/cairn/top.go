package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, topCommand) }

// topCommand is `docker top`: what follows the container is ps's options,
// flags included (cli stops parsing flags at the first argument).
func topCommand() *cli.Command {
	return &cli.Command{
		Name: "top", Usage: "Display the running processes of a container", ArgsUsage: "CONTAINER [ps OPTIONS]",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 {
				return argsError(cliContext, "at least 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			args := cliContext.Args().Slice()
			p, err := e.Containers.Top(cliContext.Context, args[0], args[1:])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cliContext.App.Writer, 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(p.Titles, "\t"))
			for _, row := range p.Rows {
				fmt.Fprintln(w, strings.Join(row, "\t"))
			}
			return w.Flush()
		},
	}
}
