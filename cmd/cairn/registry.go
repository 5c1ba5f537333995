package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/registry"
	"github.com/cairn-runtime/cairn/rootfs"
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

func registryClient(cliContext *cli.Context, s *stores) (*registry.Client, error) {
	cfg, err := registry.LoadConfig(cliContext.String("config"))
	if err != nil {
		return nil, &statusError{code: exitCairn, err: err}
	}
	var images *image.Store
	if s != nil {
		images = s.images
	}
	return registry.New(cfg, images), nil
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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			out := cliContext.App.Writer
			if cliContext.Bool("quiet") {
				out = io.Discard
			}
			p, err := pull(cliContext, s, cliContext.Args().First(), cliContext.String("platform"), out, true)
			if err != nil {
				return err
			}
			fmt.Fprintln(cliContext.App.Writer, image.FamiliarName(p.Name))
			return nil
		},
	}
}

// pull pulls ref, telling out how it goes, as `docker pull` does. A pull
// that fails leaves nothing behind in the store (with clean: the caller
// holds no lease of the store, which the clean-up would wait for); one
// that is interrupted keeps the layers it completed, for the next try.
func pull(cliContext *cli.Context, s *stores, ref, platform string, out io.Writer, clean bool) (registry.Pulled, error) {
	c, err := registryClient(cliContext, s)
	if err != nil {
		return registry.Pulled{}, err
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return registry.Pulled{}, usage("invalid reference format: %q", ref)
	}
	what := "latest"
	if d, ok := n.(reference.Digested); ok {
		what = d.Digest().String()
	} else if t, ok := n.(reference.Tagged); ok {
		what = t.Tag()
	}
	fmt.Fprintf(out, "%s: Pulling from %s\n", what, reference.Path(n))
	prog := newProgress(out)
	p, err := c.Pull(cliContext.Context, ref, registry.PullOptions{Platform: platform, Progress: prog.event})
	prog.done()
	if err != nil {
		if clean && cliContext.Context.Err() == nil {
			s.prune(context.WithoutCancel(cliContext.Context)) // best effort: what this pull left
		}
		if errors.Is(err, registry.ErrInvalid) {
			return registry.Pulled{}, usage("%v", err)
		}
		return registry.Pulled{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	if p.Mirror != "" {
		fmt.Fprintf(out, "Pulled through the mirror %s\n", p.Mirror)
	}
	fmt.Fprintf(out, "Digest: %s\n", p.Digest)
	if p.UpToDate {
		fmt.Fprintf(out, "Status: Image is up to date for %s\n", image.FamiliarName(p.Name))
	} else {
		fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", image.FamiliarName(p.Name))
	}
	return p, nil
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
			var comp rootfs.Compression
			switch cliContext.String("compression") {
			case "gzip":
				comp = rootfs.Gzip
			case "zstd":
				comp = rootfs.Zstd
			default:
				return usage("invalid compression %q: gzip or zstd", cliContext.String("compression"))
			}
			ref := cliContext.Args().First()
			n, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return usage("invalid reference format: %q", ref)
			}
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			c, err := registryClient(cliContext, s)
			if err != nil {
				return err
			}
			out := cliContext.App.Writer
			if cliContext.Bool("quiet") {
				out = io.Discard
			}
			fmt.Fprintf(out, "The push refers to repository [%s]\n", n.Name())
			prog := newProgress(out)
			p, err := c.Push(cliContext.Context, ref, registry.PushOptions{Compression: comp, Progress: prog.event})
			prog.done()
			if err != nil {
				if errors.Is(err, registry.ErrNoSuchImage) {
					return err
				}
				return fmt.Errorf("push %s: %w", ref, err)
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
			c, err := registryClient(cliContext, nil)
			if err != nil {
				return err
			}
			if err := c.Login(cliContext.Context, server, user, pass); err != nil {
				return err
			}
			fmt.Fprintf(errOut, "WARNING! Your password will be stored unencrypted in %s.\n", registry.DockerConfigPath())
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
			c, err := registryClient(cliContext, nil)
			if err != nil {
				return err
			}
			had, err := c.Logout(server)
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
