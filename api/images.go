package api

import (
	"net/http"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/moby/moby/api/types/image"
)

func (s *Server) imageRoutes() {
	s.handle("GET /images/json", s.listImages)
	s.handle("GET /images/{name...}", s.imageGet)
}

// listImages is GET /images/json: an image per row, with all its names.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	rows, err := s.e.ImageList(engine.ImageListOptions{All: boolParam(r, "all"), Filters: f})
	if err != nil {
		return err
	}
	out := []image.Summary{}
	at := map[string]int{}
	for _, row := range rows {
		id := row.ID.String()
		i, ok := at[id]
		if !ok {
			sum := image.Summary{ID: id, RepoTags: []string{}, RepoDigests: []string{}, Size: row.Size, Labels: row.Labels, Containers: -1, SharedSize: -1}
			if row.Created != nil {
				sum.Created = row.Created.Unix()
			}
			if sum.Labels == nil {
				sum.Labels = map[string]string{}
			}
			i = len(out)
			at[id] = i
			out = append(out, sum)
		}
		if row.Dangling {
			continue
		}
		if row.Tag != "" && row.Tag != "<none>" {
			out[i].RepoTags = append(out[i].RepoTags, row.Repository+":"+row.Tag)
		}
		if row.Digest != "" && row.Digest != "<none>" {
			out[i].RepoDigests = append(out[i].RepoDigests, row.Repository+"@"+row.Digest)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// imageGet serves the routes under /images/ whose name may hold slashes:
// NAME/json (inspect) for now.
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("name")
	name, ok := strings.CutSuffix(rest, "/json")
	if !ok || name == "" {
		return &apiError{status: http.StatusNotFound, err: errPageNotFound}
	}
	v, err := s.e.InspectImage(name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
