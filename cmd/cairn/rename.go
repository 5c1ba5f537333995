package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func init() {
	moreCommands = append(moreCommands, renameCommand)
}

func renameCommand() *cli.Command {
	return &cli.Command{
		Name: "rename", Usage: "Rename a container", ArgsUsage: "CONTAINER NEW_NAME",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 2 {
				return argsError(cliContext, "exactly 2 arguments")
			}
			old, name := cliContext.Args().Get(0), cliContext.Args().Get(1)
			if old == "" || name == "" {
				return fmt.Errorf("Neither old nor new names may be empty")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			if err := e.Containers.Rename(cliContext.Context, old, name); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, old)
			}
			return nil
		},
	}
}
