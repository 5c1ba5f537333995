package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// createFlags are the flags of `run` and `create`, with Docker's names.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "assign a name to the container"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep STDIN open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables (KEY=VALUE, or KEY for the host's value)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read in a file of environment variables"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set meta data on a container"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "username or UID (format: <name|uid>[:<group|gid>])"},
		&cli.StringFlag{Name: "entrypoint", Usage: "overwrite the default ENTRYPOINT of the image"},
		&cli.StringFlag{Name: "hostname", Aliases: []string{"h"}, Usage: "container host name"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind mount a volume (HOST:CONTAINER[:ro], NAME:CONTAINER, CONTAINER)"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the container's root filesystem as read only"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 64m)"},
		&cli.StringFlag{Name: "cpus", Usage: "number of CPUs (e.g. 0.5)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "tune container pids limit (-1 for unlimited)"},
		&cli.StringFlag{Name: "network", Aliases: []string{"net"}, Value: "bridge", Usage: "connect a container to a network: bridge, a user network, host, none, or container:NAME"},
		&cli.StringSliceFlag{Name: "network-alias", Aliases: []string{"net-alias"}, Usage: "add a network-scoped alias for the container"},
		&cli.StringFlag{Name: "ip", Usage: "IPv4 address (e.g., 172.30.100.104)"},
		&cli.StringFlag{Name: "mac-address", Usage: "container MAC address (e.g., 92:d0:c6:0a:29:33)"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish a container's port(s) to the host ([IP:][HOST:]CONTAINER[/PROTO])"},
		&cli.BoolFlag{Name: "publish-all", Aliases: []string{"P"}, Usage: "publish all exposed ports to random ports"},
		&cli.StringSliceFlag{Name: "expose", Usage: "expose a port or a range of ports"},
		&cli.StringSliceFlag{Name: "dns", Usage: "set custom DNS servers"},
		&cli.StringSliceFlag{Name: "dns-search", Usage: "set custom DNS search domains"},
		&cli.StringSliceFlag{Name: "dns-option", Aliases: []string{"dns-opt"}, Usage: "set DNS options"},
		&cli.StringSliceFlag{Name: "add-host", Usage: "add a custom host-to-IP mapping (host:ip, or host:host-gateway)"},
		&cli.StringFlag{Name: "domainname", Usage: "container NIS domain name"},
		&cli.BoolFlag{Name: "privileged", Usage: "give extended privileges to this container"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add Linux capabilities"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop Linux capabilities"},
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image before running: always, missing or never"},
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] of the image to pull, if it is pulled"},
	}
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "Create a new container", ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		UseShortOptionHandling: true,
		Flags:                  createFlags(),
		Action: func(cliContext *cli.Context) error {
			_, c, err := createContainer(cliContext, false)
			if err != nil {
				return err
			}
			fmt.Fprintln(cliContext.App.Writer, c.ID)
			return nil
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name: "run", Usage: "Create and run a new container from an image", ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		UseShortOptionHandling: true,
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run the container in the background and print its ID"},
			&cli.BoolFlag{Name: "rm", Usage: "automatically remove the container and its anonymous volumes when it exits"},
		),
		Action: runRun,
	}
}

// usage is an error of the command line: exit 125, as Docker's.
func usage(format string, args ...any) error {
	return &statusError{code: exitCairn, err: fmt.Errorf(format, args...)}
}

// createOptions reads the flags of `run` and `create`.
func createOptions(cliContext *cli.Context) (runtime.CreateOptions, error) {
	var o runtime.CreateOptions
	if cliContext.NArg() < 1 {
		return o, argsError(cliContext, "at least 1 argument")
	}
	args := cliContext.Args().Slice()
	o.Image, o.Args = args[0], args[1:]
	o.Name = cliContext.String("name")
	o.Tty, o.OpenStdin = cliContext.Bool("tty"), cliContext.Bool("interactive")
	for _, f := range cliContext.StringSlice("env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return o, usage("%v", err)
		}
		o.Env = append(o.Env, env...)
	}
	o.Env = resolveEnv(append(o.Env, cliContext.StringSlice("env")...))
	for _, l := range cliContext.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	o.WorkingDir, o.User, o.Hostname = cliContext.String("workdir"), cliContext.String("user"), cliContext.String("hostname")
	if cliContext.IsSet("entrypoint") {
		o.Entrypoint = []string{cliContext.String("entrypoint")}
	}
	o.Volumes = cliContext.StringSlice("volume")
	h := &o.Host
	h.ReadonlyRootfs, h.Privileged = cliContext.Bool("read-only"), cliContext.Bool("privileged")
	n := &o.Network
	n.Mode = cliContext.String("network")
	n.Aliases, n.IP, n.MAC = cliContext.StringSlice("network-alias"), cliContext.String("ip"), cliContext.String("mac-address")
	n.Domainname = cliContext.String("domainname")
	n.Expose, n.PublishAll = cliContext.StringSlice("expose"), cliContext.Bool("publish-all")
	n.DNS = network.DNS{Servers: cliContext.StringSlice("dns"), Search: cliContext.StringSlice("dns-search"), Options: cliContext.StringSlice("dns-option")}
	n.ExtraHosts = cliContext.StringSlice("add-host")
	if p := cliContext.StringSlice("publish"); len(p) > 0 {
		_, ports, err := network.ParsePorts(p)
		if err != nil {
			return o, usage("invalid argument %q for \"-p, --publish\" flag: %v\nSee 'cairn %s --help'.", strings.Join(p, ","), err, cliContext.Command.Name)
		}
		n.Ports = ports
	}
	h.CapAdd, h.CapDrop = cliContext.StringSlice("cap-add"), cliContext.StringSlice("cap-drop")
	h.AutoRemove = cliContext.Bool("rm")
	if m := cliContext.String("memory"); m != "" {
		n, err := units.RAMInBytes(m)
		if err != nil {
			return o, usage("invalid argument %q for \"-m, --memory\" flag: %v\nSee 'cairn %s --help'.", m, err, cliContext.Command.Name)
		}
		h.Memory = n
	}
	if c := cliContext.String("cpus"); c != "" {
		f, err := strconv.ParseFloat(c, 64)
		if err != nil || f < 0 {
			return o, usage("invalid argument %q for \"--cpus\" flag: failed to parse %s as a rational number\nSee 'cairn %s --help'.", c, c, cliContext.Command.Name)
		}
		if n := numCPU(); f > float64(n) || f > 0 && f < 0.01 {
			return o, usage("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
		h.NanoCPUs = int64(f * 1e9)
	}
	h.PidsLimit = cliContext.Int64("pids-limit")
	return o, nil
}

// numCPU is the number of CPUs this process may run on.
func numCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		return set.Count()
	}
	return 1
}

// readEnvFile reads a file of KEY=VALUE lines as Docker's --env-file does:
// blank lines and lines starting with # are skipped; a bare KEY takes the
// host's value.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("%s:%d: no variable name on line '%s'", path, n, line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: variable '%s' contains whitespaces", path, n, k)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// createContainer creates the container `run` or `create` describes,
// pulling its image first as --pull says.
func createContainer(cliContext *cli.Context, forRun bool) (*engine.Engine, *runtime.Container, error) {
	o, err := createOptions(cliContext)
	if err != nil {
		return nil, nil, err
	}
	if o.Tty && o.OpenStdin && forRun && !cliContext.Bool("detach") && !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, nil, usage("the input device is not a TTY")
	}
	policy, err := engine.ParsePullPolicy(cliContext.String("pull"))
	if err != nil {
		return nil, nil, usage("%v", err)
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return nil, nil, err
	}
	errOut := cliContext.App.ErrWriter
	c, err := e.Create(cliContext.Context, engine.CreateOptions{
		CreateOptions: o, Pull: policy,
		PullOptions: engine.PullOptions{Platform: cliContext.String("platform"), Keychain: dockerKeychain{}, Report: newPullReport(errOut)},
		// As Docker: an image that is not there is pulled, and said so on stderr.
		Missing: func(ref string) { fmt.Fprintf(errOut, "Unable to find image '%s' locally\n", ref) },
	})
	switch {
	case errors.Is(err, image.ErrNotFound):
		return nil, nil, usage("Unable to find image '%s' locally: %v", o.Image, err)
	case err != nil:
		return nil, nil, &statusError{code: exitCairn, err: err}
	}
	return e, c, nil
}

func runRun(cliContext *cli.Context) error {
	warnSeccomp()
	e, c, err := createContainer(cliContext, true)
	if err != nil {
		return err
	}
	if cliContext.Bool("detach") {
		if err := e.Containers.StartDetached(cliContext.Context, c.ID); err != nil {
			return startFailed(err)
		}
		fmt.Fprintln(cliContext.App.Writer, c.ID)
		return nil
	}
	return foreground(cliContext, e, c, !c.Host.AutoRemove)
}

// foreground runs container c attached to this terminal, as `docker run`
// does, and exits with its exit code.
func foreground(cliContext *cli.Context, e *engine.Engine, c *runtime.Container, log bool) error {
	code, err := runAttached(cliContext.Context, c.Config.Tty, c.Config.OpenStdin, func(o runtime.IO) (attached, error) {
		o.Log = log
		t, err := e.Containers.Start(cliContext.Context, c.ID, o)
		if err != nil {
			return nil, startFailed(err)
		}
		return t, nil
	})
	return exitWith(code, err)
}
