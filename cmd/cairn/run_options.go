package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
)

// createOptions reads the flags of `run` and `create`.
func createOptions(cliContext *cli.Context) (runtime.CreateOptions, error) {
	var o runtime.CreateOptions
	if cliContext.NArg() < 1 {
		return o, argsError(cliContext, "at least 1 argument")
	}
	for _, r := range refusedFlags {
		if !cliContext.IsSet(r.name) || r.name == "disable-content-trust" && cliContext.Bool(r.name) {
			continue
		}
		return o, usage("--%s: %s", r.name, r.reason)
	}
	args := cliContext.Args().Slice()
	o.Image, o.Args = args[0], args[1:]
	o.Name = cliContext.String("name")
	o.Tty, o.OpenStdin = cliContext.Bool("tty"), cliContext.Bool("interactive")
	if err := attachOptions(cliContext, &o); err != nil {
		return o, err
	}
	for _, f := range cliContext.StringSlice("env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return o, usage("%v", err)
		}
		o.Env = append(o.Env, env...)
	}
	o.Env = resolveEnv(append(o.Env, cliContext.StringSlice("env")...))
	labels := []string{}
	for _, f := range cliContext.StringSlice("label-file") {
		l, err := readLabelFile(f)
		if err != nil {
			return o, usage("%v", err)
		}
		labels = append(labels, l...)
	}
	for _, l := range append(labels, cliContext.StringSlice("label")...) {
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
	for name, dst := range map[string]*int64{"memory": &h.Memory, "memory-reservation": &h.MemoryReservation, "shm-size": &h.ShmSize, "memory-swap": &h.MemorySwap} {
		n, set, err := bytesFlag(cliContext, name)
		if err != nil {
			return o, err
		}
		if set {
			*dst = n
		}
	}
	if cliContext.IsSet("memory-swappiness") {
		if v := cliContext.Int64("memory-swappiness"); v != -1 {
			h.MemorySwappiness = &v
		}
	}
	h.OomKillDisable, h.OomScoreAdj = cliContext.Bool("oom-kill-disable"), cliContext.Int("oom-score-adj")
	if c := cliContext.String("cpus"); c != "" {
		nano, err := parseCPUs(c)
		if err != nil {
			return o, usage("invalid argument %q for \"--cpus\" flag: %v\nSee 'cairn %s --help'.", c, err, cliContext.Command.Name)
		}
		h.NanoCPUs = nano
	}
	h.CpuShares, h.CpuPeriod, h.CpuQuota = cliContext.Int64("cpu-shares"), cliContext.Int64("cpu-period"), cliContext.Int64("cpu-quota")
	h.CpuRealtimePeriod, h.CpuRealtimeRuntime = cliContext.Int64("cpu-rt-period"), cliContext.Int64("cpu-rt-runtime")
	h.CpusetCpus, h.CpusetMems = cliContext.String("cpuset-cpus"), cliContext.String("cpuset-mems")
	h.PidsLimit = cliContext.Int64("pids-limit")
	if w := cliContext.Int("blkio-weight"); w < 0 || w > 65535 {
		return o, flagError(cliContext, "blkio-weight", strconv.Itoa(w), errors.New("out of range"))
	} else {
		h.BlkioWeight = uint16(w)
	}
	for _, v := range cliContext.StringSlice("blkio-weight-device") {
		d, err := parseWeightDevice(v)
		if err != nil {
			return o, flagError(cliContext, "blkio-weight-device", v, err)
		}
		h.BlkioWeightDevice = append(h.BlkioWeightDevice, d)
	}
	for _, t := range []struct {
		flag string
		bps  bool
		dst  *[]runtime.ThrottleDevice
	}{
		{"device-read-bps", true, &h.BlkioDeviceReadBps}, {"device-write-bps", true, &h.BlkioDeviceWriteBps},
		{"device-read-iops", false, &h.BlkioDeviceReadIOps}, {"device-write-iops", false, &h.BlkioDeviceWriteIOps},
	} {
		for _, v := range cliContext.StringSlice(t.flag) {
			d, err := parseThrottleDevice(v, t.bps)
			if err != nil {
				return o, flagError(cliContext, t.flag, v, err)
			}
			*t.dst = append(*t.dst, d)
		}
	}
	for _, v := range cliContext.StringSlice("ulimit") {
		u, err := units.ParseUlimit(v)
		if err != nil {
			return o, flagError(cliContext, "ulimit", v, err)
		}
		h.Ulimits = append(h.Ulimits, runtime.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	h.CgroupParent = cliContext.String("cgroup-parent")
	for _, v := range cliContext.StringSlice("device") {
		d, err := parseDevice(v)
		if err != nil {
			return o, flagError(cliContext, "device", v, err)
		}
		h.Devices = append(h.Devices, d)
	}
	h.DeviceCgroupRules = cliContext.StringSlice("device-cgroup-rule")
	secOpts, err := securityOpts(cliContext.StringSlice("security-opt"))
	if err != nil {
		return o, usage("%v", err)
	}
	h.SecurityOpt = secOpts
	for _, v := range cliContext.StringSlice("sysctl") {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return o, flagError(cliContext, "sysctl", v, fmt.Errorf("sysctl '%s' is not a KEY=VALUE pair", v))
		}
		if h.Sysctls == nil {
			h.Sysctls = map[string]string{}
		}
		h.Sysctls[k] = val
	}
	for _, v := range cliContext.StringSlice("annotation") {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return o, flagError(cliContext, "annotation", v, fmt.Errorf("bad format for annotation: %s (KEY=VALUE)", v))
		}
		if h.Annotations == nil {
			h.Annotations = map[string]string{}
		}
		h.Annotations[k] = val
	}
	h.IpcMode, h.PidMode, h.UTSMode = cliContext.String("ipc"), cliContext.String("pid"), cliContext.String("uts")
	h.UsernsMode, h.CgroupnsMode = cliContext.String("userns"), cliContext.String("cgroupns")
	h.GroupAdd = cliContext.StringSlice("group-add")
	if cliContext.IsSet("init") {
		init := cliContext.Bool("init")
		h.Init = &init
	}
	for _, v := range cliContext.StringSlice("mount") {
		m, err := parseMount(v)
		if err != nil {
			return o, flagError(cliContext, "mount", v, err)
		}
		h.Mounts = append(h.Mounts, m)
	}
	for _, v := range cliContext.StringSlice("tmpfs") {
		dst, opts, _ := strings.Cut(v, ":")
		if h.Tmpfs == nil {
			h.Tmpfs = map[string]string{}
		}
		h.Tmpfs[dst] = opts
	}
	h.VolumesFrom = cliContext.StringSlice("volumes-from")
	h.VolumeDriver = cliContext.String("volume-driver")
	h.Runtime, h.Isolation = cliContext.String("runtime"), cliContext.String("isolation")
	h.ContainerIDFile = cliContext.String("cidfile")
	policy, err := runtime.ParseRestartPolicy(cliContext.String("restart"))
	if err != nil {
		return o, usage("%v", err)
	}
	if policy.Name != "no" && h.AutoRemove {
		return o, usage("Conflicting options: --restart and --rm")
	}
	h.RestartPolicy = policy
	o.StopSignal = cliContext.String("stop-signal")
	if cliContext.IsSet("stop-timeout") {
		t := cliContext.Int("stop-timeout")
		o.StopTimeout = &t
	}
	if o.Healthcheck, err = healthcheck(cliContext); err != nil {
		return o, err
	}
	h.LogConfig.Type = cliContext.String("log-driver")
	for _, v := range cliContext.StringSlice("log-opt") {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return o, flagError(cliContext, "log-opt", v, fmt.Errorf("invalid key value pair format in log-opt: %s", v))
		}
		if h.LogConfig.Config == nil {
			h.LogConfig.Config = map[string]string{}
		}
		h.LogConfig.Config[k] = val
	}
	return o, nil
}

// attachOptions reads -a as Docker's CLI does: without it `run` attaches
// stdout and stderr, and stdin with -i; -d attaches nothing.
func attachOptions(cliContext *cli.Context, o *runtime.CreateOptions) error {
	streams := cliContext.StringSlice("attach")
	for _, v := range streams {
		switch strings.ToLower(v) {
		case "stdin":
			o.AttachStdin = true
		case "stdout":
			o.AttachStdout = true
		case "stderr":
			o.AttachStderr = true
		default:
			return flagError(cliContext, "attach", v, errors.New("valid streams are STDIN, STDOUT and STDERR"))
		}
	}
	if o.OpenStdin {
		o.AttachStdin = true
	}
	if len(streams) == 0 {
		o.AttachStdout, o.AttachStderr = true, true
	}
	if cliContext.Command.Name == "run" && cliContext.Bool("detach") {
		if len(streams) > 0 {
			return usage("Conflicting options: -a and -d")
		}
		o.AttachStdin, o.AttachStdout, o.AttachStderr = false, false, false
	}
	return nil
}

// healthcheck reads --health-* and --no-healthcheck as Docker's CLI does.
func healthcheck(cliContext *cli.Context) (*dockerspec.HealthcheckConfig, error) {
	set := false
	for _, f := range []string{"health-cmd", "health-interval", "health-retries", "health-timeout", "health-start-period", "health-start-interval"} {
		set = set || cliContext.IsSet(f)
	}
	if cliContext.Bool("no-healthcheck") {
		if set {
			return nil, usage("--no-healthcheck conflicts with --health-* options")
		}
		return &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	hc := &dockerspec.HealthcheckConfig{
		Interval: cliContext.Duration("health-interval"), Timeout: cliContext.Duration("health-timeout"),
		StartPeriod: cliContext.Duration("health-start-period"), StartInterval: cliContext.Duration("health-start-interval"),
		Retries: cliContext.Int("health-retries"),
	}
	if cmd := cliContext.String("health-cmd"); cmd != "" {
		hc.Test = []string{"CMD-SHELL", cmd}
	}
	for name, d := range map[string]time.Duration{"--health-interval": hc.Interval, "--health-timeout": hc.Timeout, "--health-start-period": hc.StartPeriod, "--health-start-interval": hc.StartInterval} {
		if d < 0 {
			return nil, usage("%s cannot be negative", name)
		}
	}
	if hc.Retries < 0 {
		return nil, usage("--health-retries cannot be negative")
	}
	return hc, nil
}
