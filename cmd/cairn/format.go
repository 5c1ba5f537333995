package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
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
type table struct {
	w       io.Writer
	format  string
	headers map[string]string
}

func (t table) write(rows []any) error {
	format := t.format
	isTable := strings.HasPrefix(format, "table")
	if isTable {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format + "\n")
	if err != nil {
		return &statusError{code: exitCairn, err: fmt.Errorf("template parsing error: %w", err)}
	}
	out := t.w
	var tw *tabwriter.Writer
	if isTable {
		tw = tabwriter.NewWriter(t.w, 10, 1, 3, ' ', 0)
		out = tw
		h, err := template.New("header").Funcs(templateFuncs).Parse(format + "\n")
		if err == nil {
			if err := h.Execute(out, t.headers); err != nil {
				return err
			}
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("template: %w", err)}
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
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
