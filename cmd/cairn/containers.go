package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// monitorCommandName is the hidden command a detached container's monitor runs.
const monitorCommandName = "container-monitor"

// createFlags are the flags of `run` and `create`, with Docker's names.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "assign a name to the container"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep STDIN open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables (KEY=VALUE, or KEY for the host's value)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read in a file of environment variables"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set meta data on a container"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "username or UID (format: <name|uid>[:<group|gid>])"},
		&cli.StringFlag{Name: "entrypoint", Usage: "overwrite the default ENTRYPOINT of the image"},
		&cli.StringFlag{Name: "hostname", Aliases: []string{"h"}, Usage: "container host name"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind mount a volume (HOST:CONTAINER[:ro], NAME:CONTAINER, CONTAINER)"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the container's root filesystem as read only"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 64m)"},
		&cli.StringFlag{Name: "cpus", Usage: "number of CPUs (e.g. 0.5)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "tune container pids limit (-1 for unlimited)"},
		&cli.StringFlag{Name: "network", Aliases: []string{"net"}, Value: "none", Usage: "network: none (loopback only) or host"},
		&cli.BoolFlag{Name: "privileged", Usage: "give extended privileges to this container"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add Linux capabilities"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop Linux capabilities"},
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image before running: always, missing or never"},
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] of the image to pull, if it is pulled"},
	}
}

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
			&cli.BoolFlag{Name: "rm", Usage: "automatically remove the container and its anonymous volumes when it exits"},
		),
		Action: runRun,
	}
}

// usage is an error of the command line: exit 125, as Docker's.
func usage(format string, args ...any) error {
	return &statusError{code: exitCairn, err: fmt.Errorf(format, args...)}
}

// createOptions reads the flags of `run` and `create`.
func createOptions(cliContext *cli.Context) (runtime.CreateOptions, error) {
	var o runtime.CreateOptions
	if cliContext.NArg() < 1 {
		return o, argsError(cliContext, "at least 1 argument")
	}
	args := cliContext.Args().Slice()
	o.Image, o.Args = args[0], args[1:]
	o.Name = cliContext.String("name")
	o.Tty, o.OpenStdin = cliContext.Bool("tty"), cliContext.Bool("interactive")
	for _, f := range cliContext.StringSlice("env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return o, usage("%v", err)
		}
		o.Env = append(o.Env, env...)
	}
	o.Env = append(o.Env, cliContext.StringSlice("env")...)
	for _, l := range cliContext.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	o.WorkingDir, o.User, o.Hostname = cliContext.String("workdir"), cliContext.String("user"), cliContext.String("hostname")
	if cliContext.IsSet("entrypoint") {
		o.Entrypoint = []string{cliContext.String("entrypoint")}
	}
	o.Volumes = cliContext.StringSlice("volume")
	h := &o.Host
	h.ReadonlyRootfs, h.Privileged = cliContext.Bool("read-only"), cliContext.Bool("privileged")
	h.NetworkMode = cliContext.String("network")
	h.CapAdd, h.CapDrop = cliContext.StringSlice("cap-add"), cliContext.StringSlice("cap-drop")
	h.AutoRemove = cliContext.Bool("rm")
	if m := cliContext.String("memory"); m != "" {
		n, err := units.RAMInBytes(m)
		if err != nil {
			return o, usage("invalid argument %q for \"-m, --memory\" flag: %v\nSee 'cairn %s --help'.", m, err, cliContext.Command.Name)
		}
		h.Memory = n
	}
	if c := cliContext.String("cpus"); c != "" {
		f, err := strconv.ParseFloat(c, 64)
		if err != nil || f < 0 {
			return o, usage("invalid argument %q for \"--cpus\" flag: failed to parse %s as a rational number\nSee 'cairn %s --help'.", c, c, cliContext.Command.Name)
		}
		if n := numCPU(); f > float64(n) || f > 0 && f < 0.01 {
			return o, usage("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
		h.NanoCPUs = int64(f * 1e9)
	}
	h.PidsLimit = cliContext.Int64("pids-limit")
	return o, nil
}

// numCPU is the number of CPUs this process may run on.
func numCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		return set.Count()
	}
	return 1
}

// readEnvFile reads a file of KEY=VALUE lines as Docker's --env-file does:
// blank lines and lines starting with # are skipped; a bare KEY takes the
// host's value.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("%s:%d: no variable name on line '%s'", path, n, line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: variable '%s' contains whitespaces", path, n, k)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// createContainer creates the container `run` or `create` describes.
func createContainer(cliContext *cli.Context, forRun bool) (*stores, *runtime.Container, error) {
	o, err := createOptions(cliContext)
	if err != nil {
		return nil, nil, err
	}
	if o.Tty && o.OpenStdin && forRun && !cliContext.Bool("detach") && !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, nil, usage("the input device is not a TTY")
	}
	policy := cliContext.String("pull")
	switch policy {
	case "always", "missing", "never":
	default:
		return nil, nil, usage("invalid pull option: %q: must be one of \"always\", \"missing\" or \"never\"", policy)
	}
	s, err := openStores(cliContext)
	if err != nil {
		return nil, nil, err
	}
	// As Docker: an image that is not there is pulled, and reported on stderr.
	_, err = s.images.Lookup(o.Image)
	missing := errors.Is(err, image.ErrNotFound)
	if policy == "always" || policy == "missing" && missing {
		if missing {
			fmt.Fprintf(cliContext.App.ErrWriter, "Unable to find image '%s' locally\n", o.Image)
		}
		if _, err := pull(cliContext, s, o.Image, cliContext.String("platform"), cliContext.App.ErrWriter, true); err != nil {
			return nil, nil, &statusError{code: exitCairn, err: err}
		}
	}
	c, err := s.containers.Create(cliContext.Context, o)
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return nil, nil, usage("Unable to find image '%s' locally: %v", o.Image, err)
		}
		return nil, nil, &statusError{code: exitCairn, err: err}
	}
	return s, c, nil
}

func runRun(cliContext *cli.Context) error {
	s, c, err := createContainer(cliContext, true)
	if err != nil {
		return err
	}
	if cliContext.Bool("detach") {
		if err := s.containers.StartDetached(cliContext.Context, c.ID); err != nil {
			return startFailed(err)
		}
		fmt.Fprintln(cliContext.App.Writer, c.ID)
		return nil
	}
	return s.foreground(cliContext, c, !c.Host.AutoRemove)
}

// startFailed gives a failed start Docker's exit code: 127 for a command not
// found, 126 for one that cannot be run, 125 otherwise.
func startFailed(err error) error {
	switch {
	case errors.Is(err, runtime.ErrCommandNotFound):
		return &statusError{code: 127, err: err}
	case errors.Is(err, runtime.ErrCannotInvoke):
		return &statusError{code: 126, err: err}
	}
	return &statusError{code: exitCairn, err: err}
}

// foreground runs container c attached to this terminal, as `docker run`
// does: its output streams here, stdin passes to it with -i, a real terminal
// with -t, signals are forwarded, and cairn exits with its exit code.
func (s *stores) foreground(cliContext *cli.Context, c *runtime.Container, log bool) error {
	o := runtime.IO{Stdout: os.Stdout, Stderr: os.Stderr, Log: log}
	if c.Config.OpenStdin {
		o.Stdin = os.Stdin
	}
	var restore func()
	if c.Config.Tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			o.Width, o.Height = uint16(w), uint16(h)
		}
		if c.Config.OpenStdin && term.IsTerminal(int(os.Stdin.Fd())) {
			state, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err != nil {
				return usage("set the terminal raw: %v", err)
			}
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
		}
	}
	// Signals are caught before the container starts, so that none is lost.
	sigs := proxiedSignals()
	t, err := s.containers.Start(cliContext.Context, c.ID, o)
	if err != nil {
		if restore != nil {
			restore()
		}
		return startFailed(err)
	}
	go proxy(sigs, t)
	code, err := t.Wait(cliContext.Context)
	if restore != nil {
		restore()
	}
	if err != nil {
		return &statusError{code: exitCairn, err: err}
	}
	if code != 0 {
		return &statusError{code: code}
	}
	return nil
}

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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			ctx := cliContext.Context
			if cliContext.Bool("attach") || cliContext.Bool("interactive") {
				if cliContext.NArg() > 1 {
					return usage("you cannot start and attach multiple containers at once")
				}
				c, err := s.containers.Get(ctx, cliContext.Args().First())
				if err != nil {
					return err
				}
				if !cliContext.Bool("interactive") {
					c.Config.OpenStdin = false
				}
				return s.foreground(cliContext, c, true)
			}
			return eachContainer(cliContext, func(ref string) error {
				err := s.containers.StartDetached(ctx, ref)
				if errors.Is(err, runtime.ErrRunning) {
					return nil // Docker: starting a running container is no error
				}
				return err
			})
		},
	}
}

// eachArg runs fn for every argument, as Docker's commands over several
// objects do: a failure does not stop the others, and the errors are
// reported together at the end.
func eachArg(cliContext *cli.Context, fn func(arg string) error) error {
	var errs argErrors
	for _, arg := range cliContext.Args().Slice() {
		if err := fn(arg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// argErrors are the failures of a command over several objects: printed one
// "Error:" line each, as Docker prints them, and exit 1 whatever they are.
type argErrors []error

func (e argErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\nError: ")
}

func (e argErrors) Unwrap() []error { return e }

// eachContainer is eachArg printing each argument it did, as Docker's
// stop, kill, rm... do.
func eachContainer(cliContext *cli.Context, fn func(ref string) error) error {
	return eachArg(cliContext, func(ref string) error {
		if err := fn(ref); err != nil {
			return err
		}
		fmt.Fprintln(cliContext.App.Writer, ref)
		return nil
	})
}

// onEachContainer is the action of a command that does one thing to every
// container (or volume) it names.
func onEachContainer(do func(cliContext *cli.Context, s *stores, ref string) error) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		if cliContext.NArg() < 1 {
			return argsError(cliContext, "at least 1 argument")
		}
		s, err := openStores(cliContext)
		if err != nil {
			return err
		}
		return eachContainer(cliContext, func(ref string) error { return do(cliContext, s, ref) })
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
		Action: onEachContainer(func(cliContext *cli.Context, s *stores, ref string) error {
			return s.containers.Stop(cliContext.Context, ref, stopTimeout(cliContext))
		}),
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name: "restart", Usage: "Restart one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before killing the container"}},
		Action: onEachContainer(func(cliContext *cli.Context, s *stores, ref string) error {
			if err := s.containers.Stop(cliContext.Context, ref, stopTimeout(cliContext)); err != nil {
				return err
			}
			return s.containers.StartDetached(cliContext.Context, ref)
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
			return onEachContainer(func(cliContext *cli.Context, s *stores, ref string) error {
				return s.containers.Kill(cliContext.Context, ref, sig)
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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			return eachArg(cliContext, func(ref string) error {
				code, err := s.containers.Wait(cliContext.Context, ref)
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
		Action: onEachContainer(func(cliContext *cli.Context, s *stores, ref string) error {
			return s.containers.Remove(cliContext.Context, ref, runtime.RemoveOptions{Force: cliContext.Bool("force"), Volumes: cliContext.Bool("volumes")})
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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			return s.containers.Logs(cliContext.Context, cliContext.Args().First(),
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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			ref := cliContext.Args().First()
			if _, err := s.containers.Get(cliContext.Context, ref); err != nil {
				return err
			}
			write := func(w io.Writer) error { return s.containers.Export(cliContext.Context, ref, w) }
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
	if cliContext.NArg() < 2 {
		return argsError(cliContext, "at least 2 arguments")
	}
	args := cliContext.Args().Slice()
	detach := cliContext.Bool("detach")
	o := runtime.ExecOptions{
		Args: args[1:], Env: cliContext.StringSlice("env"),
		WorkingDir: cliContext.String("workdir"), User: cliContext.String("user"),
		Tty: cliContext.Bool("tty"), OpenStdin: cliContext.Bool("interactive") && !detach,
	}
	if !detach {
		o.IO = runtime.IO{Stdout: os.Stdout, Stderr: os.Stderr}
		if o.OpenStdin {
			o.IO.Stdin = os.Stdin
		}
	}
	if o.Tty && o.OpenStdin && !term.IsTerminal(int(os.Stdin.Fd())) {
		return usage("the input device is not a TTY")
	}
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	var restore func()
	if o.Tty && !detach {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			o.IO.Width, o.IO.Height = uint16(w), uint16(h)
		}
		if o.OpenStdin {
			state, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err != nil {
				return usage("set the terminal raw: %v", err)
			}
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
			defer restore()
		}
	}
	sigs := proxiedSignals()
	p, err := s.containers.Exec(cliContext.Context, args[0], o)
	if err != nil {
		if errors.Is(err, runtime.ErrCommandNotFound) || errors.Is(err, runtime.ErrCannotInvoke) {
			return startFailed(err)
		}
		return err
	}
	if detach {
		p.Release()
		return nil
	}
	go proxy(sigs, p)
	code, err := p.Wait()
	if err != nil {
		return err
	}
	if code != 0 {
		return &statusError{code: code}
	}
	return nil
}

// proxiedSignals starts catching the signals that the foreground `run`,
// `start -a` and `exec` pass on to the container's process, as Docker's
// sig-proxy does: all but those of the CLI's own plumbing (SIGCHLD, SIGPIPE,
// SIGURG) and of job control (SIGTSTP, SIGTTIN, SIGTTOU, which stop the CLI,
// as they would any program). SIGWINCH resizes the container's terminal.
// (They are not released again: the process ends with the container.)
func proxiedSignals() chan os.Signal {
	sigs := make(chan os.Signal, 64)
	var list []os.Signal
	for sig := syscall.Signal(1); sig < 32; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG,
			syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGSEGV, syscall.SIGBUS,
			syscall.SIGFPE, syscall.SIGILL, syscall.SIGPROF, syscall.SIGSYS:
			continue
		}
		list = append(list, sig)
	}
	signal.Notify(sigs, list...)
	return sigs
}

// proxy passes the signals caught on sigs to p.
func proxy(sigs chan os.Signal, p interface {
	Signal(os.Signal) error
	Resize(width, height uint16) error
}) {
	for sig := range sigs {
		if sig == syscall.SIGWINCH {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				p.Resize(uint16(w), uint16(h))
			}
			continue
		}
		p.Signal(sig)
	}
}

// monitorCommand is the hidden command a detached container's monitor runs
// (see runtime.StartDetached).
func monitorCommand() *cli.Command {
	return &cli.Command{
		Name: monitorCommandName, Hidden: true, ArgsUsage: "ID",
		Action: func(cliContext *cli.Context) error {
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			return s.containers.Serve(cliContext.Context, cliContext.Args().First())
		},
	}
}
