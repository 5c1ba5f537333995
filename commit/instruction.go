package commit

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// ErrInstruction reports a --change that is not a Dockerfile instruction commit
// can apply.
var ErrInstruction = errors.New("invalid change")

// DefaultShell is what the shell form of CMD and ENTRYPOINT runs with when
// the image sets no SHELL, as in Docker.
var DefaultShell = []string{"/bin/sh", "-c"}

// changeKinds are the instructions `commit --change` takes, as Docker's.
var changeKinds = []string{"cmd", "entrypoint", "env", "expose", "label", "onbuild", "user", "volume", "workdir", "stopsignal"}

// ParseInstructions parses the -c/--change arguments of commit, each one
// Dockerfile instruction, with buildkit's parser. Only instructions that
// change the config are taken: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
// ONBUILD, USER, VOLUME, WORKDIR and STOPSIGNAL.
func ParseInstructions(changes []string) ([]instructions.Command, error) {
	var out []instructions.Command
	for _, ch := range changes {
		res, err := parser.Parse(strings.NewReader(ch))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInstruction, ch, err)
		}
		for _, node := range res.AST.Children {
			if !slices.Contains(changeKinds, strings.ToLower(node.Value)) {
				return nil, fmt.Errorf("%w: %s is not a valid change command", ErrInstruction, strings.ToUpper(node.Value))
			}
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrInstruction, ch, err)
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}

// Applier applies the instructions of a Dockerfile that change only an
// image's config, in order, as Docker's builder does — `commit --change`
// and the metadata steps of `build`. Variables in their arguments are
// expanded from the config's environment and from Args.
type Applier struct {
	Config *image.Config
	Args   []string // KEY=VALUE of build arguments, seen after the environment
	cmdSet bool     // CMD was set by an instruction applied here
}

// Apply applies one instruction. Its error names the instruction.
func (a *Applier) Apply(cmd instructions.Command) error {
	if err := a.apply(cmd); err != nil {
		return fmt.Errorf("%s: %w", cmd.Name(), err)
	}
	return nil
}

func (a *Applier) apply(cmd instructions.Command) error {
	c := &a.Config.Config
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(a.expand); err != nil {
			return err
		}
	}
	switch cmd := cmd.(type) {
	case *instructions.CmdCommand:
		c.Cmd = a.commandLine(cmd.ShellDependantCmdLine)
		a.cmdSet = true
	case *instructions.EntrypointCommand:
		c.Entrypoint = a.commandLine(cmd.ShellDependantCmdLine)
		if !a.cmdSet {
			c.Cmd = nil // an inherited CMD goes with the ENTRYPOINT it was for
		}
	case *instructions.EnvCommand:
		for _, kv := range cmd.Env {
			c.Env = setEnv(c.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		c.Labels = maps.Clone(c.Labels)
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range cmd.Labels {
			c.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		c.ExposedPorts = maps.Clone(c.ExposedPorts)
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range cmd.Ports {
			p, err := a.expand(p)
			if err != nil {
				return err
			}
			ports, err := parsePorts(p)
			if err != nil {
				return err
			}
			for _, port := range ports {
				c.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		c.Volumes = maps.Clone(c.Volumes)
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			c.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		dir := cmd.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", c.WorkingDir, dir)
		}
		c.WorkingDir = path.Clean(dir)
	case *instructions.UserCommand:
		c.User = cmd.User
	case *instructions.OnbuildCommand:
		c.OnBuild = append(slices.Clone(c.OnBuild), cmd.Expression)
	case *instructions.StopSignalCommand:
		if !validSignal(cmd.Signal) {
			return fmt.Errorf("invalid signal: %s", cmd.Signal)
		}
		c.StopSignal = cmd.Signal
	case *instructions.HealthCheckCommand:
		c.Healthcheck = cmd.Health
	case *instructions.ShellCommand:
		c.Shell = cmd.Shell
	case *instructions.MaintainerCommand:
		a.Config.Author = cmd.Maintainer
	default:
		return fmt.Errorf("%w: not a change of the config", ErrInstruction)
	}
	return nil
}

// commandLine is the argv of CMD or ENTRYPOINT: the exec form as it is, the
// shell form through the image's SHELL.
func (a *Applier) commandLine(l instructions.ShellDependantCmdLine) []string {
	if !l.PrependShell {
		return slices.Clone(l.CmdLine)
	}
	sh := a.Config.Config.Shell
	if len(sh) == 0 {
		sh = DefaultShell
	}
	return append(slices.Clone(sh), strings.Join(l.CmdLine, " "))
}

func (a *Applier) expand(word string) (string, error) {
	env := slices.Concat(a.Args, a.Config.Config.Env) // the environment wins over arguments
	out, _, err := shell.NewLex('\\').ProcessWord(word, shell.EnvsFromSlice(env))
	return out, err
}

// setEnv sets key in env, in place of its earlier value, if any.
func setEnv(env []string, key, value string) []string {
	out := slices.Clone(env)
	for i, e := range out {
		if k, _, _ := strings.Cut(e, "="); k == key {
			out[i] = key + "=" + value
			return out
		}
	}
	return append(out, key+"="+value)
}

// parsePorts reads an EXPOSE argument: "80", "80/udp", "8000-8002/tcp".
func parsePorts(s string) ([]string, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", s)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
			return nil, fmt.Errorf("invalid range specified for containerPort: %s", s)
		}
	}
	var out []string
	for p := first; p <= last; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// validSignal accepts what Docker's STOPSIGNAL does: a signal name, with or
// without SIG, or a number.
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	return slices.Contains(signalNames, name) || strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX")
}

var signalNames = strings.Fields("ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ")
