package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Errors of the builder; callers test them with errors.Is.
var (
	ErrDockerfile = errors.New("Dockerfile") // it does not parse, or asks what cannot be
	ErrContext    = errors.New("build context")
)

// RunError is a RUN step whose command exited non-zero: the build stops
// with that code.
type RunError struct {
	Cmd  []string
	Code int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// Options are those of `cairn build`.
type Options struct {
	Context    string   // the build context directory
	Dockerfile string   // its path; empty: Context/Dockerfile
	Tags       []string // names for the image built
	// BuildArgs are the --build-arg values, KEY to VALUE, already resolved:
	// the caller resolves a bare KEY from its environment, as Docker's CLI
	// does; a KEY the caller could not resolve is left out (ParseBuildArgs).
	BuildArgs map[string]string
	Target    string // the stage to build; empty: the last
	NoCache   bool
	Pull      bool   // pull every FROM image, even one the store has (Builder.Pull)
	Network   string // of RUN steps: "bridge" (the default, as Docker's builder), a user network, "host" or "none"
	// Labels are set on the image built (--label), after its last
	// instruction, as Docker's classic builder sets them: no step of
	// their own, and no variable expanded in them.
	Labels map[string]string
	// Out receives the progress, as the classic builder prints it, and
	// the output of RUN steps.
	Out io.Writer
	// Built, if not nil, is told the image built just before its
	// "Successfully built" line, where Docker's builder sends its ID to
	// the API's client.
	Built func(image.Image)
}

// Builder builds images in one cairn store.
type Builder struct {
	Images     *image.Store
	Containers *runtime.Store
	Snapshots  *snapshot.Store
	Tmp        string // the store's directory for work in progress
	// Pull, if not nil, fetches a FROM image the store does not have (or
	// every FROM image, with Options.Pull), as Docker's builder does.
	Pull func(ctx context.Context, ref string) error
}

// Build builds the image o describes and names it with o.Tags.
func (b *Builder) Build(ctx context.Context, o Options) (image.Image, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Network == "" {
		o.Network = "bridge"
	}
	ctxDir, err := filepath.Abs(o.Context)
	if err != nil {
		return image.Image{}, err
	}
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return image.Image{}, fmt.Errorf("%w: unable to prepare context: path %q not found", ErrContext, o.Context)
	}
	dfPath := o.Dockerfile
	if dfPath == "" {
		dfPath = filepath.Join(ctxDir, "Dockerfile")
	}
	df, err := os.ReadFile(dfPath)
	if err != nil {
		return image.Image{}, fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	for _, tag := range o.Tags {
		if _, err := image.ParseName(tag); err != nil {
			return image.Image{}, err
		}
	}
	res, err := parser.Parse(strings.NewReader(string(df)))
	if err != nil {
		return image.Image{}, fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return image.Image{}, fmt.Errorf("%w: %w", ErrDockerfile, err)
	}
	if len(stages) == 0 {
		return image.Image{}, fmt.Errorf("%w: file with no instructions", ErrDockerfile)
	}
	last := len(stages) - 1
	if o.Target != "" {
		i, ok := instructions.HasStage(stages, o.Target)
		if !ok {
			return image.Image{}, fmt.Errorf("%w: failed to reach build target %s in Dockerfile", ErrDockerfile, o.Target)
		}
		last = i
	}
	given := o.BuildArgs
	ignore, err := readDockerignore(ctxDir)
	if err != nil {
		return image.Image{}, err
	}
	release, err := b.Images.Lease(ctx)
	if err != nil {
		return image.Image{}, err
	}
	defer release()

	bs := &buildState{b: b, o: &o, contextDir: ctxDir, ignore: ignore, given: given, used: map[string]bool{}}
	bs.total = len(metaArgs)
	for _, st := range stages[:last+1] {
		bs.total += 1 + len(st.Commands)
	}
	// The ARGs before the first FROM: for FROM lines, and for stages that
	// declare them again.
	bs.meta = map[string]string{}
	for _, a := range metaArgs {
		bs.step(a.String())
		for _, kv := range a.Args {
			if v, ok := given[kv.Key]; ok {
				bs.meta[kv.Key] = v
				bs.used[kv.Key] = true
			} else if kv.Value != nil {
				v, _, err := shell.NewLex('\\').ProcessWord(*kv.Value, shell.EnvsFromSlice(bs.metaEnv()))
				if err != nil {
					return image.Image{}, fmt.Errorf("%w: %s: %w", ErrDockerfile, a.String(), err)
				}
				bs.meta[kv.Key] = v
			}
		}
	}
	var img *image.Image
	for i, st := range stages[:last+1] {
		s, err := bs.from(ctx, st, i)
		if err != nil {
			return image.Image{}, err
		}
		for _, cmd := range st.Commands {
			bs.step(original(cmd))
			if err := s.dispatch(ctx, cmd); err != nil {
				return image.Image{}, err
			}
		}
		if i == last {
			for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
				if err := s.dispatch(ctx, instructions.NewLabelCommand(k, o.Labels[k], true)); err != nil {
					return image.Image{}, err
				}
			}
		}
		if s.parent == nil {
			// A stage of nothing but FROM scratch: an image of no layer.
			if err := s.commitConfig(ctx, "", nil); err != nil {
				return image.Image{}, err
			}
		}
		bs.done = append(bs.done, s)
		img = s.parent
	}
	var unused []string
	for k := range given {
		if !bs.used[k] && !slices.Contains(proxyArgs, k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		fmt.Fprintf(o.Out, "[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
	// The final image joins the index: named, or dangling as Docker's.
	if err := b.Images.Name(ctx, *img, o.Tags); err != nil {
		return image.Image{}, err
	}
	if o.Built != nil {
		o.Built(*img)
	}
	fmt.Fprintf(o.Out, "Successfully built %s\n", image.ShortID(img.ID))
	for _, tag := range o.Tags {
		n, _ := image.ParseName(tag)
		fmt.Fprintf(o.Out, "Successfully tagged %s\n", image.FamiliarName(n.String()))
	}
	return *img, nil
}

// buildState is one build in progress.
type buildState struct {
	b          *Builder
	o          *Options
	contextDir string            // the build context directory
	ignore     *ignorer          // its .dockerignore
	given      map[string]string // --build-arg
	used       map[string]bool   // build args a stage declared
	meta       map[string]string // the ARGs before the first FROM
	done       []*stageState     // the stages built
	total      int               // steps in all
	n          int               // steps so far
}

func (bs *buildState) step(text string) {
	bs.n++
	fmt.Fprintf(bs.o.Out, "Step %d/%d : %s\n", bs.n, bs.total, text)
}

func (bs *buildState) metaEnv() []string {
	var env []string
	for k, v := range bs.meta {
		env = append(env, k+"="+v)
	}
	return env
}

// stageByName finds a built stage by its name (or index), as FROM and
// COPY --from name them.
func (bs *buildState) stageByName(name string) (*stageState, bool) {
	for i, s := range bs.done {
		if strings.EqualFold(s.name, name) || name == fmt.Sprint(i) {
			return s, true
		}
	}
	return nil, false
}

// from begins stage i: its base image (a stage before, an image of the
// store, or scratch), with the base's ONBUILD triggers run first.
func (bs *buildState) from(ctx context.Context, st instructions.Stage, i int) (*stageState, error) {
	bs.step(st.SourceCode)
	s := &stageState{bs: bs, name: st.Name, args: map[string]string{}}
	if st.Platform != "" {
		fmt.Fprintf(bs.o.Out, " ---> note: --platform %s is ignored: cairn builds for linux/%s\n", st.Platform, goruntime.GOARCH)
	}
	name, _, err := shell.NewLex('\\').ProcessWord(st.BaseName, shell.EnvsFromSlice(bs.metaEnv()))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDockerfile, st.SourceCode, err)
	}
	switch prev, ok := bs.stageByName(name); {
	case ok && prev.parent != nil:
		img := *prev.parent
		s.parent = &img
	case ok, strings.EqualFold(name, "scratch"):
		s.cfg.OS, s.cfg.Architecture = "linux", goruntime.GOARCH
		s.cfg.RootFS.Type = "layers"
	default:
		img, err := bs.b.Images.Lookup(name)
		if bs.b.Pull != nil && (bs.o.Pull || errors.Is(err, image.ErrNotFound)) {
			if perr := bs.b.Pull(ctx, name); perr != nil {
				return nil, fmt.Errorf("%s: %w", st.SourceCode, perr)
			}
			img, err = bs.b.Images.Lookup(name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.SourceCode, err)
		}
		s.parent = &img
	}
	if s.parent != nil {
		if s.cfg, _, err = bs.b.Images.Config(*s.parent); err != nil {
			return nil, err
		}
		fmt.Fprintf(bs.o.Out, " ---> %s\n", image.ShortID(s.parent.ID))
	}
	// As Docker's builder: a default PATH for every stage that has none.
	if !slices.ContainsFunc(s.cfg.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		s.cfg.Config.Env = append(slices.Clone(s.cfg.Config.Env), "PATH="+runtime.DefaultPath)
	}
	s.applier.Config = &s.cfg
	if triggers := s.cfg.Config.OnBuild; len(triggers) > 0 {
		// The triggers run once, in the image that inherits them, and go.
		s.cfg.Config.OnBuild = nil
		word := "trigger"
		if len(triggers) > 1 {
			word = "triggers"
		}
		fmt.Fprintf(bs.o.Out, "# Executing %d build %s\n", len(triggers), word)
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil || len(res.AST.Children) != 1 {
				return nil, fmt.Errorf("%w: ONBUILD %s: %w", ErrDockerfile, t, err)
			}
			cmd, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return nil, fmt.Errorf("%w: ONBUILD %s: %w", ErrDockerfile, t, err)
			}
			if err := s.dispatch(ctx, cmd); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// original is the instruction as the Dockerfile has it.
func original(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(cmd.Name())
}
