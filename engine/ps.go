package engine

// Listing containers as `docker ps` does: filters, summaries, sizes, the
// STATUS column.

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"
)

// ContainerSummary is a container as `docker ps` lists it.
type ContainerSummary struct {
	*runtime.Container
	Status   string        // "Up 2 minutes", "Exited (0) 3 seconds ago", "Created"
	Ports    string        // "0.0.0.0:8888->8080/tcp, 9000/tcp"
	Bindings []PortBinding // the ports it publishes now
	Networks []string
	// Image is the image as `docker ps` shows it: the name the container
	// was made from, or its image's ID when that name no longer names it.
	Image string
	// SizeRw is the size of its writable layer, SizeRootFs that and the
	// size of its image's layers (with ListOptions.Size only).
	SizeRw, SizeRootFs int64
}

// ListOptions say which containers ContainerSummaries lists.
type ListOptions struct {
	All    bool // stopped ones too (default: running and paused only)
	Latest bool // only the newest, whatever its state (-l: Limit 1)
	// Limit, if above 0, lists the Limit newest, whatever their state (-n).
	Limit int
	// Filters are `docker ps --filter`'s (see PsFilters for the keys).
	Filters Filters
	// Size computes SizeRw and SizeRootFs (-s).
	Size bool
}

// PsFilters are the keys `docker ps --filter` accepts.
var PsFilters = []string{"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"}

// psStates are the values of the status filter, as Docker's.
var psStates = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}

// psFilter is a ps's filters, checked and resolved once.
type psFilter struct {
	f              Filters
	all            bool
	exited         []int
	before, since  string // container IDs
	ancestors      map[string]bool
	hasAncestor    bool
	publish        map[string]bool
	expose         map[string]bool
	networkIDs     map[string]string // network name → ID
	excludeAllTask bool
}

func (e *Engine) psFilter(f Filters, recs []*runtime.Container) (*psFilter, error) {
	if f == nil {
		f = Filters{}
	}
	if err := f.Validate(PsFilters...); err != nil {
		return nil, err
	}
	p := &psFilter{f: f}
	for _, v := range f.Get("exited") {
		code, err := strconv.Atoi(v)
		if err != nil {
			return nil, invalidFilter("%v", err)
		}
		p.exited = append(p.exited, code)
	}
	for _, v := range f.Get("status") {
		if !slices.Contains(psStates, v) {
			return nil, invalidFilter("Invalid filter 'status=%s'", v)
		}
		p.all = true
	}
	for _, v := range f.Get("health") {
		if !slices.Contains([]string{"starting", "healthy", "unhealthy", "none"}, v) {
			return nil, invalidFilter("Unrecognised filter value for health: %s", v)
		}
	}
	isTask, err := f.boolValue("is-task", false)
	if err != nil {
		return nil, err
	}
	p.excludeAllTask = f.Contains("is-task") && isTask // cairn has no swarm tasks
	find := func(ref string) (string, error) {
		// As Docker's: a name (with or without its "/") or a full ID.
		name := strings.TrimPrefix(ref, "/")
		for _, c := range recs {
			if c.ID == ref || c.Name == name {
				return c.ID, nil
			}
		}
		return "", invalidFilter("no such container %s", ref)
	}
	for _, v := range f.Get("before") {
		if p.before, err = find(v); err != nil {
			return nil, err
		}
	}
	for _, v := range f.Get("since") {
		if p.since, err = find(v); err != nil {
			return nil, err
		}
	}
	if f.Contains("ancestor") {
		p.hasAncestor, p.ancestors = true, map[string]bool{}
		imgs, err := e.Images.List()
		if err != nil {
			return nil, err
		}
		for _, v := range f.Get("ancestor") {
			if img, err := image.LookupIn(imgs, v); err == nil {
				p.ancestors[img.ID.String()] = true // an image unknown matches nothing, as in Docker
			}
		}
	}
	ports := func(key string) (map[string]bool, error) {
		if !f.Contains(key) {
			return nil, nil
		}
		set := map[string]bool{}
		for _, v := range f.Get(key) {
			if strings.Contains(v, ":") {
				return nil, invalidFilter("filter for '%s' should not contain ':': %s", key, v)
			}
			proto, port := nat.SplitProtoPort(v)
			start, end, err := parsePortRange(port)
			if err != nil {
				return nil, invalidFilter("error while looking up for %s %s: %v", key, v, err)
			}
			for i := start; i <= end; i++ {
				set[fmt.Sprintf("%d/%s", i, proto)] = true
			}
		}
		return set, nil
	}
	if p.publish, err = ports("publish"); err != nil {
		return nil, err
	}
	if p.expose, err = ports("expose"); err != nil {
		return nil, err
	}
	if f.Contains("network") {
		p.networkIDs = map[string]string{}
		if nets, err := e.Networks.List(); err == nil {
			for _, n := range nets {
				p.networkIDs[n.Name] = n.ID
			}
		}
	}
	return p, nil
}

// parsePortRange is Docker 20.10's nat.ParsePortRange, with its words:
// "80" or "8000-8080".
func parsePortRange(ports string) (uint64, uint64, error) {
	if ports == "" {
		return 0, 0, fmt.Errorf("Empty string specified for ports.")
	}
	first, last, isRange := strings.Cut(ports, "-")
	start, err := strconv.ParseUint(first, 10, 16)
	if err != nil || !isRange {
		return start, start, err
	}
	end, err := strconv.ParseUint(last, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, fmt.Errorf("Invalid range specified for the Port: %s", ports)
	}
	return start, end, nil
}

// includes reports whether c passes the filters that are not about its
// place in the list (before, since, the limit).
func (e *Engine) includes(p *psFilter, c *runtime.Container, nets []string) bool {
	f := p.f
	if !f.match("name", "/"+c.Name) && !f.match("name", c.Name) {
		return false
	}
	if !f.fuzzyMatch("id", c.ID) || p.excludeAllTask {
		return false
	}
	// isolation is Windows's: on Linux, Docker's daemon lets every
	// container through it.
	if !f.matchKV("label", c.Config.Labels) {
		return false
	}
	if len(p.exited) > 0 {
		if c.Up() || c.State.StartedAt.IsZero() || !slices.Contains(p.exited, c.State.ExitCode) {
			return false
		}
	}
	state := c.State.Status
	if c.State.Restarting {
		state = "restarting"
	}
	if !f.match("status", state) {
		return false
	}
	if f.Contains("health") {
		h := "none" // no health check
		if c.State.Health != nil {
			h = c.State.Health.Status
		}
		if !f.exactMatch("health", h) {
			return false
		}
	}
	if f.Contains("volume") {
		found := false
		for _, m := range c.Mounts {
			name := m.Name
			if name == "" {
				name = m.Source
			}
			if slices.Contains(f.Get("volume"), m.Destination) || slices.Contains(f.Get("volume"), name) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	if p.hasAncestor && !p.ancestors[c.ImageID.String()] {
		return false
	}
	if f.Contains("network") {
		found := false
		for _, v := range f.Get("network") {
			for _, n := range nets {
				if n == v || p.networkIDs[n] != "" && strings.HasPrefix(p.networkIDs[n], v) {
					found = true
				}
			}
		}
		if !found {
			return false
		}
	}
	if p.publish != nil || p.expose != nil {
		found := false
		if c.Live() {
			if rec, _ := e.Networks.State(c.ID); rec != nil {
				for _, b := range rec.Ports {
					if p.publish[fmt.Sprintf("%d/%s", b.HostPort, b.Proto)] || p.expose[b.Port()] {
						found = true
					}
				}
			}
			for port := range c.Config.ExposedPorts {
				if p.expose[port] {
					found = true
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ContainerSummaries lists containers, newest first, as `docker ps` does:
// the filters as Docker's daemon applies them, in its order (before and
// since by their place in the list, the limit before exited and status).
func (e *Engine) ContainerSummaries(ctx context.Context, o ListOptions) ([]ContainerSummary, error) {
	// The images (for the IMAGE column) are read meanwhile.
	type listed struct {
		imgs []image.Image
		err  error
	}
	images := make(chan listed, 1)
	go func() {
		imgs, err := e.Images.List()
		images <- listed{imgs, err}
	}()
	list, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	p, err := e.psFilter(o.Filters, list)
	if err != nil {
		return nil, err
	}
	limit := o.Limit
	if o.Latest {
		limit = 1
	}
	all := o.All || p.all
	var imgs []image.Image
	if r := <-images; len(list) > 0 {
		if imgs, err = r.imgs, r.err; err != nil {
			return nil, err
		}
	}
	catalog := image.NewCatalog(imgs)
	before := p.before
	var out []ContainerSummary
	for _, c := range list {
		if before != "" {
			if c.ID == before {
				before = ""
			}
			continue
		}
		if p.since != "" && c.ID == p.since {
			break
		}
		if !c.Up() && !all && limit <= 0 {
			continue
		}
		nets := slices.Sorted(maps.Keys(c.Networks))
		if len(nets) == 0 {
			nets = []string{c.Host.NetworkMode}
		}
		if limit > 0 && len(out) == limit {
			break
		}
		if !e.includes(p, c, nets) {
			continue
		}
		bindings, _ := e.PortBindings(c)
		s := ContainerSummary{Container: c, Status: Status(c, time.Now()), Bindings: bindings, Ports: portsColumn(c, bindings), Networks: nets, Image: imageColumn(catalog, c)}
		if o.Size {
			s.SizeRw, s.SizeRootFs = e.ContainerSize(c)
		}
		out = append(out, s)
	}
	return out, nil
}

// imageColumn is the image `docker ps` shows for c: the name it was made
// from while that name still names its image, else the image's ID.
func imageColumn(imgs *image.Catalog, c *runtime.Container) string {
	name := c.Config.Image
	if name == "" || name == c.ImageID.String() {
		return c.ImageID.String()
	}
	img, err := imgs.Lookup(name)
	if err != nil || img.ID != c.ImageID {
		return c.ImageID.String()
	}
	return name
}

// ContainerSize is the size of c's writable layer (the files of its upper
// directory, a hard link counted once), and that with the size of the
// layers it stands on: Docker's SizeRw and SizeRootFs.
func (e *Engine) ContainerSize(c *runtime.Container) (rw, rootfs int64) {
	rw = dirSize(e.Containers.Upper(c.ID))
	rootfs = rw
	if c.Chain != "" {
		if chain, err := e.Snapshots.Chain(c.Chain); err == nil {
			for _, info := range chain {
				rootfs += info.Size
			}
		}
	}
	return rw, rootfs
}

// dirSize is the size of the files under dir, as Docker's directory.Size:
// every entry but directories, a hard link once.
func dirSize(dir string) int64 {
	var total int64
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += info.Size()
		return nil
	})
	return total
}

// Status is the STATUS `docker ps` shows of c at time now.
func Status(c *runtime.Container, now time.Time) string {
	switch {
	case c.State.Status == runtime.Paused:
		return "Up " + units.HumanDuration(now.Sub(c.State.StartedAt)) + " (Paused)"
	case c.State.Status == runtime.Restarting || c.State.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	case c.State.Status == runtime.Running:
		up := "Up " + units.HumanDuration(now.Sub(c.State.StartedAt))
		if h := c.State.Health; h != nil {
			if h.Status == "starting" {
				return up + " (health: starting)"
			}
			return up + " (" + h.Status + ")"
		}
		return up
	case c.State.Status == runtime.Exited:
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	}
	return "Created"
}

// CommandLine is the COMMAND of a container as Docker's daemon makes it:
// its path, then its arguments, each with a space quoted in '…'.
func CommandLine(c *runtime.Container) string {
	words := []string{c.Path}
	for _, a := range c.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}
