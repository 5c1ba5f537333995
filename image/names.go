package image

import (
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// names edits the name → manifest mapping of index.json. It keeps one
// invariant: every manifest in the index has one descriptor per name it has, or a
// single descriptor without a name (a dangling image).
type names struct {
	idx     ocispec.Index
	changed bool
}

func (n *names) has(d digest.Digest) bool {
	for _, m := range n.idx.Manifests {
		if m.Digest == d {
			return true
		}
	}
	return false
}

func nameOf(d ocispec.Descriptor) string {
	return d.Annotations[ocispec.AnnotationRefName]
}

// set points name at the manifest desc. The image that had the name keeps its
// other names, or stays as a dangling image.
func (n *names) set(name string, desc ocispec.Descriptor) {
	if old, ok := n.remove(name); ok && old.Digest != desc.Digest {
		n.addUnnamed(old)
	}
	n.removeUnnamed(desc.Digest)
	d := desc
	d.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	n.idx.Manifests = append(n.idx.Manifests, d)
	n.changed = true
}

// remove drops the descriptor named name and returns it, without its name.
func (n *names) remove(name string) (ocispec.Descriptor, bool) {
	var found ocispec.Descriptor
	ok := false
	kept := n.idx.Manifests[:0]
	for _, m := range n.idx.Manifests {
		if name != "" && nameOf(m) == name {
			found, ok = m, true
			found.Annotations = nil
			n.changed = true
			continue
		}
		kept = append(kept, m)
	}
	n.idx.Manifests = kept
	return found, ok
}

// addUnnamed keeps desc as a dangling image, unless it is in the index already.
func (n *names) addUnnamed(desc ocispec.Descriptor) {
	if n.has(desc.Digest) {
		return
	}
	d := desc
	d.Annotations = nil
	n.idx.Manifests = append(n.idx.Manifests, d)
	n.changed = true
}

func (n *names) removeUnnamed(d digest.Digest) {
	kept := n.idx.Manifests[:0]
	for _, m := range n.idx.Manifests {
		if m.Digest == d && nameOf(m) == "" {
			n.changed = true
			continue
		}
		kept = append(kept, m)
	}
	n.idx.Manifests = kept
}

// removeAll drops every descriptor of manifest d.
func (n *names) removeAll(d digest.Digest) {
	kept := n.idx.Manifests[:0]
	for _, m := range n.idx.Manifests {
		if m.Digest == d {
			n.changed = true
			continue
		}
		kept = append(kept, m)
	}
	n.idx.Manifests = kept
}

// images lists the images as the index being edited has them.
func (n *names) images(s *Store) ([]Image, error) {
	have, err := s.blobs()
	if err != nil {
		return nil, err
	}
	s.facts.listedBlobs.Store(&have)
	var out []Image
	pos := map[digest.Digest]int{}
	for _, d := range n.idx.Manifests {
		i, ok := pos[d.Digest]
		if !ok {
			img := Image{Manifest: d}
			img.Manifest.Annotations = nil
			reason, broken := d.Annotations[AnnotationBroken]
			var config digest.Digest
			var err error
			if broken {
				// What a broken image still has is read, not remembered.
				var m ocispec.Manifest
				m, err = s.Manifest(d.Digest)
				config = m.Config.Digest
			} else {
				config, err = s.configOf(d.Digest, have)
			}
			switch {
			case broken && err != nil:
				img.ID, img.Broken = d.Digest, reason // the manifest is what is gone
			case broken:
				img.ID, img.Broken = config, reason
			case err != nil:
				return nil, fmt.Errorf("%w (`cairn system check` finds what else is wrong; `--repair` marks the image broken, so that rmi can remove it)", err)
			default:
				img.ID = config
			}
			i = len(out)
			pos[d.Digest] = i
			out = append(out, img)
		}
		if name := nameOf(d); name != "" {
			out[i].Names = append(out[i].Names, name)
		}
	}
	for i := range out {
		sort.Strings(out[i].Names)
	}
	return out, nil
}
