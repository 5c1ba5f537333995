package api

// POST /build: Docker's classic builder, as the docker client drives it
// with DOCKER_BUILDKIT=0 (or the 20.10 client, since _ping says Builder-
// Version 1): a tar of the context in the body, the options in the query,
// and the builder's output as a JSON stream.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
)

// streamWriter turns what the builder prints into stream messages. A
// client that went away misses them; the build does not fail for it.
type streamWriter struct{ js *jsonStream }

func (w streamWriter) Write(p []byte) (int, error) {
	w.js.Stream(string(p))
	return len(p), nil
}

// lockedBuffer keeps a quiet build's output, for its error.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// buildOptions reads the query of POST /build.
func buildOptions(r *http.Request) (engine.BuildOptions, error) {
	q := r.URL.Query()
	var o engine.BuildOptions
	if q.Get("remote") != "" {
		return o, &apiError{status: http.StatusNotImplemented, err: errors.New("a remote build context is not supported by cairn: send the context in the request")}
	}
	if q.Get("version") == string(build.BuilderBuildKit) {
		return o, &apiError{status: http.StatusNotImplemented, err: errors.New("BuildKit is not supported by cairn: build with the classic builder (DOCKER_BUILDKIT=0)")}
	}
	for _, t := range q["t"] {
		if _, err := image.ParseName(t); err != nil {
			return o, badRequest("invalid tag %q: %v", t, err)
		}
	}
	o.Tags = q["t"]
	o.Dockerfile = q.Get("dockerfile")
	o.Target = q.Get("target")
	o.NoCache = boolParam(r, "nocache")
	o.Pull = boolParam(r, "pull")
	// As the CLI: RUN steps on the default bridge unless told.
	switch n := q.Get("networkmode"); {
	case n == "" || n == "default":
		o.Network = "bridge"
	case strings.HasPrefix(n, "container:"):
		return o, badRequest("network %q: RUN steps of a build cannot share another container's network", n)
	default:
		o.Network = n
	}
	if v := q.Get("buildargs"); v != "" {
		// A KEY without a value is one the client could not resolve:
		// left out, as the builder takes it.
		var args map[string]*string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			return o, badRequest("invalid buildargs %q: %v", v, err)
		}
		o.BuildArgs = map[string]string{}
		for k, v := range args {
			if v != nil {
				o.BuildArgs[k] = *v
			}
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Labels); err != nil {
			return o, badRequest("invalid labels %q: %v", v, err)
		}
	}
	return o, nil
}

// build is POST /build. Its stream is dockerd's: the builder's lines
// ("Step 1/3 : FROM busybox", " ---> 1a2b3c4d5e6f", a RUN step's output),
// the pulls of FROM images, the image's ID as an aux message before
// "Successfully built"; with q only the ID. A RUN step that fails ends it
// with an errorDetail that has the step's exit code, which the docker
// client exits with. A client that hangs up cancels the build.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	o, err := buildOptions(r)
	if err != nil {
		return err
	}
	quiet := boolParam(r, "q")
	js := newJSONStream(w)
	var quietOut *lockedBuffer
	if quiet {
		quietOut = &lockedBuffer{}
		o.Out = quietOut
	} else {
		o.Out = streamWriter{js}
		o.PullOptions.Report = newPullStream(js)
	}
	o.PullOptions.Keychain = registryConfigHeader(r)
	o.Built = func(img image.Image) { js.Aux(build.Result{ID: img.ID.String()}) }
	img, err := s.e.BuildArchive(r.Context(), r.Body, s.MaxUpload, o)
	if err == nil {
		if quiet {
			js.Stream(img.ID.String() + "\n")
		}
		return js.finish(nil)
	}
	if quiet {
		quietOut.mu.Lock()
		if quietOut.b.Len() > 0 {
			js.Stream(quietOut.b.String())
		}
		quietOut.mu.Unlock()
	}
	var re *engine.RunError
	if errors.As(err, &re) {
		msg := err.Error()
		return js.send(message{Message: jsonstream.Message{Error: &jsonstream.Error{Code: re.Code, Message: msg}}, ErrorMessage: msg})
	}
	if errors.Is(err, engine.ErrDockerfile) || errors.Is(err, engine.ErrBuildContext) {
		err = &apiError{status: http.StatusBadRequest, err: err}
	}
	return js.finish(err)
}
