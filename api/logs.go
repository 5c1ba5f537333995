package api

// GET /containers/{id}/logs: the container's json-file log, as `cairn
// logs` reads it, in Docker's frames without a TTY and raw with one.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
)

func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		return badRequest("Bad parameters: you must choose at least one stream")
	}
	o := runtime.LogOptions{Follow: boolParam(r, "follow"), Timestamps: boolParam(r, "timestamps"), Tail: -1}
	if t := r.URL.Query().Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return badRequest("invalid value for \"tail\": %q is not a number", t)
		}
		if n >= 0 {
			o.Tail = n
		}
	}
	for name, dst := range map[string]*time.Time{"since": &o.Since, "until": &o.Until} {
		if *dst, err = unixTime(r.URL.Query().Get(name)); err != nil {
			return badRequest("invalid value for %q: %v", name, err)
		}
	}
	if c.Host.LogConfig.Type == runtime.LogNone {
		return &apiError{status: http.StatusNotImplemented, err: runtime.ErrLogNotReadable}
	}
	w.Header().Set("Content-Type", streamType(r, c.Config.Tty))
	w.WriteHeader(http.StatusOK)
	var out io.Writer = w
	if f, ok := w.(http.Flusher); ok && o.Follow {
		f.Flush()
		out = flushing{w, f}
	}
	so, se := outputs(out, c.Config.Tty, stdout, stderr)
	if c.Config.Tty && stderr {
		se = out // raw, as stdout is
	}
	if so == nil {
		so = io.Discard
	}
	if se == nil {
		se = io.Discard
	}
	// Once the headers are out, a failure ends the stream.
	s.e.Containers.Logs(r.Context(), c.ID, o, so, se)
	return nil
}

// unixTime parses Docker's since and until: seconds since the epoch, with
// an optional fraction ("1690000000.123456789"); empty or 0 is none.
func unixTime(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time in seconds since the epoch", v)
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		if nsec, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a time in seconds since the epoch", v)
		}
	}
	return time.Unix(n, nsec), nil
}

// flushing sends each write to the client at once (a followed log).
type flushing struct {
	w io.Writer
	f http.Flusher
}

func (f flushing) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.f.Flush()
	return n, err
}

// writeBody writes v as JSON after headers already sent.
func writeBody(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
