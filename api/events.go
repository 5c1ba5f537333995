package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/cairn-runtime/cairn/engine"
)

// events is GET /events: the store's journal as Docker's stream of JSON
// messages, from since (or from now) on, each flushed as it comes, until
// the client goes or until passes — the engine function `cairn events`
// calls. The headers go at once: docker events and docker-compose wait for
// them before they show anything.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	var o engine.EventOptions
	now := time.Now()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			t, err := engine.ParseEventTime(v, now)
			if err != nil {
				return badRequest("invalid value %q for %s: %v", v, p.name, err)
			}
			*p.t = t
		}
	}
	var err error
	if o.Filters, err = filters(r); err != nil {
		return err
	}
	if err := engine.CheckEventFilters(o.Filters); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	s.e.ReadEvents(r.Context(), o, func(m engine.EventMessage) error {
		if err := enc.Encode(m); err != nil {
			return err // the client went
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	return nil // after the headers, an error has no one to go to
}
