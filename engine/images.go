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
}

// ImageSummaries lists the images of the store, newest first; with filter
// (a REPOSITORY[:TAG] as `docker images` takes it), only the names that match.
func (e *Engine) ImageSummaries(filter string) ([]ImageSummary, error) {
	var f reference.Named
	if filter != "" {
		var err error
		if f, err = reference.ParseNormalizedNamed(filter); err != nil {
			return nil, fmt.Errorf("%w: invalid reference format: %q", ErrInvalid, filter)
		}
	}
	imgs, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	var out []ImageSummary
	for _, img := range imgs {
		c, _, err := e.Images.Config(img)
		if err != nil {
			return nil, err
		}
		row := ImageSummary{ID: img.ID, Created: c.Created, Size: e.ImageSize(c.RootFS.DiffIDs)}
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, name := range names {
			r := row
			r.Repository, r.Tag = "<none>", "<none>"
			if name != "" {
				n, err := reference.ParseNormalizedNamed(name)
				if err != nil || f != nil && !matchesFilter(f, n) {
					continue
				}
				r.Repository = reference.FamiliarName(n)
				if t, ok := n.(reference.Tagged); ok {
					r.Tag = t.Tag()
				}
			} else if f != nil {
				continue
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return created(out[i].Created).After(created(out[j].Created)) })
	return out, nil
}

func created(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
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

// ImageSize is the unpacked size of a stack of layers.
func (e *Engine) ImageSize(diffIDs []digest.Digest) int64 {
	var total int64
	for _, n := range e.LayerSizes(diffIDs) {
		total += n
	}
	return total
}

// LayerSizes is the unpacked size of each layer of a stack (0 for a layer
// not unpacked).
func (e *Engine) LayerSizes(diffIDs []digest.Digest) []int64 {
	out := make([]int64, len(diffIDs))
	for i, chain := range image.ChainIDs(diffIDs) {
		if info, err := e.Snapshots.Stat(chain); err == nil {
			out[i] = info.Size
		}
	}
	return out
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
		LastTagTime string
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
	res, err := e.Images.Remove(ctx, ref, force, func(img image.Image) string { return e.Containers.UsingImage(img.ID) })
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
