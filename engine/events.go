package engine

import (
	"context"
	"io"
	"maps"
	"time"

	"github.com/cairn-runtime/cairn/commit"
	"github.com/cairn-runtime/cairn/events"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/distribution/reference"
)

// The engine appends to the store's journal (e.Events) what Docker's
// daemon reports of images, networks and volumes, with Docker's actors and
// attributes; containers' own events are the runtime's (runtime/events.go).
// A journal that cannot be written fails nothing: the operation it
// records is done.
//
//	image pull busybox:latest (name=busybox)            the reference, as pulled
//	image push localhost:5000/app:1 (name=localhost:5000/app)
//	image tag sha256:… (name=app:1, LABELS…)            per name given
//	image untag sha256:… (name=sha256:…, LABELS…)       per name taken away
//	image delete sha256:… (name=sha256:…)
//	image import|load|save sha256:… (name=sha256:…, LABELS…)
//	container commit ID (comment=…, image=…, imageID=…, imageRef=…, name=…)
//	network create|destroy ID (name=…, type=bridge)
//	network connect|disconnect ID (container=ID, name=…, type=bridge)
//	volume create|destroy NAME (driver=local)

// emit appends one event to the journal.
func (e *Engine) emit(typ, action, id string, attrs map[string]string) {
	if e.Events == nil {
		return
	}
	e.Events.Append(events.Event{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}})
}

// imageAttrs are an image event's attributes: the image's labels and name.
func (e *Engine) imageAttrs(img image.Image, name string) map[string]string {
	attrs := map[string]string{}
	if c, _, err := e.Images.Config(img); err == nil {
		maps.Copy(attrs, c.Config.Labels)
	}
	attrs["name"] = name
	return attrs
}

// emitImage records action on img; name is the name it is about (a
// familiar name), or empty for the image's ID, as Docker has it.
func (e *Engine) emitImage(action string, img image.Image, name string) {
	if name == "" {
		name = img.ID.String()
	}
	e.emit(events.Image, action, img.ID.String(), e.imageAttrs(img, name))
}

// emitReference records a pull or a push of ref: the actor is the
// reference as Docker prints it ("busybox:latest"), its name the
// repository ("busybox"), with the labels of the image it names here.
func (e *Engine) emitReference(action, ref string) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return
	}
	n = reference.TagNameOnly(n)
	attrs := map[string]string{}
	if img, err := e.Images.Lookup(ref); err == nil {
		attrs = e.imageAttrs(img, "")
	}
	attrs["name"] = reference.FamiliarName(n)
	e.emit(events.Image, action, reference.FamiliarString(n), attrs)
}

// emitPull records a pull of ref (engine.Pull, once it succeeded).
func (e *Engine) emitPull(ref string) { e.emitReference("pull", ref) }

// emitPush records a push of ref (engine.Push, once it succeeded).
func (e *Engine) emitPush(ref string) { e.emitReference("push", ref) }

// emitRemoval records what an rmi or a prune did to img (looked up before
// the removal), before the garbage collection that follows it: an untag
// per name taken away, and the delete of the image if it went.
func (e *Engine) emitRemoval(img image.Image, res image.Removal) {
	for range res.Untagged {
		e.emitImage("untag", img, "")
	}
	if res.Deleted != "" {
		e.emit(events.Image, "delete", res.Deleted.String(), map[string]string{"name": res.Deleted.String()})
	}
}

// emitCommit records a commit of container c into res: the image's tag
// (if o named it), then the container's commit event, as Docker's daemon.
func (e *Engine) emitCommit(c *runtime.Container, res commit.Result, o commit.Options) {
	ref := ""
	if o.Name != "" {
		if n, err := image.ParseName(o.Name); err == nil {
			ref = reference.FamiliarString(n)
			e.emitImage("tag", res.Image, ref)
		}
	}
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	maps.Copy(attrs, c.Config.Labels)
	attrs["comment"], attrs["imageID"], attrs["imageRef"] = o.Message, res.ID.String(), ref
	e.emit(events.Container, "commit", c.ID, attrs)
}

// emitNetwork records action on network n; extra adds attributes
// (container=ID for connect and disconnect).
func (e *Engine) emitNetwork(action string, n *network.Network, extra map[string]string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	maps.Copy(attrs, extra)
	e.emit(events.Network, action, n.ID, attrs)
}

// emitVolume records action on volume name.
func (e *Engine) emitVolume(action, name string) {
	e.emit(events.Volume, action, name, map[string]string{"driver": "local"})
}

// TagImage gives image src the name target (`docker tag`).
func (e *Engine) TagImage(ctx context.Context, src, target string) (image.Image, error) {
	img, err := e.Images.Tag(ctx, src, target)
	if err == nil {
		name := target
		if n, perr := image.ParseName(target); perr == nil {
			name = reference.FamiliarString(n)
		}
		e.emitImage("tag", img, name)
	}
	return img, err
}

// ImportImage makes an image of a rootfs tarball (`docker import`).
func (e *Engine) ImportImage(ctx context.Context, r io.Reader, o image.ImportOptions) (image.Image, error) {
	img, err := e.Images.Import(ctx, r, o)
	if err != nil {
		return img, err
	}
	if o.Name != "" {
		if n, err := image.ParseName(o.Name); err == nil {
			e.emitImage("tag", img, reference.FamiliarString(n))
		}
	}
	e.emitImage("import", img, "")
	return img, nil
}

// LoadImages loads the images of an archive (`docker load`).
func (e *Engine) LoadImages(ctx context.Context, r io.Reader) ([]image.Image, error) {
	imgs, err := e.Images.Load(ctx, r)
	for _, img := range imgs {
		e.emitImage("load", img, "")
	}
	return imgs, err
}

// SaveImages writes items as one archive (`docker save`).
func (e *Engine) SaveImages(ctx context.Context, w io.Writer, items []image.SaveItem) error {
	if err := e.Images.Save(ctx, w, items); err != nil {
		return err
	}
	for _, it := range items {
		e.emitImage("save", it.Image, "")
	}
	return nil
}

// CreateNetwork defines a user network (`docker network create`).
func (e *Engine) CreateNetwork(ctx context.Context, o network.CreateOptions) (*network.Network, error) {
	n, err := e.Networks.Create(ctx, o)
	if err == nil {
		e.emitNetwork("create", n, nil)
	}
	return n, err
}

// CreateVolume makes volume name, or returns it if it exists (`docker
// volume create`).
func (e *Engine) CreateVolume(ctx context.Context, name string, labels map[string]string) (*runtime.Volume, error) {
	_, absent := e.Containers.VolumeInspect(name) // Docker reports a volume made, not one found
	v, err := e.Containers.VolumeCreate(ctx, name, labels)
	if err == nil && (name == "" || absent != nil) {
		e.emitVolume("create", v.Name)
	}
	return v, err
}

// RemoveVolume removes volume name (`docker volume rm`).
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	_, absent := e.Containers.VolumeInspect(name) // with force, one that is not there is no error, and no event
	err := e.Containers.VolumeRemove(ctx, name, force)
	if err == nil && absent == nil {
		e.emitVolume("destroy", name)
	}
	return err
}

// EventMessage is an event as Docker's API sends it (events.Message), with
// the fields its older clients read (status, id, from) for containers and
// images.
type EventMessage struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string
	Action   string
	Actor    events.Actor
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// When is the event's time.
func (m EventMessage) When() time.Time { return time.Unix(0, m.TimeNano) }

func eventMessage(e events.Event) EventMessage {
	m := EventMessage{Type: e.Type, Action: e.Action, Actor: e.Actor, Scope: e.Scope, Time: e.Time, TimeNano: e.TimeNano}
	if m.Actor.Attributes == nil {
		m.Actor.Attributes = map[string]string{}
	}
	if m.Scope == "" {
		m.Scope = "local"
	}
	switch e.Type {
	case events.Container:
		m.Status, m.ID, m.From = e.Action, e.Actor.ID, e.Actor.Attributes["image"]
	case events.Image:
		m.Status, m.ID = e.Action, e.Actor.ID
	}
	return m
}

// EventOptions say which events ReadEvents gives.
type EventOptions struct {
	// Since and Until bound the events by time (zero: unbounded). Without
	// either, only the events from now on are read, as `docker events`.
	Since, Until time.Time
	// Filters are `docker events --filter`'s (type, event, container,
	// image, label, network, volume, scope).
	Filters Filters
}

// ParseEventTime reads a --since or --until of `docker events` (a time, a
// duration before now, Unix seconds; Docker's GetTimestamp).
func ParseEventTime(value string, now time.Time) (time.Time, error) {
	t, err := events.ParseTime(value, now)
	if err != nil {
		return t, invalidFilter("%v", err) // ErrInvalid, in the journal's words
	}
	return t, nil
}

// eventFilter is f as the journal reads it; a key that events cannot be
// filtered by is ErrInvalid.
func eventFilter(f Filters) (events.Filter, error) {
	var args []string
	for k, vs := range f {
		for _, v := range vs {
			args = append(args, k+"="+v)
		}
	}
	filter, err := events.ParseFilter(args)
	if err != nil {
		return nil, invalidFilter("%v", err)
	}
	return filter, nil
}

// CheckEventFilters says whether f are filters of events, as ReadEvents
// would: for a front end that answers before the first event comes.
func CheckEventFilters(f Filters) error {
	_, err := eventFilter(f)
	return err
}

// ReadEvents calls fn with the events of the store's journal that o
// selects, in order, and those that come after, until ctx ends or
// o.Until passes (`docker events`).
func (e *Engine) ReadEvents(ctx context.Context, o EventOptions, fn func(EventMessage) error) error {
	filter, err := eventFilter(o.Filters)
	if err != nil {
		return err
	}
	ro := events.ReadOptions{Since: o.Since, Until: o.Until, Follow: true, Filter: filter, FromNow: o.Since.IsZero() && o.Until.IsZero()}
	return e.Events.Read(ctx, ro, func(ev events.Event) error { return fn(eventMessage(ev)) })
}
