package runtime

// The client's side of attaching: two connections to the container's
// monitor, stdin with the detach keys, the output demultiplexed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// AttachOptions say what a client attaches to.
type AttachOptions struct {
	Stdin          io.Reader // nil: not attached
	Stdout, Stderr io.Writer // nil: not attached
	Width, Height  uint16    // of the client's terminal, with a TTY
	// DetachKeys end the attachment, the container going on: Docker's
	// ctrl-p,ctrl-q unless set (see ParseDetachKeys); empty disables.
	DetachKeys []byte
	// Starting: the container's monitor (StartAttached) waits for this
	// client to start it.
	Starting bool
}

// Attached is a client's attachment to a container's monitor.
type Attached struct {
	stream, control net.Conn
	exit            chan int
	startErr        error         // set before exit is closed
	started         chan struct{} // closed when the monitor said it started the container
	ended           chan struct{} // closed when the control connection has said all it will
	done            chan error
	detached        atomic.Bool
}

// Attach attaches to running container ref through its monitor. It fails
// for a container without a monitor (one a foreground `run` owns).
func (s *Store) Attach(ctx context.Context, ref string, o AttachOptions) (*Attached, error) {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !o.Starting && c.State.Status != Running && c.State.Status != Paused {
		return nil, fmt.Errorf("%w: You cannot attach to a stopped container, start it first", ErrConflict)
	}
	dial := func(hello attachHello) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", s.attachSocket(c.ID))
		if err != nil {
			return nil, fmt.Errorf("%w: container %s has no monitor to attach to (it runs in the foreground of another cairn): %w", ErrConflict, ShortID(c.ID), err)
		}
		b, _ := json.Marshal(hello)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	a := &Attached{exit: make(chan int, 1), started: make(chan struct{}), ended: make(chan struct{}), done: make(chan error, 2)}
	if a.control, err = dial(attachHello{Control: true, Width: o.Width, Height: o.Height}); err != nil {
		return nil, err
	}
	hello := attachHello{Stdin: o.Stdin != nil && c.Config.OpenStdin, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil}
	if a.stream, err = dial(hello); err != nil {
		a.control.Close()
		return nil, err
	}
	go func() {
		dec := json.NewDecoder(a.control)
		for {
			var m controlMsg
			if dec.Decode(&m) != nil {
				break
			}
			if m.Started {
				close(a.started)
				continue
			}
			switch {
			case m.Error != nil:
				a.startErr = m.Error.err()
				a.stream.Close() // nothing comes of a container that did not start
			case m.Exit != nil:
				a.exit <- *m.Exit
			}
			break
		}
		close(a.exit)
		close(a.ended)
	}()
	detached := make(chan struct{})
	if hello.Stdin {
		keys := o.DetachKeys
		if keys == nil {
			keys = defaultDetachKeys
		}
		if !c.Config.Tty {
			keys = nil // as Docker: the detach keys are a terminal's
		}
		go func() {
			if copyDetach(a.stream, o.Stdin, keys) {
				a.detached.Store(true)
				close(detached)
				return
			}
			if cw, ok := a.stream.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	go func() {
		var err error
		if c.Config.Tty {
			if o.Stdout != nil {
				_, err = io.Copy(o.Stdout, a.stream)
			} else {
				_, err = io.Copy(io.Discard, a.stream)
			}
		} else {
			err = demux(a.stream, o.Stdout, o.Stderr)
		}
		a.done <- err
	}()
	go func() {
		<-detached
		a.stream.Close()
		a.control.Close()
		a.done <- ErrDetached
	}()
	return a, nil
}

// Started waits, for a client that attached with Starting, until its
// monitor has started the container (nil) or failed to (the start's
// error, as StartDetached returns it).
func (a *Attached) Started(ctx context.Context) error {
	select {
	case <-a.started:
		return nil
	case <-a.ended:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-a.started: // it started and ended at once
		return nil
	default:
	}
	if a.startErr != nil {
		return a.startErr
	}
	return errors.New("the container's monitor ended before it started the container")
}

// Resize sends the size of the client's terminal.
func (a *Attached) Resize(w, h uint16) error {
	b, _ := json.Marshal(controlMsg{Width: w, Height: h})
	_, err := a.control.Write(append(b, '\n'))
	return err
}

// Wait waits until the container's run ends or the client detaches. It
// returns the run's exit code (ok) when the monitor said it, ErrDetached
// when the client detached.
func (a *Attached) Wait(ctx context.Context) (code int, ok bool, err error) {
	select {
	case err = <-a.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.stream.Close()
	if a.detached.Load() {
		err = ErrDetached
	}
	if errors.Is(err, ErrDetached) || ctx.Err() != nil {
		a.control.Close()
		return 0, false, err
	}
	select {
	case code, ok = <-a.exit:
	case <-time.After(5 * time.Second):
	}
	a.control.Close()
	if !ok && a.startErr != nil {
		return 0, false, a.startErr
	}
	return code, ok, nil
}

// Close detaches.
func (a *Attached) Close() {
	a.stream.Close()
	a.control.Close()
}

// defaultDetachKeys are Docker's: ctrl-p, ctrl-q.
var defaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys parses --detach-keys as Docker does: a comma-separated
// list of single characters, or ctrl-<c> with c a letter or one of
// @ [ \ ] ^ _.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return defaultDetachKeys, nil
	}
	var out []byte
	for _, k := range splitComma(s) {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && k[:5] == "ctrl-":
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("%w: Unknown character: '%s'", ErrInvalid, k)
			}
		default:
			return nil, fmt.Errorf("%w: Unknown character: '%s'", ErrInvalid, k)
		}
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// copyDetach copies src to dst until src ends (false) or the detach keys
// are typed (true), holding back what may be the start of them, as
// Docker's escape proxy does.
func copyDetach(dst io.Writer, src io.Reader, keys []byte) bool {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := src.Read(buf)
		out := make([]byte, 0, n+len(keys))
		for _, b := range buf[:n] {
			if len(keys) > 0 && b == keys[matched] {
				matched++
				if matched == len(keys) {
					dst.Write(out)
					return true
				}
				continue
			}
			if matched > 0 {
				out = append(out, keys[:matched]...)
				matched = 0
				if len(keys) > 0 && b == keys[0] {
					matched = 1
					continue
				}
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			if _, werr := dst.Write(out); werr != nil {
				return false
			}
		}
		if err != nil {
			return false
		}
	}
}
