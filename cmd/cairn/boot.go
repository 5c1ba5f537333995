package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, bootCommand) }

// bootCommand starts, after a reboot, the containers whose restart policy
// says so (always, and unless-stopped unless stopped by hand), as
// Docker's daemon does when it starts: contrib/systemd/cairn-restart.service
// and contrib/init.d/cairn-restart run it.
func bootCommand() *cli.Command {
	return &cli.Command{
		Name: "boot", Usage: "Start the containers whose restart policy is always or unless-stopped (at boot)",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			warnSeccomp()
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			started, err := e.Containers.BootRestart(cliContext.Context)
			for _, id := range started {
				fmt.Fprintln(cliContext.App.Writer, id)
			}
			return err
		},
	}
}
