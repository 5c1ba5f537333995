// Package api serves the Docker Engine API from cairn's engine, beside the
// CLI: `cairn system service` listens on a unix socket, and the docker
// client, docker-compose and the Docker SDKs drive cairn through it. Every
// handler calls the same engine methods as the CLI, so a container made
// through the socket is one the CLI sees, with the same locks.
//
// Routes are served versioned (/v1.41/...) and unversioned, as dockerd and
// Podman do; cairn advertises API 1.41 (Docker 20.10), the newest that
// docker-compose 1.29 relies on, and takes the older versions clients ask
// for. Errors are Docker's: {"message": ...} with the status its sentinel
// maps to (404 no such object, 409 conflict, 400 bad parameter, else 500).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
)

// The API versions cairn answers.
const (
	APIVersion    = "1.41"
	MinAPIVersion = "1.24"
)

// maxBody bounds a JSON request body (a container's create is a few KiB).
const maxBody = 4 << 20

// DefaultMaxUpload bounds an archive sent to the service (a build context,
// an image to load, files to copy in) unless Server.MaxUpload says
// otherwise.
const DefaultMaxUpload = 64 << 30

// Server is the API of one engine.
type Server struct {
	e   *engine.Engine
	mux *http.ServeMux
	// MaxUpload bounds an archive's request body (DefaultMaxUpload).
	MaxUpload int64

	active   atomic.Int64 // requests being served
	lastMu   sync.Mutex
	lastSeen time.Time
}

// New returns the API of engine e.
func New(e *engine.Engine) *Server {
	s := &Server{e: e, mux: http.NewServeMux(), MaxUpload: DefaultMaxUpload, lastSeen: time.Now()}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.systemRoutes()
	s.containerRoutes()
	s.streamRoutes()
	s.imageRoutes()
	s.networkRoutes()
	s.handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{status: http.StatusNotFound, err: errPageNotFound}
	})
}

// handler is a route's: it writes its answer, or returns the error to
// answer with.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle serves pattern with h, its request body bounded by maxBody (a
// JSON request).
func (s *Server) handle(pattern string, h handler) { s.handleBounded(pattern, maxBody, h) }

// handleUpload serves pattern with h, whose request body is an archive (a
// build context, an image to load, files to copy in), bounded by
// MaxUpload.
func (s *Server) handleUpload(pattern string, h handler) { s.handleBounded(pattern, -1, h) }

func (s *Server) handleBounded(pattern string, limit int64, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		n := limit
		if n < 0 {
			n = s.MaxUpload
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

// versioned is /v1.41/containers/json: the version, then the route.
var versioned = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP answers a request: the version prefix is taken off (and a
// version newer than cairn's refused, as dockerd does), then the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer func() {
		s.active.Add(-1)
		s.lastMu.Lock()
		s.lastSeen = time.Now()
		s.lastMu.Unlock()
	}()
	w.Header().Set("Server", "cairn/"+engine.BuildInfo().Version+" (linux)")
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Ostype", "linux")
	version := APIVersion
	if m := versioned.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		if newer(m[1], APIVersion) {
			writeError(w, badRequest("client version %s is too new. Maximum supported API version is %s", m[1], APIVersion))
			return
		}
		if newer(MinAPIVersion, m[1]) {
			writeError(w, badRequest("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", m[1], MinAPIVersion))
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = m[2]
		r2.URL.RawPath = ""
		r = r2
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, version)))
}

// newer reports whether API version a is newer than b ("1.41" > "1.9").
func newer(a, b string) bool {
	split := func(v string) (int, int) {
		var major, minor int
		fmt.Sscanf(v, "%d.%d", &major, &minor)
		return major, minor
	}
	am, an := split(a)
	bm, bn := split(b)
	return am > bm || am == bm && an > bn
}

// Idle returns how long no request has been served (0 while one is).
func (s *Server) Idle() time.Duration {
	if s.active.Load() > 0 {
		return 0
	}
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	return time.Since(s.lastSeen)
}

// Serve serves the API on ln until ctx ends or, with idle above 0, no
// request came for that long (the service's --time); then it closes ln and
// waits a while for the requests being served.
func (s *Server) Serve(ctx context.Context, ln net.Listener, idle time.Duration) error {
	// The requests' context ends with ctx: a stream (events, logs -f, a
	// wait, an attachment) ends when the service is told to stop, rather
	// than holding its shutdown. Work a client asked for (a pull, a
	// build) is detached from it and ends as the process does.
	base, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			stop()
		case <-tick.C:
			if idle <= 0 || s.Idle() < idle {
				continue
			}
		}
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		return nil
	}
}

// apiError is an error with the status it is answered with.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// statusOf maps an engine error to Docker's status, by its sentinel.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.Is(err, runtime.ErrNotFound), errors.Is(err, image.ErrNotFound), errors.Is(err, engine.ErrNoSuchObject),
		errors.Is(err, network.ErrNotFound), errors.Is(err, runtime.ErrVolumeNotFound), errors.Is(err, runtime.ErrPathNotFound):
		return http.StatusNotFound
	case errors.Is(err, runtime.ErrConflict), errors.Is(err, image.ErrConflict), errors.Is(err, runtime.ErrRunning),
		errors.Is(err, network.ErrExists), errors.Is(err, network.ErrInUse):
		return http.StatusConflict
	case errors.Is(err, runtime.ErrNotRunning):
		return http.StatusConflict
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, engine.ErrInvalid), errors.Is(err, image.ErrInvalid),
		errors.Is(err, network.ErrInvalid), errors.Is(err, runtime.ErrRootless):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers err as dockerd does: its status, and its message in
// dockerd's words.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), map[string]string{"message": dockerError(err).Error()})
}

// dockerWorded is an error in dockerd's words that is still the sentinel
// it wraps, for statusOf.
type dockerWorded struct {
	msg string
	err error
}

func (e *dockerWorded) Error() string { return e.msg }
func (e *dockerWorded) Unwrap() error { return e.err }

// prefixed are the sentinels whose errors say "<sentinel>: <Docker's
// message>": the sentinel picks the status and is no part of Docker's
// text.
var prefixed = []error{runtime.ErrInvalid, runtime.ErrRootless, runtime.ErrConflict, runtime.ErrNotRunning, runtime.ErrRunning, engine.ErrInvalid,
	network.ErrNotFound, network.ErrExists, network.ErrInUse, network.ErrInvalid, network.ErrPredefined, network.ErrNotConnected}

// dockerError is err as dockerd words it: without the words of the
// sentinel it begins with (see prefixed), still that sentinel.
func dockerError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range prefixed {
		if errors.Is(err, s) {
			msg = strings.TrimPrefix(msg, s.Error()+": ")
		}
	}
	return &dockerWorded{msg: msg, err: err}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// boolParam is a query flag as Docker reads one: 1, true, or present
// without a value ("?all").
func boolParam(r *http.Request, name string) bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return false
	}
	v := q.Get(name)
	if v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// errPageNotFound is dockerd's answer to a route it does not have.
var errPageNotFound = errors.New("page not found")
