package main

import (
	"fmt"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

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
func onEachContainer(do func(cliContext *cli.Context, e *engine.Engine, ref string) error) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		if cliContext.NArg() < 1 {
			return argsError(cliContext, "at least 1 argument")
		}
		e, err := openEngine(cliContext)
		if err != nil {
			return err
		}
		return eachContainer(cliContext, func(ref string) error { return do(cliContext, e, ref) })
	}
}
