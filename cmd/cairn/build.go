package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-runtime/cairn/builder"
	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/urfave/cli/v2"
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name: "build", Usage: "Build an image from a Dockerfile", ArgsUsage: "PATH",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "name and optionally a tag in the 'name:tag' format"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "name of the Dockerfile (default: 'PATH/Dockerfile')"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "set build-time variables"},
			&cli.StringFlag{Name: "target", Usage: "set the target build stage to build"},
			&cli.BoolFlag{Name: "no-cache", Usage: "do not use cache when building the image"},
			&cli.BoolFlag{Name: "pull", Usage: "always attempt to pull a newer version of the FROM images"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress the build output and print image ID on success"},
			&cli.StringFlag{Name: "network", Value: "bridge", Usage: "the network of RUN steps: bridge, a user network, host or none"},
			&cli.BoolFlag{Name: "rm", Value: true, Usage: "remove intermediate containers (cairn always does)"},
			&cli.BoolFlag{Name: "force-rm", Usage: "always remove intermediate containers (cairn always does)"},
		},
		Action: runBuild,
	}
}

func runBuild(cliContext *cli.Context) error {
	if cliContext.NArg() != 1 {
		return argsError(cliContext, "exactly 1 argument")
	}
	if n := cliContext.String("network"); strings.HasPrefix(n, "container:") {
		return usage("network %q: RUN steps of a build cannot share another container's network", n)
	}
	for _, tag := range cliContext.StringSlice("tag") {
		if _, err := image.ParseName(tag); err != nil {
			return usage("%v", err)
		}
	}
	warnSeccomp()
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	out := cliContext.App.Writer
	if cliContext.Bool("quiet") {
		out = io.Discard
	}
	buildArgs, err := builder.ParseBuildArgs(cliContext.StringSlice("build-arg"), os.LookupEnv)
	if err != nil {
		return err
	}
	o := builder.Options{
		Context: cliContext.Args().First(), Tags: cliContext.StringSlice("tag"),
		BuildArgs: buildArgs, Target: cliContext.String("target"),
		NoCache: cliContext.Bool("no-cache"), Pull: cliContext.Bool("pull"), Network: cliContext.String("network"), Out: out,
	}
	if f := cliContext.String("file"); f != "" {
		// As Docker: relative to the working directory.
		if o.Dockerfile, err = filepath.Abs(f); err != nil {
			return err
		}
	}
	img, err := e.Build(cliContext.Context, engine.BuildOptions{
		Options:     o,
		PullOptions: engine.PullOptions{Keychain: dockerKeychain{}, Report: newPullReport(out)},
	})
	var re *builder.RunError
	if errors.As(err, &re) {
		return &statusError{code: re.Code, err: err}
	}
	if err != nil {
		return err
	}
	if cliContext.Bool("quiet") {
		fmt.Fprintln(cliContext.App.Writer, img.ID)
	}
	return nil
}

func builderCommand() *cli.Command {
	return &cli.Command{
		Name:  "builder",
		Usage: "Manage builds",
		Subcommands: []*cli.Command{{
			Name: "prune", Usage: "Remove the build cache",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not prompt for confirmation (cairn never prompts)"},
				&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all the cache (cairn's cache has no other kind)"},
			},
			Action: func(cliContext *cli.Context) error {
				e, err := openEngine(cliContext)
				if err != nil {
					return err
				}
				n, _, err := e.PruneBuildCache(cliContext.Context)
				if err != nil {
					return err
				}
				fmt.Fprintf(cliContext.App.Writer, "Deleted build cache entries: %d\n", n)
				return nil
			},
		}},
	}
}
