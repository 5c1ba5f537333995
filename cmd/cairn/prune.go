package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func init() {
	systemSubcommands = append(systemSubcommands, systemPruneCommand)
}

// Docker's warnings before a prune, word for word.
const (
	danglingImagesWarning = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
	allImagesWarning      = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
	containersWarning     = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
	networksWarning       = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"
	systemWarning         = `WARNING! This will remove:
{{- range $_, $warning := .warnings }}
  - {{ $warning }}
{{- end }}
{{if .filters}}
  Items to be pruned will be filtered with:
{{- range $_, $filters := .filters }}
  - {{ $filters }}
{{- end }}
{{end}}
Are you sure you want to continue?`
)

// confirm asks what Docker's CLI asks before a prune, on stdout, and reads
// the answer from stdin, whatever it is (a terminal or not, as Docker):
// only "y" goes on; an empty line, "n" or the end of stdin stop there.
func confirm(cliContext *cli.Context, message string) bool {
	if cliContext.Bool("force") {
		return true
	}
	fmt.Fprint(cliContext.App.Writer, message+" [y/N] ")
	in := cliContext.App.Reader
	if in == nil {
		return false
	}
	answer, _, _ := bufio.NewReader(in).ReadLine()
	return strings.ToLower(string(answer)) == "y"
}

func forceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not prompt for confirmation"}
}

// pruneFlags are those of image, container and system prune. --filter has
// no -f there: -f is --force, as in Docker.
func pruneFlags(extra ...cli.Flag) []cli.Flag {
	return append(extra, forceFlag(), &cli.StringSliceFlag{Name: "filter", Usage: "provide filter values (e.g. 'until=<timestamp>')"})
}

// printPruned prints what one prune did as Docker does: its lines, then
// an empty line, if it removed anything.
func printPruned(w io.Writer, output string) {
	if output != "" {
		fmt.Fprintln(w, output)
	}
}

func printReclaimed(w io.Writer, space int64) {
	fmt.Fprintln(w, "Total reclaimed space:", units.HumanSize(float64(space)))
}

func imagePruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "Remove unused images", UseShortOptionHandling: true,
		Flags: pruneFlags(&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all unused images, not just dangling ones"}),
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			filters, err := parseFilters(cliContext)
			if err != nil {
				return err
			}
			all := cliContext.Bool("all")
			warning := danglingImagesWarning
			if all {
				warning = allImagesWarning
			}
			if !confirm(cliContext, warning) {
				printReclaimed(cliContext.App.Writer, 0) // as Docker 20.10
				return nil
			}
			oneShot()
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			space, output, err := pruneImages(cliContext, e, all, filters)
			if err != nil {
				return err
			}
			printPruned(cliContext.App.Writer, output)
			printReclaimed(cliContext.App.Writer, space)
			return nil
		},
	}
}

func pruneImages(cliContext *cli.Context, e *engine.Engine, all bool, filters engine.Filters) (int64, string, error) {
	// As Docker's CLI, which says dangling=true (false with -a) beside the
	// user's filters: a --filter dangling= of the user's adds to it.
	f := engine.Filters{}
	for k, vs := range filters {
		f[k] = append([]string(nil), vs...)
	}
	f.Add("dangling", strconv.FormatBool(!all))
	rep, err := e.PruneImages(cliContext.Context, engine.PruneOptions{All: all, Filters: f})
	var b strings.Builder
	if len(rep.Items) > 0 {
		b.WriteString("Deleted Images:\n")
		for _, it := range rep.Items {
			if it.Untagged != "" {
				fmt.Fprintf(&b, "untagged: %s\n", it.Untagged)
			} else {
				fmt.Fprintf(&b, "deleted: %s\n", it.Deleted)
			}
		}
	}
	return rep.SpaceReclaimed, b.String(), err
}

func containerPruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "Remove all stopped containers",
		Flags: pruneFlags(),
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			filters, err := parseFilters(cliContext)
			if err != nil {
				return err
			}
			if !confirm(cliContext, containersWarning) {
				printReclaimed(cliContext.App.Writer, 0) // as Docker 20.10
				return nil
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			space, output, err := pruneContainers(cliContext, e, filters)
			if err != nil {
				return err
			}
			printPruned(cliContext.App.Writer, output)
			printReclaimed(cliContext.App.Writer, space)
			return nil
		},
	}
}

func pruneContainers(cliContext *cli.Context, e *engine.Engine, filters engine.Filters) (int64, string, error) {
	rep, err := e.PruneContainers(cliContext.Context, filters)
	var b strings.Builder
	if len(rep.Deleted) > 0 {
		b.WriteString("Deleted Containers:\n")
		for _, id := range rep.Deleted {
			b.WriteString(id + "\n")
		}
	}
	return rep.SpaceReclaimed, b.String(), err
}

func systemPruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "Remove unused data", UseShortOptionHandling: true,
		Flags: pruneFlags(
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all unused images not just dangling ones"},
			&cli.BoolFlag{Name: "volumes", Usage: "prune volumes"},
		),
		Action: runSystemPrune,
	}
}

func runSystemPrune(cliContext *cli.Context) error {
	if cliContext.NArg() != 0 {
		return argsError(cliContext, "no arguments")
	}
	filters, err := parseFilters(cliContext)
	if err != nil {
		return err
	}
	all, volumes := cliContext.Bool("all"), cliContext.Bool("volumes")
	if volumes && filters.Contains("until") {
		// Docker's words, without cairn's "Error: " before them.
		fmt.Fprintln(cliContext.App.ErrWriter, `ERROR: The "until" filter is not supported with "--volumes"`)
		return &statusError{code: exitFailure}
	}
	if !confirm(cliContext, systemPruneWarning(all, volumes, filters)) {
		return nil
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	w := cliContext.App.Writer
	var total int64
	parts := []func() (int64, string, error){
		func() (int64, string, error) { return pruneContainers(cliContext, e, filters) },
		func() (int64, string, error) {
			removed, err := e.PruneNetworksFiltered(cliContext.Context, filters)
			return 0, namesOutput("Deleted Networks:", removed), err
		},
	}
	if volumes {
		parts = append(parts, func() (int64, string, error) {
			// Docker 20.10's: every volume no container uses, named too.
			rep, err := e.PruneVolumes(cliContext.Context, engine.PruneOptions{All: true, Filters: filters})
			return rep.SpaceReclaimed, namesOutput("Deleted Volumes:", rep.Deleted), err
		})
	}
	parts = append(parts, func() (int64, string, error) { return pruneImages(cliContext, e, all, filters) })
	// The build cache holds what Docker's classic builder keeps as
	// intermediate images: they go with -a, which removes every unused
	// image. Its entries have no labels nor dates for a filter to match.
	if all && len(filters) == 0 {
		parts = append(parts, func() (int64, string, error) {
			n, space, err := e.PruneBuildCache(cliContext.Context)
			if n == 0 {
				return space, "", err
			}
			return space, fmt.Sprintf("Deleted build cache entries: %d\n", n), err
		})
	}
	for _, part := range parts {
		space, output, err := part()
		if err != nil {
			return err
		}
		total += space
		printPruned(w, output)
	}
	printReclaimed(w, total)
	return nil
}

func namesOutput(title string, names []string) string {
	if len(names) == 0 {
		return ""
	}
	return title + "\n" + strings.Join(names, "\n") + "\n"
}

// systemPruneWarning is Docker 20.10's question before a system prune.
func systemPruneWarning(all, volumes bool, filters engine.Filters) string {
	warnings := []string{"all stopped containers", "all networks not used by at least one container"}
	if volumes {
		warnings = append(warnings, "all volumes not used by at least one container")
	}
	if all {
		warnings = append(warnings, "all images without at least one container associated to them", "all build cache")
	} else {
		warnings = append(warnings, "all dangling images", "all dangling build cache")
	}
	var shown []string
	for _, key := range []string{"label", "label!", "until"} {
		for _, v := range filters.Get(key) {
			shown = append(shown, key+"="+v)
		}
	}
	sort.Strings(shown)
	var b bytes.Buffer
	template.Must(template.New("warning").Parse(systemWarning)).Execute(&b, map[string]any{"warnings": warnings, "filters": shown})
	return b.String()
}
