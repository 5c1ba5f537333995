package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func init() { moreCommands = append(moreCommands, attachCommand) }

func attachCommand() *cli.Command {
	return &cli.Command{
		Name: "attach", Usage: "Attach local standard input, output, and error streams to a running container", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "detach-keys", Usage: "override the key sequence for detaching a container"},
			&cli.BoolFlag{Name: "no-stdin", Usage: "do not attach STDIN"},
			&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "proxy all received signals to the process"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			c, err := e.Containers.Get(cliContext.Context, cliContext.Args().First())
			if err != nil {
				return err
			}
			if c.State.Status == runtime.Paused {
				return fmt.Errorf("You cannot attach to a paused container, unpause it first")
			}
			if c.State.Status != runtime.Running {
				return fmt.Errorf("You cannot attach to a stopped container, start it first")
			}
			if c.Config.Tty && c.Config.OpenStdin && !cliContext.Bool("no-stdin") && !term.IsTerminal(int(os.Stdin.Fd())) {
				return usage("the input device is not a TTY")
			}
			code, err := attachTo(cliContext, e, c, attachFlags{
				stdin: !cliContext.Bool("no-stdin"), stdout: true, stderr: true,
				detachKeys: cliContext.String("detach-keys"), sigProxy: cliContext.Bool("sig-proxy"),
			})
			if errors.Is(err, runtime.ErrDetached) {
				return &statusError{code: exitFailure, err: err} // Docker: "read escape sequence", exit 1
			}
			return exitWith(code, err)
		},
	}
}

// attachFlags are how a client attaches: with its stdin or not, which keys
// detach, whether its signals go to the container.
type attachFlags struct {
	stdin      bool
	stdout     bool
	stderr     bool
	detachKeys string
	sigProxy   bool
	starting   bool // its monitor waits for this client to start it
}

// attachTo attaches this terminal to running container c through its
// monitor, as `docker attach` does, until the container's run ends (its
// exit code) or the detach keys are typed (runtime.ErrDetached). With a
// TTY the terminal is raw and its size followed; without, signals go to
// the container when sigProxy.
func attachTo(cliContext *cli.Context, e *engine.Engine, c *runtime.Container, f attachFlags) (int, error) {
	keys, err := runtime.ParseDetachKeys(f.detachKeys)
	if err != nil {
		return 0, usage("%v", err)
	}
	o := runtime.AttachOptions{DetachKeys: keys, Starting: f.starting}
	if f.stdout {
		o.Stdout = os.Stdout
	}
	if f.stderr {
		o.Stderr = os.Stderr
	}
	if f.stdin && c.Config.OpenStdin {
		o.Stdin = os.Stdin
	}
	restore := func() {}
	if c.Config.Tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			o.Width, o.Height = uint16(w), uint16(h)
		}
		if o.Stdin != nil && term.IsTerminal(int(os.Stdin.Fd())) {
			state, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err != nil {
				return 0, usage("set the terminal raw: %v", err)
			}
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
		}
	}
	defer restore()
	ctx := cliContext.Context
	sigs := proxiedSignals()
	a, err := e.Containers.Attach(ctx, c.ID, o)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	go func() {
		for sig := range sigs {
			switch {
			case sig == syscall.SIGWINCH:
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					a.Resize(uint16(w), uint16(h))
				}
			case !c.Config.Tty && f.sigProxy:
				if s, ok := sig.(syscall.Signal); ok {
					e.Containers.Signal(context.WithoutCancel(ctx), c.ID, s)
				}
			}
		}
	}()
	code, ok, err := a.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	if !ok {
		// The stream ended without the monitor's word: its record has it.
		code, err = e.Containers.Wait(context.WithoutCancel(ctx), c.ID)
		if errors.Is(err, runtime.ErrNotFound) {
			return 0, nil // removed (--rm) before we could ask
		}
	}
	return code, err
}

// attachedRun starts container c in the background and attaches this
// terminal to it, as `docker run -it` and `docker start -ai` do: its monitor
// owns it, so that the detach keys (exit 0, as Docker's run) leave it
// running; otherwise cairn exits with its exit code. A run attaches the
// streams its -a said; start, all of them.
func attachedRun(cliContext *cli.Context, e *engine.Engine, c *runtime.Container, forRun bool) error {
	if err := e.Containers.StartAttached(cliContext.Context, c.ID); err != nil {
		return startFailed(err)
	}
	f := attachFlags{stdin: true, stdout: true, stderr: true, detachKeys: flagString(cliContext, "detach-keys"), sigProxy: true, starting: true}
	if forRun {
		f.stdin, f.stdout, f.stderr = c.Config.AttachStdin, c.Config.AttachStdout, c.Config.AttachStderr
	}
	if cliContext.IsSet("sig-proxy") {
		f.sigProxy = cliContext.Bool("sig-proxy")
	}
	code, err := attachTo(cliContext, e, c, f)
	switch {
	case errors.Is(err, runtime.ErrDetached):
		return nil
	case errors.Is(err, runtime.ErrCommandNotFound), errors.Is(err, runtime.ErrCannotInvoke):
		return startFailed(err)
	}
	return exitWith(code, err)
}

// flagString is the value of flag name if the command has it.
func flagString(cliContext *cli.Context, name string) string {
	for _, f := range cliContext.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return cliContext.String(name)
			}
		}
	}
	return ""
}
