package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

func init() { moreCommands = append(moreCommands, infoCommand) }

func infoCommand() *cli.Command {
	return &cli.Command{
		Name: "info", Usage: "Display system-wide information",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format the output using the given Go template"}},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			info, err := e.Info(cliContext.Context)
			if err != nil {
				return err
			}
			if format := cliContext.String("format"); format != "" {
				return table{w: cliContext.App.Writer, format: format}.write([]any{info})
			}
			writeInfo(cliContext.App.Writer, info)
			for _, w := range info.Warnings {
				fmt.Fprintln(cliContext.App.ErrWriter, w)
			}
			return nil
		},
	}
}

// writeInfo prints info as `docker info` does (docker/cli's
// prettyPrintInfo), leaving out what cairn has none of: swarm's details,
// containerd, an init binary, a daemon ID.
func writeInfo(w io.Writer, info *engine.Info) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("Client:")
	p(" Debug Mode: %v", info.Debug)
	p("")
	p("Server:")
	p(" Containers: %d", info.Containers)
	p("  Running: %d", info.ContainersRunning)
	p("  Paused: %d", info.ContainersPaused)
	p("  Stopped: %d", info.ContainersStopped)
	p(" Images: %d", info.Images)
	p(" Server Version: %s", info.ServerVersion)
	p(" Storage Driver: %s", info.Driver)
	for _, kv := range info.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", info.LoggingDriver)
	p(" Cgroup Driver: %s", info.CgroupDriver)
	p(" Cgroup Version: %s", info.CgroupVersion)
	p(" Plugins:")
	p("  Volume: %s", strings.Join(info.Plugins.Volume, " "))
	p("  Network: %s", strings.Join(info.Plugins.Network, " "))
	p("  Log: %s", strings.Join(info.Plugins.Log, " "))
	p(" Swarm: %s", info.Swarm.LocalNodeState)
	var runtimes []string
	for name := range info.Runtimes {
		runtimes = append(runtimes, name)
	}
	sort.Strings(runtimes)
	p(" Runtimes: %s", strings.Join(runtimes, " "))
	p(" Default Runtime: %s", info.DefaultRuntime)
	p(" runc version: %s", info.RuncCommit.ID)
	if len(info.SecurityOptions) > 0 {
		p(" Security Options:")
		for _, so := range info.SecurityOptions {
			// "name=seccomp,profile=default": the name, then its options.
			var name, profile string
			for _, kv := range strings.Split(so, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "name":
					name = v
				case "profile":
					profile = v
				}
			}
			p("  %s", name)
			if profile != "" {
				p("   Profile: %s", profile)
			}
		}
	}
	if r := info.Rootless; r != nil {
		p(" Rootless:")
		p("  User: %d (container root)", r.UID)
		p("  UID Map: %s", strings.Join(r.UIDMap, " "))
		p("  GID Map: %s", strings.Join(r.GIDMap, " "))
		p("  Pause Process: %d", r.PausePID)
		p("  Storage: %s", r.Storage)
		p("  Network: %s", r.Network)
		p("  Limits: %s", r.Limits)
	}
	p(" Kernel Version: %s", info.KernelVersion)
	p(" Operating System: %s", info.OperatingSystem)
	p(" OSType: %s", info.OSType)
	p(" Architecture: %s", info.Architecture)
	p(" CPUs: %d", info.NCPU)
	p(" Total Memory: %s", units.BytesSize(float64(info.MemTotal)))
	p(" Name: %s", info.Name)
	p(" Docker Root Dir: %s", info.DockerRootDir)
	p(" Debug Mode: %v", info.Debug)
	p(" Registry: %s", info.IndexServerAddress)
	p(" Labels:")
	for _, l := range info.Labels {
		p("  %s", l)
	}
	p(" Experimental: %v", info.ExperimentalBuild)
	p(" Insecure Registries:")
	for _, r := range info.RegistryConfig.InsecureRegistryCIDRs {
		p("  %s", r)
	}
	if len(info.RegistryConfig.Mirrors) > 0 {
		p(" Registry Mirrors:")
		for _, m := range info.RegistryConfig.Mirrors {
			p("  %s", m)
		}
	}
	p(" Live Restore Enabled: %v", info.LiveRestoreEnabled)
	p("")
}
