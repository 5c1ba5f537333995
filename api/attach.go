package api

// POST /containers/{id}/attach: the hijacked stream of a container's
// monitor, held until the start of a container that is not running yet.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/runtime"
	"golang.org/x/sys/unix"
)

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
		out = runtime.Frames(w, 1)
	}
	if stderr && !tty {
		errOut = runtime.Frames(w, 2)
	}
	return out, errOut
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
