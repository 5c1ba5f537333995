package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/rootless"

	"github.com/cairn-runtime/cairn/api"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/urfave/cli/v2"
)

func init() { systemSubcommands = append(systemSubcommands, serviceCommand) }

// defaultAPISocket is where `cairn system service` listens unless told.
const defaultAPISocket = "unix:///run/cairn/docker.sock"

// serviceCommand is `podman system service`'s twin: the Docker Engine API
// on a unix socket, served until it has been idle for --time seconds. The
// socket may come from systemd (contrib/systemd/cairn.socket); a TCP
// listener is made only when asked, and only with TLS that verifies the
// client's certificate, as dockerd's --tlsverify: whoever reaches the API
// is root on the host.
func serviceCommand() *cli.Command {
	return &cli.Command{
		Name: "service", Usage: "Serve the Docker Engine API on a unix socket (or TCP with TLS client verification)",
		ArgsUsage: "[unix:///PATH | tcp://HOST:PORT]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 300, Usage: "seconds without a request before the service exits (0: never)"},
			&cli.BoolFlag{Name: "tlsverify", Usage: "serve TLS and verify the client's certificate against --tlscacert (required for tcp://)"},
			&cli.StringFlag{Name: "tlscacert", Usage: "trust client certificates signed by this CA only"},
			&cli.StringFlag{Name: "tlscert", Usage: "the service's TLS certificate"},
			&cli.StringFlag{Name: "tlskey", Usage: "the service's TLS key"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() > 1 {
				return argsError(cliContext, "at most 1 argument")
			}
			ln, err := serviceListener(cliContext)
			if err != nil {
				return err
			}
			defer ln.Close()
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cliContext.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			idle := time.Duration(cliContext.Int("time")) * time.Second
			return api.New(e).Serve(ctx, ln, idle)
		},
	}
}

// serviceListener is the listener the service serves: the socket systemd
// passed (LISTEN_FDS), or the one the argument names.
func serviceListener(cliContext *cli.Context) (net.Listener, error) {
	tlsFlags := cliContext.IsSet("tlsverify") || cliContext.IsSet("tlscacert") || cliContext.IsSet("tlscert") || cliContext.IsSet("tlskey")
	if os.Getenv("LISTEN_FDS") != "" {
		ln, err := activatedListener()
		if err != nil || ln != nil {
			if ln != nil && (cliContext.NArg() > 0 || tlsFlags) {
				ln.Close()
				return nil, usage("systemd passed the service its socket (LISTEN_FDS): give it no address and no TLS flags")
			}
			return ln, err
		}
	}
	uri := defaultAPISocket
	if base, rootless, err := runBase(); err != nil {
		return nil, err
	} else if rootless {
		// The user's own, as rootless Docker's is in XDG_RUNTIME_DIR.
		uri = "unix://" + filepath.Join(base, "docker.sock")
	}
	if cliContext.NArg() == 1 {
		uri = cliContext.Args().First()
	}
	if addr, ok := strings.CutPrefix(uri, "tcp://"); ok {
		return listenTLS(cliContext, addr)
	}
	path, ok := strings.CutPrefix(uri, "unix://")
	if !ok || !filepath.IsAbs(path) {
		return nil, usage("%q: the service listens on unix:///PATH, or on tcp://HOST:PORT with --tlsverify", uri)
	}
	if tlsFlags {
		return nil, usage("the TLS flags are for a tcp:// listener; unix://%s is guarded by its mode and group", path)
	}
	return listenUnix(path)
}

// activatedListener is the socket systemd passed as fd 3 (LISTEN_FDS=1,
// LISTEN_PID this process), or nil when the variables are for another
// process. The variables are unset, so that nothing the service starts
// takes the socket for its own.
func activatedListener() (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("the sockets systemd passed: %w", err)
	}
	switch {
	case len(lns) == 0:
		return nil, nil
	case len(lns) > 1:
		for _, ln := range lns {
			if ln != nil {
				ln.Close()
			}
		}
		return nil, fmt.Errorf("systemd passed %d sockets: the service serves one (ListenStream= once in the .socket unit)", len(lns))
	case lns[0] == nil:
		return nil, fmt.Errorf("the file systemd passed as fd 3 is not a listening stream socket")
	}
	return lns[0], nil
}

// listenTLS listens on addr (HOST:PORT; port 2376 if none, as Docker's
// TLS port) with TLS that requires a client certificate signed by
// --tlscacert; it refuses to listen without one.
func listenTLS(cliContext *cli.Context, addr string) (net.Listener, error) {
	var missing []string
	if !cliContext.Bool("tlsverify") {
		missing = append(missing, "--tlsverify")
	}
	for _, f := range []string{"tlscacert", "tlscert", "tlskey"} {
		if cliContext.String(f) == "" {
			missing = append(missing, "--"+f)
		}
	}
	if len(missing) > 0 {
		return nil, usage("tcp://%s: a TCP listener verifies its clients' certificates, as dockerd --tlsverify: missing %s", addr, strings.Join(missing, ", "))
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "2376")
	}
	cert, err := tls.LoadX509KeyPair(cliContext.String("tlscert"), cliContext.String("tlskey"))
	if err != nil {
		return nil, usage("--tlscert/--tlskey: %v", err)
	}
	caPEM, err := os.ReadFile(cliContext.String("tlscacert"))
	if err != nil {
		return nil, usage("--tlscacert: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, usage("--tlscacert %s: no PEM certificate in it", cliContext.String("tlscacert"))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}), nil
}

// listenUnix listens on a unix socket at path that only root and the
// cairn group (if the host has one) may connect to: the socket is as
// powerful as root. A socket left by a service that died is replaced;
// one that answers is not.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: a service already listens there", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if os.Geteuid() == 0 && !rootless.Active() {
		gid := 0
		if g, err := user.LookupGroup("cairn"); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
		if err := os.Chown(path, 0, gid); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
