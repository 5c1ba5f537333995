package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// stageState is a stage being built: the image so far and its config.
type stageState struct {
	bs      *buildState
	name    string
	parent  *image.Image      // the image so far; nil before any step of FROM scratch
	cfg     image.Config      // its config
	applier commit.Applier    // applies the config instructions to cfg
	args    map[string]string // the stage's ARGs, with their values
	argKeys []string          // in order of declaration
}

// shell is what the shell forms run with.
func (s *stageState) shell() []string {
	if len(s.cfg.Config.Shell) > 0 {
		return s.cfg.Config.Shell
	}
	return commit.DefaultShell
}

// nop is the history of a step that only changes the config, as Docker's
// classic builder writes it.
func (s *stageState) nop(text string) string {
	return strings.Join(s.shell(), " ") + " #(nop)  " + text
}

// argEnv is the build arguments a RUN sees: those the stage declared with a
// value, that no ENV sets.
func (s *stageState) argEnv() []string {
	var out []string
	for _, k := range s.argKeys {
		v, ok := s.args[k]
		if !ok || slices.ContainsFunc(s.cfg.Config.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			continue
		}
		out = append(out, k+"="+v)
	}
	for _, k := range proxyArgs {
		if v, ok := s.bs.given[k]; ok && !slices.Contains(s.argKeys, k) {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// expandEnv is what variables in instructions expand from: the build
// arguments, and the environment over them.
func (s *stageState) expandEnv() []string {
	var env []string
	for _, k := range s.argKeys {
		if v, ok := s.args[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, s.cfg.Config.Env...)
}

func (s *stageState) expand(word string) (string, error) {
	out, _, err := shell.NewLex('\\').ProcessWord(word, shell.EnvsFromSlice(s.expandEnv()))
	return out, err
}

// key is the build cache key of a step over the image so far.
func (s *stageState) key(parts ...string) digest.Digest {
	h := sha256.New()
	parent := "scratch"
	if s.parent != nil {
		parent = s.parent.Manifest.Digest.String()
	}
	fmt.Fprintf(h, "cairn build step\x00%s", parent)
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}

// cached takes the image of a step from the cache, if it is there.
func (s *stageState) cached(key digest.Digest) bool {
	if s.bs.o.NoCache {
		return false
	}
	img, ok := s.bs.b.Images.CacheGet(key)
	if !ok {
		return false
	}
	cfg, _, err := s.bs.b.Images.Config(img)
	if err != nil {
		return false
	}
	fmt.Fprintf(s.bs.o.Out, " ---> Using cache\n")
	s.advance(img, cfg)
	return true
}

func (s *stageState) advance(img image.Image, cfg image.Config) {
	s.parent, s.cfg = &img, cfg
	s.applier.Config = &s.cfg
	fmt.Fprintf(s.bs.o.Out, " ---> %s\n", image.ShortID(img.ID))
}

// dispatch runs one instruction.
func (s *stageState) dispatch(ctx context.Context, cmd instructions.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		err = s.run(ctx, c)
	case *instructions.CopyCommand:
		err = s.copy(ctx, c.SourcesAndDest, copyFlags{chown: c.Chown, chmod: c.Chmod, from: c.From, verb: "COPY"})
	case *instructions.AddCommand:
		err = s.copy(ctx, c.SourcesAndDest, copyFlags{chown: c.Chown, chmod: c.Chmod, verb: "ADD", add: true})
	case *instructions.WorkdirCommand:
		err = s.workdir(ctx, c)
	case *instructions.ArgCommand:
		err = s.arg(ctx, c)
	default:
		err = s.config(ctx, cmd)
	}
	if err != nil && !errors.As(err, new(*RunError)) {
		err = fmt.Errorf("%s: %w", strings.ToUpper(cmd.Name()), err)
	}
	return err
}

// config applies an instruction that changes only the config.
func (s *stageState) config(ctx context.Context, cmd instructions.Command) error {
	next := s.cfg
	next.Config.Env = slices.Clone(next.Config.Env)
	a := s.applier
	a.Config = &next
	a.Args = nil
	for _, k := range s.argKeys {
		if v, ok := s.args[k]; ok {
			a.Args = append(a.Args, k+"="+v)
		}
	}
	if err := a.Apply(cmd); err != nil {
		return fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	text, err := nopText(cmd, &next)
	if err != nil {
		return err
	}
	createdBy := s.nop(text)
	if _, ok := cmd.(*instructions.ShellCommand); ok {
		createdBy = strings.Join(next.Config.Shell, " ") + " #(nop)  " + text // Docker: under the new shell
	}
	s.applier = a
	return s.commitConfig(ctx, createdBy, &next)
}

// commitConfig makes (or takes from the cache) the image of a step with no
// layer: the config next (nil: the current one), with a history entry
// marked empty_layer.
func (s *stageState) commitConfig(ctx context.Context, createdBy string, next *image.Config) error {
	if next == nil {
		next = &s.cfg
	}
	key := s.key("config", createdBy, configKey(next))
	if s.cached(key) {
		return nil
	}
	cfg := *next
	img, err := s.bs.b.Images.Derive(ctx, s.parent, nil, image.DeriveOptions{
		What: "build step", CacheKey: key, Intermediate: true,
		Configure: func(c *image.Config) error {
			created := now()
			rootfs, history := c.RootFS, c.History
			*c = cfg
			c.RootFS, c.History, c.Created, c.Comment = rootfs, history, &created, ""
			if createdBy != "" {
				c.History = append(slices.Clone(c.History), ocispec.History{Created: &created, CreatedBy: createdBy, Author: cfg.Author, EmptyLayer: true})
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	c, _, err := s.bs.b.Images.Config(img)
	if err != nil {
		return err
	}
	s.advance(img, c)
	return nil
}

// configKey is what of a config a step's image depends on beyond its
// parent: all of it.
func configKey(c *image.Config) string {
	cc := c.Config
	return fmt.Sprintf("%q %q %q %v %q %q %v %v %q %v %q %q", cc.Env, cc.Entrypoint, cc.Cmd, sortedKeys(cc.ExposedPorts), cc.User,
		cc.WorkingDir, sortedKeys(cc.Volumes), sortedMap(cc.Labels), cc.StopSignal, cc.Healthcheck, cc.OnBuild, cc.Shell) + c.Author
}

func sortedKeys(m map[string]struct{}) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortedMap(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// nopText is how the classic builder's history names a config instruction.
func nopText(cmd instructions.Command, c *image.Config) (string, error) {
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		var kv []string
		for _, e := range cmd.Env {
			kv = append(kv, e.Key+"="+e.Value)
		}
		return "ENV " + strings.Join(kv, " "), nil
	case *instructions.LabelCommand:
		var kv []string
		for _, e := range cmd.Labels {
			kv = append(kv, e.Key+"="+e.Value)
		}
		return "LABEL " + strings.Join(kv, " "), nil
	case *instructions.CmdCommand:
		return fmt.Sprintf("CMD %q", c.Config.Cmd), nil
	case *instructions.EntrypointCommand:
		return fmt.Sprintf("ENTRYPOINT %q", c.Config.Entrypoint), nil
	case *instructions.ExposeCommand:
		return "EXPOSE " + strings.Join(exposedNames(c.Config.ExposedPorts), " "), nil
	case *instructions.UserCommand:
		return "USER " + cmd.User, nil
	case *instructions.VolumeCommand:
		return fmt.Sprintf("VOLUME %v", cmd.Volumes), nil
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + cmd.Signal, nil
	case *instructions.HealthCheckCommand:
		// Docker prints its struct with %q; the words are kept, Go's way.
		h := c.Config.Healthcheck
		return fmt.Sprintf("HEALTHCHECK &{%q %q %q %q %q}", h.Test, h.Interval.String(), h.Timeout.String(), h.StartPeriod.String(), rune(h.Retries)), nil
	case *instructions.OnbuildCommand:
		return "ONBUILD " + cmd.Expression, nil
	case *instructions.ShellCommand:
		return fmt.Sprintf("SHELL %v", cmd.Shell), nil
	case *instructions.MaintainerCommand:
		return "MAINTAINER " + cmd.Maintainer, nil
	}
	return "", fmt.Errorf("%w: %s is not supported", ErrDockerfile, strings.ToUpper(cmd.Name()))
}

// exposedNames are the ports as Docker's history lists them: sorted, "/tcp" left out.
func exposedNames(ports map[string]struct{}) []string {
	var out []string
	for p := range ports {
		out = append(out, strings.TrimSuffix(p, "/tcp"))
	}
	sort.Strings(out)
	return out
}

// arg declares a build argument of the stage.
func (s *stageState) arg(ctx context.Context, c *instructions.ArgCommand) error {
	var text []string
	for _, kv := range c.Args {
		s.bs.used[kv.Key] = true
		if !slices.Contains(s.argKeys, kv.Key) {
			s.argKeys = append(s.argKeys, kv.Key)
		}
		switch v, given := s.bs.given[kv.Key]; {
		case given:
			s.args[kv.Key] = v
		case kv.Value != nil:
			v, err := s.expand(*kv.Value)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
			s.args[kv.Key] = v
		default:
			if v, ok := s.bs.meta[kv.Key]; ok { // declared before FROM: its value comes in
				s.args[kv.Key] = v
			}
		}
		t := kv.Key
		if kv.Value != nil {
			t += "=" + *kv.Value
		}
		text = append(text, t)
	}
	return s.commitConfig(ctx, s.nop("ARG "+strings.Join(text, " ")), nil)
}

// run runs a command in a container of the image so far and commits it.
func (s *stageState) run(ctx context.Context, c *instructions.RunCommand) error {
	if s.parent == nil {
		return fmt.Errorf("%w: RUN needs a source image: FROM scratch has no command to run", ErrDockerfile)
	}
	argv, script, err := s.runArgs(c)
	if err != nil {
		return err
	}
	createdBy := strings.Join(argv, " ")
	if args := s.argEnv(); len(args) > 0 {
		var shown []string
		for _, kv := range args {
			if k, _, _ := strings.Cut(kv, "="); !slices.Contains(proxyArgs, k) || slices.Contains(s.argKeys, k) {
				shown = append(shown, kv)
			}
		}
		sort.Strings(shown)
		if len(shown) > 0 {
			createdBy = fmt.Sprintf("|%d %s %s", len(shown), strings.Join(shown, " "), createdBy)
		}
	}
	key := s.key("run", createdBy, script)
	if s.cached(key) {
		return nil
	}
	b := s.bs.b
	o := runtime.CreateOptions{
		Image: "build step", From: s.parent, Entrypoint: []string{""}, Args: argv,
		Env: s.argEnv(), Host: runtime.HostConfig{NetworkMode: s.bs.o.Network},
	}
	if script != "" {
		// A heredoc with a #! line runs as its own file, as BuildKit does it.
		dir, err := os.MkdirTemp(b.Tmp, "heredoc-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		name := c.Files[0].Name
		if err := os.WriteFile(dir+"/"+name, []byte(script), 0o755); err != nil {
			return err
		}
		o.Volumes = []string{dir + ":/dev/pipes:ro"}
		o.Args = []string{"/dev/pipes/" + name}
	}
	ct, err := b.Containers.Create(ctx, o)
	if err != nil {
		return err
	}
	defer b.Containers.Remove(context.WithoutCancel(ctx), ct.ID, runtime.RemoveOptions{Force: true, Volumes: true})
	fmt.Fprintf(s.bs.o.Out, " ---> Running in %s\n", runtime.ShortID(ct.ID))
	t, err := b.Containers.Start(ctx, ct.ID, runtime.IO{Stdout: s.bs.o.Out, Stderr: s.bs.o.Out})
	if err != nil {
		return err
	}
	code, err := t.Wait(ctx)
	if err != nil {
		return err
	}
	if code != 0 {
		return &RunError{Cmd: argv, Code: code}
	}
	res, err := commit.Commit(ctx, b.Images, commit.Source{
		Upper: b.Containers.Upper(ct.ID), Image: *s.parent, Config: s.cfg.Config,
		What: "build step " + createdBy, CreatedBy: createdBy,
	}, commit.Options{Author: s.cfg.Author, CacheKey: key, Intermediate: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.bs.o.Out, "Removing intermediate container %s\n", runtime.ShortID(ct.ID))
	cfg, _, err := b.Images.Config(res.Image)
	if err != nil {
		return err
	}
	s.advance(res.Image, cfg)
	return nil
}

// runArgs is the argv of a RUN: the exec form as it is, the shell form
// through the shell; a heredoc runs in the shell, or, with a #! line, as a
// script of its own (returned apart).
func (s *stageState) runArgs(c *instructions.RunCommand) (argv []string, script string, err error) {
	args := c.CmdLine
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, "", fmt.Errorf("%w: a heredoc RUN must be in the shell form", ErrDockerfile)
		}
		if strings.HasPrefix(strings.TrimSpace(args[0]), "<<") && len(c.Files) == 1 {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = strings.TrimLeft(data, "\t") // <<-: leading tabs go
			}
			if strings.HasPrefix(data, "#!") {
				return []string{"/dev/pipes/" + c.Files[0].Name}, data, nil
			}
			args = []string{data}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteByte('\n')
				b.WriteString(f.Data)
				b.WriteString(f.Name)
			}
			args = []string{b.String()}
		}
	}
	if !c.PrependShell {
		return slices.Clone(args), "", nil
	}
	return append(slices.Clone(s.shell()), strings.Join(args, " ")), "", nil
}

// workdir sets the working directory and makes it if the image lacks it.
func (s *stageState) workdir(ctx context.Context, c *instructions.WorkdirCommand) error {
	next := s.cfg
	a := s.applier
	a.Config = &next
	if err := a.Apply(c); err != nil {
		return fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	dir := next.Config.WorkingDir
	createdBy := strings.Join(s.shell(), " ") + " #(nop) WORKDIR " + dir
	key := s.key("workdir", createdBy, configKey(&next))
	s.applier = a
	if s.cached(key) {
		s.applier.Config = &s.cfg
		return nil
	}
	return s.layer(ctx, key, createdBy, &next, func(root string) error {
		return mkdirAll(root, dir, nil, false)
	})
}

// layer makes the image of a step that changes files: change runs on the
// root of a scratch overlay over the image so far, and its upper directory
// is committed as the step's layer (no change: no layer).
func (s *stageState) layer(ctx context.Context, key digest.Digest, createdBy string, next *image.Config, change func(root string) error) error {
	b := s.bs.b
	upper, cleanup, err := b.scratch(ctx, s.parent, change)
	if err != nil {
		return err
	}
	defer cleanup()
	parent := s.parent
	if parent == nil {
		// FROM scratch: an image of no layer to stand on.
		empty, err := b.Images.Derive(ctx, nil, nil, image.DeriveOptions{What: "scratch", Intermediate: true,
			Configure: func(c *image.Config) error { c.Config = s.cfg.Config; return nil }})
		if err != nil {
			return err
		}
		parent = &empty
	}
	res, err := commit.Commit(ctx, b.Images, commit.Source{
		Upper: upper, Image: *parent, Config: next.Config, What: "build step " + createdBy, CreatedBy: createdBy,
	}, commit.Options{Author: next.Author, CacheKey: key, Intermediate: true})
	if err != nil {
		return err
	}
	cfg, _, err := b.Images.Config(res.Image)
	if err != nil {
		return err
	}
	s.advance(res.Image, cfg)
	return nil
}

func now() time.Time { return time.Now().UTC() }

// hashOf is a short content hash, as the history shows what COPY copied.
func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// joinDest resolves a COPY or ADD destination against the working directory.
func joinDest(workdir, dest string) string {
	if path.IsAbs(dest) {
		return dest
	}
	return path.Join("/", workdir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(dest, "/") || dest == "."]
}
