package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The tests of this package need no root and no binary: the store is a
// plain directory, and the steps they build change the config alone
// (image.Derive with no layer). Steps that make files are taken up to
// their cache key, which is where they read the context.

// testBuilder is a builder over a fresh store, with no runtime and no
// snapshots.
func testBuilder(t *testing.T) *Builder {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	images, err := image.Open(filepath.Join(dir, "images"), tmp, filepath.Join(dir, "locks"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Builder{Images: images, Tmp: tmp}
}

// writeContext writes files (path → content; a path ending in "/" is a
// directory) into a fresh context directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// baseImage stores an image of one layer (an empty file, /base) named
// name, its config edited by configure (if not nil), for FROM lines to
// stand on.
func baseImage(t *testing.T, b *Builder, name string, configure func(*image.Config)) image.Image {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "base", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := b.Images.Derive(context.Background(), nil, &layer, image.DeriveOptions{
		Name: name, What: "test base",
		Configure: func(c *image.Config) error {
			if configure != nil {
				configure(c)
			}
			c.History = append(c.History, ocispec.History{CreatedBy: "base " + name})
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withEnv sets the environment of a base image.
func withEnv(env ...string) func(*image.Config) {
	return func(c *image.Config) { c.Config.Env = env }
}

// build builds o (its Context defaulting to a context of files) and
// returns the image, its config and the output.
func build(t *testing.T, b *Builder, files map[string]string, o Options) (image.Image, image.Config, string) {
	t.Helper()
	img, cfg, out, err := tryBuild(t, b, files, o)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return img, cfg, out
}

func tryBuild(t *testing.T, b *Builder, files map[string]string, o Options) (image.Image, image.Config, string, error) {
	t.Helper()
	if o.Context == "" {
		o.Context = writeContext(t, files)
	}
	var out strings.Builder
	o.Out = &out
	img, err := b.Build(context.Background(), o)
	if err != nil {
		return img, image.Config{}, out.String(), err
	}
	cfg, _, err := b.Images.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, cfg, out.String(), nil
}

// history is the created_by of each entry of a config's history, the
// last first, as `docker history` lists them.
func history(c image.Config) []string {
	var out []string
	for _, h := range c.History {
		out = append(out, h.CreatedBy)
	}
	slices.Reverse(out)
	return out
}

// getEnv is the value of key in a config's environment.
func getEnv(c image.Config, key string) (string, bool) {
	for _, e := range c.Config.Env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// stageOf begins the one stage of the Dockerfile df in the context dir,
// with the build arguments given, as Build does, and runs every
// instruction of it but the last, which it returns: the step under test.
// Those instructions must change the config alone.
func stageOf(t *testing.T, b *Builder, dir, df string, given map[string]string) (*stageState, instructions.Command) {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(df))
	if err != nil {
		t.Fatal(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 1 || len(metaArgs) != 0 || len(stages[0].Commands) == 0 {
		t.Fatalf("stageOf takes one stage, no ARG before FROM and one instruction at least:\n%s", df)
	}
	ignore, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	bs := &buildState{b: b, o: &Options{Out: new(strings.Builder)}, contextDir: dir, ignore: ignore, given: given, used: map[string]bool{}, meta: map[string]string{}}
	ctx := context.Background()
	s, err := bs.from(ctx, stages[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	cmds := stages[0].Commands
	for _, cmd := range cmds[:len(cmds)-1] {
		switch cmd.(type) {
		case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
			t.Fatalf("stageOf: %s makes files: the image's config can set what it would", original(cmd))
		}
		if err := s.dispatch(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	return s, cmds[len(cmds)-1]
}
