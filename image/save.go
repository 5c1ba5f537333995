package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SaveItem is an image to save, with the names to save it under.
type SaveItem struct {
	Image Image
	Names []string // full names; none saves the image untagged
}

// Save writes images as one archive that both `docker load` (manifest.json) and
// OCI tools (index.json, oci-layout, blobs/) read: the layout Docker 25 writes.
func (s *Store) Save(ctx context.Context, w io.Writer, items []SaveItem) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	var idx ocispec.Index
	type dockerItem struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	dockerManifest := []dockerItem{}

	epoch := time.Unix(0, 0)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	blob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := s.OpenBlob(d)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobEntry(d), Mode: 0o644, Size: st.Size(), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(tw, f, make([]byte, copyBuffer)); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
		written[d] = true
		return nil
	}
	file := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}

	for _, it := range items {
		m, err := s.Manifest(it.Image.Manifest.Digest)
		if err != nil {
			return err
		}
		di := dockerItem{Config: blobEntry(m.Config.Digest), RepoTags: []string{}}
		for _, l := range m.Layers {
			if err := blob(l.Digest); err != nil {
				return err
			}
			di.Layers = append(di.Layers, blobEntry(l.Digest))
		}
		if err := blob(m.Config.Digest); err != nil {
			return err
		}
		if err := blob(it.Image.Manifest.Digest); err != nil {
			return err
		}
		desc := it.Image.Manifest
		desc.Annotations = nil
		if len(it.Names) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, name := range it.Names {
			n, err := ParseName(name)
			if err != nil {
				return err
			}
			d := desc
			d.Annotations = map[string]string{
				"io.containerd.image.name": n.String(),
				ocispec.AnnotationRefName:  tagOf(n.String()),
			}
			idx.Manifests = append(idx.Manifests, d)
			di.RepoTags = append(di.RepoTags, FamiliarName(n.String()))
		}
		dockerManifest = append(dockerManifest, di)
	}

	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := file(ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := file(ocispec.ImageIndexFile, ib); err != nil {
		return err
	}
	mb, err := json.Marshal(dockerManifest)
	if err != nil {
		return err
	}
	if err := file("manifest.json", mb); err != nil {
		return err
	}
	return tw.Close()
}

func tagOf(full string) string {
	for i := len(full) - 1; i >= 0 && full[i] != '/'; i-- {
		if full[i] == ':' {
			return full[i+1:]
		}
	}
	return "latest"
}
