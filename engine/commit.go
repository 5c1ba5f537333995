package engine

import (
	"context"
	"fmt"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
)

// CommitOptions are those of a commit (see commit.Options).
type CommitOptions = commit.Options

// ErrInstruction: a change (commit's or import's --change) that is not a
// Dockerfile instruction they take.
var ErrInstruction = commit.ErrInstruction

// ConfigChanges parses the --change instructions of an import into the
// change of its config that image.ImportOptions.Change takes, as commit
// applies them.
func ConfigChanges(changes []string) (func(*image.Config) error, error) {
	cmds, err := commit.ParseInstructions(changes)
	if err != nil || len(cmds) == 0 {
		return nil, err
	}
	return func(c *image.Config) error {
		// Parsed anew each call: expanding an instruction rewrites it.
		cmds, err := commit.ParseInstructions(changes)
		if err != nil {
			return err
		}
		a := &commit.Applier{Config: c}
		for _, cmd := range cmds {
			if err := a.Apply(cmd); err != nil {
				return fmt.Errorf("%w: %w", ErrInstruction, err)
			}
		}
		return nil
	}, nil
}

// Commit makes an image of container ref's changes, as `docker commit`
// does: the container's upper directory becomes the new layer over its
// image, frozen while it is read when o.Pause.
func (e *Engine) Commit(ctx context.Context, ref string, o commit.Options) (commit.Result, error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return commit.Result{}, err
	}
	img, err := e.Images.Lookup(c.ImageID.String())
	if err != nil {
		return commit.Result{}, fmt.Errorf("container %s: its image: %w", runtime.ShortID(c.ID), err)
	}
	notPaused := ""
	if o.Pause && !e.Containers.CanFreeze() {
		// As Podman does for its rootless containers on cgroup v1.
		o.Pause, notPaused = false, "a rootless container has no freezer cgroup on cgroup v1: committed without pausing it"
	}
	lower, err := e.Containers.CommitLower(c)
	if err != nil {
		return commit.Result{}, err
	}
	res, err := commit.Commit(ctx, e.Images, commit.Source{
		Upper: e.Containers.Upper(c.ID), Image: img, Config: c.Config.DockerOCIImageConfig, Lower: lower,
		What:   "container " + runtime.ShortID(c.ID),
		Freeze: func() (func() error, error) { return e.Containers.Freeze(ctx, c.ID) },
	}, o)
	res.NotPaused = notPaused
	if err == nil {
		e.emitCommit(c, res, o)
	}
	return res, err
}

// Diff lists what container ref changed, as `docker diff` does.
func (e *Engine) Diff(ctx context.Context, ref string) ([]commit.PathChange, error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var changes []commit.PathChange
	err = e.Containers.ViewBase(ctx, c.ID, func(base string) error {
		changes, err = commit.Diff(ctx, e.Containers.Upper(c.ID), base)
		return err
	})
	return changes, err
}
