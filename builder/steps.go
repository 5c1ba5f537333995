package builder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
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
	case *instructions.CopyCommand, *instructions.AddCommand:
		sd, f, _ := copyCommand(cmd)
		err = s.copy(ctx, sd, f)
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

// workdir sets the working directory and makes it if the image lacks it.
func (s *stageState) workdir(ctx context.Context, c *instructions.WorkdirCommand) error {
	next, createdBy, key, err := s.workdirStep(c)
	if err != nil {
		return err
	}
	if s.cached(key) {
		s.applier.Config = &s.cfg
		return nil
	}
	dir := next.Config.WorkingDir
	return s.layer(ctx, key, createdBy, next, func(root string) error {
		return mkdirAll(root, dir, nil, false)
	})
}

// workdirStep is what a WORKDIR makes before any file: the config with its
// directory, the step's history and its cache key. The stage's applier
// goes on from it.
func (s *stageState) workdirStep(c *instructions.WorkdirCommand) (next *image.Config, createdBy string, key digest.Digest, err error) {
	cfg := s.cfg
	a := s.applier
	a.Config = &cfg
	if err := a.Apply(c); err != nil {
		return nil, "", "", fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	createdBy = strings.Join(s.shell(), " ") + " #(nop) WORKDIR " + cfg.Config.WorkingDir
	key = s.key("workdir", createdBy, configKey(&cfg))
	s.applier = a
	return &cfg, createdBy, key, nil
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
