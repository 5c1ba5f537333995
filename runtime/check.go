package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/fsck"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/internal/names"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/moby/sys/mountinfo"
)

// Check verifies the containers and volumes: every directory of
// containers/ holds a record that parses and names snapshots that exist, an
// upper and a work directory; a record that says running has an owner (or
// its processes are gone, and it is reaped); a container that does not run
// holds no mount, libcontainer state, cgroup or network; no half-made
// volume is left. It never changes a record by itself: its repairs do.
func (s *Store) Check(ctx context.Context) []fsck.Problem {
	var out []fsck.Problem
	add := func(p fsck.Problem) { out = append(out, p) }
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return []fsck.Problem{{Path: s.dir, What: fmt.Sprintf("the containers cannot be listed: %v", err), Fix: "check the directory's permissions"}}
	}
	ids := map[string]bool{}
	for _, e := range entries {
		if e.Name() == "init" {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if !e.IsDir() || !names.ID(e.Name()) {
			add(fsck.Problem{Path: p, What: "an entry among the containers that is not a container", Fix: "remove it by hand if you know it"})
			continue
		}
		id := e.Name()
		if _, err := os.Stat(s.path(id, "container.json")); errors.Is(err, os.ErrNotExist) {
			if onlyLocks(p) {
				add(fsck.Problem{Path: p, What: "the lock files of a container removed meanwhile", Harmless: true, Repair: func(context.Context) error { return os.RemoveAll(p) }, Fix: "remove it"})
			} else {
				add(fsck.Problem{Path: p, What: "a container directory without its record (container.json)", Fix: "remove the directory by hand (its changes are in upper/)"})
			}
			continue
		}
		c, err := s.read(id)
		if err != nil {
			add(fsck.Problem{Path: s.path(id, "container.json"), What: fmt.Sprintf("the record of container %s cannot be read: %v", ShortID(id), errors.Unwrap(err)),
				Fix: "remove the directory " + p + " by hand (its changes are in upper/); until then ps, prune and rm fail"})
			continue
		}
		ids[id] = true
		out = append(out, s.checkContainer(ctx, c)...)
	}
	out = append(out, s.checkState(ids)...)
	out = append(out, s.checkVolumes()...)
	return out
}

// onlyLocks reports whether dir holds nothing but lock files.
func onlyLocks(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), "lock") || e.IsDir() {
			return false
		}
	}
	return true
}

func (s *Store) checkContainer(ctx context.Context, c *Container) []fsck.Problem {
	var out []fsck.Problem
	what := "container " + ShortID(c.ID)
	if c.Name != "" {
		what += " (" + c.Name + ")"
	}
	if c.Chain != "" {
		if _, err := s.snaps.Chain(c.Chain); err != nil {
			why := "a layer of it is missing"
			if !errors.Is(err, snapshot.ErrNotFound) {
				why = err.Error()
			}
			p := fsck.Problem{Path: filepath.Join(s.snaps.Root(), c.Chain.Encoded()), What: fmt.Sprintf("%s stands on snapshot %s: %s", what, c.Chain, why)}
			if img, lerr := s.images.Lookup(c.ImageID.String()); lerr == nil && img.Broken == "" {
				p.Repair = func(ctx context.Context) error { _, err := s.images.EnsureSnapshots(ctx, img); return err }
				p.Fix = "unpack the layers again from its image " + image.ShortID(c.ImageID)
			} else {
				p.Fix = "its image is gone too: remove the container (`cairn rm -f " + ShortID(c.ID) + "`)"
			}
			out = append(out, p)
		}
	}
	if _, err := s.images.Lookup(c.ImageID.String()); err != nil && c.ImageID != "" {
		out = append(out, fsck.Problem{Path: s.path(c.ID, "container.json"), What: fmt.Sprintf("%s: its image %s is gone: it can run, but not be committed", what, image.ShortID(c.ImageID)), Harmless: true,
			Fix: "load or pull the image again, or remove the container"})
	}
	for _, d := range []string{"upper", "work"} {
		p := s.path(c.ID, d)
		if st, err := os.Lstat(p); err != nil || !st.IsDir() {
			out = append(out, fsck.Problem{Path: p, What: what + ": its writable layer's " + d + " directory is missing",
				Repair: func(context.Context) error { return os.Mkdir(p, 0o755) },
				Fix:    "make it again, empty (the changes it held are lost)"})
		}
	}
	// Its owner, if it has one, is at work (starting it, running it,
	// removing it): the record is the truth meanwhile.
	owner, ok, err := lockfile.TryExclusive(s.path(c.ID, "owner.lock"))
	if err != nil || !ok {
		return out
	}
	owner.Unlock()
	if c.Live() || c.State.Status == Restarting {
		if s.alive(c.ID) {
			out = append(out, fsck.Problem{Path: s.path(c.ID, "owner.lock"), What: what + " runs on without an owner (its owner was killed): its exit code will be lost", Harmless: true,
				Fix: "stop it with `cairn stop " + ShortID(c.ID) + "` or `cairn rm -f`"})
		} else {
			out = append(out, fsck.Problem{Path: s.path(c.ID, "container.json"), What: what + " is recorded as " + string(c.State.Status) + ", but its owner and processes are gone",
				Repair: func(ctx context.Context) error { _, err := s.Get(ctx, c.ID); return err },
				Fix:    "record it as exited and remove what it left (mount, cgroups, network)"})
		}
		return out
	}
	var left []string
	if m, _ := mountinfo.Mounted(s.RootFS(c.ID)); m {
		left = append(left, "a mount at "+s.RootFS(c.ID))
	}
	if _, err := os.Lstat(filepath.Join(s.state, c.ID)); err == nil {
		left = append(left, "libcontainer state "+filepath.Join(s.state, c.ID))
	}
	for _, d := range cgroupDirs(containerCgroupsPath(c)) {
		left = append(left, "a cgroup "+d)
	}
	if s.nets != nil {
		if r, err := s.nets.State(c.ID); err == nil && r != nil {
			left = append(left, "its network (namespace, addresses, firewall lines)")
		}
	}
	if s.alive(c.ID) {
		// A start cut short after the process began, before the record
		// said so: nothing was told it runs.
		out = append(out, fsck.Problem{Path: s.path(c.ID), What: what + " is recorded as " + string(c.State.Status) + ", but a process of it runs (a start cut short)",
			Repair: func(ctx context.Context) error { return s.killStray(ctx, c) },
			Fix:    "kill it and remove what it holds, as `cairn rm -f` would"})
		return out
	}
	if len(left) > 0 {
		out = append(out, fsck.Problem{Path: s.path(c.ID), What: what + " is " + string(c.State.Status) + " but holds " + strings.Join(left, ", "),
			Repair: func(ctx context.Context) error { return s.cleanup(ctx, c) },
			Fix:    "remove them, as its next start or rm would"})
	}
	return out
}

// checkState reports libcontainer state of containers that are gone.
func (s *Store) checkState(ids map[string]bool) []fsck.Problem {
	var out []fsck.Problem
	entries, _ := os.ReadDir(s.state)
	for _, e := range entries {
		if ids[e.Name()] {
			continue
		}
		p := filepath.Join(s.state, e.Name())
		id := e.Name()
		out = append(out, fsck.Problem{Path: p, What: "libcontainer state of a container that is gone",
			Repair: func(ctx context.Context) error {
				return s.cleanup(ctx, &Container{ID: id})
			},
			Fix: "remove it, with its cgroups"})
	}
	return out
}

// checkVolumes reports half-made volumes and records that do not parse.
func (s *Store) checkVolumes() []fsck.Problem {
	var out []fsck.Problem
	entries, _ := os.ReadDir(s.volumes)
	for _, e := range entries {
		p := filepath.Join(s.volumes, e.Name())
		if strings.HasPrefix(e.Name(), ".new-") {
			out = append(out, fsck.Problem{Path: p, What: "a volume half-made by a process that was killed",
				Repair: func(context.Context) error { return os.RemoveAll(p) }, Fix: "remove it"})
			continue
		}
		if _, err := s.VolumeInspect(e.Name()); err != nil {
			out = append(out, fsck.Problem{Path: filepath.Join(p, "meta.json"), What: fmt.Sprintf("volume %s: %v", e.Name(), strings.TrimPrefix(err.Error(), "volume "+e.Name()+": ")),
				Fix: "`cairn volume rm " + e.Name() + "` removes it with its data; or write a meta.json of {} to keep it"})
		}
	}
	return out
}

// cgroupDirs are the directories of cgroup path p on this machine (one per
// v1 hierarchy, or the v2 one).
func cgroupDirs(p string) []string {
	var out []string
	rel := strings.TrimPrefix(p, "/")
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", rel)); len(dirs) > 0 {
		out = append(out, dirs...)
	}
	if st, err := os.Stat(filepath.Join("/sys/fs/cgroup", rel)); err == nil && st.IsDir() {
		out = append(out, filepath.Join("/sys/fs/cgroup", rel))
	}
	return out
}

// killStray kills the processes of container c, which has no owner and is
// recorded as not running, then removes what they held.
func (s *Store) killStray(ctx context.Context, c *Container) error {
	if err := s.signal(c.ID, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.alive(c.ID) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return s.cleanup(ctx, c)
}
