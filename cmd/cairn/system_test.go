package main

import (
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/engine"
	"github.com/cairn-runtime/cairn/runtime"
)

// The summary of `system df` follows Docker's CLI: an image is active when
// a container uses it, and what it shares with others is not reclaimed
// with it; a running container's layer and a mounted volume are not
// reclaimable.
func TestDfSummary(t *testing.T) {
	running := &runtime.Container{State: runtime.State{Status: runtime.Running}}
	exited := &runtime.Container{State: runtime.State{Status: runtime.Exited}}
	du := &engine.DiskUsage{
		LayersSize: 3000,
		Images: []engine.ImageUsage{
			{Size: 2000, SharedSize: 1000, Containers: 2},
			{Size: 2000, SharedSize: 1000},
		},
		Containers: []engine.ContainerUsage{{Container: running, SizeRw: 100}, {Container: exited, SizeRw: 300}},
		Volumes:    []engine.VolumeUsage{{Volume: &runtime.Volume{}, Links: 1, Size: 10}, {Volume: &runtime.Volume{}, Size: 30}},
		BuildCache: []engine.CacheUsage{{Size: 500}, {Size: 700, Shared: true}},
	}
	var got []string
	for _, r := range dfSummary(du) {
		row := r.(dfRow)
		got = append(got, strings.Join([]string{row.Type, row.TotalCount, row.Active, row.Size, row.Reclaimable}, "|"))
	}
	want := []string{
		"Images|2|1|3kB|2kB (66%)",
		"Containers|2|1|400B|300B (75%)",
		"Local Volumes|2|1|40B|30B (75%)",
		"Build Cache|2|0|500B|500B",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
