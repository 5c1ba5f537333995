package main

import (
	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, updateCommand) }

// updateCommand is `cairn update`: new limits, or a new restart policy, for
// containers, set at once on a running one's cgroups and recorded.
func updateCommand() *cli.Command {
	return &cli.Command{
		Name: "update", Usage: "Update configuration of one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cpus", Usage: "number of CPUs"},
			&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "CPU shares (relative weight)"},
			&cli.Int64Flag{Name: "cpu-period", Usage: "limit CPU CFS (Completely Fair Scheduler) period"},
			&cli.Int64Flag{Name: "cpu-quota", Usage: "limit CPU CFS (Completely Fair Scheduler) quota"},
			&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs in which to allow execution (0-3, 0,1)"},
			&cli.StringFlag{Name: "cpuset-mems", Usage: "MEMs in which to allow execution (0-3, 0,1)"},
			&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit"},
			&cli.StringFlag{Name: "memory-swap", Usage: "swap limit equal to memory plus swap: -1 to enable unlimited swap"},
			&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
			&cli.Int64Flag{Name: "pids-limit", Usage: "tune container pids limit (-1 for unlimited)"},
			&cli.IntFlag{Name: "blkio-weight", Usage: "block IO (relative weight), between 10 and 1000, or 0 to disable"},
			&cli.StringFlag{Name: "restart", Usage: "restart policy to apply when a container exits"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 {
				return argsError(cliContext, "at least 1 argument")
			}
			o, err := updateOptions(cliContext)
			if err != nil {
				return err
			}
			return onEachContainer(func(cliContext *cli.Context, e *engine.Engine, ref string) error {
				_, err := e.Containers.Update(cliContext.Context, ref, o)
				return err
			})(cliContext)
		},
	}
}

// updateOptions reads `update`'s flags: only those given change anything.
func updateOptions(cliContext *cli.Context) (runtime.UpdateOptions, error) {
	var o runtime.UpdateOptions
	set := false
	for _, f := range cliContext.Command.Flags {
		set = set || cliContext.IsSet(f.Names()[0])
	}
	if !set {
		return o, usage("you must provide one or more flags when using this command")
	}
	bytesFlag := func(name string) (*int64, error) {
		if !cliContext.IsSet(name) {
			return nil, nil
		}
		v := cliContext.String(name)
		if name == "memory-swap" && v == "-1" {
			n := int64(-1)
			return &n, nil
		}
		n, err := units.RAMInBytes(v)
		if err != nil {
			return nil, flagError(cliContext, name, v, err)
		}
		return &n, nil
	}
	var err error
	if o.Memory, err = bytesFlag("memory"); err != nil {
		return o, err
	}
	if o.MemorySwap, err = bytesFlag("memory-swap"); err != nil {
		return o, err
	}
	if o.MemoryReservation, err = bytesFlag("memory-reservation"); err != nil {
		return o, err
	}
	if cliContext.IsSet("cpus") {
		nano, err := parseCPUs(cliContext.String("cpus"))
		if err != nil {
			return o, flagError(cliContext, "cpus", cliContext.String("cpus"), err)
		}
		o.NanoCPUs = &nano
	}
	int64Flag := func(name string) *int64 {
		if !cliContext.IsSet(name) {
			return nil
		}
		v := cliContext.Int64(name)
		return &v
	}
	o.CpuShares, o.CpuPeriod, o.CpuQuota, o.PidsLimit = int64Flag("cpu-shares"), int64Flag("cpu-period"), int64Flag("cpu-quota"), int64Flag("pids-limit")
	for name, dst := range map[string]**string{"cpuset-cpus": &o.CpusetCpus, "cpuset-mems": &o.CpusetMems} {
		if cliContext.IsSet(name) {
			v := cliContext.String(name)
			*dst = &v
		}
	}
	if cliContext.IsSet("blkio-weight") {
		w := cliContext.Int("blkio-weight")
		if w < 0 || w > 1000 {
			return o, usage("Range of blkio weight is from 10 to 1000")
		}
		bw := uint16(w)
		o.BlkioWeight = &bw
	}
	if cliContext.IsSet("restart") {
		p, err := runtime.ParseRestartPolicy(cliContext.String("restart"))
		if err != nil {
			return o, usage("%v", err)
		}
		o.RestartPolicy = &p
	}
	return o, nil
}
