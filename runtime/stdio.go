package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerd/console"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// IO says where a container's process reads and writes.
//
// Without a terminal, a *os.File is handed to the process as it is (no copy
// through cairn) unless the output is also logged; anything else goes
// through a pipe that cairn copies. With a terminal, cairn holds the pty's
// master and copies between it and Stdin and Stdout.
type IO struct {
	// Stdin is read by the process when the container keeps stdin open (-i).
	// nil then means an open pipe that no one writes (a detached -i
	// container); without -i the process reads /dev/null.
	Stdin *os.File
	// Stdout and Stderr receive the output (nil: only the log, if any).
	Stdout, Stderr io.Writer
	// Log keeps the output in the container's json-file log.
	Log bool
	// Width and Height of the terminal, with -t.
	Width, Height uint16
}

// stdio is the plumbing of one process's IO.
type stdio struct {
	child   []*os.File  // the process's ends, closed here once it started
	held    []io.Closer // ours, closed when the process is gone
	copiers sync.WaitGroup
	log     *jsonLog

	// With a terminal.
	socket  *os.File // our end of the console socket
	console console.Console
	epoll   *console.Epoller
	econs   *console.EpollConsole
}

// setup wires the IO of process p before it starts. tty and openStdin are
// the container's (or the exec's) -t and -i.
func (s *stdio) setup(p *libcontainer.Process, o IO, tty, openStdin bool) error {
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.socket = os.NewFile(uintptr(fds[0]), "console-socket")
		child := os.NewFile(uintptr(fds[1]), "console-socket-child")
		s.child = append(s.child, child)
		p.ConsoleSocket, p.ConsoleWidth, p.ConsoleHeight = child, o.Width, o.Height
		return nil
	}
	switch {
	case openStdin && o.Stdin != nil:
		p.Stdin = o.Stdin
	case openStdin:
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		s.child, s.held = append(s.child, r), append(s.held, w)
		p.Stdin = r
	default:
		null, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		s.child = append(s.child, null)
		p.Stdin = null
	}
	var err error
	if p.Stdout, err = s.output(o.Stdout, "stdout"); err != nil {
		return err
	}
	p.Stderr, err = s.output(o.Stderr, "stderr")
	return err
}

// output returns what the process writes stream to.
func (s *stdio) output(w io.Writer, stream string) (*os.File, error) {
	if f, ok := w.(*os.File); ok && s.log == nil {
		return f, nil
	}
	if w == nil && s.log == nil {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.child = append(s.child, pw)
	s.copy(r, w, stream)
	return pw, nil
}

// copy copies r to w and to the log until r ends, then closes r.
func (s *stdio) copy(r io.ReadCloser, w io.Writer, stream string) {
	var dst io.Writer
	switch {
	case s.log != nil && w != nil:
		dst = io.MultiWriter(s.log.stream(stream), w)
	case s.log != nil:
		dst = s.log.stream(stream)
	case w != nil:
		dst = w
	default:
		dst = io.Discard
	}
	s.copiers.Add(1)
	go func() {
		defer s.copiers.Done()
		io.Copy(dst, r)
		r.Close()
		if s.log != nil {
			s.log.flush(stream)
		}
	}()
}

// started finishes the wiring once the process runs: our copies of its ends
// are closed, and with a terminal the pty master is received and copied.
func (s *stdio) started(o IO, openStdin bool) error {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
	if s.socket == nil {
		return nil
	}
	master, err := recvFile(s.socket)
	s.socket.Close()
	s.socket = nil
	if err != nil {
		return fmt.Errorf("receive the terminal: %w", err)
	}
	if s.console, err = console.ConsoleFromFile(master); err != nil {
		master.Close()
		return err
	}
	// ONLCR stays on, as in Docker: the terminal gets "\r\n", and the
	// caller's own terminal is raw.
	if s.epoll, err = console.NewEpoller(); err != nil {
		return err
	}
	if s.econs, err = s.epoll.Add(s.console); err != nil {
		return err
	}
	go s.epoll.Wait()
	if openStdin && o.Stdin != nil {
		go io.Copy(s.econs, o.Stdin)
	}
	s.copy(io.NopCloser(s.econs), o.Stdout, "stdout")
	return nil
}

// resize sets the size of the terminal, if there is one.
func (s *stdio) resize(w, h uint16) error {
	if s.console == nil {
		return nil
	}
	return s.console.Resize(console.WinSize{Width: w, Height: h})
}

// close waits for the output of a process that is gone to be copied, then
// releases everything. The process's ends are closed too, for a process that
// never started.
func (s *stdio) close() {
	for _, f := range s.child {
		f.Close()
	}
	if s.econs != nil {
		// Reads until the pty has no more to give, then ends the copy.
		s.econs.Shutdown(s.epoll.CloseConsole)
	}
	s.copiers.Wait()
	if s.epoll != nil {
		s.epoll.Close()
	}
	if s.console != nil {
		s.console.Close()
	}
	if s.socket != nil {
		s.socket.Close()
	}
	for _, c := range s.held {
		c.Close()
	}
	if s.log != nil {
		s.log.close()
	}
}

// recvFile receives one file descriptor sent over a unix socket (SCM_RIGHTS).
func recvFile(socket *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(socket.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("no file descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
