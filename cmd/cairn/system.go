package main

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

// systemSubcommands are the subcommands of `cairn system` that other files
// add from their init (`system prune`), after df, info and events.
var systemSubcommands []func() *cli.Command

func init() { moreCommands = append(moreCommands, systemCommand) }

func systemCommand() *cli.Command {
	subs := []*cli.Command{dfCommand(), infoCommand(), eventsCommand()}
	for _, add := range systemSubcommands {
		subs = append(subs, add())
	}
	return &cli.Command{Name: "system", Usage: "Manage cairn", Subcommands: subs}
}

func dfCommand() *cli.Command {
	return &cli.Command{
		Name: "df", Usage: "Show cairn disk usage",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show detailed information on space usage"},
			&cli.StringFlag{Name: "format", Usage: "pretty-print the summary using a Go template"},
		},
		Action: runDf,
	}
}

// dfRow is one line of the summary of `system df`; its fields in the
// order of their names, as Docker's `{{json .}}` has them.
type dfRow struct{ Active, Reclaimable, Size, TotalCount, Type string }

var dfHeaders = map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}

func runDf(cliContext *cli.Context) error {
	if cliContext.NArg() != 0 {
		return argsError(cliContext, "no arguments")
	}
	verbose, format := cliContext.Bool("verbose"), cliContext.String("format")
	if verbose && format != "" {
		return usage("--format applies to the summary: it cannot be used with --verbose")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	du, err := e.DiskUsage(cliContext.Context)
	if err != nil {
		return err
	}
	if verbose {
		return writeDfVerbose(cliContext, du)
	}
	if format == "" {
		format = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: dfHeaders}.write(dfSummary(du))
}

// reclaimable is Docker's RECLAIMABLE: the size, and its share of total.
func reclaimable(n, total int64) string {
	if total > 0 {
		return fmt.Sprintf("%s (%v%%)", units.HumanSize(float64(n)), n*100/total)
	}
	return units.HumanSize(float64(n))
}

// dfSummary is the four lines of `docker system df`, computed as Docker's
// CLI does (cli/command/formatter/disk_usage.go).
func dfSummary(du *engine.DiskUsage) []any {
	var activeImages int
	var usedByContainers int64
	for _, i := range du.Images {
		if i.Containers > 0 {
			activeImages++
			usedByContainers += i.Size - i.SharedSize
		}
	}
	var activeCtrs int
	var ctrSize, ctrFree int64
	for _, c := range du.Containers {
		ctrSize += c.SizeRw
		if c.Active() {
			activeCtrs++
		} else {
			ctrFree += c.SizeRw
		}
	}
	var activeVols int
	var volSize, volUsed int64
	for _, v := range du.Volumes {
		volSize += v.Size
		if v.Links > 0 {
			activeVols++
			volUsed += v.Size
		}
	}
	var cacheSize int64
	for _, c := range du.BuildCache {
		if !c.Shared {
			cacheSize += c.Size
		}
	}
	count := strconv.Itoa
	return []any{
		dfRow{Type: "Images", TotalCount: count(len(du.Images)), Active: count(activeImages),
			Size: units.HumanSize(float64(du.LayersSize)), Reclaimable: reclaimable(du.LayersSize-usedByContainers, du.LayersSize)},
		dfRow{Type: "Containers", TotalCount: count(len(du.Containers)), Active: count(activeCtrs),
			Size: units.HumanSize(float64(ctrSize)), Reclaimable: reclaimable(ctrFree, ctrSize)},
		dfRow{Type: "Local Volumes", TotalCount: count(len(du.Volumes)), Active: count(activeVols),
			Size: units.HumanSize(float64(volSize)), Reclaimable: reclaimable(volSize-volUsed, volSize)},
		// No build step runs while df reads: none of the cache is in use.
		dfRow{Type: "Build Cache", TotalCount: count(len(du.BuildCache)), Active: "0",
			Size: units.HumanSize(float64(cacheSize)), Reclaimable: units.HumanSize(float64(cacheSize))},
	}
}

type dfImageRow struct{ Repository, Tag, ID, CreatedSince, Size, SharedSize, UniqueSize, Containers string }

type dfContainerRow struct{ ID, Image, Command, LocalVolumes, Size, RunningFor, Status, Names string }

type dfVolumeRow struct{ Name, Links, Size string }

type dfCacheRow struct{ ID, CacheType, Size, CreatedSince, LastUsedSince, UsageCount, Shared string }

// writeDfVerbose writes `system df -v`: a table each of images,
// containers, volumes and build cache, with Docker's titles.
func writeDfVerbose(cliContext *cli.Context, du *engine.DiskUsage) error {
	w := cliContext.App.Writer
	section := func(title, format string, headers map[string]string, rows []any) error {
		fmt.Fprintf(w, "%s\n\n", title)
		if err := (table{w: w, format: format, headers: headers}).write(rows); err != nil {
			return err
		}
		fmt.Fprintln(w)
		return nil
	}

	images := du.Images
	sort.SliceStable(images, func(i, j int) bool { return orZero(images[i].Created).After(orZero(images[j].Created)) })
	var rows []any
	for _, i := range images {
		r := dfImageRow{Repository: "<none>", Tag: "<none>", ID: image.ShortID(i.ID), CreatedSince: since(i.Created),
			Size: units.HumanSize(float64(i.Size)), SharedSize: units.HumanSize(float64(i.SharedSize)),
			UniqueSize: units.HumanSize(float64(i.Size - i.SharedSize)), Containers: strconv.Itoa(i.Containers)}
		if len(i.Names) > 0 {
			r.Repository, r.Tag = repoTag(i.Names[0])
		}
		rows = append(rows, r)
	}
	if err := section("Images space usage:", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
		map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE",
			"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}, rows); err != nil {
		return err
	}

	rows = nil
	for _, c := range du.Containers {
		cmd := engine.CommandLine(c.Container)
		rows = append(rows, dfContainerRow{ID: runtime.ShortID(c.ID), Image: c.Config.Image, Command: strconv.Quote(ellipsis(cmd, 20)),
			LocalVolumes: strconv.Itoa(c.LocalVolumes), Size: units.HumanSize(float64(c.SizeRw)),
			RunningFor: units.HumanDuration(time.Since(c.Created)) + " ago", Status: c.Status, Names: c.Name})
	}
	if err := section("Containers space usage:", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
		map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE",
			"RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}, rows); err != nil {
		return err
	}

	rows = nil
	for _, v := range du.Volumes {
		rows = append(rows, dfVolumeRow{Name: v.Name, Links: strconv.Itoa(v.Links), Size: units.HumanSize(float64(v.Size))})
	}
	if err := section("Local Volumes space usage:", "table {{.Name}}\t{{.Links}}\t{{.Size}}",
		map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}, rows); err != nil {
		return err
	}

	rows = nil
	var cacheSize int64
	for _, c := range du.BuildCache {
		if !c.Shared {
			cacheSize += c.Size
		}
		t := c.Created
		rows = append(rows, dfCacheRow{ID: c.ID[:min(len(c.ID), 12)], CacheType: "regular", Size: units.HumanSize(float64(c.Size)),
			CreatedSince: since(&t), LastUsedSince: since(&t), UsageCount: "0", Shared: strconv.FormatBool(c.Shared)})
	}
	fmt.Fprintf(w, "Build cache usage: %s\n\n", units.HumanSize(float64(cacheSize)))
	return (table{w: w, format: "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
		headers: map[string]string{"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
			"LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}}).write(rows)
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// repoTag splits a familiar name into its repository and tag.
func repoTag(name string) (string, string) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name, "<none>"
	}
	tag := "<none>"
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return reference.FamiliarName(n), tag
}
