package events

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidFilter: a --filter that does not parse, or names a key events
// cannot be filtered by.
var ErrInvalidFilter = errors.New("invalid filter")

// Filter selects events as `docker events --filter` does: the values given
// for one key are alternatives, and every key given must match.
//
//	type=container|image|network|volume|builder
//	event=ACTION        ("health_status" takes every health_status: …)
//	container=NAME|ID   (a prefix of either)
//	image=NAME|ID       (an image event's image, or a container event's)
//	label=KEY[=VALUE]   (every label given must match)
//	network=NAME|ID, volume=NAME, scope=local
type Filter map[string][]string

// filterKeys are the keys Filter knows.
var filterKeys = map[string]bool{
	"type": true, "event": true, "container": true, "image": true, "label": true,
	"network": true, "volume": true, "scope": true,
}

// ParseFilter parses --filter arguments, each KEY=VALUE.
func ParseFilter(args []string) (Filter, error) {
	f := Filter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok {
			return nil, fmt.Errorf("%w: bad format of filter (expected name=value): %s", ErrInvalidFilter, a)
		}
		if !filterKeys[k] {
			return nil, fmt.Errorf("%w: %q", ErrInvalidFilter, k)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match reports whether e passes f. An empty filter takes every event.
func (f Filter) Match(e Event) bool {
	if len(f) == 0 {
		return true
	}
	attrs := e.Actor.Attributes
	return f.matchEvent(e.Action) &&
		f.exact("type", e.Type) &&
		f.exact("scope", scopeOf(e)) &&
		f.name(Container, e) &&
		f.name(Network, e) &&
		f.name(Volume, e) &&
		f.image(e) &&
		f.labels(attrs)
}

func scopeOf(e Event) string {
	if e.Scope == "" {
		return "local"
	}
	return e.Scope
}

// exact: no value for key, or one equal to s.
func (f Filter) exact(key string, s ...string) bool {
	vals, ok := f[key]
	if !ok {
		return true
	}
	for _, v := range vals {
		for _, x := range s {
			if x != "" && v == x {
				return true
			}
		}
	}
	return false
}

// prefix: no value for key, or one that s starts with.
func (f Filter) prefix(key string, s ...string) bool {
	vals, ok := f[key]
	if !ok {
		return true
	}
	for _, v := range vals {
		for _, x := range s {
			if x != "" && strings.HasPrefix(x, v) {
				return true
			}
		}
	}
	return false
}

// matchEvent is Docker's: health_status, exec_create and exec_start match
// the actions that begin with them ("health_status: healthy").
func (f Filter) matchEvent(action string) bool {
	for _, v := range f["event"] {
		if v == "health_status" || v == "exec_create" || v == "exec_start" {
			return f.prefix("event", action)
		}
	}
	return f.exact("event", action)
}

// name matches the events of typ by their actor's ID or name (a prefix of
// either, as Docker does); an event of another type never passes a filter
// of typ.
func (f Filter) name(typ string, e Event) bool {
	if _, ok := f[typ]; !ok {
		return true
	}
	if e.Type == typ {
		return f.prefix(typ, e.Actor.ID, e.Actor.Attributes["name"])
	}
	return false
}

// image matches an image event by its image's ID or name, and a container
// event by the image it was made from, with or without its tag.
func (f Filter) image(e Event) bool {
	if _, ok := f["image"]; !ok {
		return true
	}
	attr := "image"
	if e.Type == Image {
		attr = "name"
	}
	name := e.Actor.Attributes[attr]
	return f.exact("image", e.Actor.ID, name, stripTag(e.Actor.ID), stripTag(name))
}

// stripTag drops the tag of an image name ("busybox:1" → "busybox"), not
// the port of a registry ("localhost:5000/x").
func stripTag(s string) string {
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[i:], "/") && !strings.HasPrefix(s, "sha256:") {
		return s[:i]
	}
	return s
}

// labels: every label=KEY[=VALUE] given is among attrs.
func (f Filter) labels(attrs map[string]string) bool {
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := attrs[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}
