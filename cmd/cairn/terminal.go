package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/cairn-runtime/cairn/runtime"
	"golang.org/x/term"
)

// attached is a process this terminal is attached to: a container's init
// (runtime.Task) or a process exec'd in it (runtime.Process).
type attached interface {
	Signal(os.Signal) error
	Resize(width, height uint16) error
	Wait(ctx context.Context) (int, error)
}

// runAttached runs the process start starts attached to this terminal, as
// the foreground `run`, `start -a` and `exec` do: its output streams here,
// stdin passes to it with openStdin, a real terminal (raw, its size
// followed) with tty, signals are forwarded, and its exit code is returned.
// start is given the IO to start the process with.
func runAttached(ctx context.Context, tty, openStdin, sigProxy bool, start func(runtime.IO) (attached, error)) (int, error) {
	o := runtime.IO{Stdout: os.Stdout, Stderr: os.Stderr}
	if openStdin {
		o.Stdin = os.Stdin
	}
	restore := func() {}
	if tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			o.Width, o.Height = uint16(w), uint16(h)
		}
		if openStdin && term.IsTerminal(int(os.Stdin.Fd())) {
			state, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err != nil {
				return 0, usage("set the terminal raw: %v", err)
			}
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
		}
	}
	// Signals are caught before the process starts, so that none is lost;
	// without the signal proxy, only the window's size is followed.
	sigs := proxiedSignals()
	if !sigProxy {
		signal.Reset()
		signal.Notify(sigs, syscall.SIGWINCH)
	}
	p, err := start(o)
	if err != nil {
		restore()
		return 0, err
	}
	go proxy(sigs, p)
	code, err := p.Wait(ctx)
	restore()
	return code, err
}

// exitWith is the error of a process that exited with code (nil for 0),
// or of waiting for it.
func exitWith(code int, err error) error {
	var st *statusError
	switch {
	case errors.As(err, &st):
		return err
	case err != nil:
		return &statusError{code: exitCairn, err: err}
	case code != 0:
		return &statusError{code: code}
	}
	return nil
}

// startFailed gives a failed start Docker's exit code: 127 for a command not
// found, 126 for one that cannot be run, 125 otherwise.
func startFailed(err error) error {
	switch {
	case errors.Is(err, runtime.ErrCommandNotFound):
		return &statusError{code: 127, err: err}
	case errors.Is(err, runtime.ErrCannotInvoke):
		return &statusError{code: 126, err: err}
	}
	return &statusError{code: exitCairn, err: err}
}

// proxiedSignals starts catching the signals that the foreground `run`,
// `start -a` and `exec` pass on to the container's process, as Docker's
// sig-proxy does: all but those of the CLI's own plumbing (SIGCHLD, SIGPIPE,
// SIGURG) and of job control (SIGTSTP, SIGTTIN, SIGTTOU, which stop the CLI,
// as they would any program). SIGWINCH resizes the container's terminal.
// (They are not released again: the process ends with the container.)
func proxiedSignals() chan os.Signal {
	sigs := make(chan os.Signal, 64)
	var list []os.Signal
	for sig := syscall.Signal(1); sig < 32; sig++ {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG,
			syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGSEGV, syscall.SIGBUS,
			syscall.SIGFPE, syscall.SIGILL, syscall.SIGPROF, syscall.SIGSYS:
			continue
		}
		list = append(list, sig)
	}
	signal.Notify(sigs, list...)
	return sigs
}

// proxy passes the signals caught on sigs to p.
func proxy(sigs chan os.Signal, p attached) {
	for sig := range sigs {
		if sig == syscall.SIGWINCH {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				p.Resize(uint16(w), uint16(h))
			}
			continue
		}
		p.Signal(sig)
	}
}

var seccompWarning sync.Once

// warnSeccomp says once, on stderr, that a cairn built without seccomp
// starts containers without Docker's default seccomp profile.
func warnSeccomp() {
	if runtime.SeccompEnabled {
		return
	}
	seccompWarning.Do(func() {
		fmt.Fprintln(os.Stderr, "WARNING: this cairn was built without seccomp: containers run without the default seccomp profile."+
			" Build it with `make build` (go build -tags seccomp, with libseccomp-dev installed) to apply it.")
	})
}
