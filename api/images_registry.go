package api

// Pull (POST /images/create?fromImage=), import (fromSrc=-) and push, with
// their progress as dockerd's JSON messages.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
)

// layerStream tells what happens to the layers of a pull or a push as
// dockerd does: a status message per change, the layer's short digest as
// its id, and while bytes move at most one message a layer every 100 ms.
type layerStream struct {
	js *jsonStream

	mu sync.Mutex
	// head, if not nil, waits for the first message after it (a pull's
	// "Pulling from"), so that a pull that fails before any layer (no such
	// image) is a plain error answer with its status, as dockerd's.
	head   *message
	status map[digest.Digest]string
	last   map[digest.Digest]time.Time
}

func newLayerStream(js *jsonStream) *layerStream {
	return &layerStream{js: js, status: map[digest.Digest]string{}, last: map[digest.Digest]time.Time{}}
}

// send sends m, after the held first line.
func (ls *layerStream) send(m message) {
	ls.mu.Lock()
	head := ls.head
	ls.head = nil
	ls.mu.Unlock()
	if head != nil {
		ls.js.send(*head)
	}
	ls.js.send(m) // a client that went away misses the rest
}

// event is the registry client's progress callback.
func (ls *layerStream) event(e image.LayerEvent) {
	ls.mu.Lock()
	changed := ls.status[e.Digest] != e.Status
	due := changed || time.Since(ls.last[e.Digest]) >= 100*time.Millisecond || e.Total > 0 && e.Current >= e.Total
	if due {
		ls.status[e.Digest] = e.Status
		ls.last[e.Digest] = time.Now()
	}
	ls.mu.Unlock()
	if !due {
		return
	}
	m := message{Message: jsonstream.Message{ID: shortDigest(e.Digest), Status: e.Status, Progress: &jsonstream.Progress{}}}
	if e.Status == "Downloading" || e.Status == "Pushing" {
		m.Progress = &jsonstream.Progress{Current: e.Current, Total: e.Total}
		m.ProgressBar = progressBar(e.Current, e.Total)
	}
	ls.send(m)
}

func (ls *layerStream) statusLine(text string) {
	ls.send(message{Message: jsonstream.Message{Status: text}})
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// progressBar is the bar dockerd renders in a message's "progress".
func progressBar(cur, total int64) string {
	if total <= 0 {
		return units.HumanSize(float64(cur))
	}
	const width = 50
	done := min(max(int(width*cur/total), 0), width)
	bar := strings.Repeat("=", done)
	if done < width {
		bar += ">" + strings.Repeat(" ", width-done-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, units.HumanSize(float64(cur)), units.HumanSize(float64(total)))
}

// pullStream is a pull's engine.PullReporter on a JSON stream: "Pulling
// from team/bb" (id: the tag), each layer's progress, then the digest and
// the status, as dockerd's.
type pullStream struct{ *layerStream }

func newPullStream(js *jsonStream) *pullStream { return &pullStream{newLayerStream(js)} }

func (p *pullStream) Start(what, path string) {
	p.mu.Lock()
	p.head = &message{Message: jsonstream.Message{ID: what, Status: "Pulling from " + path}}
	p.mu.Unlock()
}

func (p *pullStream) Layer(e image.LayerEvent) { p.event(e) }

func (p *pullStream) Done(res engine.Pulled, err error) {
	if err != nil {
		return
	}
	for _, l := range engine.PullSummary(res) {
		p.statusLine(l)
	}
}

// registryError gives the registry's errors dockerd's statuses: 404 for
// what is not there, 400 for a name or platform that does not parse.
func registryError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrRegistryNotFound), errors.Is(err, engine.ErrNoSuchLocalImage):
		return &apiError{status: http.StatusNotFound, err: err}
	case errors.Is(err, engine.ErrRegistryInvalid):
		return &apiError{status: http.StatusBadRequest, err: err}
	}
	return err
}

// createImage is POST /images/create: a pull (fromImage), or an import
// of the request's body (fromSrc=-).
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Has("fromSrc") {
		return s.importImage(w, r)
	}
	ref, err := pullRef(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	js := newJSONStream(w)
	// A pull goes on when its client hangs up: what it fetched is kept.
	_, err = s.e.Pull(detached(r.Context()), ref, engine.PullOptions{
		Platform: q.Get("platform"), Keychain: authHeader(r, ref), Report: newPullStream(js),
	})
	return js.finish(registryError(err))
}

// pullRef is the reference a pull names: fromImage with the tag or digest
// of tag, as the docker client splits them.
func pullRef(from, tag string) (string, error) {
	if from == "" {
		return "", badRequest("fromImage or fromSrc is required")
	}
	n, err := reference.ParseNormalizedNamed(from)
	if err != nil {
		return "", badRequest("invalid reference format: %q", from)
	}
	if tag == "" {
		if reference.IsNameOnly(n) {
			return "", &apiError{status: http.StatusNotImplemented, err: errors.New("pulling every tag of a repository (--all-tags) is not supported by cairn: name a tag")}
		}
		return n.String(), nil
	}
	base := reference.TrimNamed(n)
	if d, err := digest.Parse(tag); err == nil {
		c, err := reference.WithDigest(base, d)
		if err != nil {
			return "", badRequest("%v", err)
		}
		return c.String(), nil
	}
	c, err := reference.WithTag(base, tag)
	if err != nil {
		return "", badRequest("invalid tag %q: %v", tag, err)
	}
	return c.String(), nil
}

// importImage is POST /images/create?fromSrc=-&repo=&tag=&message=&changes=:
// a rootfs tarball in the body becomes an image; its ID is the stream's
// one message.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		return &apiError{status: http.StatusNotImplemented, err: fmt.Errorf("importing from %q is not supported by cairn: send the tarball in the request (fromSrc=-)", src)}
	}
	o := image.ImportOptions{Name: q.Get("repo"), Source: "-", Message: q.Get("message")}
	if o.Name != "" && q.Get("tag") != "" {
		o.Name += ":" + q.Get("tag")
	}
	if o.Name != "" {
		if _, err := image.ParseName(o.Name); err != nil {
			return badRequest("%v", err)
		}
	}
	change, err := engine.ConfigChanges(q["changes"])
	if err != nil {
		return badRequest("%v", err)
	}
	o.Change = change
	img, err := s.e.ImportImage(r.Context(), r.Body, o)
	if errors.Is(err, engine.ErrInstruction) {
		return badRequest("%v", err)
	} else if err != nil {
		return err
	}
	js := newJSONStream(w)
	js.Status("", img.ID.String())
	return js.finish(nil)
}

// pushImage is POST /images/NAME/push?tag=: "The push refers to
// repository [...]", each layer's progress, then "TAG: digest: D size: N"
// and the same as an aux message, as dockerd's.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) error {
	ref := name
	if t := r.URL.Query().Get("tag"); t != "" {
		ref += ":" + t
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return badRequest("invalid reference format: %q", ref)
	}
	comp, err := engine.ParseCompression("")
	if err != nil {
		return err
	}
	// As dockerd's, the first line comes at once: what fails after it (no
	// such image, refused credentials) is an error message of the stream.
	js := newJSONStream(w)
	js.Status("", "The push refers to repository ["+n.Name()+"]")
	ls := newLayerStream(js)
	p, err := s.e.Push(detached(r.Context()), ref, authHeader(r, ref), engine.PushOptions{Compression: comp, Progress: ls.event})
	if err != nil {
		return js.finish(registryError(err))
	}
	tag := "latest"
	if t, ok := reference.TagNameOnly(n).(reference.Tagged); ok {
		tag = t.Tag()
	}
	ls.statusLine(fmt.Sprintf("%s: digest: %s size: %d", tag, p.Digest, p.Size))
	js.Aux(struct {
		Tag    string
		Digest string
		Size   int64
	}{tag, p.Digest.String(), p.Size})
	return js.finish(nil)
}
