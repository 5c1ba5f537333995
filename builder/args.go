package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// proxyArgs may be given without an ARG, and stay out of the history, as in Docker.
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// ParseBuildArgs reads --build-arg values as Docker's CLI does: KEY=VALUE,
// or a bare KEY for the value lookup has for it (os.LookupEnv, in a
// front end); a KEY lookup does not know (or a nil lookup) is left out. An
// empty KEY is an error. The result is Options.BuildArgs.
func ParseBuildArgs(args []string, lookup func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("%w: invalid --build-arg %q", ErrDockerfile, a)
		}
		if !ok {
			var set bool
			if lookup != nil {
				v, set = lookup(k)
			}
			if !set {
				continue
			}
		}
		out[k] = v
	}
	return out, nil
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
