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
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
	"golang.org/x/sys/unix"
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

// attachClient is one hijacked attach: the client's connection and the
// streams it asked for.
type attachClient struct {
	conn           net.Conn
	stdin          io.Reader // nil: not attached
	stdout, stderr io.Writer // nil: not attached
	keys           []byte
	hangup         <-chan struct{} // closed once the client closed its connection
	done           chan struct{}   // closed when its attachment ended
	once           sync.Once
}

func (cl *attachClient) end() { cl.once.Do(func() { close(cl.done) }) }

func (cl *attachClient) options(starting bool) runtime.AttachOptions {
	return runtime.AttachOptions{Stdin: cl.stdin, Stdout: cl.stdout, Stderr: cl.stderr, DetachKeys: cl.keys, Starting: starting}
}

// fail tells the client why it was not attached, as dockerd does once the
// stream is the client's: in it.
func (cl *attachClient) fail(err error) {
	w := cl.stderr
	if w == nil {
		w = cl.stdout
	}
	if w != nil {
		fmt.Fprintf(w, "Error attaching: %v\n", err)
	}
	cl.end()
}

func (st *streams) attach(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := st.s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	keys, err := runtime.ParseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return err
	}
	// Held until its start, it is counted from before its answer: the
	// docker CLI starts the container as soon as it has it.
	held := boolParam(r, "stream") && c.State.Status != runtime.Running && c.State.Status != runtime.Paused
	if held {
		st.mu.Lock()
		st.arriving[c.ID]++
		st.mu.Unlock()
	}
	var cl *attachClient
	defer func() {
		if held && cl == nil { // it never got to hold
			st.arrive(c.ID, nil)
		}
	}()
	conn, in, err := hijack(w, r, streamType(r, c.Config.Tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	cl = &attachClient{conn: conn, keys: keys, hangup: hangup(conn, stop), done: make(chan struct{})}
	if boolParam(r, "stdin") && c.Config.OpenStdin {
		cl.stdin = in
	}
	cl.stdout, cl.stderr = outputs(conn, c.Config.Tty, boolParam(r, "stdout"), boolParam(r, "stderr"))
	bg := detached(ctx)
	if boolParam(r, "logs") {
		out, errOut := cl.stdout, cl.stderr
		if out == nil {
			out = io.Discard
		}
		if errOut == nil {
			errOut = io.Discard
		}
		st.s.e.Containers.Logs(bg, c.ID, runtime.LogOptions{Tail: -1}, out, errOut)
	}
	if held {
		st.hold(c.ID, cl)
		return nil
	}
	if !boolParam(r, "stream") {
		return nil
	}
	a, err := st.s.e.Containers.Attach(bg, c.ID, cl.options(false))
	if err != nil {
		cl.fail(err)
		return nil
	}
	st.addLive(c.ID, a)
	st.serve(c.ID, a, cl)
	return nil
}

// hold keeps cl until a start of container id takes it, the client goes
// away, or the container does.
func (st *streams) hold(id string, cl *attachClient) {
	st.arrive(id, cl)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-cl.done:
			return
		case <-cl.hangup:
		case <-tick.C:
			if _, err := st.s.e.Containers.Get(context.Background(), id); !errors.Is(err, runtime.ErrNotFound) {
				continue
			}
		}
		if st.unhold(id, cl) {
			return
		}
		<-cl.done // a start took it meanwhile: its attachment ends it
		return
	}
}

// arrive ends the arrival of an attach to container id: cl is held (nil:
// it failed on its way).
func (st *streams) arrive(id string, cl *attachClient) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cl != nil {
		st.pending[id] = append(st.pending[id], cl)
	}
	if st.arriving[id]--; st.arriving[id] <= 0 {
		delete(st.arriving, id)
	}
	st.arrived.Broadcast()
}

// unhold takes cl back from the held attachments of id, if it is still
// there.
func (st *streams) unhold(id string, cl *attachClient) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, p := range st.pending[id] {
		if p == cl {
			st.pending[id] = append(st.pending[id][:i:i], st.pending[id][i+1:]...)
			if len(st.pending[id]) == 0 {
				delete(st.pending, id)
			}
			return true
		}
	}
	return false
}

// take takes the attachments held for container id, once those on their
// way are there.
func (st *streams) take(id string) []*attachClient {
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.arriving[id] > 0 {
		st.arrived.Wait()
	}
	p := st.pending[id]
	delete(st.pending, id)
	return p
}

func (st *streams) addLive(id string, a *runtime.Attached) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.live[id] == nil {
		st.live[id] = map[*runtime.Attached]bool{}
	}
	st.live[id][a] = true
}

// serve serves attachment a of container id to client cl until the
// container's run ends, the client detaches, or it goes away.
func (st *streams) serve(id string, a *runtime.Attached, cl *attachClient) {
	defer func() {
		st.mu.Lock()
		delete(st.live[id], a)
		if len(st.live[id]) == 0 {
			delete(st.live, id)
		}
		st.mu.Unlock()
		cl.end()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-cl.hangup:
			a.Close()
		case <-stop:
		}
	}()
	a.Wait(context.Background())
	a.Close()
}

func (st *streams) start(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := st.s.e.Containers.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.State.Status == runtime.Running || c.State.Status == runtime.Paused {
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
			cl.fail(err)
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

// streamType is the content type of an attach's or a log's stream: raw
// with a TTY; without, Docker's frames, which API 1.42 names.
func streamType(r *http.Request, tty bool) string {
	if tty || versionBefore(r, "1.42") {
		return rawStream
	}
	return multiplexedStream
}

// outputs are the writers of a client's stdout and stderr (nil: not
// asked for): the connection itself with a TTY, Docker's frames without.
func outputs(w io.Writer, tty, stdout, stderr bool) (io.Writer, io.Writer) {
	var out, errOut io.Writer
	switch {
	case tty && stdout:
		out = w
	case stdout:
		out = frames{w, 1}
	}
	if stderr && !tty {
		errOut = frames{w, 2}
	}
	return out, errOut
}

// frames writes one stream in Docker's multiplexed frames: a header (the
// stream, three zeros, the length big-endian), then the bytes, in one
// write so that the frames of two streams never interleave.
type frames struct {
	w      io.Writer
	stream byte
}

func (f frames) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b := make([]byte, 8+len(p))
	b[0] = f.stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(p)))
	copy(b[8:], p)
	if _, err := f.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hangup returns a channel closed once the client closed its connection:
// POLLHUP on a unix socket, which a close raises and a half-close (a
// client whose stdin ended, reading on) does not. It looks four times a
// second until stop.
func hangup(conn net.Conn, stop <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return ch
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ch
	}
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			hup := false
			err := raw.Control(func(fd uintptr) {
				fds := []unix.PollFd{{Fd: int32(fd)}}
				if n, _ := unix.Poll(fds, 0); n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
					hup = true
				}
			})
			if err != nil || hup {
				close(ch)
				return
			}
		}
	}()
	return ch
}
