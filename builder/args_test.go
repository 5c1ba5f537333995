package builder

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// ParseBuildArgs reads --build-arg as Docker's CLI does: KEY=VALUE as it
// is (the first "=" cuts), a bare KEY from lookup or left out, the last of
// a KEY winning; an empty KEY is an error.
func TestParseBuildArgs(t *testing.T) {
	env := map[string]string{"FROM_ENV": "env value", "EMPTY_ENV": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got, err := ParseBuildArgs([]string{"A=1", "B=", "C=x=y", "FROM_ENV", "EMPTY_ENV", "UNSET", "A=2", "D= spaced "}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "2", "B": "", "C": "x=y", "FROM_ENV": "env value", "EMPTY_ENV": "", "D": " spaced "}
	if !maps.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := ParseBuildArgs([]string{"BARE", "K=v"}, nil); err != nil || !maps.Equal(got, map[string]string{"K": "v"}) {
		t.Errorf("with no lookup: %q %v", got, err)
	}
	if got, err := ParseBuildArgs(nil, lookup); err != nil || len(got) != 0 {
		t.Errorf("no --build-arg: %q %v", got, err)
	}
	for _, bad := range []string{"=x", "="} {
		if _, err := ParseBuildArgs([]string{"A=1", bad}, lookup); !errors.Is(err, ErrDockerfile) || !strings.Contains(err.Error(), "invalid --build-arg") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ParseBuildArgs([]string{""}, lookup); err == nil {
		t.Errorf("an empty --build-arg: no error")
	}
}

// Build reads no environment: a declared ARG the caller gave no value
// has none, whatever the process's environment says.
func TestBuildReadsNoEnvironment(t *testing.T) {
	t.Setenv("FROM_ENV", "leaked")
	t.Setenv("http_proxy", "http://leaked:1")
	b := testBuilder(t)
	_, cfg, _ := build(t, b, map[string]string{"Dockerfile": "FROM scratch\nARG FROM_ENV\nARG http_proxy\nENV GOT=${FROM_ENV:-none} P=${http_proxy:-none}\n"}, Options{})
	if v, _ := getEnv(cfg, "GOT"); v != "none" {
		t.Errorf("GOT=%q: the environment was read", v)
	}
	if v, _ := getEnv(cfg, "P"); v != "none" {
		t.Errorf("P=%q: the environment was read", v)
	}
	_, cfg, _ = build(t, b, map[string]string{"Dockerfile": "FROM scratch\nARG FROM_ENV\nENV GOT=${FROM_ENV:-none}\n"}, Options{BuildArgs: map[string]string{"FROM_ENV": "given"}})
	if v, _ := getEnv(cfg, "GOT"); v != "given" {
		t.Errorf("GOT=%q, want the value given", v)
	}
}

// The ARGs before the first FROM: FROM lines expand them, with their
// defaults or the values given; a stage sees one only if it declares it
// again, with no value of its own.
func TestArgBeforeFrom(t *testing.T) {
	b := testBuilder(t)
	baseImage(t, b, "base:1", withEnv("BASE_IMAGE=1"))
	baseImage(t, b, "base:2", withEnv("BASE_IMAGE=2"))
	df := `ARG TAG=1
ARG NAME=base:${TAG}
ARG UNUSED
FROM $NAME
ENV BEFORE=${TAG:-unset}
ARG TAG
ARG NAME=own
ENV TAG=${TAG:-unset} NAME=$NAME
`
	files := map[string]string{"Dockerfile": df}
	_, cfg, out := build(t, b, files, Options{})
	for k, want := range map[string]string{"BASE_IMAGE": "1", "BEFORE": "unset", "TAG": "1", "NAME": "own"} {
		if v, _ := getEnv(cfg, k); v != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
	for _, step := range []string{"Step 1/8 : ARG TAG=1\n", "Step 2/8 : ARG NAME=base:${TAG}\n", "Step 4/8 : FROM $NAME\n"} {
		if !strings.Contains(out, step) {
			t.Errorf("the output lacks %q:\n%s", step, out)
		}
	}
	// The ARGs before FROM leave no history; those of the stage do.
	want := []string{
		"/bin/sh -c #(nop)  ENV TAG=1 NAME=own",
		"/bin/sh -c #(nop)  ARG NAME=own",
		"/bin/sh -c #(nop)  ARG TAG",
		"/bin/sh -c #(nop)  ENV BEFORE=unset",
		"base base:1",
	}
	if got := history(cfg); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, cfg, out = build(t, b, files, Options{BuildArgs: map[string]string{"TAG": "2"}})
	for k, want := range map[string]string{"BASE_IMAGE": "2", "TAG": "2", "NAME": "own"} {
		if v, _ := getEnv(cfg, k); v != want {
			t.Errorf("TAG=2: %s=%q, want %q", k, v, want)
		}
	}
	if strings.Contains(out, "[Warning]") {
		t.Errorf("TAG=2 is used:\n%s", out)
	}
	_, cfg, _ = build(t, b, files, Options{BuildArgs: map[string]string{"NAME": "base:2"}})
	if v, _ := getEnv(cfg, "BASE_IMAGE"); v != "2" {
		t.Errorf("NAME=base:2: FROM another image: BASE_IMAGE=%q", v)
	}
	if v, _ := getEnv(cfg, "NAME"); v != "base:2" {
		t.Errorf("NAME=base:2: the stage's NAME is %q, want the value given over its default", v)
	}
}

// The ARGs of a stage: a default, expanded from what is declared before;
// a value given over it; none, if neither; an ENV of the same name over
// the argument; each stage with its own.
func TestArgAfterFrom(t *testing.T) {
	b := testBuilder(t)
	df := `FROM scratch AS first
ARG A=a
ARG B=${A}-b
ARG C
ARG D=d
ENV D=env-d
ENV GOT="A=$A B=$B C=${C:-none} D=$D"

FROM scratch
ENV GOT="A=${A:-none}"
ARG A
ENV AFTER="A=${A:-none}"
`
	files := map[string]string{"Dockerfile": df}
	_, cfg, _ := build(t, b, files, Options{Target: "first"})
	if v, _ := getEnv(cfg, "GOT"); v != "A=a B=a-b C=none D=env-d" {
		t.Errorf("defaults: GOT=%q", v)
	}
	_, cfg, _ = build(t, b, files, Options{Target: "first", BuildArgs: map[string]string{"A": "x", "C": "c", "D": "given"}})
	if v, _ := getEnv(cfg, "GOT"); v != "A=x B=x-b C=c D=env-d" {
		t.Errorf("given: GOT=%q", v)
	}
	_, cfg, _ = build(t, b, files, Options{BuildArgs: map[string]string{"A": "x"}})
	if v, _ := getEnv(cfg, "GOT"); v != "A=none" {
		t.Errorf("the second stage, before its ARG: GOT=%q", v)
	}
	if v, _ := getEnv(cfg, "AFTER"); v != "A=x" {
		t.Errorf("the second stage, after its ARG: AFTER=%q", v)
	}
}

// The build arguments given that no stage built declares are named in a
// warning, as in Docker; the proxy ones never are.
func TestUnusedBuildArgs(t *testing.T) {
	b := testBuilder(t)
	files := map[string]string{"Dockerfile": "ARG TOP\nFROM scratch AS one\nARG USED\nFROM scratch\nARG LATER\n"}
	given := map[string]string{"TOP": "1", "USED": "1", "LATER": "1", "NOPE": "1", "ALSO_NOPE": "1", "http_proxy": "p", "NO_PROXY": "n"}
	_, _, out := build(t, b, files, Options{BuildArgs: given})
	if !strings.Contains(out, "[Warning] One or more build-args [ALSO_NOPE NOPE] were not consumed\n") {
		t.Errorf("output:\n%s", out)
	}
	_, _, out = build(t, b, files, Options{BuildArgs: given, Target: "one"})
	if !strings.Contains(out, "[Warning] One or more build-args [ALSO_NOPE LATER NOPE] were not consumed\n") {
		t.Errorf("--target one: output:\n%s", out)
	}
	_, _, out = build(t, b, files, Options{BuildArgs: map[string]string{"USED": "1", "HTTPS_PROXY": "p"}})
	if strings.Contains(out, "[Warning]") {
		t.Errorf("nothing unused: output:\n%s", out)
	}
}
