package api

// Save (GET /images/NAME/get, GET /images/get?names=) and load (POST
// /images/load): Docker's image archives, as `docker save` and `docker
// load` move them.

import (
	"net/http"

	"github.com/cairn-runtime/cairn/image"
)

// saveImages is GET /images/get?names=A&names=B: one archive of them all.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return badRequest("no images to save: names is required")
	}
	return s.save(w, r, names)
}

// save streams the docker-archive of names. What cannot be found is an
// error answer; a failure once the archive flows cuts the connection, so
// that the client sees a broken archive rather than a short one.
func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	items, err := s.e.SaveItems(names)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := s.e.SaveImages(r.Context(), w, items); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// loadImages is POST /images/load: the archive in the body (docker-archive
// or oci-archive) is loaded, and each image named in the stream, as
// dockerd does; quiet changes nothing, since cairn sends no progress bars.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	loaded, err := s.e.LoadImages(r.Context(), r.Body)
	if err != nil {
		return err
	}
	js := newJSONStream(w)
	for _, img := range loaded {
		if len(img.Names) == 0 {
			js.Stream("Loaded image ID: " + img.ID.String() + "\n")
		}
		for _, n := range img.Names {
			js.Stream("Loaded image: " + image.FamiliarName(n) + "\n")
		}
	}
	return js.finish(nil)
}
