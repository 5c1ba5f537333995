package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Source is what a commit reads.
type Source struct {
	Upper  string      // the container's overlay upper directory
	Image  image.Image // the image the container was made from
	Config dockerspec.DockerOCIImageConfig
	// What names the container in errors ("container 3f2a…").
	What string
	// CreatedBy is the history's "created by"; empty, the container's
	// command (Docker's commit), else what a build step says.
	CreatedBy string
	// Freeze, if not nil, stops the container's processes until the
	// function it returns is called; Commit calls it when Options.Pause.
	Freeze func() (thaw func() error, err error)
	// Lower are the directories below Upper, topmost first (see
	// rootfs.TarOptions.Lower); nil where the upper directory is no
	// overlay's or the overlay is the kernel's.
	Lower []string
}

// Options are those of `cairn commit`.
type Options struct {
	Author       string
	Message      string
	Instructions []string // -c, --change: Dockerfile instructions applied to the config
	Name         string   // REPOSITORY[:TAG]; empty leaves the image untagged
	Pause        bool     // freeze the container while its layer is read
	// Timestamp, if not zero, dates the image and its history entry, and
	// clamps every file time in the layer: the same change gives the same
	// image whenever it is committed.
	Timestamp time.Time
	// CacheKey and Intermediate are the builder's: see image.DeriveOptions.
	CacheKey     digest.Digest
	Intermediate bool
}

// Result is what Commit made.
type Result struct {
	image.Image
	Empty bool // the container had no change: no layer was added
	// Changed names files that changed while they were read (with Pause
	// off): the layer holds them as they were read, whole.
	Changed error
	// NotPaused says why the container ran on while it was read though
	// Pause was asked (a rootless container without a freezer).
	NotPaused string
}

// Commit makes the image of a container's changes.
func Commit(ctx context.Context, images *image.Store, src Source, o Options) (Result, error) {
	if _, err := ParseInstructions(o.Instructions); err != nil {
		return Result{}, err
	}
	if o.Name != "" {
		if _, err := image.ParseName(o.Name); err != nil {
			return Result{}, err
		}
	}
	empty, err := isEmpty(src.Upper)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", src.What, err)
	}
	created := time.Now().UTC()
	if !o.Timestamp.IsZero() {
		created = o.Timestamp.UTC()
	}
	var res Result
	configure := func(c *image.Config) error {
		// Parsed anew each time: expanding an instruction rewrites it, and
		// configure runs twice (the probe below, then the commit), which
		// would expand an escaped "\$x" the second time.
		changes, err := ParseInstructions(o.Instructions)
		if err != nil {
			return err
		}
		c.Config = src.Config
		a := Applier{Config: c}
		for _, ch := range changes {
			if err := a.Apply(ch); err != nil {
				return fmt.Errorf("%w: %w", ErrInstruction, err)
			}
		}
		c.Created = &created
		c.Author = o.Author
		c.Comment = o.Message
		createdBy := src.CreatedBy
		if createdBy == "" {
			createdBy = strings.Join(src.Config.Cmd, " ")
		}
		c.History = append(slices.Clone(c.History), ocispec.History{
			Created:    &created,
			CreatedBy:  createdBy,
			Author:     o.Author,
			Comment:    o.Message,
			EmptyLayer: empty,
		})
		return nil
	}
	// The config is checked before the container is frozen: a bad change
	// fails at once.
	var probe image.Config
	if err := configure(&probe); err != nil {
		return Result{}, err
	}
	do := image.DeriveOptions{Name: o.Name, Configure: configure, What: "commit of " + src.What, CacheKey: o.CacheKey, Intermediate: o.Intermediate}
	if empty {
		res.Empty = true
		res.Image, err = images.Derive(ctx, &src.Image, nil, do)
		return res, err
	}

	thaw := func() error { return nil }
	if o.Pause && src.Freeze != nil {
		if thaw, err = src.Freeze(); err != nil {
			return Result{}, fmt.Errorf("pause %s: %w", src.What, err)
		}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := rootfs.WriteTree(ctx, pw, src.Upper, rootfs.TarOptions{Layer: true, Overlay: true, Lower: src.Lower, MaxTime: o.Timestamp})
		// The whole layer is read: the container goes on while it is stored.
		if terr := thaw(); err == nil && terr != nil {
			err = fmt.Errorf("resume %s: %w", src.What, terr)
		}
		if errors.Is(err, rootfs.ErrChanged) {
			res.Changed, err = err, nil // the stream is whole
		}
		pw.CloseWithError(err)
		done <- err
	}()
	res.Image, err = images.Derive(ctx, &src.Image, pr, do)
	if err != nil {
		pr.CloseWithError(errStore) // the writer stops
	}
	if werr := <-done; werr != nil && !errors.Is(werr, errStore) {
		err = fmt.Errorf("%s: %w", src.What, werr) // what broke the layer says more than the store
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// errStore stops the writing of a layer that the store failed to take.
var errStore = errors.New("the store failed")

// isEmpty reports whether a container's upper directory holds no change.
func isEmpty(upper string) (bool, error) {
	f, err := os.Open(upper)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}
