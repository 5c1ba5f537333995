package engine

import (
	"context"

	"github.com/cairn-runtime/cairn/runtime"
)

// VolumeFilters are the filters of the volumes' list, as Docker's daemon.
var VolumeFilters = []string{"dangling", "driver", "label", "name"}

// ListVolumes returns the volumes that the filters let through (`docker
// volume ls --filter`): dangling=true takes those no container, running or
// not, mounts; name is a part of the name (Docker's Match), label every
// KEY[=VALUE] given.
func (e *Engine) ListVolumes(ctx context.Context, f Filters) ([]*runtime.Volume, error) {
	if err := f.Validate(VolumeFilters...); err != nil {
		return nil, err
	}
	dangling, err := f.boolValue("dangling", false)
	if err != nil {
		return nil, err
	}
	vols, err := e.Containers.Volumes()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	if f.Contains("dangling") {
		ctrs, err := e.Containers.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range ctrs {
			for _, m := range c.Mounts {
				if m.Type == "volume" {
					used[m.Name] = true
				}
			}
		}
	}
	out := []*runtime.Volume{}
	for _, v := range vols {
		if !f.match("name", v.Name) || !f.exactMatch("driver", v.Driver) || !f.matchKV("label", v.Labels) {
			continue
		}
		if f.Contains("dangling") && used[v.Name] == dangling {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}
