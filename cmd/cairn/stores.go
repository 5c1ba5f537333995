package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"
)

// stores are cairn's stores under one root: the one place that builds them.
type stores struct {
	root       string
	images     *image.Store
	snapshots  *snapshot.Store
	containers *runtime.Store
}

// runDir is where the runtime state of the store at root lives: on /run, a
// tmpfs, so that it does not outlive a reboot; one directory per store root.
func runDir(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join("/run/cairn", hex.EncodeToString(sum[:8]))
}

func openStores(cliContext *cli.Context) (*stores, error) {
	root, err := filepath.Abs(cliContext.String("root"))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*stores, error) {
		return nil, &statusError{code: exitCairn, err: fmt.Errorf("open store %s: %w", root, err)}
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fail(err)
	}
	tmp := filepath.Join(root, "tmp")
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"), tmp)
	if err != nil {
		return fail(err)
	}
	imgs, err := image.Open(filepath.Join(root, "images"), tmp, filepath.Join(root, "locks"), snaps)
	if err != nil {
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	ctrs, err := runtime.Open(runtime.Options{
		Root: root, Run: runDir(root), Tmp: tmp, Images: imgs, Snapshots: snaps,
		Monitor: func(id string) *exec.Cmd {
			return exec.Command(self, "--root", root, monitorCommandName, id)
		},
	})
	if err != nil {
		return fail(err)
	}
	return &stores{root: root, images: imgs, snapshots: snaps, containers: ctrs}, nil
}

// prune removes the blobs and snapshots no image and no container uses any more.
func (s *stores) prune(ctx context.Context) error {
	return s.images.Prune(ctx, func(ctx context.Context, chains map[digest.Digest]bool) error {
		if err := s.containers.KeepSnapshots(chains); err != nil {
			return err
		}
		_, err := s.snapshots.Prune(ctx, chains)
		return err
	})
}

// imageInUse names a container that uses an image, for rmi.
func (s *stores) imageInUse(img image.Image) string { return s.containers.UsingImage(img.ID) }
