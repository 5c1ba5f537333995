package engine

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/opencontainers/go-digest"
)

// DiskUsage is what `docker system df` reports of a store: its images,
// containers, volumes and build cache, and the space of each.
type DiskUsage struct {
	// LayersSize is the unpacked size of the layers of the images, each
	// layer once however many images share it.
	LayersSize int64
	Images     []ImageUsage
	Containers []ContainerUsage
	Volumes    []VolumeUsage
	BuildCache []CacheUsage
}

// ImageUsage is one image of DiskUsage.
type ImageUsage struct {
	ID      digest.Digest
	Names   []string // familiar names
	Created *time.Time
	// Size is the unpacked size of all its layers; SharedSize that of
	// those another image has too.
	Size, SharedSize int64
	Containers       int // the containers made from it
}

// ContainerUsage is one container of DiskUsage.
type ContainerUsage struct {
	*runtime.Container
	Status       string // as ps has it
	SizeRw       int64  // its writable layer
	LocalVolumes int    // the volumes it mounts
}

// Active reports whether the container's layer is in use: it runs.
func (c ContainerUsage) Active() bool { return c.Container.Up() }

// VolumeUsage is one volume of DiskUsage.
type VolumeUsage struct {
	*runtime.Volume
	Links int   // the containers that mount it
	Size  int64 // of its files
}

// CacheUsage is one entry of the build cache: the image a build step made.
type CacheUsage struct {
	ID      string // the step's cache key, as a hex string
	Created time.Time
	// Size is that of the layer the step added (0 for a step that only
	// changed the config, or whose layer another entry counts already);
	// Shared says an image has that layer too, so that a prune of the
	// cache would not free it.
	Size   int64
	Shared bool
}

// DiskUsage reports the space the store's images, containers, volumes and
// build cache take.
func (e *Engine) DiskUsage(ctx context.Context) (*DiskUsage, error) {
	du := &DiskUsage{Images: []ImageUsage{}, Containers: []ContainerUsage{}, Volumes: []VolumeUsage{}, BuildCache: []CacheUsage{}}
	ctrs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	users := map[digest.Digest]int{}
	links := map[string]int{}
	now := time.Now()
	for _, c := range ctrs {
		users[c.ImageID]++
		vols := 0
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				links[m.Name]++
				vols++
			}
		}
		rw, _ := e.ContainerSize(c)
		du.Containers = append(du.Containers, ContainerUsage{Container: c, Status: Status(c, now), SizeRw: rw, LocalVolumes: vols})
	}

	imgs, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	defer e.Images.SaveFacts() // best effort: the next list learns them again
	layerSize := map[digest.Digest]int64{}
	refs := map[digest.Digest]int{}
	chainsOf := make([][]digest.Digest, len(imgs))
	sums, err := e.Images.Summaries(imgs)
	if err != nil {
		return nil, err
	}
	sz := e.listSizer()
	for i, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := sums[i]
		u := ImageUsage{ID: img.ID, Created: c.Created, Containers: users[img.ID]}
		for _, n := range img.Names {
			u.Names = append(u.Names, image.FamiliarName(n))
		}
		chainsOf[i] = image.ChainIDs(c.DiffIDs)
		for _, chain := range chainsOf[i] {
			if _, ok := layerSize[chain]; !ok {
				layerSize[chain] = sz.size(chain)
				du.LayersSize += layerSize[chain]
			}
			refs[chain]++
		}
		du.Images = append(du.Images, u)
	}
	for i := range du.Images {
		for _, chain := range chainsOf[i] {
			du.Images[i].Size += layerSize[chain]
			if refs[chain] > 1 {
				du.Images[i].SharedSize += layerSize[chain]
			}
		}
	}

	vols, err := e.Containers.Volumes()
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		du.Volumes = append(du.Volumes, VolumeUsage{Volume: v, Links: links[v.Name], Size: dirSize(v.Mountpoint)})
	}

	du.BuildCache, err = e.cacheUsage(refs)
	return du, err
}

// cacheUsage lists the build cache, oldest entry first; inImages are the
// layers of the images, which an entry only shares.
func (e *Engine) cacheUsage(inImages map[digest.Digest]int) ([]CacheUsage, error) {
	dir := filepath.Join(e.Root, "build-cache") // docs/on-disk.md: build-cache/<key-hex>
	files, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return []CacheUsage{}, nil
	} else if err != nil {
		return nil, err
	}
	type entry struct {
		CacheUsage
		top digest.Digest
	}
	var entries []entry
	for _, f := range files {
		img, ok := e.Images.CacheGet(digest.NewDigestFromEncoded(digest.SHA256, f.Name()))
		if !ok {
			continue
		}
		en := entry{CacheUsage: CacheUsage{ID: f.Name()}}
		if info, err := f.Info(); err == nil {
			en.Created = info.ModTime()
		}
		if c, _, err := e.Images.Config(img); err == nil {
			if chains := image.ChainIDs(c.RootFS.DiffIDs); len(chains) > 0 {
				en.top = chains[len(chains)-1]
			}
		}
		entries = append(entries, en)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Created.Before(entries[j].Created) })
	counted := map[digest.Digest]bool{}
	out := []CacheUsage{}
	for _, en := range entries {
		if en.top != "" && !counted[en.top] {
			counted[en.top] = true
			en.Size = sizer{e: e}.size(en.top)
			en.Shared = inImages[en.top] > 0
		}
		out = append(out, en.CacheUsage)
	}
	return out, nil
}
