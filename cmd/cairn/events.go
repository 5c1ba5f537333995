package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, eventsCommand) }

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name: "events", Usage: "Get real time events from the store",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter output based on conditions provided"},
			&cli.StringFlag{Name: "format", Usage: "format the output using the given Go template (json: one JSON object a line)"},
			&cli.StringFlag{Name: "since", Usage: "show all events created since timestamp"},
			&cli.StringFlag{Name: "until", Usage: "stream events until this timestamp"},
		},
		Action: runEvents,
	}
}

// rfc3339NanoFixed is Docker's time format for events: nanoseconds always
// nine digits.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// writeEvent writes e as Docker's default line:
// "TIME TYPE ACTION ID (k=v, …)", attributes sorted by key.
func writeEvent(w io.Writer, e engine.EventMessage) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", e.When().Format(rfc3339NanoFixed), e.Type, e.Action, e.Actor.ID)
	if len(e.Actor.Attributes) > 0 {
		var kv []string
		for k, v := range e.Actor.Attributes {
			kv = append(kv, k+"="+v)
		}
		slices.SortFunc(kv, func(a, b string) int {
			ka, _, _ := strings.Cut(a, "=")
			kb, _, _ := strings.Cut(b, "=")
			return strings.Compare(ka, kb)
		})
		fmt.Fprintf(&b, " (%s)", strings.Join(kv, ", "))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func runEvents(cliContext *cli.Context) error {
	if cliContext.NArg() != 0 {
		return argsError(cliContext, "no arguments")
	}
	now := time.Now()
	var o engine.EventOptions
	for _, flag := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := cliContext.String(flag.name); v != "" {
			t, err := engine.ParseEventTime(v, now)
			if err != nil {
				return usage("invalid value %q for --%s: %v", v, flag.name, err)
			}
			*flag.t = t
		}
	}
	o.Filters = engine.Filters{}
	for _, f := range cliContext.StringSlice("filter") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return usage("invalid argument %q for \"-f, --filter\" flag: bad format of filter (expected name=value)", f)
		}
		o.Filters.Add(strings.ToLower(strings.TrimSpace(k)), v)
	}
	out := cliContext.App.Writer
	write := func(e engine.EventMessage) error { return writeEvent(out, e) }
	if format := cliContext.String("format"); format != "" {
		if strings.TrimSpace(format) == "json" {
			format = "{{json .}}"
		}
		tmpl, err := template.New("events").Funcs(templateFuncs).Parse(format)
		if err != nil {
			return usage("template parsing error: %v", err)
		}
		write = func(e engine.EventMessage) error {
			var b strings.Builder
			if err := tmpl.Execute(&b, e); err != nil {
				return &statusError{code: exitCairn, err: fmt.Errorf("template: %w", err)}
			}
			b.WriteByte('\n')
			_, err := io.WriteString(out, b.String())
			return err
		}
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	err = e.ReadEvents(cliContext.Context, o, write)
	if errors.Is(err, cliContext.Context.Err()) && cliContext.Context.Err() != nil {
		return nil // interrupted: the end of a follow
	}
	return err
}
