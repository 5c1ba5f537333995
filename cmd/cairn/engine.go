package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

// openEngine opens the stores of --root: the one place the CLI does.
func openEngine(cliContext *cli.Context) (*engine.Engine, error) {
	root, err := filepath.Abs(cliContext.String("root"))
	if err != nil {
		return nil, &statusError{code: exitCairn, err: err}
	}
	storeRoot = root
	self, err := os.Executable()
	if err != nil {
		return nil, &statusError{code: exitCairn, err: fmt.Errorf("find cairn's own binary: %w", err)}
	}
	base, rootless, err := runBase()
	if err != nil {
		return nil, &statusError{code: exitCairn, err: err}
	}
	e, err := engine.Open(engine.Options{
		Root: root, RegistryConfig: cliContext.String("config"), RunBase: base, Rootless: rootless,
		Monitor: func(id string) *exec.Cmd {
			return exec.Command(self, "--root", root, monitorCommandName, id)
		},
	})
	if err != nil {
		return nil, &statusError{code: exitCairn, err: err}
	}
	return e, nil
}

// storeRoot is the root openEngine opened, for the advice of exitCode
// about a full or read-only filesystem (engine.StorageError).
var storeRoot string

// resolveEnv gives each bare KEY of a -e or --env-file list the
// value it has in cairn's own environment, as Docker's CLI does; a KEY the
// environment lacks is left out.
func resolveEnv(list []string) []string {
	var out []string
	for _, kv := range list {
		if k, _, ok := strings.Cut(kv, "="); !ok && k != "" {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			kv = k + "=" + v
		}
		out = append(out, kv)
	}
	return out
}
