package builder

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// run runs a command in a container of the image so far and commits it.
func (s *stageState) run(ctx context.Context, c *instructions.RunCommand) error {
	if s.parent == nil {
		return fmt.Errorf("%w: RUN needs a source image: FROM scratch has no command to run", ErrDockerfile)
	}
	argv, script, err := s.runArgs(c)
	if err != nil {
		return err
	}
	createdBy, key := s.runKey(argv, script)
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
	// A build cancelled (its API client hung up) kills the step: Wait
	// waits for the process alone.
	stop := context.AfterFunc(ctx, func() {
		b.Containers.Kill(context.WithoutCancel(ctx), ct.ID, syscall.SIGKILL)
	})
	code, err := t.Wait(ctx)
	stop()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if code != 0 {
		return &RunError{Cmd: argv, Code: code}
	}
	lower, err := b.Containers.CommitLower(ct)
	if err != nil {
		return err
	}
	res, err := commit.Commit(ctx, b.Images, commit.Source{
		Upper: b.Containers.Upper(ct.ID), Image: *s.parent, Config: s.cfg.Config, Lower: lower,
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
