package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/fsck"
	"github.com/opencontainers/go-digest"
)

// Problem is one thing `system check` found (see fsck.Problem).
type Problem = fsck.Problem

// CheckOptions say how much Check does.
type CheckOptions struct {
	Quick  bool // sizes only: do not hash the blobs again
	Repair bool // mend what can be mended, then check again
}

// Repair is what one repair did.
type Repair struct {
	Problem Problem
	Err     error // nil: mended
}

// CheckReport is what Check found and, with Repair, did.
type CheckReport struct {
	Problems []Problem // what the check found
	Repairs  []Repair  // with Repair: each repair made, in order
	// After is what a second check found after the repairs (with Repair
	// only): what could not be mended.
	After []Problem
}

// Left is what the store still has wrong: what the check found, or with
// Repair what the second check found.
func (r CheckReport) Left() []Problem {
	if r.After != nil {
		return r.After
	}
	return r.Problems
}

// Errors is how many of the problems left are not harmless.
func (r CheckReport) Errors() int {
	n := 0
	for _, p := range r.Left() {
		if !p.Harmless {
			n++
		}
	}
	return n
}

// Sound reports whether the store is sound: no problem but harmless ones
// is left (after the repairs, when there were some).
func (r CheckReport) Sound() bool { return r.Errors() == 0 }

// Check verifies the store against its invariants, as `podman system
// check` does: the images (index, blobs, manifests, configs), the snapshots,
// the containers and volumes, what killed processes left (tmp/ and the
// mounts in it, a stopped container's mount, libcontainer state, cgroups) and what the host's network holds that no
// container owns. It holds the image store's lock exclusively while it
// looks, so that no writer is under way. With o.Repair it then mends what
// can be mended — the repairs take the locks they need — sweeps what is
// garbage, and checks again. It never removes a layer an image needs: an
// image that lost a blob is marked broken, for rmi to remove.
func (e *Engine) Check(ctx context.Context, o CheckOptions) (CheckReport, error) {
	probs, err := e.check(ctx, o.Quick)
	rep := CheckReport{Problems: probs}
	if err != nil || !o.Repair {
		return rep, err
	}
	sweep := false
	for _, p := range probs {
		switch {
		case p.Repair != nil:
			rep.Repairs = append(rep.Repairs, Repair{Problem: p, Err: p.Repair(ctx)})
		case p.Sweep:
			sweep = true
		}
	}
	if sweep {
		err := e.Prune(ctx)
		if nerr := e.Networks.Sweep(ctx); err == nil {
			err = nerr
		}
		for _, p := range probs {
			if p.Sweep {
				rep.Repairs = append(rep.Repairs, Repair{Problem: p, Err: err})
			}
		}
	}
	rep.After, err = e.check(ctx, o.Quick)
	if rep.After == nil {
		rep.After = []Problem{}
	}
	return rep, err
}

// check is one look at the whole store.
func (e *Engine) check(ctx context.Context, quick bool) ([]Problem, error) {
	release, err := e.Images.Exclusive(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: wait for the writers of %s: %w", e.Root, err)
	}
	defer release()

	ir := e.Images.Check(quick)
	out := ir.Problems
	keep := ir.Keep
	if ir.Broken {
		keep = nil // nothing is known to be unused
	} else if err := e.Containers.KeepSnapshots(keep); err != nil {
		keep = nil // a container's record does not read: its snapshots are unknown
	}
	snaps := e.Snapshots.Check(e.keepOrAll(keep))
	for i, p := range snaps {
		chain := digest.NewDigestFromEncoded(digest.SHA256, filepath.Base(p.Path))
		if imgs := ir.Needed[chain]; len(imgs) > 0 && p.Repair != nil {
			remove := p.Repair
			snaps[i].Repair = func(ctx context.Context) error {
				if err := remove(ctx); err != nil {
					return err
				}
				return e.ensureSnapshots(ctx, imgs)
			}
		}
	}
	out = append(out, snaps...)
	for chain, imgs := range ir.Needed {
		if e.Snapshots.Exists(chain) || hasPath(snaps, filepath.Join(e.Snapshots.Root(), chain.Encoded())) {
			continue
		}
		out = append(out, Problem{
			Path:   filepath.Join(e.Snapshots.Root(), chain.Encoded()),
			What:   fmt.Sprintf("%s lacks the snapshot of one of its layers (chain %s)", imageWhat(imgs[0]), chain),
			Repair: func(ctx context.Context) error { return e.ensureSnapshots(ctx, imgs) },
			Fix:    "unpack it again from the image's blobs",
		})
	}
	out = append(out, e.Containers.Check(ctx)...)
	return append(out, e.Networks.Check(ctx)...), nil
}

// keepOrAll is keep, or, when what is used is unknown (nil), every snapshot.
func (e *Engine) keepOrAll(keep map[digest.Digest]bool) map[digest.Digest]bool {
	if keep != nil {
		return keep
	}
	all := map[digest.Digest]bool{}
	if ids, err := e.Snapshots.List(); err == nil {
		for _, id := range ids {
			all[id] = true
		}
	}
	return all
}

func hasPath(ps []Problem, path string) bool {
	for _, p := range ps {
		if p.Path == path {
			return true
		}
	}
	return false
}

func imageWhat(img image.Image) string {
	if len(img.Names) > 0 {
		return "image " + image.FamiliarName(img.Names[0])
	}
	return "image " + image.ShortID(img.ID)
}

// ensureSnapshots unpacks again what imgs lack.
func (e *Engine) ensureSnapshots(ctx context.Context, imgs []image.Image) error {
	var errs []error
	for _, img := range imgs {
		if _, err := e.Images.EnsureSnapshots(ctx, img); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
