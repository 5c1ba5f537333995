package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/events"
)

// An event's line is Docker's: the time with nine digits of nanoseconds,
// then type, action, actor and its attributes sorted by name.
func TestWriteEvent(t *testing.T) {
	var b strings.Builder
	at := time.Date(2026, 12, 2, 10, 0, 0, 5, time.Local)
	e := engine.EventMessage{Type: "container", Action: "die", Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "exitCode": "0", "image": "busybox"}},
		Time: at.Unix(), TimeNano: at.UnixNano()}
	writeEvent(&b, e)
	want := at.Format("2006-01-02T15:04:05") + ".000000005" + at.Format("Z07:00") + " container die abc (exitCode=0, image=busybox, name=web)\n"
	if b.String() != want {
		t.Fatalf("%q, want %q", b.String(), want)
	}
}
