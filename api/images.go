package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
)

func (s *Server) imageRoutes() {
	s.handle("GET /images/json", s.listImages)
	s.handle("GET /images/search", s.searchImages)
	s.handle("GET /images/get", s.saveImages)
	s.handleUpload("POST /images/create", s.createImage)
	s.handleUpload("POST /images/load", s.loadImages)
	s.handle("POST /images/prune", s.pruneImages)
	// An image's name may hold slashes: the action is the last element.
	s.handle("GET /images/{name...}", s.imageGet)
	s.handle("POST /images/{name...}", s.imagePost)
	s.handle("DELETE /images/{name...}", s.removeImage)
	s.handleUpload("POST /build", s.build)
	s.handle("POST /build/prune", s.pruneBuildCache)
	s.handle("POST /commit", s.commit)
	s.handle("POST /auth", s.auth)
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
	out := []imagetypes.Summary{}
	at := map[string]int{}
	for _, row := range rows {
		id := row.ID.String()
		i, ok := at[id]
		if !ok {
			sum := imagetypes.Summary{ID: id, RepoTags: []string{}, RepoDigests: []string{}, Size: row.Size, Labels: row.Labels, Containers: -1, SharedSize: -1}
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

// splitAction cuts /images/NAME/ACTION into NAME and ACTION.
func splitAction(r *http.Request) (name, action string, ok bool) {
	rest := r.PathValue("name")
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// imageGet serves GET /images/NAME/json (inspect), /history and /get
// (save).
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	name, action, ok := splitAction(r)
	switch {
	case !ok:
	case action == "json":
		v, err := s.e.InspectImage(name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	case action == "history":
		return s.history(w, name)
	case action == "get":
		return s.save(w, r, []string{name})
	}
	return &apiError{status: http.StatusNotFound, err: errPageNotFound}
}

// imagePost serves POST /images/NAME/tag and /push.
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	name, action, ok := splitAction(r)
	switch {
	case !ok:
	case action == "tag":
		return s.tagImage(w, r, name)
	case action == "push":
		return s.pushImage(w, r, name)
	}
	return &apiError{status: http.StatusNotFound, err: errPageNotFound}
}

// history is GET /images/NAME/history: newest step first, the image's ID
// and tags on the first, "<missing>" below, as dockerd has it for an image
// whose steps are no images of their own.
func (s *Server) history(w http.ResponseWriter, name string) error {
	img, err := s.e.Images.Lookup(name)
	if err != nil {
		return missingImage(name, err)
	}
	entries, err := s.e.History(img.ID.String())
	if err != nil {
		return err
	}
	out := make([]imagetypes.HistoryResponseItem, 0, len(entries))
	for i, h := range entries {
		item := imagetypes.HistoryResponseItem{ID: h.ID, CreatedBy: h.CreatedBy, Size: h.Size, Comment: h.Comment}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if i == 0 {
			item.Tags = tagsOf(img)
		}
		out = append(out, item)
	}
	return writeJSON(w, http.StatusOK, out)
}

// tagsOf is the names of img that have a tag, familiar ("busybox:latest").
func tagsOf(img image.Image) []string {
	tags := []string{}
	for _, x := range img.Names {
		if n, err := reference.ParseNormalizedNamed(x); err == nil {
			if _, ok := n.(reference.Tagged); ok {
				tags = append(tags, reference.FamiliarString(n))
			}
		}
	}
	return tags
}

// missingImage gives rmi, history and tag dockerd's words for a name that
// names no image, with its tag ("No such image: busybox:latest"); what
// looks like an ID keeps the store's.
func missingImage(ref string, err error) error {
	id := strings.TrimPrefix(ref, "sha256:")
	hex := id != "" && strings.Trim(id, "0123456789abcdef") == ""
	if errors.Is(err, image.ErrNotFound) && !hex {
		return engine.NoSuchImage(ref)
	}
	return err
}

// tagImage is POST /images/NAME/tag?repo=&tag=: 201 and no body.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	target := q.Get("repo")
	if t := q.Get("tag"); t != "" {
		target += ":" + t
	}
	if _, err := image.ParseName(target); err != nil {
		return badRequest("%v", err)
	}
	if _, err := s.e.TagImage(r.Context(), name, target); err != nil {
		return missingImage(name, err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// removeImage is DELETE /images/NAME?force=: what was untagged, then what
// was deleted. noprune changes nothing: cairn keeps no parent images.
func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	res, err := s.e.RemoveImage(r.Context(), name, boolParam(r, "force"))
	if err != nil && len(res.Untagged) == 0 && res.Deleted == "" {
		return missingImage(name, err)
	}
	out := []imagetypes.DeleteResponse{}
	for _, u := range res.Untagged {
		out = append(out, imagetypes.DeleteResponse{Untagged: u})
	}
	if res.Deleted != "" {
		out = append(out, imagetypes.DeleteResponse{Deleted: res.Deleted.String()})
	}
	return writeJSON(w, http.StatusOK, out)
}

// pruneImages is POST /images/prune?filters=: the dangling images, or with
// dangling=false every image no container uses.
func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	f, err := filters(r)
	if err != nil {
		return err
	}
	rep, err := s.e.PruneImages(r.Context(), engine.PruneOptions{Filters: f})
	if err != nil {
		return err
	}
	out := imagetypes.PruneReport{SpaceReclaimed: uint64(max(rep.SpaceReclaimed, 0))}
	for _, it := range rep.Items {
		out.ImagesDeleted = append(out.ImagesDeleted, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
	}
	return writeJSON(w, http.StatusOK, out)
}

// buildCachePrune is POST /build/prune's answer.
type buildCachePrune struct {
	CachesDeleted  []string
	SpaceReclaimed int64
}

// pruneBuildCache is POST /build/prune: the build cache's entries go
// (cairn's cache entries are images, whose IDs it does not list).
func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	_, size, err := s.e.PruneBuildCache(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, buildCachePrune{CachesDeleted: []string{}, SpaceReclaimed: size})
}

// errSearch is the answer to GET /images/search: cairn keeps no index of
// a registry's repositories to search.
var errSearch = &apiError{status: http.StatusNotImplemented, err: errors.New("search is not supported by cairn: look for images on the registry's own site")}

func (s *Server) searchImages(w http.ResponseWriter, r *http.Request) error { return errSearch }
