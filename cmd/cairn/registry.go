package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/registry"
	"github.com/distribution/reference"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// configFlag is the registry configuration (registry-mirrors,
// insecure-registries), with the meaning of Docker's daemon.json.
var configFlag = &cli.StringFlag{
	Name: "config", Usage: "the registry configuration (registry-mirrors, insecure-registries as in Docker's daemon.json)",
	Value: "/etc/cairn/config.json", EnvVars: []string{"CAIRN_CONFIG"},
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "Download an image from a registry",
		ArgsUsage: "NAME[:TAG|@DIGEST]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress verbose output"},
			&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] to pull from a multi-platform image (default: this machine's)"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			out := cliContext.App.Writer
			if cliContext.Bool("quiet") {
				out = io.Discard
			}
			p, err := e.Pull(cliContext.Context, cliContext.Args().First(), engine.PullOptions{
				Platform: cliContext.String("platform"), Keychain: dockerKeychain{}, Report: newPullReport(out),
			})
			if errors.Is(err, engine.ErrInvalid) || errors.Is(err, registry.ErrInvalid) || errors.Is(err, engine.ErrConfig) {
				return usage("%v", err)
			} else if err != nil {
				return err
			}
			fmt.Fprintln(cliContext.App.Writer, image.FamiliarName(p.Name))
			return nil
		},
	}
}

// pullReport tells how a pull goes as `docker pull` does: its target,
// each layer's progress (see progress), then its digest and status.
type pullReport struct {
	out  io.Writer
	prog *progress
}

func newPullReport(out io.Writer) *pullReport { return &pullReport{out: out} }

func (r *pullReport) Start(what, path string) {
	fmt.Fprintf(r.out, "%s: Pulling from %s\n", what, path)
	r.prog = newProgress(r.out)
}

func (r *pullReport) Layer(ev registry.Event) { r.prog.event(ev) }

func (r *pullReport) Done(p registry.Pulled, err error) {
	r.prog.done()
	if err != nil {
		return
	}
	if p.Mirror != "" {
		fmt.Fprintf(r.out, "Pulled through the mirror %s\n", p.Mirror)
	}
	for _, l := range engine.PullSummary(p) {
		fmt.Fprintln(r.out, l)
	}
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "Upload an image to a registry",
		ArgsUsage: "NAME[:TAG]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress verbose output"},
			&cli.StringFlag{Name: "compression", Value: "gzip", Usage: "compression of the layers pushed: gzip or zstd"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 1 {
				return argsError(cliContext, "exactly 1 argument")
			}
			comp, err := engine.ParseCompression(cliContext.String("compression"))
			if err != nil {
				return usage("%v", err)
			}
			ref := cliContext.Args().First()
			n, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return usage("invalid reference format: %q", ref)
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			out := cliContext.App.Writer
			if cliContext.Bool("quiet") {
				out = io.Discard
			}
			fmt.Fprintf(out, "The push refers to repository [%s]\n", n.Name())
			prog := newProgress(out)
			p, err := e.Push(cliContext.Context, ref, dockerKeychain{}, engine.PushOptions{Compression: comp, Progress: prog.event})
			prog.done()
			if errors.Is(err, engine.ErrConfig) {
				return usage("%v", err)
			} else if err != nil {
				return err
			}
			tag := "latest"
			if t, ok := reference.TagNameOnly(n).(reference.Tagged); ok {
				tag = t.Tag()
			}
			fmt.Fprintf(out, "%s: digest: %s size: %d\n", tag, p.Digest, p.Size)
			if cliContext.Bool("quiet") {
				fmt.Fprintln(cliContext.App.Writer, image.FamiliarName(p.Name))
			}
			return nil
		},
	}
}

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "Log in to a registry (credentials kept as Docker keeps them)",
		ArgsUsage: "[SERVER]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "username"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "password"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "take the password from stdin"},
		},
		Action: func(cliContext *cli.Context) error {
			server, err := serverArg(cliContext)
			if err != nil {
				return err
			}
			user, pass := cliContext.String("username"), cliContext.String("password")
			errOut := cliContext.App.ErrWriter
			switch {
			case cliContext.Bool("password-stdin") && pass != "":
				return usage("--password and --password-stdin are mutually exclusive")
			case cliContext.Bool("password-stdin"):
				if user == "" {
					return usage("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			case pass != "":
				fmt.Fprintln(errOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			interactive := term.IsTerminal(int(os.Stdin.Fd()))
			if user == "" {
				if !interactive {
					return usage("Cannot perform an interactive login from a non TTY device")
				}
				fmt.Fprint(cliContext.App.Writer, "Username: ")
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil {
					return err
				}
				user = strings.TrimSpace(line)
			}
			if pass == "" {
				if !interactive {
					return usage("Cannot perform an interactive login from a non TTY device")
				}
				fmt.Fprint(cliContext.App.Writer, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(cliContext.App.Writer)
				if err != nil {
					return err
				}
				pass = string(b)
			}
			if user == "" || pass == "" {
				return usage("Error: Non-null Username and Password Required")
			}
			host, err := engine.Login(cliContext.Context, cliContext.String("config"), server, user, pass)
			if errors.Is(err, engine.ErrConfig) {
				return usage("%v", err)
			} else if err != nil {
				return err
			}
			if err := storeLogin(host, user, pass); err != nil {
				return err
			}
			fmt.Fprintf(errOut, "WARNING! Your password will be stored unencrypted in %s.\n", dockerConfigPath())
			fmt.Fprintln(cliContext.App.Writer, "Login Succeeded")
			return nil
		},
	}
}

// serverArg is the SERVER of login and logout: Docker Hub if none.
func serverArg(cliContext *cli.Context) (string, error) {
	if cliContext.NArg() > 1 {
		return "", argsError(cliContext, "at most 1 argument")
	}
	if s := cliContext.Args().First(); s != "" {
		return s, nil
	}
	return "docker.io", nil
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "Log out from a registry",
		ArgsUsage: "[SERVER]",
		Action: func(cliContext *cli.Context) error {
			server, err := serverArg(cliContext)
			if err != nil {
				return err
			}
			had, err := forgetLogin(registry.LoginHost(server))
			if err != nil {
				return err
			}
			if !had {
				fmt.Fprintf(cliContext.App.Writer, "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(cliContext.App.Writer, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}
