package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/template"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

var runImageInspect = inspectEach(func(_ *cli.Context, e *engine.Engine, ref string) (any, error) {
	return e.InspectImage(ref)
})

// inspectEach is the action of an inspect command: the JSON (or --format)
// of every object fn finds, then the errors of those it did not.
func inspectEach(fn func(cliContext *cli.Context, e *engine.Engine, ref string) (any, error)) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		if cliContext.NArg() < 1 {
			return argsError(cliContext, "at least 1 argument")
		}
		oneShot()
		e, err := openEngine(cliContext)
		if err != nil {
			return err
		}
		var out []any
		errs := eachArg(cliContext, func(ref string) error {
			v, err := fn(cliContext, e, ref)
			if err == nil {
				out = append(out, v)
			}
			return err
		})
		if err := printInspect(cliContext, out); err != nil {
			return err
		}
		return errs
	}
}

// printInspect prints values as a JSON array, or each through --format.
func printInspect(cliContext *cli.Context, values []any) error {
	w := cliContext.App.Writer
	if f := cliContext.String("format"); f != "" {
		tmpl, err := template.New("format").Funcs(templateFuncs).Parse(f + "\n")
		if err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("template parsing error: %w", err)}
		}
		for _, v := range values {
			// Through JSON, so that the template sees Docker's field names.
			b, _ := json.Marshal(v)
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			dec.Decode(&m)
			if err := tmpl.Execute(w, m); err != nil {
				return fmt.Errorf("template: %w", err)
			}
		}
		return nil
	}
	if values == nil {
		values = []any{}
	}
	b, err := json.MarshalIndent(values, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, string(b))
	return nil
}
