package main

import (
	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, updateCommand) }

// updateCommand is `cairn update`: new limits, or a new restart policy, for
// containers, set at once on a running one's cgroups and recorded.
func updateCommand() *cli.Command {
	return &cli.Command{
		Name: "update", Usage: "Update configuration of one or more containers", ArgsUsage: "CONTAINER [CONTAINER...]",
		UseShortOptionHandling: true,
		Flags: append(flagsNamed(createFlags(), "cpus", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems",
			"memory", "memory-swap", "memory-reservation", "pids-limit", "blkio-weight"),
			// run's has a default ("no"); update changes the policy only when given one.
			&cli.StringFlag{Name: "restart", Usage: "restart policy to apply when a container exits"}),
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
	for name, dst := range map[string]**int64{"memory": &o.Memory, "memory-swap": &o.MemorySwap, "memory-reservation": &o.MemoryReservation} {
		n, set, err := bytesFlag(cliContext, name)
		if err != nil {
			return o, err
		}
		if set {
			*dst = &n
		}
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

// flagsNamed are the flags of flags with the names given, in that order:
// a command that takes some of another's flags takes the same definitions.
func flagsNamed(flags []cli.Flag, names ...string) []cli.Flag {
	out := make([]cli.Flag, 0, len(names))
	for _, n := range names {
		for _, f := range flags {
			if f.Names()[0] == n {
				out = append(out, f)
			}
		}
	}
	if len(out) != len(names) {
		panic("flagsNamed: a flag is missing")
	}
	return out
}
