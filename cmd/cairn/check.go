package main

import (
	"fmt"
	"io"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

func init() { systemSubcommands = append(systemSubcommands, checkCommand) }

func checkCommand() *cli.Command {
	return &cli.Command{
		Name: "check", Usage: "Check the store for inconsistencies, and repair them",
		Description: "Verifies the images (index, blobs, manifests, configs), the snapshots of their layers, the containers\n" +
			"and volumes, and what killed processes left (tmp/, mounts, libcontainer state, cgroups, the network).\n" +
			"Prints each problem with its path. Exits 0 only when the store is sound.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "repair", Aliases: []string{"r"}, Usage: "remove what nothing can use, mend what can be mended, mark broken images for rmi"},
			&cli.BoolFlag{Name: "quick", Aliases: []string{"q"}, Usage: "check the blobs' sizes, not their digests"},
		},
		Action: runCheck,
	}
}

func runCheck(cliContext *cli.Context) error {
	if cliContext.NArg() > 0 {
		return argsError(cliContext, "no argument")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	rep, err := e.Check(cliContext.Context, engine.CheckOptions{Quick: cliContext.Bool("quick"), Repair: cliContext.Bool("repair")})
	if err != nil {
		return err
	}
	w := cliContext.App.Writer
	if !cliContext.Bool("repair") {
		printProblems(w, rep.Problems, "--repair: ")
	} else {
		for _, r := range rep.Repairs {
			if r.Err != nil {
				fmt.Fprintf(w, "%s\n    %s\n    repair failed: %v\n", r.Problem.Path, r.Problem.What, r.Err)
			} else {
				fmt.Fprintf(w, "%s\n    %s\n    repaired: %s\n", r.Problem.Path, r.Problem.What, r.Problem.Fix)
			}
		}
		if len(rep.After) > 0 {
			fmt.Fprintln(w, "Left after the repairs:")
			printProblems(w, rep.After, "")
		}
	}
	left := rep.Left()
	switch {
	case rep.Sound() && len(left) == 0:
		fmt.Fprintf(w, "The store at %s is sound.\n", e.Root)
		return nil
	case rep.Sound():
		fmt.Fprintf(w, "The store at %s is sound; %s (`cairn system check --repair` or `cairn image prune` removes the garbage).\n", e.Root, plural(len(left), "note"))
		return nil
	}
	hint := " `cairn system check --repair` mends what it can."
	if cliContext.Bool("repair") {
		hint = ""
	}
	return &statusError{code: exitFailure, err: fmt.Errorf("the store at %s is not sound: %s.%s", e.Root, plural(rep.Errors(), "problem"), hint)}
}

// printProblems writes each problem: its path, what is wrong, and what a
// repair does (after prefix) or, when none can, what to do.
func printProblems(w io.Writer, ps []engine.Problem, prefix string) {
	for _, p := range ps {
		kind := "error"
		if p.Harmless {
			kind = "note"
		}
		fmt.Fprintf(w, "%s: %s\n    %s\n", kind, p.Path, p.What)
		switch {
		case p.Repairable():
			fmt.Fprintf(w, "    %s%s\n", prefix, p.Fix)
		case p.Fix != "":
			fmt.Fprintf(w, "    cannot be repaired by cairn: %s\n", p.Fix)
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
