package main

import (
	"fmt"
	"os"

	"github.com/cairn-runtime/cairn/rootless"
	"github.com/urfave/cli/v2"
)

// enterRootless is the app's Before: the cairn of an unprivileged user
// re-executes itself in that user's namespace (package rootless) for every
// command but help, and --root defaults to the user's own store.
func enterRootless(cliContext *cli.Context) error {
	switch cliContext.Args().First() {
	case "", "help", "h", "completion":
		return nil
	}
	if rootless.Needed() {
		self, err := os.Executable()
		if err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("find cairn's own binary: %w", err)}
		}
		return &statusError{code: exitCairn, err: rootless.Enter(cliContext.Context, self)}
	}
	if rootless.Active() && !cliContext.IsSet("root") {
		dir, err := rootless.DataDir()
		if err != nil {
			return &statusError{code: exitCairn, err: err}
		}
		if err := cliContext.Set("root", dir); err != nil {
			return err
		}
	}
	return nil
}

// runBase is where the runtime state of the stores opened by this cairn
// lives: the default (/run/cairn) for root, the user's runtime directory
// for an unprivileged user.
func runBase() (string, bool, error) {
	if !rootless.Active() {
		return "", false, nil
	}
	dir, err := rootless.RunDir()
	return dir, true, err
}
