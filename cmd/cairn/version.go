package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, versionCommand) }

func versionCommand() *cli.Command {
	return &cli.Command{
		Name: "version", Usage: "Show the cairn version information",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format the output using the given Go template"}},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			format := cliContext.String("format")
			switch strings.TrimSpace(format) {
			case "":
				format = versionTemplate
			case "json":
				format = "{{json .}}"
			}
			tmpl, err := template.New("version").Funcs(templateFuncs).Funcs(template.FuncMap{"sortedKeys": sortedKeys}).Parse(format + "\n")
			if err != nil {
				return usage("template parsing error: %v", err)
			}
			w := tabwriter.NewWriter(cliContext.App.Writer, 20, 1, 1, ' ', 0)
			if err := tmpl.Execute(w, newVersionInfo()); err != nil {
				return &statusError{code: exitCairn, err: fmt.Errorf("template: %w", err)}
			}
			return w.Flush()
		},
	}
}

// versionInfo is what `docker version` formats: its client and its
// server. cairn is both: one binary, no daemon.
type versionInfo struct {
	Client clientVersion
	Server *engine.Version
}

// clientVersion is Docker's client half of `docker version`.
type clientVersion struct {
	Platform     struct{ Name string }
	Version      string
	GitCommit    string
	GoVersion    string
	Os           string
	Arch         string
	BuildTime    string `json:",omitempty"`
	Experimental bool
}

func newVersionInfo() versionInfo {
	b := engine.BuildInfo()
	c := clientVersion{Version: b.Version, GitCommit: b.GitCommit, GoVersion: b.GoVersion, Os: b.Os, Arch: b.Arch}
	if !b.BuildTime.IsZero() {
		c.BuildTime = b.BuildTime.UTC().Format(time.ANSIC)
	}
	s := engine.ServerVersion()
	return versionInfo{Client: c, Server: &s}
}

// versionTemplate is Docker's (docker/cli's defaultVersionTemplate)
// without the API versions and the context, which cairn has none of.
const versionTemplate = `{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Experimental:	{{.Experimental}}
{{- end}}

{{- with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- range $key := sortedKeys $component.Details}}
  {{$key}}:	{{index $component.Details $key}}
  {{- end}}
  {{- end}}
 {{- end}}
{{- end}}`

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
