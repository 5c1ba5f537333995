package runtime

import (
	"maps"

	"github.com/cairn-runtime/cairn/events"
)

// emit appends an event about container c to the store's journal, with
// Docker's attributes (its name and image, its labels) and extra ones
// (exitCode for die…). A journal that cannot be written fails nothing.
func (s *Store) emit(c *Container, action string, extra map[string]string) {
	if s.events == nil || c == nil {
		return
	}
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	maps.Copy(attrs, c.Config.Labels)
	maps.Copy(attrs, extra)
	s.events.Append(events.Event{Type: events.Container, Action: action, Actor: events.Actor{ID: c.ID, Attributes: attrs}})
}
