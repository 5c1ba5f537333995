package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/moby/api/types/container"
)

// commitID is POST /commit's answer.
type commitID struct {
	ID string `json:"Id"`
}

// commit is POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=:
// the container's changes become an image, as `cairn commit` makes it.
// The body, a container config, is merged over the container's as
// dockerd merges it, then the changes apply.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var cfg container.Config
	if err := decodeJSON(r, &cfg); err != nil {
		return err
	}
	merged, err := configInstructions(&cfg)
	if err != nil {
		return err
	}
	o := engine.CommitOptions{
		Author: q.Get("author"), Message: q.Get("comment"),
		Instructions: append(merged, q["changes"]...),
		// As dockerd since API 1.13: paused unless told otherwise.
		Pause: !q.Has("pause") || boolParam(r, "pause"),
	}
	if repo := q.Get("repo"); repo != "" {
		o.Name = repo
		if t := q.Get("tag"); t != "" {
			o.Name += ":" + t
		}
		if _, err := image.ParseName(o.Name); err != nil {
			return badRequest("%v", err)
		}
	}
	res, err := s.e.Commit(r.Context(), q.Get("container"), o)
	if errors.Is(err, engine.ErrInstruction) {
		return badRequest("%v", err)
	} else if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, commitID{ID: res.ID.String()})
}

// configInstructions turns the config of a commit's body into the
// Dockerfile instructions that set it, which commit applies as it applies
// --change, so that the merge is Docker's: what the body sets wins, Env,
// Labels, ExposedPorts and Volumes add to the container's, an Entrypoint
// without a Cmd drops the Cmd. Fields that only mean something to a
// container (Hostname, Tty, ...) are left out, as images do not keep them.
func configInstructions(c *container.Config) ([]string, error) {
	var out []string
	if c.Healthcheck != nil {
		return nil, badRequest("the config of a commit cannot set Healthcheck in cairn: commit the container, then build FROM it with a HEALTHCHECK")
	}
	if len(c.Shell) > 0 {
		return nil, badRequest("the config of a commit cannot set Shell in cairn")
	}
	quote := func(field, v string) (string, error) {
		if strings.ContainsAny(v, "\n\r") {
			return "", badRequest("invalid %s %q in the config: a line break", field, v)
		}
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(v) + `"`, nil
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'$\\") {
			return nil, badRequest("invalid environment variable %q in the config: want KEY=VALUE", kv)
		}
		qv, err := quote("Env", v)
		if err != nil {
			return nil, err
		}
		out = append(out, "ENV "+k+"="+qv)
	}
	if len(c.Entrypoint) > 0 {
		b, _ := json.Marshal([]string(c.Entrypoint))
		out = append(out, "ENTRYPOINT "+string(b))
	}
	if len(c.Cmd) > 0 {
		b, _ := json.Marshal([]string(c.Cmd))
		out = append(out, "CMD "+string(b))
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		qk, err := quote("label", k)
		if err != nil {
			return nil, err
		}
		qv, err := quote("label", c.Labels[k])
		if err != nil {
			return nil, err
		}
		out = append(out, "LABEL "+qk+"="+qv)
	}
	for p := range c.ExposedPorts {
		if !p.IsValid() {
			return nil, badRequest("invalid exposed port %q in the config", p.String())
		}
		out = append(out, "EXPOSE "+p.String())
	}
	for v := range c.Volumes {
		if v == "" || strings.ContainsAny(v, "\"'$\\\n") {
			return nil, badRequest("invalid volume %q in the config", v)
		}
		b, _ := json.Marshal([]string{v})
		out = append(out, "VOLUME "+string(b))
	}
	for _, f := range []struct{ kind, field, v string }{
		{"USER", "User", c.User}, {"WORKDIR", "WorkingDir", c.WorkingDir}, {"STOPSIGNAL", "StopSignal", c.StopSignal},
	} {
		if f.v == "" {
			continue
		}
		qv, err := quote(f.field, f.v)
		if err != nil {
			return nil, err
		}
		out = append(out, f.kind+" "+qv)
	}
	for _, t := range c.OnBuild {
		if strings.ContainsAny(t, "\n\r") {
			return nil, badRequest("invalid OnBuild %q in the config: a line break", t)
		}
		out = append(out, "ONBUILD "+t)
	}
	return out, nil
}
