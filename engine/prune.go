package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// The filters each prune accepts, as Docker's daemon.
var (
	ImagePruneFilters     = []string{"dangling", "label", "label!", "until"}
	ContainerPruneFilters = []string{"label", "label!", "until"}
	NetworkPruneFilters   = []string{"label", "label!", "until"}
	VolumePruneFilters    = []string{"label", "label!"}
)

// PruneOptions say what a prune removes.
type PruneOptions struct {
	// All: for images, every image no container uses, not only the
	// dangling ones (-a); for volumes, named ones too.
	All     bool
	Filters Filters
}

// ImageDeleteItem is one line of what a prune or rmi did, as Docker's
// ImageDeleteResponseItem: a name untagged, or an image or layer deleted.
type ImageDeleteItem struct {
	Untagged string // familiar name
	Deleted  string // "sha256:…": an image ID, or the chain ID of a layer
}

// ImagePruneReport is what PruneImages did.
type ImagePruneReport struct {
	Items          []ImageDeleteItem
	SpaceReclaimed int64 // the unpacked size of the layers removed
}

// PruneImages is `docker image prune`: it removes the dangling images
// (those without a tag), or with o.All every image, that no container
// uses and the filters (until, label, label!, dangling) let through, then
// sweeps blobs and snapshots (see Prune). As Docker, an image is removed
// name by name, so that an image a container uses loses all its names but
// the last (rmi refuses that one), and one a container uses is never
// deleted.
func (e *Engine) PruneImages(ctx context.Context, o PruneOptions) (ImagePruneReport, error) {
	var rep ImagePruneReport
	f := o.Filters
	if f == nil {
		f = Filters{}
	}
	if err := f.Validate(ImagePruneFilters...); err != nil {
		return rep, err
	}
	danglingOnly := !o.All
	if f.Contains("dangling") {
		switch {
		case f.exactMatch("dangling", "false") || f.exactMatch("dangling", "0"):
			danglingOnly = false
		case !f.exactMatch("dangling", "true") && !f.exactMatch("dangling", "1"):
			return rep, invalidFilterValue("dangling", f.Get("dangling"))
		}
	}
	until, err := f.until(time.Now())
	if err != nil {
		return rep, err
	}
	imgs, err := e.Images.List()
	if err != nil {
		return rep, err
	}
	defer e.Images.SaveFacts() // best effort: the next list learns them again
	inUse := func(img image.Image) string { return e.Containers.UsingImage(img.ID) }
	// An image without a name is removed by its ID. Two manifests may share
	// a config (an image pushed, then pulled back under another name): an
	// unnamed one whose ID a named image has is no dangling image, and
	// removing that ID could take the named image instead.
	named := map[digest.Digest]bool{}
	for _, img := range imgs {
		if len(img.Names) > 0 {
			named[img.ID] = true
		}
	}
	type deletion struct {
		items  []ImageDeleteItem
		chains []digest.Digest // top first, when the image went
	}
	var done []deletion
	sums, err := e.Images.Summaries(imgs)
	if err != nil {
		return rep, err
	}
	// An image a container uses is not asked to go by its last name: Remove
	// would refuse (each refusal a read of the index and of every record).
	// One made from meanwhile is Remove's to refuse.
	used, err := e.Containers.ImagesInUse()
	if err != nil {
		return rep, err
	}
	for i, img := range imgs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		c := sums[i]
		if !until.IsZero() && c.Created != nil && c.Created.After(until) {
			continue
		}
		if !f.matchLabels(c.Labels) {
			continue
		}
		refs := img.Names
		if len(refs) == 0 && named[img.ID] {
			continue
		} else if len(refs) == 0 {
			refs = []string{img.ID.String()}
		} else if danglingOnly && slices.ContainsFunc(refs, isTagged) {
			continue
		}
		if len(refs) == 1 && used[img.ID] {
			continue
		}
		var d deletion
		for _, ref := range refs {
			res, err := e.Images.Remove(ctx, ref, false, inUse)
			if err != nil {
				continue // in use (a conflict), or removed meanwhile: as Docker, the others go on
			}
			e.emitRemoval(img, res)
			for _, u := range res.Untagged {
				d.items = append(d.items, ImageDeleteItem{Untagged: u})
			}
			if res.Deleted != "" {
				d.items = append(d.items, ImageDeleteItem{Deleted: res.Deleted.String()})
				d.chains = image.ChainIDs(c.DiffIDs)
				slices.Reverse(d.chains)
			}
		}
		if len(d.items) > 0 {
			done = append(done, d)
		}
	}
	removed, err := e.sweep(ctx)
	for _, d := range done {
		rep.Items = append(rep.Items, d.items...)
		for _, chain := range d.chains {
			if size, ok := removed[chain]; ok {
				rep.Items = append(rep.Items, ImageDeleteItem{Deleted: chain.String()})
				rep.SpaceReclaimed += size
				delete(removed, chain)
			}
		}
	}
	return rep, err
}

func isTagged(name string) bool {
	if _, _, ok := image.SplitName(name); ok {
		return true
	}
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	_, ok := n.(reference.Tagged)
	return ok
}

// sweep is Prune, and what it removed: the size of each snapshot by its
// chain ID.
func (e *Engine) sweep(ctx context.Context) (map[digest.Digest]int64, error) {
	removed := map[digest.Digest]int64{}
	err := e.Images.Prune(ctx, func(ctx context.Context, chains map[digest.Digest]bool) error {
		// Under the exclusive lock no live process has a mount in tmp/
		// (views and builds hold a lease): one there is a killed process's.
		if err := snapshot.UnmountUnder(e.Tmp()); err != nil {
			return err
		}
		if err := e.Containers.KeepSnapshots(chains); err != nil {
			return err
		}
		sizes := map[digest.Digest]int64{} // of those that go
		if all, err := e.Snapshots.List(); err == nil {
			for _, id := range all {
				if chains[id] {
					continue
				}
				if info, err := e.Snapshots.Stat(id); err == nil {
					sizes[id] = info.Size
				}
			}
		}
		gone, err := e.Snapshots.Prune(ctx, chains)
		for _, id := range gone {
			removed[id] = sizes[id]
		}
		return err
	})
	return removed, err
}

// ContainerPruneReport is what PruneContainers did.
type ContainerPruneReport struct {
	Deleted        []string // full IDs
	SpaceReclaimed int64    // the size of their writable layers
}

// PruneContainers is `docker container prune`: it removes every container
// that does not run (created, exited) and the filters (until, label,
// label!) let through. Their anonymous volumes stay, as in Docker.
func (e *Engine) PruneContainers(ctx context.Context, f Filters) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	if f == nil {
		f = Filters{}
	}
	if err := f.Validate(ContainerPruneFilters...); err != nil {
		return rep, err
	}
	until, err := f.until(time.Now())
	if err != nil {
		return rep, err
	}
	list, err := e.Containers.List(ctx)
	if err != nil {
		return rep, err
	}
	for _, c := range list {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if c.Up() || !until.IsZero() && c.Created.After(until) || !f.matchLabels(c.Config.Labels) {
			continue
		}
		size := dirSize(e.Containers.Upper(c.ID))
		if err := e.Containers.Remove(ctx, c.ID, runtime.RemoveOptions{}); err != nil {
			continue // started meanwhile, or removed by another: as Docker, the others go on
		}
		rep.Deleted = append(rep.Deleted, c.ID)
		rep.SpaceReclaimed += size
	}
	return rep, nil
}

// PruneNetworksFiltered is `docker network prune --filter`: PruneNetworks
// without filters, else the user networks the filters (until, label,
// label!) let through that no running container is attached to.
func (e *Engine) PruneNetworksFiltered(ctx context.Context, f Filters) ([]string, error) {
	if err := f.Validate(NetworkPruneFilters...); err != nil {
		return nil, err
	}
	if len(f) == 0 {
		return e.PruneNetworks(ctx)
	}
	until, err := f.until(time.Now())
	if err != nil {
		return nil, err
	}
	nets, err := e.Networks.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range nets {
		if n.IsDefault() || n.Name == network.HostName || n.Name == network.NoneName {
			continue
		}
		if !until.IsZero() && n.Created.After(until) || !f.matchLabels(n.Labels) {
			continue
		}
		if err := e.RemoveNetwork(ctx, n.Name); errors.Is(err, network.ErrInUse) || errors.Is(err, network.ErrNotFound) {
			continue
		} else if err != nil {
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// VolumePruneReport is what PruneVolumes did.
type VolumePruneReport struct {
	Deleted        []string
	SpaceReclaimed int64
}

// PruneVolumes is `docker volume prune`: the anonymous volumes no
// container uses (with o.All, named ones too) that the filters (label,
// label!) let through.
func (e *Engine) PruneVolumes(ctx context.Context, o PruneOptions) (VolumePruneReport, error) {
	var rep VolumePruneReport
	f := o.Filters
	if f == nil {
		f = Filters{}
	}
	if err := f.Validate(VolumePruneFilters...); err != nil {
		return rep, err
	}
	vols, err := e.Containers.Volumes()
	if err != nil {
		return rep, err
	}
	sizes := map[string]int64{}
	for _, v := range vols {
		sizes[v.Name] = dirSize(v.Mountpoint)
	}
	if len(f) == 0 {
		rep.Deleted, err = e.Containers.VolumePrune(ctx, o.All)
	} else {
		for _, v := range vols {
			if !v.Anonymous && !o.All || !f.matchLabels(v.Labels) {
				continue
			}
			if err = e.Containers.VolumeRemove(ctx, v.Name, true); errors.Is(err, runtime.ErrConflict) {
				err = nil
				continue
			} else if err != nil {
				break
			}
			rep.Deleted = append(rep.Deleted, v.Name)
		}
	}
	for _, n := range rep.Deleted {
		rep.SpaceReclaimed += sizes[n]
		e.emitVolume("destroy", n)
	}
	return rep, err
}

// PruneBuildCache is `docker builder prune`: it empties the build cache,
// then sweeps what only it kept; it returns the number of entries removed
// and the size of the snapshots that went with them.
func (e *Engine) PruneBuildCache(ctx context.Context) (int, int64, error) {
	n, err := e.Images.CachePrune(ctx)
	if err != nil {
		return n, 0, err
	}
	removed, err := e.sweep(ctx)
	var space int64
	for _, size := range removed {
		space += size
	}
	return n, space, err
}
