package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/urfave/cli/v2"
)

// stores are cairn's stores under one root: the one place that builds them.
type stores struct {
	root      string
	images    *image.Store
	snapshots *snapshot.Store
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
	return &stores{root: root, images: imgs, snapshots: snaps}, nil
}
