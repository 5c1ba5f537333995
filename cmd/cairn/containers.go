package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// monitorCommandName is the hidden command a detached container's monitor runs.
const monitorCommandName = "container-monitor"

func startCommand() *cli.Command {
	return &cli.Command{
		Name: "start", Usage: "Start one or more stopped containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "attach", Aliases: []string{"a"}, Usage: "attach STDOUT/STDERR and forward signals"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "attach the container's STDIN"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 {
				return argsError(cliContext, "at least 1 argument")
			}
			warnSeccomp()
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			ctx := cliContext.Context
			if cliContext.Bool("attach") || cliContext.Bool("interactive") {
				if cliContext.NArg() > 1 {
					return usage("you cannot start and attach multiple containers at once")
				}
				c, err := e.Containers.Get(ctx, cliContext.Args().First())
				if err != nil {
					return err
				}
				if cliContext.Bool("interactive") && c.Config.OpenStdin {
					// Through a monitor, so that the detach keys leave it running.
					return attachedRun(cliContext, e, c, false)
				}
				c.Config.OpenStdin = false
				return foreground(cliContext, e, c, true)
			}
			return eachContainer(cliContext, func(ref string) error {
				err := e.Containers.StartDetached(ctx, ref)
				if errors.Is(err, runtime.ErrRunning) {
					return nil // Docker: starting a running container is no error
				}
				return err
			})
		},
	}
}

func stopTimeout(cliContext *cli.Context) time.Duration {
	t := cliContext.Int("time")
	if t < 0 {
		return 100 * 365 * 24 * time.Hour // -1: wait as long as it takes
	}
	return time.Duration(t) * time.Second
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name: "stop", Usage: "Stop one or more running containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before killing the container"}},
		Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
			return e.Containers.Stop(cliContext.Context, ref, stopTimeoutOf(cliContext, e, ref))
		}),
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name: "restart", Usage: "Restart one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before killing the container"}},
		Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
			warnSeccomp()
			return e.Restart(cliContext.Context, ref, stopTimeoutOf(cliContext, e, ref))
		}),
	}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name: "kill", Usage: "Kill one or more running containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []cli.Flag{&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "KILL", Usage: "signal to send to the container"}},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 {
				return argsError(cliContext, "at least 1 argument")
			}
			sig, err := runtime.ParseSignal(cliContext.String("signal"))
			if err != nil {
				return usage("%v", err)
			}
			return onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
				return e.Containers.Kill(cliContext.Context, ref, sig)
			})(cliContext)
		},
	}
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name: "wait", Usage: "Block until one or more containers stop, then print their exit codes", ArgsUsage: "CONTAINER [CONTAINER...]",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 {
				return argsError(cliContext, "at least 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			return eachArg(cliContext, func(ref string) error {
				code, err := e.Containers.Wait(cliContext.Context, ref)
				if err == nil {
					fmt.Fprintln(cliContext.App.Writer, code)
				}
				return err
			})
		},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Usage: "Remove one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force the removal of a running container (uses SIGKILL)"},
			&cli.BoolFlag{Name: "volumes", Aliases: []string{"v"}, Usage: "remove anonymous volumes associated with the container"},
		},
		Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
			return e.Containers.Remove(cliContext.Context, ref, runtime.RemoveOptions{Force: cliContext.Bool("force"), Volumes: cliContext.Bool("volumes")})
		}),
	}
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "Fetch the logs of a container", ArgsUsage: "CONTAINER",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow log output"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "number of lines to show from the end of the logs"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			tail := -1
			if t := cliContext.String("tail"); t != "all" {
				n, err := strconv.Atoi(t)
				if err != nil {
					return usage("invalid value for \"tail\": %q is not a number", t)
				}
				tail = n
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			return e.Containers.Logs(cliContext.Context, cliContext.Args().First(),
				runtime.LogOptions{Follow: cliContext.Bool("follow"), Tail: tail, Timestamps: cliContext.Bool("timestamps")},
				cliContext.App.Writer, cliContext.App.ErrWriter)
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name: "export", Usage: "Export a container's filesystem as a tar archive", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to a file, instead of STDOUT"}},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			ref := cliContext.Args().First()
			if _, err := e.Containers.Get(cliContext.Context, ref); err != nil {
				return err
			}
			write := func(w io.Writer) error { return e.Containers.Export(cliContext.Context, ref, w) }
			if out := cliContext.String("output"); out != "" {
				return writeFileAtomic(out, write)
			}
			if term.IsTerminal(int(os.Stdout.Fd())) {
				return usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			return write(cliContext.App.Writer)
		},
	}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "Execute a command in a running container", ArgsUsage: "CONTAINER COMMAND [ARG...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep STDIN open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detached mode: run the command in the background"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "username or UID (format: <name|uid>[:<group|gid>])"},
		},
		Action: runExec,
	}
}

func runExec(cliContext *cli.Context) error {
	warnSeccomp()
	if cliContext.NArg() < 2 {
		return argsError(cliContext, "at least 2 arguments")
	}
	args := cliContext.Args().Slice()
	detach := cliContext.Bool("detach")
	o := runtime.ExecOptions{
		Args: args[1:], Env: resolveEnv(cliContext.StringSlice("env")),
		WorkingDir: cliContext.String("workdir"), User: cliContext.String("user"),
		Tty: cliContext.Bool("tty"), OpenStdin: cliContext.Bool("interactive") && !detach,
	}
	if o.Tty && o.OpenStdin && !term.IsTerminal(int(os.Stdin.Fd())) {
		return usage("the input device is not a TTY")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	exec := func(io runtime.IO) (*runtime.Process, error) {
		o.IO = io
		p, err := e.Containers.Exec(cliContext.Context, args[0], o)
		if errors.Is(err, runtime.ErrCommandNotFound) || errors.Is(err, runtime.ErrCannotInvoke) {
			return nil, startFailed(err)
		}
		return p, err
	}
	if detach {
		p, err := exec(runtime.IO{})
		if err != nil {
			return err
		}
		p.Release()
		return nil
	}
	code, err := runAttached(cliContext.Context, o.Tty, o.OpenStdin, true, func(io runtime.IO) (attached, error) {
		p, err := exec(io)
		if err != nil {
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	return exitWith(code, nil)
}

// monitorCommand is the hidden command a detached container's monitor runs
// (see runtime.StartDetached).
func monitorCommand() *cli.Command {
	return &cli.Command{
		Name: monitorCommandName, Hidden: true, ArgsUsage: "ID",
		Action: func(cliContext *cli.Context) error {
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			return e.Containers.Serve(cliContext.Context, cliContext.Args().First())
		},
	}
}
