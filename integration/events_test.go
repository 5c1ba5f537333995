package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// unixTime is t as --since and --until take Unix seconds.
func unixTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// eventLine is Docker's default line of an event.
var eventLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (\w+) (\S+) (\S+)(?: \((.*)\))?$`)

type eventOf struct{ typ, action, id, attrs string }

// parseEvents reads default event lines.
func parseEvents(t *testing.T, out string) []eventOf {
	t.Helper()
	var es []eventOf
	for _, l := range lines(out) {
		m := eventLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not an event line in Docker's format: %q", l)
		}
		es = append(es, eventOf{m[2], m[3], m[4], m[5]})
	}
	return es
}

func actionsOf(es []eventOf) string {
	var a []string
	for _, e := range es {
		a = append(a, e.typ+" "+e.action)
	}
	return strings.Join(a, ", ")
}

// inOrder reports whether the actions want are among es's, in this order.
func inOrder(es []eventOf, want ...string) bool {
	i := 0
	for _, e := range es {
		if i < len(want) && e.action == want[i] {
			i++
		}
	}
	return i == len(want)
}

// A container's life is in the journal in order — create, start, die
// with its exit code, destroy — in Docker's line format.
func TestEventsContainerLifecycle(t *testing.T) {
	s := newStore(t)
	s.busybox()
	since := time.Now()
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "web", "--label", "tier=front", "busybox", "sleep", "1000"))
	s.ok("stop", "-t", "1", "web")
	s.ok("rm", "web")
	until := time.Now()
	es := parseEvents(t, s.ok("events", "--since", unixTime(since), "--until", unixTime(until), "--filter", "container="+id))
	want := []string{"create", "start", "die", "destroy"}
	i := 0
	for _, e := range es {
		if e.typ != "container" || e.id != id {
			t.Fatalf("an event of something else: %+v", e)
		}
		if i < len(want) && e.action == want[i] {
			if e.action == "die" && !regexp.MustCompile(`(^|, )exitCode=\d+(, |$)`).MatchString(e.attrs) {
				t.Errorf("die without its exit code: %q", e.attrs)
			}
			if !strings.Contains(e.attrs, "image=busybox, name=web, tier=front") {
				t.Errorf("%s: attributes %q, want the image, the name and the labels, sorted", e.action, e.attrs)
			}
			i++
		}
	}
	if i != len(want) {
		t.Fatalf("events %s: want %v in this order", actionsOf(es), want)
	}
}

// The lines of cairn's events are Docker's, and so are their fields in
// --format '{{json .}}' and the templates that read them.
func TestEventsMatchDocker(t *testing.T) {
	docker := testutil.Docker(t)
	img := dockerBusybox(t, docker)
	dname := dockerName(t, docker, "events")
	s := newStore(t)
	s.busybox()

	dsince := time.Now()
	docker.Run(t, "create", "--network", "none", "--name", dname, img, "true")
	docker.Run(t, "rm", dname)
	duntil := time.Now()
	csince := time.Now()
	s.ok("create", "--name", "cairn-ev-name", "busybox", "true")
	s.ok("rm", "cairn-ev-name")
	cuntil := time.Now()

	dargs := []string{"events", "--since", unixTime(dsince), "--until", unixTime(duntil), "--filter", "container=" + dname}
	cargs := []string{"events", "--since", unixTime(csince), "--until", unixTime(cuntil), "--filter", "container=cairn-ev-name"}
	de, ce := parseEvents(t, docker.Run(t, dargs...)), parseEvents(t, s.ok(cargs...))
	if actionsOf(de) != actionsOf(ce) {
		t.Fatalf("create and rm:\ndocker %s\ncairn  %s", actionsOf(de), actionsOf(ce))
	}
	for i := range de {
		dk := regexp.MustCompile(`=[^,]*`).ReplaceAllString(de[i].attrs, "")
		ck := regexp.MustCompile(`=[^,]*`).ReplaceAllString(ce[i].attrs, "")
		if dk != ck {
			t.Errorf("%s: attribute names differ: docker %q, cairn %q", de[i].action, dk, ck)
		}
	}
	dj := jsonKeys(t, lines(docker.Run(t, append(dargs, "--format", "{{json .}}")...))[0])
	cj := jsonKeys(t, lines(s.ok(append(cargs, "--format", "{{json .}}")...))[0])
	if strings.Join(dj, ",") != strings.Join(cj, ",") {
		t.Errorf("--format json fields differ:\ndocker %v\ncairn  %v", dj, cj)
	}
	tmpl := "{{.Type}} {{.Action}} {{.Status}} {{.Actor.Attributes.name}} {{len .ID}} {{.From}} {{.Scope}}"
	dt := strings.ReplaceAll(lines(docker.Run(t, append(dargs, "--format", tmpl)...))[0], dname, "NAME")
	ct := strings.ReplaceAll(lines(s.ok(append(cargs, "--format", tmpl)...))[0], "cairn-ev-name", "NAME")
	dt, ct = strings.ReplaceAll(dt, img, "IMAGE"), strings.ReplaceAll(ct, "busybox", "IMAGE")
	if dt != ct {
		t.Errorf("--format %q:\ndocker %q\ncairn  %q", tmpl, dt, ct)
	}
	if got := lines(s.ok(append(cargs, "--format", "json")...)); len(got) != len(ce) || jsonKeys(t, got[0]) == nil {
		t.Errorf("--format json: %q", got)
	}
}

// --since and --until bound what is read, as Unix seconds, times and
// durations.
func TestEventsSinceUntil(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("create", "--name", "a", "busybox", "true")
	t1 := time.Now()
	s.ok("create", "--name", "b", "busybox", "true")
	t2 := time.Now()
	s.ok("create", "--name", "c", "busybox", "true")
	t3 := time.Now()
	names := func(args ...string) string {
		var out []string
		for _, l := range lines(s.ok(append([]string{"events", "--filter", "type=container", "--format", "{{.Actor.Attributes.name}}"}, args...)...)) {
			out = append(out, l)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--until", unixTime(t3)}, "a,b,c"},
		{[]string{"--since", unixTime(t1), "--until", unixTime(t2)}, "b"},
		{[]string{"--since", unixTime(t2), "--until", unixTime(t3)}, "c"},
		{[]string{"--until", unixTime(t1)}, "a"},
		{[]string{"--since", t1.UTC().Format(time.RFC3339Nano), "--until", t2.UTC().Format(time.RFC3339Nano)}, "b"},
		{[]string{"--since", "10m", "--until", unixTime(t3)}, "a,b,c"},
		{[]string{"--since", unixTime(t3), "--until", unixTime(time.Now())}, ""},
	} {
		if got := names(c.args...); got != c.want {
			t.Errorf("events %v: %q, want %q", c.args, got, c.want)
		}
	}
	// An --until to come: events waits for it, then ends.
	start := time.Now()
	s.ok("events", "--since", unixTime(t3), "--until", unixTime(time.Now().Add(1500*time.Millisecond)))
	if d := time.Since(start); d < time.Second || d > 20*time.Second {
		t.Errorf("events --until 1.5s from now took %v", d)
	}
	s.fails(125, "--since", "events", "--since", "yesterday")
	s.fails(125, "--until", "events", "--until", "2026-13-45")
}

// --filter selects by type, event, container, image and label; the values
// of one key are alternatives, keys all apply.
func TestEventsFilter(t *testing.T) {
	s := newStore(t)
	s.busybox()
	since := time.Now()
	a := strings.TrimSpace(s.ok("create", "--name", "alpha", "--label", "tier=front", "busybox", "true"))
	s.ok("create", "--name", "beta", "busybox", "true")
	s.ok("rm", "beta")
	until := time.Now()
	got := func(filters ...string) string {
		args := []string{"events", "--since", unixTime(since), "--until", unixTime(until), "--format", "{{.Actor.Attributes.name}}:{{.Action}}"}
		for _, f := range filters {
			args = append(args, "--filter", f)
		}
		return strings.Join(lines(s.ok(args...)), ",")
	}
	for _, c := range []struct {
		filters []string
		want    string
	}{
		{nil, "alpha:create,beta:create,beta:destroy"},
		{[]string{"container=alpha"}, "alpha:create"},
		{[]string{"container=" + a[:12]}, "alpha:create"},
		{[]string{"container=alpha", "container=beta"}, "alpha:create,beta:create,beta:destroy"},
		{[]string{"event=destroy"}, "beta:destroy"},
		{[]string{"event=create", "container=beta"}, "beta:create"},
		{[]string{"type=container", "label=tier=front"}, "alpha:create"},
		{[]string{"label=tier"}, "alpha:create"},
		{[]string{"image=busybox"}, "alpha:create,beta:create,beta:destroy"},
		{[]string{"image=busybox:latest"}, ""},
		{[]string{"type=image"}, ""},
		{[]string{"network=alpha"}, ""},
		{[]string{"volume=alpha"}, ""},
	} {
		if g := got(c.filters...); g != c.want {
			t.Errorf("--filter %v: %q, want %q", c.filters, g, c.want)
		}
	}
	s.fails(1, "invalid filter", "events", "--filter", "colour=red", "--until", unixTime(until))
	s.fails(125, "bad format of filter", "events", "--filter", "type", "--until", unixTime(until))
}

// events follows the journal: what another process does after it began
// comes out at once, and it runs until it is stopped. Without --since
// (and --until), as Docker's, it shows only what comes after it began.
func TestEventsFollow(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("create", "--name", "before", "busybox", "true")
	bg := s.start("events", "--filter", "type=container")
	// When it has begun is when it shows an event: probes until it does.
	probes := 0
	waitFor(t, 30*time.Second, "events to show a probe", func() bool {
		if strings.Contains(bg.stdout.String(), "name=probe") {
			return true
		}
		if probes < 60 {
			s.ok("create", "--name", fmt.Sprint("probe", probes), "busybox", "true")
			probes++
		}
		time.Sleep(200 * time.Millisecond)
		return false
	})
	id := strings.TrimSpace(s.ok("create", "--name", "later", "busybox", "true"))
	s.ok("start", "-a", "later")
	s.ok("rm", "later")
	waitFor(t, 20*time.Second, "the destroy event", func() bool { return strings.Contains(bg.stdout.String(), "container destroy "+id) })
	select {
	case <-bg.done:
		t.Fatalf("events ended: %s", bg.stderr)
	default:
	}
	var later []eventOf
	for _, e := range parseEvents(t, bg.stdout.String()) {
		if strings.Contains(e.attrs, "name=before") {
			t.Errorf("an event from before it began: %+v", e)
		}
		if e.id == id {
			later = append(later, e)
		}
	}
	if !inOrder(later, "create", "start", "die", "destroy") {
		t.Fatalf("followed: %s", actionsOf(later))
	}
}
