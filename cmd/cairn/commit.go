package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/urfave/cli/v2"
)

func commitCommand() *cli.Command {
	return &cli.Command{
		Name: "commit", Usage: "Create a new image from a container's changes",
		ArgsUsage:              "CONTAINER [REPOSITORY[:TAG]]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "author", Aliases: []string{"a"}, Usage: `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`},
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit message"},
			&cli.StringSliceFlag{Name: "change", Aliases: []string{"c"}, Usage: "apply Dockerfile instruction to the created image"},
			&cli.BoolFlag{Name: "pause", Aliases: []string{"p"}, Value: true, Usage: "pause the container during commit"},
			&cli.StringFlag{Name: "timestamp", Usage: "date the image, and clamp the times in its layer, to these seconds since the epoch (reproducible images)"},
		},
		Action: runCommit,
	}
}

func runCommit(cliContext *cli.Context) error {
	if n := cliContext.NArg(); n < 1 || n > 2 {
		return argsError(cliContext, "at least 1 and at most 2 arguments")
	}
	o := commit.Options{
		Author: cliContext.String("author"), Message: cliContext.String("message"),
		Instructions: cliContext.StringSlice("change"), Name: cliContext.Args().Get(1), Pause: cliContext.Bool("pause"),
	}
	if ts := cliContext.String("timestamp"); ts != "" {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || sec < 0 {
			return usage("invalid argument %q for \"--timestamp\" flag: seconds since the epoch", ts)
		}
		o.Timestamp = time.Unix(sec, 0)
	}
	if _, err := commit.ParseInstructions(o.Instructions); err != nil {
		return usage("%v", err)
	}
	if o.Name != "" {
		if _, err := image.ParseName(o.Name); err != nil {
			return usage("%v", err)
		}
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	res, err := e.Commit(cliContext.Context, cliContext.Args().First(), o)
	if err != nil {
		if errors.Is(err, commit.ErrInstruction) {
			return usage("%v", err)
		}
		return err
	}
	if res.NotPaused != "" {
		fmt.Fprintf(os.Stderr, "WARNING: %s\n", res.NotPaused)
	}
	if res.Changed != nil {
		fmt.Fprintf(os.Stderr, "warning: files changed while they were committed (use --pause): %v\n", res.Changed)
	}
	fmt.Fprintln(cliContext.App.Writer, res.ID)
	return nil
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name: "diff", Usage: "Inspect changes to files or directories on a container's filesystem",
		ArgsUsage: "CONTAINER",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			changes, err := e.Diff(cliContext.Context, cliContext.Args().First())
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintln(cliContext.App.Writer, ch)
			}
			return nil
		},
	}
}

func pauseCommand(name string) *cli.Command {
	usage, do := "Pause all processes within one or more containers", (*runtime.Store).Pause
	if name == "unpause" {
		usage, do = "Unpause all processes within one or more containers", (*runtime.Store).Unpause
	}
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "CONTAINER [CONTAINER...]",
		Action: onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
			return do(e.Containers, cliContext.Context, ref)
		}),
	}
}
