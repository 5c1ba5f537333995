package events

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func ev(typ, action, id string, attrs ...string) Event {
	a := map[string]string{}
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	return Event{Type: typ, Action: action, Actor: Actor{ID: id, Attributes: a}}
}

func readAll(t *testing.T, j *Journal, o ReadOptions) []Event {
	t.Helper()
	var out []Event
	if err := j.Read(context.Background(), o, func(e Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func actions(es []Event) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Action)
	}
	return strings.Join(s, ",")
}

func TestReadSinceUntil(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"), 0)
	base := time.Unix(1_800_000_000, 0)
	for i, a := range []string{"create", "start", "die", "destroy"} {
		e := ev(Container, a, "c1")
		at := base.Add(time.Duration(i) * time.Second)
		e.Time, e.TimeNano = at.Unix(), at.UnixNano()
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := actions(readAll(t, j, ReadOptions{})); got != "create,start,die,destroy" {
		t.Fatalf("all: %s", got)
	}
	got := actions(readAll(t, j, ReadOptions{Since: base.Add(time.Second), Until: base.Add(2 * time.Second)}))
	if got != "start,die" {
		t.Fatalf("since/until (both inclusive): %s", got)
	}
}

func TestReadMissingJournal(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"), 0)
	if got := readAll(t, j, ReadOptions{}); len(got) != 0 {
		t.Fatalf("%v", got)
	}
}

// Follow gives what is appended after it began, across a rotation, and
// every event once.
func TestFollowAcrossRotation(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"), 2000)
	j.Append(ev(Container, "before", "c"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- j.Read(ctx, ReadOptions{Follow: true}, func(e Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e.Action)
			if len(got) == 41 {
				cancel()
			}
			return nil
		})
	}()
	for i := 0; i < 40; i++ {
		if err := j.Append(ev(Container, fmt.Sprint(i), "c", "name", strings.Repeat("x", 100))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != context.Canceled || len(got) != 41 {
		t.Fatalf("followed %d events: %v", len(got), got)
	}
	seen := map[string]bool{}
	for _, a := range got {
		if seen[a] {
			t.Fatalf("%s twice: %v", a, got)
		}
		seen[a] = true
	}
}

// FromNow gives only what comes after Read began, as `docker events`
// without --since.
func TestFollowFromNow(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"), 0)
	j.Append(ev(Container, "old", "c"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- j.Read(ctx, ReadOptions{Follow: true, FromNow: true}, func(e Event) error { got <- e.Action; return nil })
	}()
	// Appended until Read has begun: the first one it gives is new.
	for i := 0; ; i++ {
		j.Append(ev(Container, fmt.Sprint("new", i), "c"))
		select {
		case a := <-got:
			if !strings.HasPrefix(a, "new") {
				t.Fatalf("read %q", a)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("nothing followed")
		}
	}
}

func TestFollowUntil(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"), 0)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.Read(ctx, ReadOptions{Follow: true, Until: start.Add(300 * time.Millisecond)}, func(Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || ctx.Err() != nil {
		t.Fatalf("follow with until returned after %v (ctx %v)", d, ctx.Err())
	}
}

func TestFilter(t *testing.T) {
	web := ev(Container, "start", "aaaa1111", "name", "web", "image", "busybox:1", "tier", "front")
	db := ev(Container, "die", "bbbb2222", "name", "db", "image", "postgres", "exitCode", "0")
	img := ev(Image, "tag", "sha256:cccc", "name", "busybox:1")
	net := ev(Network, "connect", "dddd", "name", "front", "container", "aaaa1111")
	vol := ev(Volume, "create", "data", "driver", "local")
	health := ev(Container, "health_status: healthy", "aaaa1111", "name", "web")
	all := []Event{web, db, img, net, vol, health}
	for _, c := range []struct {
		filter []string
		want   string
	}{
		{nil, "start,die,tag,connect,create,health_status: healthy"},
		{[]string{"type=container"}, "start,die,health_status: healthy"},
		{[]string{"type=image", "type=volume"}, "tag,create"},
		{[]string{"event=start", "event=die"}, "start,die"},
		{[]string{"event=health_status"}, "health_status: healthy"},
		{[]string{"container=web"}, "start,health_status: healthy"},
		{[]string{"container=bbbb"}, "die"},
		{[]string{"container=web", "event=die"}, ""},
		{[]string{"image=busybox"}, "start,tag"},
		{[]string{"image=busybox:1", "type=image"}, "tag"},
		{[]string{"label=tier=front"}, "start"},
		{[]string{"label=tier"}, "start"},
		{[]string{"label=tier", "label=name=db"}, ""},
		{[]string{"network=front"}, "connect"},
		{[]string{"volume=data"}, "create"},
		{[]string{"scope=local"}, "start,die,tag,connect,create,health_status: healthy"},
	} {
		f, err := ParseFilter(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		var got []Event
		for _, e := range all {
			if f.Match(e) {
				got = append(got, e)
			}
		}
		if actions(got) != c.want {
			t.Errorf("%v: got %q, want %q", c.filter, actions(got), c.want)
		}
	}
	for _, bad := range []string{"foo=bar", "type"} {
		if _, err := ParseFilter([]string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"1800000000", time.Unix(1800000000, 0)},
		{"1800000000.5", time.Unix(1800000000, 500000000)},
		{"0", time.Unix(0, 0)},
		{"2026-12-02", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)},
		{"2026-12-02T09", time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)},
		{"2026-12-02T09:30", time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)},
		{"2026-12-02T09:30:01", time.Date(2026, 12, 2, 9, 30, 1, 0, time.UTC)},
		{"2026-12-02T09:30:01.25Z", time.Date(2026, 12, 2, 9, 30, 1, 250000000, time.UTC)},
		{"2026-12-02T09:30:01+01:00", time.Date(2026, 12, 2, 8, 30, 1, 0, time.UTC)},
	} {
		got, err := ParseTime(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"yesterday", "2026-13-45", "12x"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
