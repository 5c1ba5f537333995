package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/cairn-runtime/cairn/events"
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

// eventView is an event as Docker's API sends it: with the fields its
// older clients read (status, id, from) for containers and images.
type eventView struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string
	Action   string
	Actor    events.Actor
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

func viewOf(e events.Event) eventView {
	v := eventView{Type: e.Type, Action: e.Action, Actor: e.Actor, Scope: e.Scope, Time: e.Time, TimeNano: e.TimeNano}
	if v.Actor.Attributes == nil {
		v.Actor.Attributes = map[string]string{}
	}
	switch e.Type {
	case events.Container:
		v.Status, v.ID, v.From = e.Action, e.Actor.ID, e.Actor.Attributes["image"]
	case events.Image:
		v.Status, v.ID = e.Action, e.Actor.ID
	}
	return v
}

// rfc3339NanoFixed is Docker's time format for events: nanoseconds always
// nine digits.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// writeEvent writes e as Docker's default line:
// "TIME TYPE ACTION ID (k=v, …)", attributes sorted by key.
func writeEvent(w io.Writer, e events.Event) error {
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
	o := events.ReadOptions{Follow: true}
	for _, flag := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := cliContext.String(flag.name); v != "" {
			t, err := events.ParseTime(v, now)
			if err != nil {
				return usage("invalid value %q for --%s: %v", v, flag.name, err)
			}
			*flag.t = t
		}
	}
	for _, f := range cliContext.StringSlice("filter") {
		if !strings.Contains(f, "=") {
			return usage("invalid argument %q for \"-f, --filter\" flag: bad format of filter (expected name=value)", f)
		}
	}
	// Without either, only what comes from now on, as Docker's.
	o.FromNow = o.Since.IsZero() && o.Until.IsZero()
	var err error
	if o.Filter, err = events.ParseFilter(cliContext.StringSlice("filter")); err != nil {
		return err
	}
	out := cliContext.App.Writer
	write := func(e events.Event) error { return writeEvent(out, e) }
	if format := cliContext.String("format"); format != "" {
		if strings.TrimSpace(format) == "json" {
			format = "{{json .}}"
		}
		tmpl, err := template.New("events").Funcs(templateFuncs).Parse(format)
		if err != nil {
			return usage("template parsing error: %v", err)
		}
		write = func(e events.Event) error {
			var b strings.Builder
			if err := tmpl.Execute(&b, viewOf(e)); err != nil {
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
	err = e.Events.Read(cliContext.Context, o, write)
	if errors.Is(err, cliContext.Context.Err()) && cliContext.Context.Err() != nil {
		return nil // interrupted: the end of a follow
	}
	return err
}
