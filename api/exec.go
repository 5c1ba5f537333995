package api

// Exec: an instance is made (POST /containers/{id}/exec), started once
// (POST /exec/{id}/start, hijacked unless detached), resized, and
// inspected for its exit code — what the docker CLI asks once the stream
// ends. Instances live in the service's memory, as dockerd's do.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/container"
)

// execInstance is one exec: what it runs, and how that went.
type execInstance struct {
	id, container string
	cfg           container.ExecCreateRequest
	created       time.Time

	mu            sync.Mutex
	started       bool
	running       bool
	exitCode      *int
	pid           int
	proc          *runtime.Process
	width, height uint16 // a size that came before the process
	ended         time.Time
}

// execKept is how long an ended exec can still be inspected (dockerd
// keeps them while their container lives).
const execKept = 10 * time.Minute

func (st *streams) execCreate(w http.ResponseWriter, r *http.Request) error {
	var cfg container.ExecCreateRequest
	if err := decodeJSON(r, &cfg); err != nil {
		return err
	}
	c, err := st.s.e.Containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case c.State.Status == runtime.Paused:
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Container %s is paused, unpause the container before exec", c.ID)}
	case c.State.Status != runtime.Running:
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Container %s is not running", c.ID)}
	case len(cfg.Cmd) == 0:
		return badRequest("No exec command specified")
	case cfg.Privileged:
		return badRequest("Privileged: cairn's exec runs with the container's own privileges")
	}
	if _, err := runtime.ParseDetachKeys(cfg.DetachKeys); err != nil {
		return err
	}
	b := make([]byte, 32)
	rand.Read(b)
	x := &execInstance{id: hex.EncodeToString(b), container: c.ID, cfg: cfg, created: time.Now()}
	if cfg.ConsoleSize != nil {
		x.height, x.width = uint16(cfg.ConsoleSize[0]), uint16(cfg.ConsoleSize[1])
	}
	st.mu.Lock()
	for id, old := range st.execs {
		old.mu.Lock()
		stale := !old.ended.IsZero() && time.Since(old.ended) > execKept || !old.started && time.Since(old.created) > time.Hour
		old.mu.Unlock()
		if stale {
			delete(st.execs, id)
		}
	}
	st.execs[x.id] = x
	st.mu.Unlock()
	return writeJSON(w, http.StatusCreated, map[string]string{"Id": x.id})
}

func (st *streams) execOf(r *http.Request) (*execInstance, error) {
	id := r.PathValue("id")
	st.mu.Lock()
	x := st.execs[id]
	st.mu.Unlock()
	if x == nil {
		return nil, &apiError{status: http.StatusNotFound, err: fmt.Errorf("No such exec instance: %s", id)}
	}
	return x, nil
}

func (st *streams) execStart(w http.ResponseWriter, r *http.Request) error {
	x, err := st.execOf(r)
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := st.s.e.Containers.Get(r.Context(), x.container)
	if err != nil {
		return err
	}
	if c.State.Status != runtime.Running {
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Container %s is not running", c.ID)}
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Error: Exec command %s is already running", x.id)}
	}
	x.started, x.running = true, true
	if req.ConsoleSize != nil {
		x.height, x.width = uint16(req.ConsoleSize[0]), uint16(req.ConsoleSize[1])
	}
	x.mu.Unlock()
	cfg := x.cfg
	o := runtime.ExecOptions{Args: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Tty: cfg.Tty, OpenStdin: cfg.AttachStdin && !req.Detach}
	bg := detached(r.Context())
	if req.Detach {
		p, err := st.s.e.Containers.Exec(bg, x.container, o)
		if err != nil {
			x.finish(execFailed(err))
			return startError(err)
		}
		x.run(p)
		go func() { code, _ := p.Wait(bg); x.finish(code) }()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, in, err := hijack(w, r, streamType(r, cfg.Tty))
	if err != nil {
		x.finish(126)
		return err
	}
	defer conn.Close()
	// A client that goes away leaves the process running: what it would
	// have read is dropped.
	out := &lenient{w: conn}
	stdout, stderr := outputs(out, cfg.Tty, cfg.AttachStdout, cfg.AttachStderr)
	if stdout != nil {
		o.IO.Stdout = stdout
	}
	if stderr != nil {
		o.IO.Stderr = stderr
	}
	if o.OpenStdin {
		pr, pw, err := os.Pipe()
		if err != nil {
			x.finish(126)
			return nil
		}
		defer pr.Close()
		go func() {
			io.Copy(pw, in) // until the client ends its stdin, or goes
			pw.Close()
		}()
		o.IO.Stdin = pr
	}
	x.mu.Lock()
	o.IO.Width, o.IO.Height = x.width, x.height
	x.mu.Unlock()
	p, err := st.s.e.Containers.Exec(bg, x.container, o)
	if err != nil {
		// As dockerd: the error, in the stream; the exit code, in the
		// instance.
		w := stdout
		if w == nil {
			w = out
		}
		fmt.Fprintf(w, "%v\r\n", err)
		x.finish(execFailed(err))
		return nil
	}
	x.run(p)
	code, _ := p.Wait(bg)
	x.finish(code)
	return nil
}

// execFailed is the exit code of an exec that did not start: 126, what
// dockerd 20.10 records whatever the reason (a run's command that is not
// there is 127).
func execFailed(error) int { return 126 }

// run records the started process, and gives it the size that came first.
func (x *execInstance) run(p *runtime.Process) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.proc, x.pid = p, p.Pid()
	if x.cfg.Tty && x.width > 0 && x.height > 0 {
		p.Resize(x.width, x.height)
	}
}

func (x *execInstance) finish(code int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.running, x.exitCode, x.proc, x.ended = false, &code, nil, time.Now()
}

func (st *streams) execResize(w http.ResponseWriter, r *http.Request) error {
	x, err := st.execOf(r)
	if err != nil {
		return err
	}
	width, height, err := size(r)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.proc != nil {
		return x.proc.Resize(width, height)
	}
	if x.started && !x.running {
		return &apiError{status: http.StatusConflict, err: fmt.Errorf("Exec %s is not running", x.id)}
	}
	x.width, x.height = width, height
	return nil
}

func (st *streams) execInspect(w http.ResponseWriter, r *http.Request) error {
	x, err := st.execOf(r)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	cfg := x.cfg
	v := container.ExecInspectResponse{
		ID: x.id, Running: x.running, ExitCode: x.exitCode, ContainerID: x.container, Pid: x.pid,
		OpenStdin: cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr,
		DetachKeys: []byte(cfg.DetachKeys),
		ProcessConfig: &container.ExecProcessConfig{
			Tty: cfg.Tty, Entrypoint: cfg.Cmd[0], Arguments: append([]string{}, cfg.Cmd[1:]...),
			Privileged: &cfg.Privileged, User: cfg.User,
		},
	}
	return writeJSON(w, http.StatusOK, v)
}

// lenient writes to w until a write fails, then drops what comes.
type lenient struct {
	w      io.Writer
	failed atomic.Bool
}

func (l *lenient) Write(p []byte) (int, error) {
	if !l.failed.Load() {
		if _, err := l.w.Write(p); err != nil {
			l.failed.Store(true)
		}
	}
	return len(p), nil
}
