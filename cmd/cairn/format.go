package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

// templateFuncs are the functions Docker offers in --format templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"join":  strings.Join,
	"split": strings.Split,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
}

// table writes rows through a --format template, or as a table with the
// given default columns. headers names each field's column, as Docker does.
// The format "json" is Docker's shorthand for `{{json .}}`: one JSON object
// a line.
type table struct {
	w       io.Writer
	format  string
	headers map[string]string
}

// headerRow is what the header line of a table format sees: the column
// name of each field, and of `.Label "name"` the label's name, as
// Docker's headers.
type headerRow map[string]string

// Label is the header of `{{.Label "com.example.role"}}`: "role".
func (h headerRow) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1])
}

func (t table) write(rows []any) error {
	format := t.format
	if strings.TrimSpace(format) == "json" {
		format = "{{json .}}"
	}
	isTable := strings.HasPrefix(format, "table")
	if isTable {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format + "\n")
	if err != nil {
		return &statusError{code: exitCairn, err: fmt.Errorf("template parsing error: %w", err)}
	}
	// Written through a buffer: a row is a dozen writes of the template.
	bw := bufio.NewWriter(t.w)
	defer bw.Flush()
	var out io.Writer = bw
	var tw *tabwriter.Writer
	if isTable {
		tw = tabwriter.NewWriter(bw, 10, 1, 3, ' ', 0)
		out = tw
		h, err := template.New("header").Funcs(templateFuncs).Parse(format + "\n")
		if err == nil {
			var b strings.Builder
			if err := h.Execute(&b, headerRow(t.headers)); err == nil {
				io.WriteString(out, b.String())
			}
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("template: %w", err)}
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// parseFilters reads --filter KEY=VALUE flags as Docker's CLI does: the key
// lowercased, both sides trimmed; a flag without "=" is a usage error.
func parseFilters(cliContext *cli.Context) (engine.Filters, error) {
	f := engine.Filters{}
	for _, kv := range cliContext.StringSlice("filter") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usage("invalid argument %q for \"-f, --filter\" flag: bad format of filter (expected name=value)\nSee 'cairn %s --help'.", kv, cliContext.Command.FullName())
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return f, nil
}

// filterFlag is --filter of the list and prune commands.
func filterFlag(usage string) cli.Flag {
	return &cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: usage}
}

// usesField reports whether a --format template refers to field (or is
// one of the JSON forms, which show every field).
func usesField(format, field string) bool {
	return strings.Contains(format, "."+field) || strings.Contains(format, "json")
}

func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

func since(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(*t)) + " ago"
}

// ellipsis shortens s to n characters, as Docker's tables do.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
