package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, statsCommand) }

func statsCommand() *cli.Command {
	return &cli.Command{
		Name: "stats", Usage: "Display a live stream of container(s) resource usage statistics", ArgsUsage: "[CONTAINER...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
			&cli.BoolFlag{Name: "no-stream", Usage: "disable streaming stats and only pull the first result"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.StringFlag{Name: "format", Usage: "pretty-print stats using a Go template"},
		},
		Action: runStats,
	}
}

// statsRow is one line of `cairn stats`, with the fields --format sees;
// in the order of their names, as Docker's `{{json .}}` has them.
type statsRow struct {
	BlockIO, CPUPerc, Container, ID, MemPerc, MemUsage, Name, NetIO, PIDs string
}

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsInterval is how often stats samples and redraws, as Docker's daemon
// sends a sample.
const statsInterval = time.Second

// statsTarget is a container stats shows: by the name the user gave (or
// its short ID when stats lists them itself).
type statsTarget struct {
	key string // what the Container column shows
	c   *runtime.Container
}

func runStats(cliContext *cli.Context) error {
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	ctx := cliContext.Context
	named := cliContext.Args().Slice()
	all, noStream, noTrunc := cliContext.Bool("all"), cliContext.Bool("no-stream"), cliContext.Bool("no-trunc")
	format := cliContext.String("format")
	if format == "" {
		format = defaultStatsFormat
	}
	// The containers named are resolved once; without names, the list is
	// read again at every sample, so that containers come and go.
	var fixed []statsTarget
	if len(named) > 0 {
		var errs argErrors
		for _, ref := range named {
			c, err := e.Containers.Get(ctx, ref)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fixed = append(fixed, statsTarget{key: ref, c: c})
		}
		if len(errs) > 0 {
			return errs
		}
	}
	targets := func() ([]statsTarget, error) {
		if len(named) > 0 {
			return fixed, nil
		}
		list, err := e.Containers.List(ctx)
		if err != nil {
			return nil, err
		}
		var out []statsTarget
		for _, c := range list {
			if all || c.Live() {
				out = append(out, statsTarget{key: runtime.ShortID(c.ID), c: c})
			}
		}
		return out, nil
	}
	sample := func(ts []statsTarget) map[string]*runtime.Stats {
		cur := map[string]*runtime.Stats{}
		for _, t := range ts {
			if st, err := e.Containers.Stats(ctx, t.c.ID); err == nil {
				cur[t.c.ID] = st
			}
		}
		return cur
	}
	ts, err := targets()
	if err != nil {
		return err
	}
	prev := sample(ts)
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if ts, err = targets(); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		cur := sample(ts)
		if ctx.Err() != nil {
			return nil
		}
		rows := make([]any, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, newStatsRow(t, prev[t.c.ID], cur[t.c.ID], noTrunc))
		}
		if !noStream {
			fmt.Fprint(cliContext.App.Writer, "\033[2J\033[H") // clear the screen, as Docker's stats
		}
		if err := (table{w: cliContext.App.Writer, format: format, headers: statsHeaders}).write(rows); err != nil {
			return err
		}
		if noStream || len(named) > 0 && len(cur) == 0 {
			return nil // done, or every container named is gone
		}
		prev = cur
	}
}

// newStatsRow is the line of t between its samples prev and cur; a
// container whose sample failed (removed meanwhile) shows "--", as
// Docker's.
func newStatsRow(t statsTarget, prev, cur *runtime.Stats, noTrunc bool) statsRow {
	r := statsRow{Container: t.key, ID: runtime.ShortID(t.c.ID), Name: t.c.Name}
	if noTrunc {
		r.ID = t.c.ID
	}
	if r.Name == "" {
		r.Name = "--"
	}
	if cur == nil {
		r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs = "--", "-- / --", "--", "--", "--", "--"
		return r
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", runtime.CPUPercent(prev, cur))
	r.MemUsage = units.BytesSize(float64(cur.Memory)) + " / " + units.BytesSize(float64(cur.MemoryLimit))
	r.MemPerc = fmt.Sprintf("%.2f%%", cur.MemoryPercent())
	r.NetIO = units.HumanSizeWithPrecision(float64(cur.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(cur.NetTx), 3)
	r.BlockIO = units.HumanSizeWithPrecision(float64(cur.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(cur.BlockWrite), 3)
	r.PIDs = fmt.Sprint(cur.PIDs)
	return r
}
