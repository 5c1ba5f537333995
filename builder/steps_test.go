package builder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// The history of the instructions that change the config alone, word for
// word as Docker 20.10's classic builder writes it: the shell, "#(nop)",
// two spaces and the instruction with its variables expanded (CMD and
// ENTRYPOINT as their argv, HEALTHCHECK as Docker prints its struct).
// The strings are those of `docker history --no-trunc` after
// `DOCKER_BUILDKIT=0 docker build --build-arg V=2 --build-arg
// http_proxy=http://p:1 --build-arg NOPE=x` of this Dockerfile, with
// Docker 20.10.24.
func TestConfigHistoryAsDocker(t *testing.T) {
	df := `ARG TOP=top
ARG BASEV
FROM scratch
ARG TOP
ARG V=1
ARG W
ENV A=$V B="two words" C=${TOP}
LABEL l1="x" version=$V "k k"=v
MAINTAINER someone <s@example.org>
EXPOSE 80 53/udp
VOLUME /data /other
VOLUME ["/json"]
USER nobody:$V
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD true
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=2 CMD ["true", "x"]
HEALTHCHECK NONE
ONBUILD RUN echo $V trigger
CMD ["hi", "there"]
ENTRYPOINT /bin/echo $A
CMD ls -a
SHELL ["/bin/sh", "-ec"]
CMD ls
ENV D=$W
`
	want := []string{
		`/bin/sh -ec #(nop)  ENV D=`,
		`/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "ls"]`,
		`/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]`,
		`/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "ls -a"]`,
		`/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh" "-c" "/bin/echo $A"]`,
		`/bin/sh -c #(nop)  CMD ["hi" "there"]`,
		`/bin/sh -c #(nop)  ONBUILD RUN echo $V trigger`,
		`/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\x00'}`,
		`/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true" "x"] "5s" "2s" "1s" '\x02'}`,
		`/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "0s" "0s" '\x03'}`,
		`/bin/sh -c #(nop)  STOPSIGNAL SIGINT`,
		`/bin/sh -c #(nop)  USER nobody:2`,
		`/bin/sh -c #(nop)  VOLUME [/json]`,
		`/bin/sh -c #(nop)  VOLUME [/data /other]`,
		`/bin/sh -c #(nop)  EXPOSE 53/udp 80`,
		`/bin/sh -c #(nop)  MAINTAINER someone <s@example.org>`,
		`/bin/sh -c #(nop)  LABEL l1=x version=2 k k=v`,
		`/bin/sh -c #(nop)  ENV A=2 B=two words C=top`,
		`/bin/sh -c #(nop)  ARG W`,
		`/bin/sh -c #(nop)  ARG V=1`,
		`/bin/sh -c #(nop)  ARG TOP`,
	}
	b := testBuilder(t)
	_, cfg, out := build(t, b, map[string]string{"Dockerfile": df}, Options{BuildArgs: map[string]string{"V": "2", "http_proxy": "http://p:1", "NOPE": "x"}})
	if got := history(cfg); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			t.Errorf("%q: not an empty_layer entry", h.CreatedBy)
		}
	}
	if len(cfg.RootFS.DiffIDs) != 0 {
		t.Errorf("layers: %v", cfg.RootFS.DiffIDs)
	}
	// The config, as Docker's (`docker image inspect`).
	c := cfg.Config
	got := fmt.Sprintf("%s|%q|%q|%q|%v|%v|%v|%s|%q|%q|%s", c.User, c.Env, c.Entrypoint, c.Cmd, sortedKeys(c.ExposedPorts), sortedKeys(c.Volumes), sortedMap(c.Labels), c.StopSignal, c.OnBuild, c.Shell, cfg.Author)
	wantCfg := `nobody:2|["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "A=2" "B=two words" "C=top" "D="]|["/bin/sh" "-c" "/bin/echo $A"]|["/bin/sh" "-ec" "ls"]|[53/udp 80/tcp]|[/data /json /other]|[k k=v l1=x version=2]|SIGINT|["RUN echo $V trigger"]|["/bin/sh" "-ec"]|someone <s@example.org>`
	if got != wantCfg {
		t.Errorf("config:\n%s\nwant\n%s", got, wantCfg)
	}
	// The output, as the classic builder prints it.
	for _, line := range []string{"Step 1/24 : ARG TOP=top\n", "Step 3/24 : FROM scratch\nStep 4/24 : ARG TOP\n ---> ", "Step 24/24 : ENV D=$W\n ---> ",
		"[Warning] One or more build-args [NOPE] were not consumed\n", "Successfully built "} {
		if !strings.Contains(out, line) {
			t.Errorf("the output lacks %q:\n%s", line, out)
		}
	}
}

// Variables in WORKDIR expand from the environment; a relative WORKDIR
// goes on from the last.
func TestWorkdirExpansion(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", func(c *image.Config) { c.Config.WorkingDir = "/from/base" })
	for _, c := range []struct{ df, want string }{
		{"FROM base:1\nENV E=/envdir\nWORKDIR $E\n", "/envdir"},
		{"FROM base:1\nENV E=/envdir\nWORKDIR ${E}/sub\n", "/envdir/sub"},
		{"FROM base:1\nENV E=sub\nWORKDIR $E\n", "/from/base/sub"},
		{"FROM base:1\nWORKDIR rel/../x\n", "/from/base/x"},
		{"FROM base:1\nWORKDIR ${UNSET:-/default}\n", "/default"},
		{"FROM base:1\nENV E=/envdir\nWORKDIR \\$E\n", "/from/base/$E"},
	} {
		s, cmd := stageOf(t, b, t.TempDir(), c.df, nil)
		next, by, _, err := s.workdirStep(cmd.(*instructions.WorkdirCommand))
		if err != nil {
			t.Errorf("%q: %v", c.df, err)
			continue
		}
		if next.Config.WorkingDir != c.want || by != "/bin/sh -c #(nop) WORKDIR "+c.want {
			t.Errorf("%q: WorkingDir %q, created_by %q, want %q", c.df, next.Config.WorkingDir, by, c.want)
		}
	}
	// Its key: the same step, the same key; another directory, another.
	key := func(df string) string {
		s, cmd := stageOf(t, b, t.TempDir(), df, nil)
		_, _, k, err := s.workdirStep(cmd.(*instructions.WorkdirCommand))
		must(t, err)
		return k.String()
	}
	if key("FROM base:1\nWORKDIR /a\n") != key("FROM base:1\nWORKDIR /a\n") || key("FROM base:1\nWORKDIR /a\n") == key("FROM base:1\nWORKDIR /b\n") {
		t.Errorf("WORKDIR keys")
	}
}

// Variables in COPY expand from the build arguments and the environment:
// in its sources, its destination (resolved against WORKDIR) and --chown;
// a heredoc's body expands unless its word is quoted.
func TestCopyExpansion(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", func(c *image.Config) { c.Config.WorkingDir = "/w" })
	dir := writeContext(t, map[string]string{"f.txt": "f", "g.txt": "g"})
	for _, c := range []struct{ df, dest string }{
		{"FROM base:1\nENV D=/envdir\nCOPY f.txt $D/copied/\n", "/envdir/copied/"},
		{"FROM base:1\nARG D=/argdir\nCOPY f.txt ${D}/\n", "/argdir/"},
		{"FROM base:1\nCOPY f.txt dest\n", "/w/dest"},
		{"FROM base:1\nCOPY f.txt .\n", "/w/"},
		{"FROM base:1\nENV D=sub\nCOPY f.txt $D/\n", "/w/sub/"},
	} {
		s, cmd := stageOf(t, b, dir, c.df, nil)
		sd, f, _ := copyCommand(cmd)
		dest, mode, err := s.copyArgs(&sd, &f)
		if err != nil || dest != c.dest || mode != nil {
			t.Errorf("%q: dest %q, mode %v, %v; want %q", c.df, dest, mode, err, c.dest)
		}
	}

	// The sources: an ENV names the file, given or not, and the step is
	// the same as the one that names it.
	viaEnv, k1 := copyStep(t, b, dir, "FROM base:1\nENV SRC=g.txt\nCOPY $SRC /x/\n", nil)
	named, k2 := copyStep(t, b, dir, "FROM base:1\nENV SRC=g.txt\nCOPY g.txt /x/\n", nil)
	if viaEnv != named || k1 != k2 {
		t.Errorf("COPY $SRC: %q, COPY g.txt: %q", viaEnv, named)
	}
	if by, _ := copyStep(t, b, dir, "FROM base:1\nARG U=7\nARG G=8\nCOPY --chown=$U:${G} f.txt /x\n", map[string]string{"G": "9"}); !strings.HasPrefix(by, "/bin/sh -c #(nop) COPY --chown=7:9file:") {
		t.Errorf("--chown expanded: %q", by)
	}
	s, cmd := stageOf(t, b, dir, "FROM base:1\nCOPY --chmod=0640 f.txt /x\n", nil)
	sd, f, _ := copyCommand(cmd)
	if _, mode, err := s.copyArgs(&sd, &f); err != nil || mode == nil || *mode != 0o640 {
		t.Errorf("--chmod=0640: %v %v", mode, err)
	}
	s, cmd = stageOf(t, b, dir, "FROM base:1\nCOPY --chmod=999 f.txt /x\n", nil)
	sd, f, _ = copyCommand(cmd)
	if _, _, err := s.copyArgs(&sd, &f); !errors.Is(err, ErrDockerfile) {
		t.Errorf("--chmod=999: %v", err)
	}

	for _, c := range []struct{ df, want string }{
		{"FROM base:1\nARG V=2\nENV E=env\nCOPY <<EOF /h\nmade by $V and ${E} \"quoted\"\nEOF\n", "made by 2 and env \"quoted\"\n"},
		{"FROM base:1\nARG V=2\nCOPY <<\"EOF\" /h\nmade by $V\nEOF\n", "made by $V\n"},
	} {
		s, cmd := stageOf(t, b, dir, c.df, nil)
		sd, f, _ := copyCommand(cmd)
		if _, _, err := s.copyArgs(&sd, &f); err != nil {
			t.Fatal(err)
		}
		srcs, cleanup, err := s.sources(context.Background(), dir, s.bs.ignore, sd, f)
		cleanup()
		if err != nil || len(srcs) != 1 || srcs[0].data == nil || *srcs[0].data != c.want || srcs[0].name != "EOF" {
			t.Errorf("%q: %+v %v, want the data %q", c.df, srcs, err, c.want)
		}
	}
}

// The sources of COPY: wildcards, and what is refused before anything is
// copied — a path out of the context, a URL, a missing file, several
// sources to a destination that is not a directory.
func TestCopySources(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	dir := writeContext(t, map[string]string{"a.conf": "a", "b.conf": "b", "c.txt": "c", "sub/d.conf": "d"})
	names := func(df string) ([]string, error) {
		s, cmd := stageOf(t, b, dir, df, nil)
		sd, f, _ := copyCommand(cmd)
		if _, _, err := s.copyArgs(&sd, &f); err != nil {
			return nil, err
		}
		srcs, cleanup, err := s.sources(context.Background(), dir, s.bs.ignore, sd, f)
		defer cleanup()
		var out []string
		for _, src := range srcs {
			out = append(out, src.name+"="+src.rel)
		}
		return out, err
	}
	for df, want := range map[string][]string{
		"FROM base:1\nCOPY *.conf /x/\n":          {"a.conf=a.conf", "b.conf=b.conf"},
		"FROM base:1\nCOPY [ab].conf c.txt /x/\n": {"a.conf=a.conf", "b.conf=b.conf", "c.txt=c.txt"},
		"FROM base:1\nCOPY */*.conf /x/\n":        {"d.conf=sub/d.conf"},
		"FROM base:1\nCOPY ./sub/../c.txt /x/\n":  {"c.txt=c.txt"},
		"FROM base:1\nCOPY /c.txt /x/\n":          {"c.txt=c.txt"},
		"FROM base:1\nCOPY sub /x/\n":             {"sub=sub"},
		"FROM base:1\nCOPY . /x/\n":               {".=."},
	} {
		got, err := names(df)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q %v, want %q", df, got, err, want)
		}
	}
	for df, want := range map[string]error{
		"FROM base:1\nCOPY ../x /x\n":                 ErrContext,
		"FROM base:1\nCOPY sub/../../x /x\n":          ErrContext,
		"FROM base:1\nCOPY nothere /x\n":              ErrContext,
		"FROM base:1\nCOPY *.none /x/\n":              ErrContext,
		"FROM base:1\nCOPY http://example.org/x /x\n": ErrDockerfile,
	} {
		if _, err := names(df); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", df, err, want)
		}
	}
	// Several sources to a destination that is not a directory.
	s, cmd := stageOf(t, b, dir, "FROM base:1\nCOPY a.conf b.conf /x\n", nil)
	sd, f, _ := copyCommand(cmd)
	if err := s.copy(context.Background(), sd, f); !errors.Is(err, ErrDockerfile) || !strings.Contains(err.Error(), "must be a directory and end with a /") {
		t.Errorf("COPY a.conf b.conf /x: %v", err)
	}
}

// The argv of RUN: the exec form as it is, the shell form through the
// stage's SHELL, a heredoc through the shell, or as a file if it has a #!.
func TestRunArgs(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", nil)
	for _, c := range []struct {
		df     string
		argv   []string
		script string
	}{
		{"FROM base:1\nRUN echo a  b\n", []string{"/bin/sh", "-c", "echo a  b"}, ""},
		{"FROM base:1\nRUN [\"echo\", \"$HOME\"]\n", []string{"echo", "$HOME"}, ""},
		{"FROM base:1\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN echo a\n", []string{"/bin/bash", "-eu", "-c", "echo a"}, ""},
		{"FROM base:1\nRUN <<EOT\necho one\necho two\nEOT\n", []string{"/bin/sh", "-c", "echo one\necho two\n"}, ""},
		{"FROM base:1\nRUN <<-EOT\n\techo tab\nEOT\n", []string{"/bin/sh", "-c", "echo tab\n"}, ""},
		{"FROM base:1\nRUN <<EOT\n#!/bin/awk -f\nBEGIN{}\nEOT\n", []string{"/dev/pipes/EOT"}, "#!/bin/awk -f\nBEGIN{}\n"},
		{"FROM base:1\nRUN cat <<A\none\nA\n", []string{"/bin/sh", "-c", "cat <<A\none\nA"}, ""},
	} {
		s, cmd := stageOf(t, b, t.TempDir(), c.df, nil)
		argv, script, err := s.runArgs(cmd.(*instructions.RunCommand))
		if err != nil || !slices.Equal(argv, c.argv) || script != c.script {
			t.Errorf("%q: %q %q %v, want %q %q", c.df, argv, script, err, c.argv, c.script)
		}
	}
}

// An image's ONBUILD triggers run first in a stage FROM it, which does not
// inherit them.
func TestOnbuildTriggers(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "parent:1", func(c *image.Config) {
		c.Config.Env = []string{"P=parent"}
		c.Config.OnBuild = []string{"LABEL from=trigger", "ENV T=$P"}
	})
	_, cfg, out := build(t, b, map[string]string{"Dockerfile": "FROM parent:1\nLABEL child=1\n"}, Options{})
	if !strings.Contains(out, "Step 1/2 : FROM parent:1\n ---> ") || !strings.Contains(out, "# Executing 2 build triggers\n") {
		t.Errorf("output:\n%s", out)
	}
	if cfg.Config.OnBuild != nil || cfg.Config.Labels["from"] != "trigger" || cfg.Config.Labels["child"] != "1" {
		t.Errorf("config: OnBuild %q, labels %v", cfg.Config.OnBuild, cfg.Config.Labels)
	}
	if v, _ := getEnv(cfg, "T"); v != "parent" {
		t.Errorf("T=%q", v)
	}
}

// What stops a build before any step, and what stops it at a step that
// cannot be.
func TestBuildErrors(t *testing.T) {
	b := testBuilder(t)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\n", "empty": "# nothing\n", "bad": "FROM scratch\nNOTANINSTRUCTION x\n",
		"run": "FROM scratch\nRUN true\n", "trigger": "FROM scratch\nONBUILD FROM x\n", "stop": "FROM scratch\nSTOPSIGNAL NOPE\n",
	})
	for _, c := range []struct {
		o    Options
		want error
		text string
	}{
		{Options{Context: filepath.Join(ctx, "nothere")}, ErrContext, "unable to prepare context"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "nothere")}, ErrDockerfile, "no such file"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "empty")}, ErrDockerfile, "file with no instructions"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "bad")}, ErrDockerfile, "line 2"},
		{Options{Context: ctx, Target: "nope"}, ErrDockerfile, "failed to reach build target nope"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "run")}, ErrDockerfile, "RUN needs a source image"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "trigger")}, ErrDockerfile, "ONBUILD"},
		{Options{Context: ctx, Dockerfile: filepath.Join(ctx, "stop")}, ErrDockerfile, "STOPSIGNAL"},
		{Options{Context: ctx, Tags: []string{"Bad:Tag"}}, nil, "invalid reference format"},
	} {
		_, _, out, err := tryBuild(t, b, nil, c.o)
		if err == nil || c.want != nil && !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%+v: %v, want %v and %q\n%s", c.o, err, c.want, c.text, out)
		}
	}
	// A stage of FROM scratch alone is an image of nothing, named.
	img, cfg, _ := build(t, b, nil, Options{Context: ctx, Tags: []string{"empty:1"}})
	if named, err := b.Images.Lookup("empty:1"); err != nil || named.ID != img.ID || len(cfg.History) != 0 || len(cfg.RootFS.DiffIDs) != 0 {
		t.Errorf("FROM scratch: %v %v %+v", named, err, cfg)
	}
}
