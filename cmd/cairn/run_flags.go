package main

import "github.com/urfave/cli/v2"

// createFlags are the flags of `run` and `create`, with Docker's names:
// every flag of `docker run` that means something on one Linux host, and,
// refused by name with the reason (refusedFlags), those that do not.
func createFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "assign a name to the container"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep STDIN open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringSliceFlag{Name: "attach", Aliases: []string{"a"}, Usage: "attach to STDIN, STDOUT or STDERR"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables (KEY=VALUE, or KEY for the host's value)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read in a file of environment variables"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set meta data on a container"},
		&cli.StringSliceFlag{Name: "label-file", Usage: "read in a line delimited file of labels"},
		&cli.StringSliceFlag{Name: "annotation", Usage: "add an annotation to the container (passed through to the OCI runtime-spec)"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "username or UID (format: <name|uid>[:<group|gid>])"},
		&cli.StringSliceFlag{Name: "group-add", Usage: "add additional groups to join"},
		&cli.StringFlag{Name: "entrypoint", Usage: "overwrite the default ENTRYPOINT of the image"},
		&cli.StringFlag{Name: "hostname", Aliases: []string{"h"}, Usage: "container host name"},
		&cli.BoolFlag{Name: "init", Usage: "run an init inside the container that forwards signals and reaps processes (tini, at /sbin/docker-init)"},
		&cli.BoolFlag{Name: "rm", Usage: "automatically remove the container and its anonymous volumes when it exits"},
		&cli.StringFlag{Name: "restart", Value: "no", Usage: "restart policy to apply when a container exits: no, on-failure[:max-retries], always, unless-stopped"},
		&cli.StringFlag{Name: "cidfile", Usage: "write the container ID to the file"},
		&cli.StringFlag{Name: "stop-signal", Usage: "signal to stop the container"},
		&cli.IntFlag{Name: "stop-timeout", Usage: "timeout (in seconds) to stop a container"},

		// Storage.
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind mount a volume (HOST:CONTAINER[:OPTIONS], NAME:CONTAINER[:OPTIONS], CONTAINER); options ro, rw, nocopy, a propagation"},
		&cli.StringSliceFlag{Name: "mount", Usage: "attach a filesystem mount to the container (type=bind|volume|tmpfs,source=…,target=…,readonly,bind-propagation=…,volume-nocopy,tmpfs-size=…,tmpfs-mode=…)"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "mount a tmpfs directory (PATH[:OPTIONS])"},
		&cli.StringSliceFlag{Name: "volumes-from", Usage: "mount volumes from the specified container(s) (CONTAINER[:ro|rw])"},
		&cli.StringFlag{Name: "volume-driver", Usage: "volume driver for the container's volumes: local, the only one"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the container's root filesystem as read only"},
		&cli.StringFlag{Name: "shm-size", Usage: "size of /dev/shm (default 64m)"},

		// Resources.
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 64m)"},
		&cli.StringFlag{Name: "memory-swap", Usage: "swap limit equal to memory plus swap: -1 to enable unlimited swap"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.Int64Flag{Name: "memory-swappiness", Value: -1, Usage: "tune container memory swappiness (0 to 100)"},
		&cli.BoolFlag{Name: "oom-kill-disable", Usage: "disable OOM Killer"},
		&cli.IntFlag{Name: "oom-score-adj", Usage: "tune host's OOM preferences (-1000 to 1000)"},
		&cli.StringFlag{Name: "cpus", Usage: "number of CPUs (e.g. 0.5)"},
		&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "CPU shares (relative weight)"},
		&cli.Int64Flag{Name: "cpu-period", Usage: "limit CPU CFS (Completely Fair Scheduler) period"},
		&cli.Int64Flag{Name: "cpu-quota", Usage: "limit CPU CFS (Completely Fair Scheduler) quota"},
		&cli.Int64Flag{Name: "cpu-rt-period", Usage: "limit CPU real-time period in microseconds"},
		&cli.Int64Flag{Name: "cpu-rt-runtime", Usage: "limit CPU real-time runtime in microseconds"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs in which to allow execution (0-3, 0,1)"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "MEMs in which to allow execution (0-3, 0,1)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "tune container pids limit (-1 for unlimited)"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "block IO (relative weight), between 10 and 1000, or 0 to disable"},
		&cli.StringSliceFlag{Name: "blkio-weight-device", Usage: "block IO weight (relative device weight, DEVICE:WEIGHT)"},
		&cli.StringSliceFlag{Name: "device-read-bps", Usage: "limit read rate (bytes per second) from a device (DEVICE:RATE)"},
		&cli.StringSliceFlag{Name: "device-write-bps", Usage: "limit write rate (bytes per second) to a device (DEVICE:RATE)"},
		&cli.StringSliceFlag{Name: "device-read-iops", Usage: "limit read rate (IO per second) from a device (DEVICE:RATE)"},
		&cli.StringSliceFlag{Name: "device-write-iops", Usage: "limit write rate (IO per second) to a device (DEVICE:RATE)"},
		&cli.StringSliceFlag{Name: "ulimit", Usage: "ulimit options (NAME=SOFT[:HARD])"},
		&cli.StringFlag{Name: "cgroup-parent", Usage: "optional parent cgroup for the container (default /cairn)"},

		// Devices and security.
		&cli.StringSliceFlag{Name: "device", Usage: "add a host device to the container (HOST[:CONTAINER[:rwm]])"},
		&cli.StringSliceFlag{Name: "device-cgroup-rule", Usage: "add a rule to the cgroup allowed devices list ('c 1:3 rwm')"},
		&cli.BoolFlag{Name: "privileged", Usage: "give extended privileges to this container"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add Linux capabilities"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop Linux capabilities"},
		&cli.StringSliceFlag{Name: "security-opt", Usage: "security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], systempaths=unconfined, label=disable"},
		&cli.StringSliceFlag{Name: "sysctl", Usage: "sysctl options of the container's namespaces (KEY=VALUE)"},

		// Namespaces.
		&cli.StringFlag{Name: "ipc", Usage: "IPC mode to use: private, shareable, none, host, container:NAME"},
		&cli.StringFlag{Name: "pid", Usage: "PID namespace to use: host, container:NAME"},
		&cli.StringFlag{Name: "uts", Usage: "UTS namespace to use: host"},
		&cli.StringFlag{Name: "userns", Usage: "user namespace to use: host (the only one)"},
		&cli.StringFlag{Name: "cgroupns", Usage: "cgroup namespace to use: host, private"},

		// Network.
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

		// Health.
		&cli.StringFlag{Name: "health-cmd", Usage: "command to run to check health"},
		&cli.DurationFlag{Name: "health-interval", Usage: "time between running the check (ms|s|m|h)"},
		&cli.IntFlag{Name: "health-retries", Usage: "consecutive failures needed to report unhealthy"},
		&cli.DurationFlag{Name: "health-timeout", Usage: "maximum time to allow one check to run (ms|s|m|h)"},
		&cli.DurationFlag{Name: "health-start-period", Usage: "start period for the container to initialize before starting health-retries countdown (ms|s|m|h)"},
		&cli.DurationFlag{Name: "health-start-interval", Usage: "time between running the check during the start period (ms|s|m|h)"},
		&cli.BoolFlag{Name: "no-healthcheck", Usage: "disable any container-specified HEALTHCHECK"},

		// Logs.
		&cli.StringFlag{Name: "log-driver", Usage: "logging driver for the container: json-file (default), local (json-file rotated at 20m, 5 files) or none"},
		&cli.StringSliceFlag{Name: "log-opt", Usage: "log driver options: max-size, max-file"},

		// The image.
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image before running: always, missing or never"},
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] of the image to pull, if it is pulled"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress the pull output"},
		&cli.StringFlag{Name: "runtime", Usage: "runtime to use for this container: runc (libcontainer, built in), the only one"},
		&cli.StringFlag{Name: "isolation", Usage: "container isolation technology: default, the only one on Linux"},
	}
	for _, r := range refusedFlags {
		usage := "refused: " + r.reason
		switch r.kind {
		case "bool":
			flags = append(flags, &cli.BoolFlag{Name: r.name, Value: r.name == "disable-content-trust", Usage: usage})
		default:
			flags = append(flags, &cli.StringSliceFlag{Name: r.name, Usage: usage})
		}
	}
	return flags
}

// refusedFlags are the flags of `docker run` that have no meaning for cairn
// on one Linux host: declared, so that a script that gives one is told why
// rather than ignored.
var refusedFlags = []struct{ name, kind, reason string }{
	{"link", "", "legacy container links: use a user-defined network (cairn network create), where containers resolve each other by name and alias"},
	{"link-local-ip", "", "cairn's networks give no link-local addresses"},
	{"ip6", "", "cairn's networks are IPv4 only"},
	{"kernel-memory", "", "kernel memory limits are deprecated in Docker and no longer enforced by the kernel (memory.kmem.limit_in_bytes takes a value and stays unlimited)"},
	{"storage-opt", "", "cairn's overlay snapshots have no per-container size or storage options"},
	{"gpus", "", "cairn has no GPU support (NVIDIA's container toolkit hooks into Docker's daemon); map device nodes with --device"},
	{"disable-content-trust", "bool", "cairn does not verify Docker Content Trust (Notary) signatures: --disable-content-trust=false cannot be honoured"},
	{"use-api-socket", "bool", "cairn does not bind its API socket into containers (cairn system service serves it on the host; bind it with -v if a container must drive cairn)"},
	{"cpu-count", "", "Windows only"},
	{"cpu-percent", "", "Windows only"},
	{"io-maxbandwidth", "", "Windows only"},
	{"io-maxiops", "", "Windows only"},
}
