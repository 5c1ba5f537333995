package image

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	ids "github.com/cairn-runtime/cairn/internal/names"
	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The archives Load reads: a docker-archive, as `docker save` writes it
// (manifest.json, in its legacy or its OCI form), or an oci-archive
// (index.json). The tar is read once: a small entry that is not a layer is
// kept in memory, any other is ingested (ingest.go) as it streams by, under
// its archive path; once the archive is read, its manifest.json or
// index.json makes the plans, each verified, that the batch commits.

const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

	// maxMetadata bounds what an archive entry that is not a layer may hold in
	// memory: manifests, configs and indexes are a few kilobytes.
	maxMetadata = 32 << 20
)

// loader is a Load: the archive's entries, and the batch of their ingests.
type loader struct {
	*batch
	files map[string][]byte  // small entries, by archive path
	blobs map[string]*ingest // large or layer entries, by archive path
	links map[string]string  // symlinks and hardlinks between entries
}

func newLoader(s *Store, ctx context.Context) *loader {
	return &loader{batch: newBatch(s, ctx), files: map[string][]byte{}, blobs: map[string]*ingest{}, links: map[string]string{}}
}

// read reads the archive to its end, or until an unpack has failed.
func (l *loader) read(r io.Reader) error {
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 64<<10)
	for {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		if l.failed() {
			return nil // wait reports the unpack's error
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: reading archive: %w", ErrInvalid, err)
		}
		name := cleanEntry(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			l.links[name] = cleanEntry(path.Join(path.Dir(name), hdr.Linkname))
		case tar.TypeLink:
			l.links[name] = cleanEntry(hdr.Linkname)
		case tar.TypeReg:
			br.Reset(tr)
			head, _ := br.Peek(512)
			comp := rootfs.DetectCompression(head)
			layer := comp != rootfs.Uncompressed || looksLikeTar(head)
			if !layer && hdr.Size <= maxMetadata {
				b, err := io.ReadAll(br)
				if err != nil {
					return fmt.Errorf("%w: archive entry %q: %w", ErrInvalid, hdr.Name, err)
				}
				l.files[name] = b
				continue
			}
			ing, err := l.add(fmt.Sprintf("archive entry %q (%s)", hdr.Name, units.HumanSize(float64(hdr.Size))), br, layer)
			if err != nil {
				return err
			}
			l.blobs[name] = ing
		}
	}
}

func cleanEntry(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// looksLikeTar reports whether head starts a tar stream: a ustar header, or the
// zero block that ends an empty archive.
func looksLikeTar(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	if string(head[257:262]) == "ustar" {
		return true
	}
	for _, c := range head[:512] {
		if c != 0 {
			return false
		}
	}
	return true
}

func (l *loader) resolve(name string) string {
	for i := 0; i < 16; i++ {
		t, ok := l.links[name]
		if !ok {
			break
		}
		name = t
	}
	return name
}

func (l *loader) has(name string) bool {
	name = l.resolve(name)
	_, ok := l.files[name]
	_, ok2 := l.blobs[name]
	return ok || ok2
}

// small returns the content of a small entry.
func (l *loader) small(name string) ([]byte, error) {
	if b, ok := l.files[l.resolve(cleanEntry(name))]; ok {
		return b, nil
	}
	if _, ok := l.blobs[l.resolve(cleanEntry(name))]; ok {
		return nil, fmt.Errorf("%w: archive entry %q is too large for metadata", ErrInvalid, name)
	}
	return nil, fmt.Errorf("%w: archive has no entry %q", ErrInvalid, name)
}

// dockerPlans reads manifest.json, as `docker save` writes it.
func (l *loader) dockerPlans() ([]*plan, error) {
	b, err := l.small("manifest.json")
	if err != nil {
		return nil, err
	}
	var items []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %w", ErrInvalid, err)
	}
	var plans []*plan
	for i, it := range items {
		p := &plan{what: fmt.Sprintf("image %d of manifest.json", i+1)}
		if len(it.RepoTags) > 0 {
			p.what = fmt.Sprintf("image %s", it.RepoTags[0])
		}
		if p.config, err = l.small(it.Config); err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		// A config named by its digest (<hex>.json, blobs/sha256/<hex>) must have it.
		if want := digestInName(it.Config); want != "" && digest.FromBytes(p.config) != want {
			return nil, fmt.Errorf("%w: %s: config %q has digest %s", ErrInvalid, p.what, it.Config, digest.FromBytes(p.config))
		}
		for _, lp := range it.Layers {
			ing, ok := l.blobs[l.resolve(cleanEntry(lp))]
			if !ok {
				return nil, fmt.Errorf("%w: %s: archive has no layer %q", ErrInvalid, p.what, lp)
			}
			if want := digestInName(lp); want != "" && ing.digest != want {
				return nil, fmt.Errorf("%w: %s: layer %q has digest %s", ErrInvalid, p.what, lp, ing.digest)
			}
			p.layers = append(p.layers, layerSource{ing: ing, digest: ing.digest})
		}
		for _, t := range it.RepoTags {
			n, err := ParseName(t)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, p.what, err)
			}
			p.names = append(p.names, n.String())
		}
		if err := l.verify(p); err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// digestInName returns the sha256 digest an archive path names, if it names one.
func digestInName(name string) digest.Digest {
	base := strings.TrimSuffix(path.Base(name), ".json")
	if !ids.ID(base) {
		return ""
	}
	return digest.NewDigestFromEncoded(digest.SHA256, base)
}

// ociPlans reads index.json, as an oci-archive has it.
func (l *loader) ociPlans() ([]*plan, error) {
	b, err := l.small(ocispec.ImageIndexFile)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: index.json: %w", ErrInvalid, err)
	}
	var plans []*plan
	for _, d := range idx.Manifests {
		name := d.Annotations["io.containerd.image.name"]
		if name == "" {
			// A ref.name that is only a tag ("latest") names no repository.
			if rn := d.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(rn, ":/") {
				name = rn
			}
		}
		md, err := l.pickManifest(d)
		if err != nil {
			return nil, err
		}
		p := &plan{what: "image " + md.Digest.String()}
		if name != "" {
			p.what = "image " + name
			n, err := ParseName(name)
			if err != nil {
				return nil, fmt.Errorf("%w: index.json: %w", ErrInvalid, err)
			}
			p.names = []string{n.String()}
		}
		if p.manifest, err = l.blob(md.Digest); err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(p.manifest, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: manifest: %w", ErrInvalid, p.what, err)
		}
		if p.config, err = l.blob(m.Config.Digest); err != nil {
			return nil, fmt.Errorf("%s: config: %w", p.what, err)
		}
		for _, ld := range m.Layers {
			src := layerSource{digest: ld.Digest, ing: l.blobs[blobEntry(ld.Digest)]}
			if src.ing == nil && !l.s.HasBlob(ld.Digest) {
				return nil, fmt.Errorf("%w: %s: archive has no layer %s", ErrInvalid, p.what, ld.Digest)
			}
			p.layers = append(p.layers, src)
		}
		if err := l.verify(p); err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func blobEntry(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// blob returns a small blob of an oci-archive, verified, or the store's copy.
func (l *loader) blob(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if b, ok := l.files[l.resolve(blobEntry(d))]; ok {
		if got := d.Algorithm().FromBytes(b); got != d {
			return nil, fmt.Errorf("%w: archive entry %q has digest %s", ErrInvalid, blobEntry(d), got)
		}
		return b, nil
	}
	if l.s.HasBlob(d) {
		return l.s.ReadBlob(d)
	}
	return nil, fmt.Errorf("%w: archive has no blob %s", ErrInvalid, d)
}

// pickManifest resolves an index entry to an image manifest for this platform.
func (l *loader) pickManifest(d ocispec.Descriptor) (ocispec.Descriptor, error) {
	for depth := 0; depth < 4; depth++ {
		if d.MediaType != ocispec.MediaTypeImageIndex && d.MediaType != mediaTypeDockerList {
			return d, nil
		}
		b, err := l.blob(d.Digest)
		if err != nil {
			return d, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return d, fmt.Errorf("%w: index %s: %w", ErrInvalid, d.Digest, err)
		}
		found := false
		for _, m := range idx.Manifests {
			if m.Platform == nil || (m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH) || len(idx.Manifests) == 1 {
				d, found = m, true
				break
			}
		}
		if !found {
			return d, fmt.Errorf("%w: index %s has no image for linux/%s", ErrInvalid, d.Digest, runtime.GOARCH)
		}
	}
	return d, fmt.Errorf("%w: indexes nested too deep", ErrInvalid)
}
