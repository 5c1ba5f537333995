package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ImageSummary is one name of an image, as `docker images` lists it: an
// image with several names has one summary each, one without any name one
// summary with Repository and Tag "<none>".
type ImageSummary struct {
	ID         digest.Digest
	Repository string // familiar: "busybox", "localhost:5000/team/app"
	Tag        string
	Created    *time.Time
	Size       int64 // unpacked, of all its layers
	// Digest is the digest of a name by digest ("sha256:…"), else "<none>"
	// (ImageList only).
	Digest string
	// Dangling: the image has no name (ImageList only).
	Dangling bool
	Labels   map[string]string
}

// ImageListOptions say which images ImageList lists.
type ImageListOptions struct {
	// All is -a: cairn keeps no intermediate images, so it changes nothing.
	All bool
	// Filters are `docker images --filter`'s: dangling, label, before,
	// since, reference (the argument of `docker images` is one more
	// reference).
	Filters Filters
}

// ImagesFilters are the keys `docker images --filter` accepts.
var ImagesFilters = []string{"dangling", "label", "before", "since", "reference"}

// ImageList lists the images of the store as `docker images` does, newest
// first, one summary per name (one with Repository and Tag "<none>" for an
// image without a name), with Docker's filters: several values of one key
// are alternatives, except label, whose values must all match; reference
// is a pattern with shell wildcards matched against the familiar name
// with its tag, then without ("busybox", "library/*:1.*").
func (e *Engine) ImageList(o ImageListOptions) ([]ImageSummary, error) {
	f := o.Filters
	if f == nil {
		f = Filters{}
	}
	if err := f.Validate(ImagesFilters...); err != nil {
		return nil, err
	}
	danglingOnly := false
	if f.Contains("dangling") {
		if f.exactMatch("dangling", "true") {
			danglingOnly = true
		} else if !f.exactMatch("dangling", "false") {
			return nil, invalidFilterValue("dangling", f.Get("dangling"))
		}
	}
	e.Images.PrefetchSummaries()
	imgs, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	createdOf := func(ref string) (*time.Time, error) {
		img, err := image.LookupIn(imgs, ref)
		if err != nil {
			return nil, NoSuchImage(ref)
		}
		c, err := e.Images.Summary(img)
		if err != nil {
			return nil, err
		}
		return c.Created, nil
	}
	var before, since *time.Time
	for _, v := range f.Get("before") {
		if before, err = createdOf(v); err != nil {
			return nil, err
		}
	}
	for _, v := range f.Get("since") {
		if since, err = createdOf(v); err != nil {
			return nil, err
		}
	}
	var out []ImageSummary
	defer e.Images.SaveFacts() // best effort: the next list learns them again
	sums, err := e.Images.Summaries(imgs)
	if err != nil {
		return nil, err
	}
	sz := e.listSizer()
	for i, img := range imgs {
		c := sums[i]
		if before != nil && !created(c.Created).Before(*before) || since != nil && !created(c.Created).After(*since) {
			continue
		}
		if f.Contains("label") && !f.matchKV("label", c.Labels) {
			continue
		}
		row := ImageSummary{ID: img.ID, Created: c.Created, Size: sz.image(c.DiffIDs), Labels: c.Labels}
		var rows []ImageSummary
		tagged := false
		for _, name := range img.Names {
			if repo, tag, ok := image.SplitName(name); ok && !f.Contains("reference") {
				r := row
				r.Repository, r.Tag, r.Digest, tagged = repo, tag, "<none>", true
				rows = append(rows, r)
				continue
			}
			n, err := reference.ParseNormalizedNamed(name)
			if err != nil {
				continue
			}
			if f.Contains("reference") {
				found := false
				for _, pattern := range f.Get("reference") {
					ok, err := reference.FamiliarMatch(pattern, n)
					if err != nil {
						return nil, invalidFilter("%v", err)
					}
					if ok {
						found = true
						break
					}
				}
				if !found {
					continue
				}
			}
			r := row
			r.Repository, r.Tag, r.Digest = reference.FamiliarName(n), "<none>", "<none>"
			if t, ok := n.(reference.Tagged); ok {
				r.Tag, tagged = t.Tag(), true
			}
			if d, ok := n.(reference.Digested); ok {
				r.Digest = d.Digest().String()
			}
			rows = append(rows, r)
		}
		switch {
		case len(rows) == 0:
			if f.Contains("dangling") && !danglingOnly || f.Contains("reference") || len(img.Names) > 0 {
				continue
			}
			row.Repository, row.Tag, row.Digest, row.Dangling = "<none>", "<none>", "<none>", true
			rows = []ImageSummary{row}
		case danglingOnly && tagged:
			continue
		}
		out = append(out, rows...)
	}
	sort.SliceStable(out, func(i, j int) bool { return created(out[i].Created).After(created(out[j].Created)) })
	return out, nil
}

// NoSuchImage is Docker's error for an image a filter, rmi, history or
// tag names that is not in the store: "No such image: busybox:latest".
func NoSuchImage(ref string) error {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		ref = reference.FamiliarString(reference.TagNameOnly(n))
	}
	return fmt.Errorf("%w: %s", image.ErrNotFound, ref)
}

func created(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ImageSize is the unpacked size of a stack of layers.
func (e *Engine) ImageSize(diffIDs []digest.Digest) int64 { return sizer{e: e}.image(diffIDs) }

// LayerSizes is the unpacked size of each layer of a stack (0 for a layer
// not unpacked).
func (e *Engine) LayerSizes(diffIDs []digest.Digest) []int64 { return sizer{e: e}.layers(diffIDs) }

// sizer measures the unpacked size of layers. The image store remembers
// the size of each (the size of a chain's snapshot is that of its content,
// which the chain ID names); unpacked, when not nil, are the snapshots the
// store has, read at once for a whole list (else each is asked).
type sizer struct {
	e        *Engine
	unpacked map[digest.Digest]bool
}

// listSizer is a sizer for a list of many images.
func (e *Engine) listSizer() sizer {
	sz := sizer{e: e}
	if all, err := e.Snapshots.List(); err == nil {
		sz.unpacked = make(map[digest.Digest]bool, len(all))
		for _, chain := range all {
			sz.unpacked[chain] = true
		}
	}
	return sz
}

func (sz sizer) image(diffIDs []digest.Digest) int64 {
	var total int64
	for _, n := range sz.layers(diffIDs) {
		total += n
	}
	return total
}

func (sz sizer) layers(diffIDs []digest.Digest) []int64 {
	out := make([]int64, len(diffIDs))
	for i, chain := range image.ChainIDs(diffIDs) {
		out[i] = sz.size(chain)
	}
	return out
}

// size is the unpacked size of layer chain, 0 if it is not unpacked.
func (sz sizer) size(chain digest.Digest) int64 {
	if sz.unpacked != nil && !sz.unpacked[chain] || sz.unpacked == nil && !sz.e.Snapshots.Exists(chain) {
		return 0
	}
	n, err := sz.e.Images.LayerSize(chain, func() (int64, error) {
		info, err := sz.e.Snapshots.Stat(chain)
		return info.Size, err
	})
	if err != nil {
		return 0
	}
	return n
}

// HistoryEntry is one step of an image's history, as `docker history`
// shows it, newest first.
type HistoryEntry struct {
	ID        string // the image's ID on the newest entry, "<missing>" below it
	Created   *time.Time
	CreatedBy string
	Size      int64
	Comment   string
}

// History returns the history of image ref, newest step first.
func (e *Engine) History(ref string) ([]HistoryEntry, error) {
	img, err := e.Images.Lookup(ref)
	if err != nil {
		return nil, err
	}
	c, _, err := e.Images.Config(img)
	if err != nil {
		return nil, err
	}
	sizes := e.LayerSizes(c.RootFS.DiffIDs)
	var out []HistoryEntry
	layer := 0
	for _, h := range c.History {
		var size int64
		if !h.EmptyLayer && layer < len(sizes) {
			size = sizes[layer]
			layer++
		}
		out = append(out, HistoryEntry{ID: "<missing>", Created: h.Created, CreatedBy: h.CreatedBy, Size: size, Comment: h.Comment})
	}
	slices.Reverse(out)
	if len(out) > 0 {
		out[0].ID = img.ID.String()
	}
	return out, nil
}

// ImageInspect is `docker image inspect`'s shape.
type ImageInspect struct {
	ID            string `json:"Id"`
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	Container     string
	DockerVersion string
	Author        string
	Config        any
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	Size          int64
	VirtualSize   int64
	GraphDriver   GraphDriver
	RootFS        struct {
		Type   string
		Layers []string
	}
	Metadata struct {
		LastTagTime time.Time // zero: "0001-01-01T00:00:00Z", as Docker has for an image never tagged by hand
	}
}

// GraphDriver is where an image's or a container's layers are on disk.
type GraphDriver struct {
	Data map[string]string
	Name string
}

// InspectImage returns what `docker image inspect` shows of image ref.
func (e *Engine) InspectImage(ref string) (*ImageInspect, error) {
	img, err := e.Images.Lookup(ref)
	if err != nil {
		return nil, err
	}
	c, raw, err := e.Images.Config(img)
	if err != nil {
		return nil, err
	}
	// Docker's own fields, which the OCI config type does not carry.
	var extra struct {
		Comment       string `json:"comment"`
		Container     string `json:"container"`
		DockerVersion string `json:"docker_version"`
		Parent        string `json:"parent"`
	}
	json.Unmarshal(raw, &extra)
	v := &ImageInspect{
		ID: img.ID.String(), RepoTags: []string{}, RepoDigests: []string{},
		Parent: extra.Parent, Comment: extra.Comment, Container: extra.Container, DockerVersion: extra.DockerVersion,
		Author: c.Author, Config: c.Config, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS,
	}
	for _, n := range img.Names {
		v.RepoTags = append(v.RepoTags, image.FamiliarName(n))
	}
	if c.Created != nil {
		v.Created = c.Created.Format(time.RFC3339Nano)
	}
	v.Size = e.ImageSize(c.RootFS.DiffIDs)
	v.VirtualSize = v.Size
	v.GraphDriver = GraphDriver{Name: "overlay", Data: map[string]string{}}
	chains := image.ChainIDs(c.RootFS.DiffIDs)
	var lowers []string
	if n := len(chains); n > 0 {
		// What a mount of the image stacks: down to a layer with an opaque root.
		if infos, err := e.Snapshots.Lowers(chains[n-1]); err == nil {
			chains = chains[n-len(infos):]
		}
	}
	for i := len(chains) - 1; i >= 0; i-- {
		lowers = append(lowers, e.Snapshots.FS(chains[i]))
	}
	if len(lowers) > 0 {
		v.GraphDriver.Data["LowerDir"] = strings.Join(lowers, ":")
	}
	v.RootFS.Type = c.RootFS.Type
	for _, d := range c.RootFS.DiffIDs {
		v.RootFS.Layers = append(v.RootFS.Layers, d.String())
	}
	return v, nil
}

// RemoveImage is `docker rmi` of one reference (see image.Store.Remove):
// an image that a container uses is refused unless force. When an image
// was deleted, what only it used (blobs, snapshots) goes too.
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) (image.Removal, error) {
	img, _ := e.Images.Lookup(ref) // for its events
	res, err := e.Images.Remove(ctx, ref, force, func(img image.Image) string { return e.Containers.UsingImage(img.ID) })
	e.emitRemoval(img, res)
	if err != nil || res.Deleted == "" {
		return res, err
	}
	return res, e.Prune(ctx)
}

// SaveItems expands the names `docker save` is given into the images to
// save and the names to save each under: a repository without a tag is
// every tag of it; a name is saved under that name; an ID or a digest saves
// the image untagged, as Docker does.
func (e *Engine) SaveItems(refs []string) ([]image.SaveItem, error) {
	imgs, err := e.Images.List()
	if err != nil {
		return nil, err
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
	for _, ref := range refs {
		n, err := reference.ParseNormalizedNamed(ref)
		if err == nil && reference.IsNameOnly(n) {
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
		img, err := e.Images.Lookup(ref)
		if err != nil {
			return nil, err
		}
		if n != nil {
			if _, dg := n.(reference.Digested); !dg && slices.Contains(img.Names, reference.TagNameOnly(n).String()) {
				add(img, reference.TagNameOnly(n).String())
				continue
			}
		}
		add(img)
	}
	return items, nil
}
