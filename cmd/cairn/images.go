package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:      "images",
		Usage:     "List images",
		ArgsUsage: "[REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all images (cairn keeps no intermediate images)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show image IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "don't truncate output"},
			&cli.BoolFlag{Name: "digests", Usage: "show digests"},
			&cli.StringFlag{Name: "format", Usage: "format output using a Go template"},
		},
		Action: runImages,
	}
}

func imageCommand() *cli.Command {
	ls := imagesCommand()
	ls.Name, ls.Aliases = "ls", []string{"list"}
	rm := rmiCommand()
	rm.Name, rm.Aliases = "rm", []string{"remove"}
	return &cli.Command{
		Name:  "image",
		Usage: "Manage images",
		Subcommands: []*cli.Command{
			ls, rm,
			{
				Name:      "inspect",
				Usage:     "Display detailed information on one or more images",
				ArgsUsage: "IMAGE [IMAGE...]",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "format output using a Go template"}},
				Action:    runImageInspect,
			},
			historyCommand(), tagCommand(), importCommand(), loadCommand(), saveCommand(),
			{
				Name:  "prune",
				Usage: "Remove blobs, snapshots and leftovers no image uses",
				Action: func(cliContext *cli.Context) error {
					s, err := openStores(cliContext)
					if err != nil {
						return err
					}
					return s.prune(cliContext.Context)
				},
			},
		},
	}
}

// imageRow is one line of `cairn images`, with the fields --format sees.
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
	Containers                                                 string
	created                                                    time.Time
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
}

func runImages(cliContext *cli.Context) error {
	if cliContext.NArg() > 1 {
		return argsError(cliContext, "at most 1 argument")
	}
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	imgs, err := s.images.List()
	if err != nil {
		return err
	}
	var filter reference.Named
	if cliContext.NArg() == 1 {
		if filter, err = reference.ParseNormalizedNamed(cliContext.Args().First()); err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("invalid reference format: %q", cliContext.Args().First())}
		}
	}
	noTrunc := cliContext.Bool("no-trunc")
	var rows []any
	var list []imageRow
	for _, img := range imgs {
		c, _, err := s.images.Config(img)
		if err != nil {
			return err
		}
		size, err := s.imageSize(c.RootFS.DiffIDs)
		if err != nil {
			return err
		}
		row := imageRow{ID: image.ShortID(img.ID), Size: humanSize(size), CreatedSince: since(c.Created), Digest: "<none>", Containers: "N/A"}
		if noTrunc {
			row.ID = img.ID.String()
		}
		if c.Created != nil {
			row.created = *c.Created
			row.CreatedAt = c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, name := range names {
			r := row
			r.Repository, r.Tag = "<none>", "<none>"
			if name != "" {
				n, err := reference.ParseNormalizedNamed(name)
				if err != nil {
					continue
				}
				if filter != nil && !matchesFilter(filter, n) {
					continue
				}
				r.Repository = reference.FamiliarName(n)
				if t, ok := n.(reference.Tagged); ok {
					r.Tag = t.Tag()
				}
			} else if filter != nil {
				continue
			}
			list = append(list, r)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].created.After(list[j].created) })
	for _, r := range list {
		rows = append(rows, r)
	}
	format := cliContext.String("format")
	switch {
	case cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "" && cliContext.Bool("digests"):
		format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	case format == "":
		format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: imageHeaders}.write(rows)
}

func matchesFilter(filter, n reference.Named) bool {
	if filter.Name() != n.Name() {
		return false
	}
	ft, ok := filter.(reference.Tagged)
	if !ok {
		return true
	}
	t, ok := n.(reference.Tagged)
	return ok && t.Tag() == ft.Tag()
}

// imageSize is the unpacked size of a stack of layers.
func (s *stores) imageSize(diffIDs []digest.Digest) (int64, error) {
	sizes, err := s.layerSizes(diffIDs)
	var total int64
	for _, n := range sizes {
		total += n
	}
	return total, err
}

// layerSizes is the unpacked size of each layer of a stack (0 for a layer not unpacked).
func (s *stores) layerSizes(diffIDs []digest.Digest) ([]int64, error) {
	out := make([]int64, len(diffIDs))
	for i, chain := range image.ChainIDs(diffIDs) {
		info, err := s.snapshots.Stat(chain)
		if err == nil {
			out[i] = info.Size
		}
	}
	return out, nil
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
			s, err := openStores(cliContext)
			if err != nil {
				return err
			}
			_, err = s.images.Tag(cliContext.Context, cliContext.Args().Get(0), cliContext.Args().Get(1))
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
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	deleted := false
	err = eachArg(cliContext, func(ref string) error {
		res, err := s.images.Remove(cliContext.Context, ref, cliContext.Bool("force"), s.imageInUse)
		if err != nil {
			return err
		}
		for _, u := range res.Untagged {
			fmt.Fprintf(cliContext.App.Writer, "Untagged: %s\n", u)
		}
		if res.Deleted != "" {
			fmt.Fprintf(cliContext.App.Writer, "Deleted: %s\n", res.Deleted)
			deleted = true
		}
		return nil
	})
	if deleted {
		if perr := s.prune(cliContext.Context); perr != nil {
			if err == nil {
				return perr
			}
			return fmt.Errorf("%v\nError: %w", err, perr)
		}
	}
	return err
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
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	img, err := s.images.Lookup(cliContext.Args().First())
	if err != nil {
		return err
	}
	c, _, err := s.images.Config(img)
	if err != nil {
		return err
	}
	sizes, err := s.layerSizes(c.RootFS.DiffIDs)
	if err != nil {
		return err
	}
	noTrunc, human := cliContext.Bool("no-trunc"), cliContext.Bool("human")
	var rows []historyRow
	layer := 0
	for _, h := range c.History {
		var size int64
		if !h.EmptyLayer && layer < len(sizes) {
			size = sizes[layer]
			layer++
		}
		r := historyRow{ID: "<missing>", CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "), Comment: h.Comment}
		if human {
			r.CreatedSince, r.Size = since(h.Created), humanSize(size)
		} else {
			r.Size = fmt.Sprint(size)
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
	var out []any
	for i := len(rows) - 1; i >= 0; i-- {
		if i == len(rows)-1 {
			rows[i].ID = image.ShortID(img.ID)
			if noTrunc {
				rows[i].ID = img.ID.String()
			}
		}
		out = append(out, rows[i])
	}
	format := cliContext.String("format")
	switch {
	case cliContext.Bool("quiet"):
		format = "{{.ID}}"
	case format == "":
		format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	}
	return table{w: cliContext.App.Writer, format: format, headers: historyHeaders}.write(out)
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
			s, err := openStores(cliContext)
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
			img, err := s.images.Import(cliContext.Context, r, image.ImportOptions{Name: cliContext.Args().Get(1), Source: src, Message: cliContext.String("message")})
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
			s, err := openStores(cliContext)
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
			loaded, err := s.images.Load(cliContext.Context, r)
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
	s, err := openStores(cliContext)
	if err != nil {
		return err
	}
	imgs, err := s.images.List()
	if err != nil {
		return err
	}
	var items []image.SaveItem
	pos := map[digest.Digest]int{}
	add := func(img image.Image, names ...string) {
		if i, ok := pos[img.Manifest.Digest]; ok {
			items[i].Names = append(items[i].Names, names...)
			return
		}
		pos[img.Manifest.Digest] = len(items)
		items = append(items, image.SaveItem{Image: img, Names: names})
	}
	for _, ref := range cliContext.Args().Slice() {
		n, err := reference.ParseNormalizedNamed(ref)
		if err == nil && reference.IsNameOnly(n) {
			// A repository without a tag saves every tag of it, as Docker does.
			found := false
			for _, img := range imgs {
				for _, x := range img.Names {
					if xn, err := reference.ParseNormalizedNamed(x); err == nil && xn.Name() == n.Name() {
						add(img, x)
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		img, err := s.images.Lookup(ref)
		if err != nil {
			return err
		}
		if err == nil && n != nil {
			if _, dg := n.(reference.Digested); !dg && contains(img.Names, reference.TagNameOnly(n).String()) {
				add(img, reference.TagNameOnly(n).String())
				continue
			}
		}
		add(img) // by ID or digest: saved untagged, as Docker does
	}
	out := cliContext.String("output")
	if out == "" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return &statusError{code: exitCairn, err: errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")}
		}
		return s.images.Save(cliContext.Context, os.Stdout, items)
	}
	return writeFileAtomic(out, func(w io.Writer) error { return s.images.Save(cliContext.Context, w, items) })
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
