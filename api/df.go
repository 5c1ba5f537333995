package api

import (
	"net/http"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// diskUsage is API 1.41's answer to GET /system/df, which the docker
// clients read for `docker system df [-v]` (1.52's per-type summaries are
// newer than cairn's API).
type diskUsage struct {
	LayersSize int64
	Images     []dfImage
	Containers []containerSummary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// dfImage is an image of df: with VirtualSize, which Docker 20.10's client
// adds up.
type dfImage struct {
	image.Summary
	VirtualSize int64
}

// diskUsage is GET /system/df: engine.DiskUsage, as `cairn system df`
// reports it, in Docker's shape.
func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	du, err := s.e.DiskUsage(r.Context())
	if err != nil {
		return err
	}
	out := diskUsage{LayersSize: du.LayersSize, Images: []dfImage{}, Containers: []containerSummary{},
		Volumes: []volume.Volume{}, BuildCache: []build.CacheRecord{}}
	for _, i := range du.Images {
		v := dfImage{Summary: image.Summary{ID: i.ID.String(), RepoTags: []string{}, RepoDigests: []string{},
			Size: i.Size, SharedSize: i.SharedSize, Containers: int64(i.Containers)}, VirtualSize: i.Size}
		if i.Created != nil {
			v.Created = i.Created.Unix()
		}
		for _, n := range i.Names {
			if strings.Contains(n, "@") {
				v.RepoDigests = append(v.RepoDigests, n)
			} else {
				v.RepoTags = append(v.RepoTags, n)
			}
		}
		out.Images = append(out.Images, v)
	}
	nets := s.e.NetworkLookup()
	for _, c := range du.Containers {
		sum := s.summary(engine.ContainerSummary{Container: c.Container, Status: c.Status, Image: c.Config.Image, SizeRw: c.SizeRw}, nets)
		out.Containers = append(out.Containers, sum)
	}
	for _, v := range du.Volumes {
		vol := volumeOf(v.Volume)
		vol.UsageData = &volume.UsageData{RefCount: int64(v.Links), Size: v.Size}
		out.Volumes = append(out.Volumes, vol)
	}
	for _, c := range du.BuildCache {
		used := c.Created
		out.BuildCache = append(out.BuildCache, build.CacheRecord{ID: c.ID, Type: "regular", Shared: c.Shared, Size: c.Size,
			CreatedAt: c.Created, LastUsedAt: &used})
	}
	return writeJSON(w, http.StatusOK, out)
}
