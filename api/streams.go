package api

// The routes of a container's streams: attach, start (which an attach
// made before it waits for), wait, logs, resize and exec.
//
// The docker CLI attaches before it starts a container (run without -d:
// create, attach, wait next-exit, start, resize). An attach to a container
// that is not running is held here, by container, until a start comes;
// the start then starts the container through a monitor that waits for
// its first client (runtime.StartAttached) and hands it the held
// attachments (runtime.Attach with Starting), so that nothing the
// container writes or reads is lost. An attach to a running container
// attaches to its monitor at once. Either way the monitor owns the
// container: a client that goes away leaves it running.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
)

// streams is what the stream routes keep in the service's memory: the
// attachments held until their container starts, those being served
// (which a resize goes through), and the exec instances.
type streams struct {
	s *Server

	mu      sync.Mutex
	pending map[string][]*attachClient            // container ID → attaches made before its start
	live    map[string]map[*runtime.Attached]bool // container ID → attachments served
	execs   map[string]*execInstance
	// arriving counts the attaches to a container that is not running
	// between their answer (after which the client may start it) and
	// their place among the pending: a start waits for them (arrived).
	arriving map[string]int
	arrived  *sync.Cond
}

func (s *Server) streamRoutes() {
	st := &streams{s: s, pending: map[string][]*attachClient{}, live: map[string]map[*runtime.Attached]bool{}, execs: map[string]*execInstance{}, arriving: map[string]int{}}
	st.arrived = sync.NewCond(&st.mu)
	s.handle("POST /containers/create", s.createContainer)
	s.handle("POST /containers/{id}/start", st.start)
	s.handle("POST /containers/{id}/attach", st.attach)
	s.handle("POST /containers/{id}/wait", s.waitContainer)
	s.handle("POST /containers/{id}/resize", st.resize)
	s.handle("GET /containers/{id}/logs", s.logs)
	s.handle("POST /containers/{id}/exec", st.execCreate)
	s.handle("POST /exec/{id}/start", st.execStart)
	s.handle("POST /exec/{id}/resize", st.execResize)
	s.handle("GET /exec/{id}/json", st.execInspect)
}
func (st *streams) start(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := st.s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.Live() {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	bg := detached(ctx)
	held := st.take(c.ID)
	if len(held) == 0 {
		err := st.s.e.Containers.StartDetached(bg, c.ID)
		if errors.Is(err, runtime.ErrRunning) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		if err != nil {
			return startError(err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	starting := true
	if err := st.s.e.Containers.StartAttached(bg, c.ID); errors.Is(err, runtime.ErrRunning) {
		starting = false // started meanwhile: they attach to it as it runs
	} else if err != nil {
		for _, cl := range held {
			cl.end() // the start's answer says why
		}
		return startError(err)
	}
	var first *runtime.Attached
	for _, cl := range held {
		a, err := st.s.e.Containers.Attach(bg, c.ID, cl.options(starting))
		if err != nil {
			cl.fail(err)
			continue
		}
		st.addLive(c.ID, a)
		if first == nil {
			first = a
		}
		go st.serve(c.ID, a, cl)
	}
	if !starting {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if first == nil {
		return errors.New("no attached client could start the container")
	}
	// The monitor starts the container once its first client is there,
	// and says how it went.
	wctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	if err := first.Started(wctx); err != nil {
		return startError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startError is a failed start as dockerd answers it: a command that does
// not exist or cannot run is the request's fault (the docker CLI exits 127
// or 126 on its words).
func startError(err error) error {
	if errors.Is(err, runtime.ErrCommandNotFound) || errors.Is(err, runtime.ErrCannotInvoke) {
		return &apiError{status: http.StatusBadRequest, err: err}
	}
	return err
}

func (st *streams) resize(w http.ResponseWriter, r *http.Request) error {
	width, height, err := size(r)
	if err != nil {
		return err
	}
	c, err := st.s.e.Containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.State.Status != runtime.Running {
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Container %s is not running", c.ID)}
	}
	st.mu.Lock()
	var a *runtime.Attached
	for a = range st.live[c.ID] {
		break
	}
	st.mu.Unlock()
	if a != nil {
		return a.Resize(width, height)
	}
	// No client of ours is attached: a brief attachment of its own sets
	// the size.
	a, err = st.s.e.Containers.Attach(r.Context(), c.ID, runtime.AttachOptions{Width: width, Height: height})
	if err != nil {
		return err
	}
	a.Close()
	return nil
}

// size reads a resize's h and w.
func size(r *http.Request) (width, height uint16, err error) {
	h, err := intParam(r, "h", 0)
	if err != nil {
		return 0, 0, err
	}
	wd, err := intParam(r, "w", 0)
	if err != nil {
		return 0, 0, err
	}
	if h < 0 || h > 65535 || wd < 0 || wd > 65535 {
		return 0, 0, badRequest("invalid terminal size %dx%d", wd, h)
	}
	return uint16(wd), uint16(h), nil
}

// waitResponse is Docker's answer to a wait; Error is null when the wait
// itself went well.
type waitResponse struct {
	StatusCode int64
	Error      *struct{ Message string }
}

// waitContainer answers at once with its headers (the docker CLI waits
// for them before it starts the container), then with the exit code when
// the condition is met.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	cond, err := engine.ParseWaitCondition(r.URL.Query().Get("condition"))
	if err != nil {
		return err
	}
	wait, err := s.e.WaitContainer(r.Context(), r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	code, err := wait(r.Context())
	if r.Context().Err() != nil {
		return nil // the client went away
	}
	resp := waitResponse{StatusCode: int64(code)}
	if err != nil {
		resp.Error = &struct{ Message string }{err.Error()}
	}
	return writeBody(w, resp)
}
