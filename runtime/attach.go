package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Attaching: the monitor of a detached container keeps its terminal (with
// -t) or its stdin pipe (with -i) and its output, and serves them on a unix
// socket, /run/cairn/<hash>/attach/<id12>.sock, to any number of `attach`
// clients at once. A client opens two connections: the stream (its hello
// says which of stdin, stdout and stderr it wants; then stdin is raw from
// the client, and the output raw with a terminal, in Docker's 8-byte frames
// without), and the control (window sizes from the client; to it, that
// the container it waited for started, and the exit code when the run
// ends). Detaching is the client's: it closes both, and the container goes
// on.

// ErrDetached: the client read its detach keys and left the container
// running.
var ErrDetached = errors.New("read escape sequence") // Docker's words

// attachHello is the first line a client sends on a connection.
type attachHello struct {
	Control bool `json:"control,omitempty"`
	Stdin   bool `json:"stdin,omitempty"`
	Stdout  bool `json:"stdout,omitempty"`
	Stderr  bool `json:"stderr,omitempty"`
	Width   uint16
	Height  uint16
}

// controlMsg travels on a control connection: sizes one way, the exit
// code the other.
type controlMsg struct {
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Exit   *int   `json:"exit,omitempty"`
	// Started: the start a client waited for (attach first) is done.
	Started bool `json:"started,omitempty"`
	// Error is the failure of a start the client waited for (attach
	// first), with its kind (see report).
	Error *report `json:"error,omitempty"`
}

func (s *Store) attachSocket(id string) string {
	return filepath.Join(s.run, "attach", ShortID(id)+".sock")
}

// hub is the monitor's side: the output of the container's current run,
// sent to every attached client, and their input to the run's stdin.
type hub struct {
	ln        *net.UnixListener
	tty       bool
	stdinOnce bool // the first attached stdin's end closes the container's (run -i without -t, as Docker)

	mu       sync.Mutex
	outs     map[*attacher]bool
	controls map[net.Conn]bool
	stdin    io.WriteCloser // the current run's stdin (nil: none, or between runs)
	pending  []byte         // input that came before the run's stdin was there
	inEnded  bool           // the StdinOnce client's stdin ended before the run's was there
	runs     int            // counts runs and their ends: a flush of a run that ended stops
	width    uint16         // the terminal's last size a client sent
	height   uint16
	resize   func(w, h uint16) error
	quit     chan struct{} // closed when the hub stops
	attached chan struct{} // closed when a client has both its connections
	streams  int
}

type attacher struct {
	conn           net.Conn
	stdout, stderr bool
}

// serveAttach starts the hub of container c in the monitor.
func (s *Store) serveAttach(c *Container) (*hub, error) {
	path := s.attachSocket(c.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	os.Remove(path) // a killed monitor's
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("attach socket of %s: %w", ShortID(c.ID), err)
	}
	ln.SetUnlinkOnClose(true)
	h := &hub{ln: ln, tty: c.Config.Tty, stdinOnce: c.Config.StdinOnce && !c.Config.Tty, outs: map[*attacher]bool{}, controls: map[net.Conn]bool{},
		quit: make(chan struct{}), attached: make(chan struct{})}
	go h.accept()
	return h, nil
}

func (h *hub) accept() {
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		go h.serve(conn)
	}
}

func (h *hub) serve(conn net.Conn) {
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadBytes('\n')
	conn.SetReadDeadline(time.Time{})
	var hello attachHello
	if err != nil || json.Unmarshal(line, &hello) != nil {
		conn.Close()
		return
	}
	if hello.Control {
		h.mu.Lock()
		h.controls[conn] = true
		h.mu.Unlock()
		h.setSize(hello.Width, hello.Height)
		h.seen(true)
		dec := json.NewDecoder(r)
		for {
			var m controlMsg
			if dec.Decode(&m) != nil {
				break
			}
			h.setSize(m.Width, m.Height)
		}
		h.mu.Lock()
		delete(h.controls, conn)
		h.mu.Unlock()
		conn.Close()
		return
	}
	a := &attacher{conn: conn, stdout: hello.Stdout, stderr: hello.Stderr}
	h.mu.Lock()
	h.outs[a] = true
	h.mu.Unlock()
	h.seen(false)
	if hello.Stdin {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				h.input(buf[:n])
			}
			if err != nil {
				break
			}
		}
		// The client's stdin ended: it may still read the output. With
		// StdinOnce (run -i), the container's ends with it.
		h.mu.Lock()
		if h.stdinOnce {
			if h.stdin != nil {
				h.stdin.Close()
				h.stdin = nil
			} else {
				h.inEnded = true
			}
		}
		h.stdinOnce = false
		h.mu.Unlock()
		// Half-closed, the connection reads as ended: the client stays
		// attached until the run ends or a write to it fails.
		return
	}
	select {
	case <-h.quit:
	case <-waitClosed(conn):
	}
	h.drop(a)
}

// waitClosed returns a channel closed once the peer closed conn (a read
// that fails), for a connection whose input was not read.
func waitClosed(conn net.Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn)
		close(ch)
	}()
	return ch
}

// setSize sets the size of the terminal, now and for the runs to come (a
// client's size comes before the run of an attach-first start).
func (h *hub) setSize(w, ht uint16) {
	if w == 0 || ht == 0 {
		return
	}
	h.mu.Lock()
	h.width, h.height = w, ht
	resize := h.resize
	h.mu.Unlock()
	if resize != nil {
		resize(w, ht)
	}
}

// seen counts the connections of the first client: once it has its stream
// and its control, a monitor that waits for it (attach first) starts the
// container.
func (h *hub) seen(control bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if control {
		h.streams |= 1
	} else {
		h.streams |= 2
	}
	if h.streams == 3 {
		select {
		case <-h.attached:
		default:
			close(h.attached)
		}
	}
}

// input passes a client's input to the current run's stdin, or keeps it
// for the run about to start.
func (h *hub) input(p []byte) {
	h.mu.Lock()
	w := h.stdin
	if w == nil {
		h.pending = append(h.pending, p...)
	}
	h.mu.Unlock()
	if w != nil {
		w.Write(p)
	}
}

// started tells the clients that the container they waited for (attach
// first) started: the API answers the start only then.
func (h *hub) started() {
	b, _ := json.Marshal(controlMsg{Started: true})
	h.mu.Lock()
	var controls []net.Conn
	for c := range h.controls {
		controls = append(controls, c)
	}
	h.mu.Unlock()
	for _, c := range controls {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(append(b, '\n'))
		c.SetWriteDeadline(time.Time{})
	}
}

// failed tells the clients that the container did not start.
func (h *hub) failed(err error) {
	rep := reportOf(err)
	b, _ := json.Marshal(controlMsg{Error: &rep})
	h.mu.Lock()
	controls := h.controls
	h.controls = map[net.Conn]bool{}
	h.mu.Unlock()
	for c := range controls {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(append(b, '\n'))
		c.Close()
	}
}

func (h *hub) drop(a *attacher) {
	h.mu.Lock()
	delete(h.outs, a)
	h.mu.Unlock()
	a.conn.Close()
}

// output returns the writer of one stream (1 stdout, 2 stderr) of the
// container: everything written goes to every client attached to it.
func (h *hub) output(stream byte) io.Writer { return hubWriter{h, stream} }

type hubWriter struct {
	h      *hub
	stream byte
}

func (w hubWriter) Write(p []byte) (int, error) {
	h := w.h
	h.mu.Lock()
	var to []*attacher
	for a := range h.outs {
		if w.stream == 1 && a.stdout || w.stream == 2 && a.stderr {
			to = append(to, a)
		}
	}
	h.mu.Unlock()
	for _, a := range to {
		a.conn.SetWriteDeadline(time.Now().Add(2 * time.Second)) // a client that does not read is dropped
		// One write per frame: the monitor copies stdout and stderr at
		// once, and two writes (header, then bytes) could interleave.
		out := p
		if !h.tty {
			out = frame(w.stream, p)
		}
		if _, err := a.conn.Write(out); err != nil {
			h.drop(a)
		}
	}
	return len(p), nil
}

// run connects the hub to a run of the container: its stdin and the
// resizing of its terminal. Input that came before goes first, in order,
// without holding up the monitor if the container does not read it.
func (h *hub) run(stdin io.WriteCloser, resize func(w, h uint16) error) {
	h.mu.Lock()
	h.resize = resize
	h.runs++
	run := h.runs
	w, ht := h.width, h.height
	h.mu.Unlock()
	if resize != nil && w > 0 {
		resize(w, ht)
	}
	if stdin == nil {
		return
	}
	go func() {
		for {
			h.mu.Lock()
			if h.runs != run {
				h.mu.Unlock()
				return
			}
			pending := h.pending
			h.pending = nil
			if len(pending) == 0 {
				if h.inEnded {
					h.inEnded = false
					h.mu.Unlock()
					stdin.Close()
					return
				}
				h.stdin = stdin
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
			if _, err := stdin.Write(pending); err != nil {
				return
			}
		}
	}()
}

// ended tells the clients that the run ended with code, and lets them go.
func (h *hub) ended(code int) {
	h.mu.Lock()
	h.stdin, h.resize = nil, nil
	h.runs++
	outs, controls := h.outs, h.controls
	h.outs, h.controls = map[*attacher]bool{}, map[net.Conn]bool{}
	h.mu.Unlock()
	for a := range outs {
		a.conn.Close()
	}
	b, _ := json.Marshal(controlMsg{Exit: &code})
	for c := range controls {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(append(b, '\n'))
		c.Close()
	}
}

func (h *hub) close() {
	close(h.quit)
	h.ln.Close()
}
