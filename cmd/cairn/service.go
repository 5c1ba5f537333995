package main

import (
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

	"github.com/cairn-runtime/cairn/api"
	"github.com/urfave/cli/v2"
)

func init() { systemSubcommands = append(systemSubcommands, serviceCommand) }

// defaultAPISocket is where `cairn system service` listens unless told.
const defaultAPISocket = "unix:///run/cairn/docker.sock"

// serviceCommand is `podman system service`'s twin: the Docker Engine API
// on a unix socket, served until it has been idle for --time seconds.
func serviceCommand() *cli.Command {
	return &cli.Command{
		Name: "service", Usage: "Serve the Docker Engine API on a unix socket", ArgsUsage: "[unix:///PATH]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 300, Usage: "seconds without a request before the service exits (0: never)"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() > 1 {
				return argsError(cliContext, "at most 1 argument")
			}
			uri := defaultAPISocket
			if cliContext.NArg() == 1 {
				uri = cliContext.Args().First()
			}
			path, ok := strings.CutPrefix(uri, "unix://")
			if !ok || !filepath.IsAbs(path) {
				return usage("%q: the service listens on a unix socket, unix:///PATH (a TCP listener needs TLS, which cairn does not serve yet)", uri)
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			ln, err := listenUnix(path)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, stop := signal.NotifyContext(cliContext.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			idle := time.Duration(cliContext.Int("time")) * time.Second
			return api.New(e).Serve(ctx, ln, idle)
		},
	}
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
	if os.Geteuid() == 0 {
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
