package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func createCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "Create a new container", ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		UseShortOptionHandling: true,
		Flags:                  createFlags(),
		Action: func(cliContext *cli.Context) error {
			_, c, err := createContainer(cliContext, false)
			if err != nil {
				return err
			}
			fmt.Fprintln(cliContext.App.Writer, c.ID)
			return nil
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name: "run", Usage: "Create and run a new container from an image", ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		UseShortOptionHandling: true,
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run the container in the background and print its ID"},
			&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "proxy received signals to the process"},
			&cli.StringFlag{Name: "detach-keys", Usage: "override the key sequence for detaching a container"},
		),
		Action: runRun,
	}
}

// usage is an error of the command line: exit 125, as Docker's.
func usage(format string, args ...any) error {
	return &statusError{code: exitCairn, err: fmt.Errorf(format, args...)}
}

// flagError is Docker's error for a flag's bad value.
func flagError(cliContext *cli.Context, flag, value string, err error) error {
	name := "--" + flag
	for _, f := range cliContext.Command.Flags {
		names := f.Names()
		if names[0] == flag && len(names) > 1 && len(names[1]) == 1 {
			name = "-" + names[1] + ", --" + flag
		}
	}
	return usage("invalid argument %q for \"%s\" flag: %v\nSee 'cairn %s --help'.", value, name, err, cliContext.Command.Name)
}

// createContainer creates the container `run` or `create` describes,
// pulling its image first as --pull says.
func createContainer(cliContext *cli.Context, forRun bool) (*engine.Engine, *runtime.Container, error) {
	o, err := createOptions(cliContext)
	if err != nil {
		return nil, nil, err
	}
	if o.Tty && o.OpenStdin && forRun && !cliContext.Bool("detach") && !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, nil, usage("the input device is not a TTY")
	}
	policy, err := engine.ParsePullPolicy(cliContext.String("pull"))
	if err != nil {
		return nil, nil, usage("%v", err)
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return nil, nil, err
	}
	// --cidfile is made before the container, so that a file already there
	// stops it (as Docker: another container may be using it), and removed
	// if the container is not made.
	var cid *os.File
	if path := o.Host.ContainerIDFile; path != "" {
		if _, err := os.Stat(path); err == nil {
			return nil, nil, usage("Container ID file found, make sure the other container isn't running or delete %s", path)
		}
		if cid, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return nil, nil, usage("Failed to create the container ID file: %v", err)
		}
		defer func() {
			if cid != nil {
				cid.Close()
				os.Remove(path)
			}
		}()
	}
	errOut := cliContext.App.ErrWriter
	var report engine.PullReporter = newPullReport(errOut)
	if cliContext.Bool("quiet") {
		report = nil
	}
	c, err := e.Create(cliContext.Context, engine.CreateOptions{
		CreateOptions: o, Pull: policy,
		PullOptions: engine.PullOptions{Platform: cliContext.String("platform"), Keychain: dockerKeychain{}, Report: report},
		// As Docker: an image that is not there is pulled, and said so on stderr.
		Missing: func(ref string) { fmt.Fprintf(errOut, "Unable to find image '%s' locally\n", ref) },
	})
	switch {
	case errors.Is(err, image.ErrNotFound):
		return nil, nil, usage("Unable to find image '%s' locally: %v", o.Image, err)
	case err != nil:
		return nil, nil, &statusError{code: exitCairn, err: err}
	}
	if cid != nil {
		_, err := cid.WriteString(c.ID)
		if cerr := cid.Close(); err == nil {
			err = cerr
		}
		cid = nil
		if err != nil {
			return nil, nil, usage("Failed to write the container ID to the file: %v", err)
		}
	}
	return e, c, nil
}

func runRun(cliContext *cli.Context) error {
	warnSeccomp()
	e, c, err := createContainer(cliContext, true)
	if err != nil {
		return err
	}
	if cliContext.Bool("detach") {
		if err := e.Containers.StartDetached(cliContext.Context, c.ID); err != nil {
			return startFailed(err)
		}
		fmt.Fprintln(cliContext.App.Writer, c.ID)
		return nil
	}
	if c.Config.OpenStdin && c.Config.AttachStdin || c.HasRestartPolicy() {
		// Its stdin attached, or restarted when it exits: through a
		// monitor, so that the detach keys leave it running and its
		// policy outlives this process, as Docker's. The exit code is the
		// first run's.
		return attachedRun(cliContext, e, c, true)
	}
	return foreground(cliContext, e, c, !c.Host.AutoRemove)
}

// foreground runs container c attached to this terminal, as `docker run`
// does, and exits with its exit code.
func foreground(cliContext *cli.Context, e *engine.Engine, c *runtime.Container, log bool) error {
	sigProxy := true
	if cliContext.IsSet("sig-proxy") {
		sigProxy = cliContext.Bool("sig-proxy")
	}
	code, err := runAttached(cliContext.Context, c.Config.Tty, c.Config.OpenStdin, sigProxy, func(o runtime.IO) (attached, error) {
		o.Log = log
		if !c.Config.AttachStdout {
			o.Stdout = nil // -a says which streams this terminal sees
		}
		if !c.Config.AttachStderr {
			o.Stderr = nil
		}
		t, err := e.Containers.Start(cliContext.Context, c.ID, o)
		if err != nil {
			return nil, startFailed(err)
		}
		return t, nil
	})
	return exitWith(code, err)
}

// stopTimeoutOf is how long `stop` and `restart` wait for container ref
// before SIGKILL: -t if given, else the container's --stop-timeout, else
// Docker's 10 seconds.
func stopTimeoutOf(cliContext *cli.Context, e *engine.Engine, ref string) time.Duration {
	if cliContext.IsSet("time") {
		return stopTimeout(cliContext)
	}
	if c, err := e.Containers.Get(cliContext.Context, ref); err == nil {
		return c.StopTimeout()
	}
	return stopTimeout(cliContext)
}
