package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:                   "images",
		Usage:                  "List images",
		ArgsUsage:              "[REPOSITORY[:TAG]]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all images (cairn keeps no intermediate images)"},
			&cli.BoolFlag{Name: "digests", Usage: "show digests"},
			filterFlag("filter output based on conditions provided"),
			&cli.StringFlag{Name: "format", Usage: "pretty-print images using a Go template, or json"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "don't truncate output"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show image IDs"},
		},
		Action: runImages,
	}
}

// imageCommand is the `image` group, as Docker's.
func imageCommand() *cli.Command {
	ls := imagesCommand()
	ls.Name, ls.Aliases = "ls", []string{"list"}
	rm := rmiCommand()
	rm.Name, rm.Aliases = "rm", []string{"remove"}
	return &cli.Command{
		Name:  "image",
		Usage: "Manage images",
		Subcommands: []*cli.Command{
			buildCommand(), historyCommand(), importCommand(),
			{
				Name:      "inspect",
				Usage:     "Display detailed information on one or more images",
				ArgsUsage: "IMAGE [IMAGE...]",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format output using a Go template"}},
				Action:    runImageInspect,
			},
			loadCommand(), ls, imagePruneCommand(), pullCommand(), pushCommand(), rm, saveCommand(), tagCommand(),
		},
	}
}

// imageRow is one line of `cairn images`, with the fields --format sees.
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
	Containers, SharedSize, UniqueSize, VirtualSize            string
}

// MarshalJSON is `{{json .}}`: Docker 20.10's keys.
func (r imageRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Containers": r.Containers, "CreatedAt": r.CreatedAt, "CreatedSince": r.CreatedSince, "Digest": r.Digest,
		"ID": r.ID, "Repository": r.Repository, "SharedSize": r.SharedSize, "Size": r.Size, "Tag": r.Tag,
		"UniqueSize": r.UniqueSize, "VirtualSize": r.VirtualSize,
	})
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
}

func runImages(cliContext *cli.Context) error {
	oneShot()
	if cliContext.NArg() > 1 {
		return argsError(cliContext, "at most 1 argument")
	}
	filters, err := parseFilters(cliContext)
	if err != nil {
		return err
	}
	// As Docker's CLI: the argument is one more reference filter.
	if ref := cliContext.Args().First(); ref != "" {
		filters.Add("reference", ref)
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	list, err := e.ImageList(engine.ImageListOptions{All: cliContext.Bool("all"), Filters: filters})
	if err != nil {
		return err
	}
	noTrunc := cliContext.Bool("no-trunc")
	var rows []any
	for _, img := range list {
		r := imageRow{
			ID: image.ShortID(img.ID), Repository: img.Repository, Tag: img.Tag,
			Size: humanSize(img.Size), VirtualSize: units.HumanSize(float64(img.Size)), CreatedSince: since(img.Created),
			Digest: img.Digest, Containers: "N/A", SharedSize: "N/A", UniqueSize: "N/A",
		}
		if noTrunc {
			r.ID = img.ID.String()
		}
		if img.Created != nil {
			r.CreatedAt = img.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
		}
		rows = append(rows, r)
	}
	format := cliContext.String("format")
	// As Docker 20.10's CLI: a --format wins over -q.
	switch {
	case format == "" && cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "" && cliContext.Bool("digests"):
		format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	case format == "":
		format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: imageHeaders}.write(rows)
}

func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		ArgsUsage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 2 {
				return argsError(cliContext, "exactly 2 arguments")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			_, err = e.TagImage(cliContext.Context, cliContext.Args().Get(0), cliContext.Args().Get(1))
			return err
		},
	}
}

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "Remove one or more images",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force removal of the image"},
			&cli.BoolFlag{Name: "no-prune", Usage: "do not delete untagged parents (accepted; cairn keeps no parents)"},
		},
		Action: runRmi,
	}
}

func runRmi(cliContext *cli.Context) error {
	if cliContext.NArg() < 1 {
		return argsError(cliContext, "at least 1 argument")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	return eachArg(cliContext, func(ref string) error {
		res, err := e.RemoveImage(cliContext.Context, ref, cliContext.Bool("force"))
		for _, u := range res.Untagged {
			fmt.Fprintf(cliContext.App.Writer, "Untagged: %s\n", u)
		}
		if res.Deleted != "" {
			fmt.Fprintf(cliContext.App.Writer, "Deleted: %s\n", res.Deleted)
		}
		return err
	})
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "Show the history of an image",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-trunc", Usage: "don't truncate output"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show image IDs"},
			&cli.BoolFlag{Name: "human", Aliases: []string{"H"}, Value: true, Usage: "print sizes and dates in human readable format"},
			&cli.StringFlag{Name: "format", Usage: "format output using a Go template"},
		},
		Action: runHistory,
	}
}

type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

var historyHeaders = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

func runHistory(cliContext *cli.Context) error {
	if cliContext.NArg() != 1 {
		return argsError(cliContext, "exactly 1 argument")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	entries, err := e.History(cliContext.Args().First())
	if err != nil {
		return err
	}
	noTrunc, human := cliContext.Bool("no-trunc"), cliContext.Bool("human")
	var rows []any
	for _, h := range entries {
		r := historyRow{ID: h.ID, CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "), Comment: h.Comment}
		if r.ID != "<missing>" && !noTrunc {
			r.ID = image.ShortID(digest.Digest(r.ID))
		}
		if human {
			r.CreatedSince, r.Size = since(h.Created), humanSize(h.Size)
		} else {
			r.Size = fmt.Sprint(h.Size)
			if h.Created != nil {
				r.CreatedSince = h.Created.Format(time.RFC3339)
			}
		}
		if h.Created != nil {
			r.CreatedAt = h.Created.Format(time.RFC3339)
		}
		if !noTrunc {
			r.CreatedBy = ellipsis(r.CreatedBy, 45)
		}
		rows = append(rows, r)
	}
	format := cliContext.String("format")
	switch {
	case cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "":
		format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: historyHeaders}.write(rows)
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "Import the contents from a tarball to create a filesystem image",
		ArgsUsage: "file|- [REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "set commit message for imported image"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() < 1 || cliContext.NArg() > 2 {
				return argsError(cliContext, "at least 1 and at most 2 arguments")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			src := cliContext.Args().Get(0)
			var r io.Reader = os.Stdin
			if src != "-" {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			img, err := e.ImportImage(cliContext.Context, r, image.ImportOptions{Name: cliContext.Args().Get(1), Source: src, Message: cliContext.String("message")})
			if err != nil {
				return fmt.Errorf("import %s: %w", src, err)
			}
			fmt.Fprintln(cliContext.App.Writer, img.ID)
			return nil
		},
	}
}

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "Load an image from a tar archive (docker-archive or oci-archive) or STDIN",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "read from tar archive file, instead of STDIN"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "suppress the load output"},
		},
		Action: func(cliContext *cli.Context) error {
			if cliContext.NArg() != 0 {
				return argsError(cliContext, "no arguments")
			}
			e, err := openEngine(cliContext)
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			src := "stdin"
			if in := cliContext.String("input"); in != "" {
				f, err := os.Open(in)
				if err != nil {
					return err
				}
				defer f.Close()
				r, src = f, in
			} else if term.IsTerminal(int(os.Stdin.Fd())) {
				return &statusError{code: exitCairn, err: errors.New("requested load from stdin, but stdin is empty")}
			}
			loaded, err := e.LoadImages(cliContext.Context, r)
			if err != nil {
				return fmt.Errorf("load %s: %w", src, err)
			}
			if cliContext.Bool("quiet") {
				return nil
			}
			for _, img := range loaded {
				if len(img.Names) == 0 {
					fmt.Fprintf(cliContext.App.Writer, "Loaded image ID: %s\n", img.ID)
				}
				for _, n := range img.Names {
					fmt.Fprintf(cliContext.App.Writer, "Loaded image: %s\n", image.FamiliarName(n))
				}
			}
			return nil
		},
	}
}

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "Save one or more images to a tar archive (streamed to STDOUT by default)",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to a file, instead of STDOUT"},
		},
		Action: runSave,
	}
}

func runSave(cliContext *cli.Context) error {
	if cliContext.NArg() < 1 {
		return argsError(cliContext, "at least 1 argument")
	}
	e, err := openEngine(cliContext)
	if err != nil {
		return err
	}
	items, err := e.SaveItems(cliContext.Args().Slice())
	if err != nil {
		return err
	}
	out := cliContext.String("output")
	if out == "" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return e.SaveImages(cliContext.Context, os.Stdout, items)
	}
	return writeFileAtomic(out, func(w io.Writer) error { return e.SaveImages(cliContext.Context, w, items) })
}

// writeFileAtomic writes path through a temporary file renamed into place, so
// that a failed save leaves no truncated archive behind.
func writeFileAtomic(path string, fn func(io.Writer) error) error {
	f, err := os.CreateTemp(dirOf(path), ".cairn-save-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[:i+1]
	}
	return "."
}
