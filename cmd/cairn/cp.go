package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func init() { moreCommands = append(moreCommands, cpCommand) }

// cpCommand is `cp`, as Docker's: the path rules are the engine's
// (engine/copy.go), the container's side the runtime's (runtime/copy.go).
// Its errors exit 1, as Docker's CLI exits for them.
func cpCommand() *cli.Command {
	return &cli.Command{
		Name:  "cp",
		Usage: "Copy files/folders between a container and the local filesystem",
		Description: "Use '-' as the source to read a tar archive from stdin and extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a container source to stdout.",
		ArgsUsage:              "CONTAINER:SRC_PATH DEST_PATH|-\n   cairn cp [command options] SRC_PATH|- CONTAINER:DEST_PATH",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "archive", Aliases: []string{"a"}, Usage: "Archive mode (copy all uid/gid information)"},
			&cli.BoolFlag{Name: "follow-link", Aliases: []string{"L"}, Usage: "Always follow symbol link in SRC_PATH"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached"},
		},
		Action: runCp,
	}
}

func runCp(cliContext *cli.Context) error {
	if cliContext.NArg() != 2 {
		err := argsError(cliContext, "exactly 2 arguments")
		var st *statusError
		if errors.As(err, &st) {
			st.code = exitFailure
		}
		return err
	}
	src, dst := cliContext.Args().Get(0), cliContext.Args().Get(1)
	switch {
	case src == "":
		return errors.New("source can not be empty")
	case dst == "":
		return errors.New("destination can not be empty")
	}
	srcContainer, srcPath := splitCpArg(src)
	dstContainer, dstPath := splitCpArg(dst)
	switch {
	case srcContainer != "" && dstContainer != "":
		return errors.New("copying between containers is not supported")
	case srcContainer == "" && dstContainer == "":
		return errors.New("must specify at least one container source")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	o := engine.CopyOptions{FollowLink: cliContext.Bool("follow-link"), CopyUIDGID: cliContext.Bool("archive")}
	quiet := cliContext.Bool("quiet") || !term.IsTerminal(int(os.Stdout.Fd()))
	ctx := cliContext.Context
	if srcContainer != "" {
		if dstPath == "-" {
			// A reader that goes away (| head) fails the write instead of
			// killing cairn with SIGPIPE in the middle: the copy unwinds and
			// unmounts what it mounted, then cairn exits as SIGPIPE would.
			sigpipe := make(chan os.Signal, 1)
			signal.Notify(sigpipe, syscall.SIGPIPE)
			defer signal.Stop(sigpipe)
		}
		n, err := e.CopyFromContainer(ctx, srcContainer, srcPath, dstPath, cliContext.App.Writer, o)
		if dstPath == "-" && errors.Is(err, syscall.EPIPE) {
			return &statusError{code: 128 + int(syscall.SIGPIPE)}
		}
		if err == nil && !quiet && dstPath != "-" {
			shown := dstPath
			if abs, aerr := filepath.Abs(dstPath); aerr == nil {
				shown = abs
			}
			fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), shown)
		}
		return err
	}
	n, err := e.CopyToContainer(ctx, dstContainer, srcPath, dstPath, os.Stdin, o)
	if err == nil && !quiet && srcPath != "-" {
		fmt.Fprintf(os.Stderr, "Successfully copied %s to %s:%s\n", units.HumanSizeWithPrecision(float64(n), 3), dstContainer, dstPath)
	}
	return err
}

// splitCpArg splits CONTAINER:PATH, as Docker does: an absolute path, or
// one whose part before the ":" begins with "." (./file:name), is local.
func splitCpArg(arg string) (container, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	container, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(container, ".") {
		return "", arg
	}
	return container, path
}
