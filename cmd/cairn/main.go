package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

func init() {
	// libcontainer logs through logrus: cairn shows errors only, and what
	// matters comes back to it as errors.
	logrus.SetLevel(logrus.ErrorLevel)
	// libcontainer re-executes cairn as a container's init ("cairn init"):
	// that must be dispatched before anything else runs.
	if runtime.IsInit() {
		runtime.Init()
	}
}

// Exit codes, as Docker's CLI has them.
const (
	exitFailure = 1   // a command failed
	exitCairn   = 125 // cairn itself failed: a bad flag, a store it cannot open
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp().RunContext(ctx, os.Args)
	stop()
	os.Exit(exitCode(err))
}

func newApp() *cli.App {
	// --help only: -h is run's --hostname, as in Docker.
	cli.HelpFlag = &cli.BoolFlag{Name: "help", Usage: "show help"}
	app := &cli.App{
		Name:                 "cairn",
		Usage:                "a daemonless container runtime with docker commit at its heart",
		HideVersion:          true,
		EnableBashCompletion: true,
		// -e A=1,2 and -c 'CMD ["a","b"]' are one value each, as in Docker.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "the store's root directory", Value: "/var/lib/cairn", EnvVars: []string{"CAIRN_ROOT"}},
			configFlag,
		},
		OnUsageError: usageError,
		Before:       enterRootless,
		Commands: []*cli.Command{
			imagesCommand(),
			imageCommand(),
			tagCommand(),
			rmiCommand(),
			historyCommand(),
			importCommand(),
			loadCommand(),
			saveCommand(),
			pullCommand(),
			pushCommand(),
			loginCommand(),
			logoutCommand(),
			runCommand(),
			createCommand(),
			startCommand(),
			stopCommand(),
			restartCommand(),
			killCommand(),
			waitCommand(),
			rmCommand(),
			psCommand(),
			inspectCommand(),
			logsCommand(),
			execCommand(),
			exportCommand(),
			volumeCommand(),
			networkCommand(),
			portCommand(),
			commitCommand(),
			buildCommand(),
			builderCommand(),
			diffCommand(),
			pauseCommand("pause"),
			pauseCommand("unpause"),
			monitorCommand(),
		},
		CommandNotFound: func(cliContext *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "cairn: '%s' is not a cairn command.\nSee 'cairn --help'\n", name)
			os.Exit(exitCairn)
		},
	}
	for _, add := range moreCommands {
		app.Commands = append(app.Commands, add())
	}
	for _, group := range commandGroups {
		app.Commands = append(app.Commands, group(app.Commands))
	}
	for _, c := range app.Commands {
		setUsageErrors(c)
	}
	return app
}

// moreCommands are the commands files of this package add from their
// init, each in the file of its noun (cp.go, stats.go…), so that none of
// them edits this list.
var moreCommands []func() *cli.Command

// commandGroups make the commands that group others (`container`,
// `image`, `system`…) from the full list of top-level commands.
var commandGroups []func(all []*cli.Command) *cli.Command

func setUsageErrors(c *cli.Command) {
	c.OnUsageError = usageError
	for _, sub := range c.Subcommands {
		setUsageErrors(sub)
	}
}

// statusError carries the exit code a command wants.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func usageError(cliContext *cli.Context, err error, isSubcommand bool) error {
	name := cliContext.App.Name
	if cliContext.Command != nil && cliContext.Command.FullName() != "" {
		name += " " + cliContext.Command.FullName()
	}
	return &statusError{code: exitCairn, err: fmt.Errorf("%w\nSee '%s --help'.", err, name)}
}

// argsError reports a wrong number of arguments, as Docker does.
func argsError(cliContext *cli.Context, want string) error {
	return &statusError{code: exitCairn, err: fmt.Errorf("\"cairn %s\" requires %s.\nSee 'cairn %s --help'.\n\nUsage:  cairn %s %s",
		cliContext.Command.FullName(), want, cliContext.Command.FullName(), cliContext.Command.FullName(), cliContext.Command.ArgsUsage)}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var st *statusError
	code := exitFailure
	if _, several := err.(argErrors); !several && errors.As(err, &st) {
		code = st.code
	}
	if st == nil || st.err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", engine.StorageError(storeRoot, err))
	}
	return code
}
