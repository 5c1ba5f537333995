package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-runtime/cairn/internal/fsck"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationBroken marks an index descriptor whose image lost a blob it
// needs (`system check --repair`): `images` lists it, rmi removes it,
// nothing else uses it. Its value says what is gone.
const AnnotationBroken = "io.cairn.image.broken"

// Exclusive holds the store's lock exclusively until release is called: no
// load, pull, commit, build, tag or push is in progress meanwhile, so every
// entry of tmp/ was left by a process that was killed. Prune and Check take it.
func (s *Store) Exclusive(ctx context.Context) (release func(), err error) {
	l, err := lockfile.Exclusive(ctx, filepath.Join(s.locks, "gc.lock"))
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

// CheckResult is what Check found.
type CheckResult struct {
	Problems []fsck.Problem
	// Needed maps the chain ID of every layer of every sound image to the
	// images that stand on it, for the check of the snapshots.
	Needed map[digest.Digest][]Image
	// Keep are the chain IDs of every image whose config reads, broken or
	// not: their snapshots are not garbage.
	Keep map[digest.Digest]bool
	// Used are the blobs the images and the build cache name.
	Used map[digest.Digest]bool
	// Broken is set when the index itself could not be read: nothing is
	// known to be unused.
	Broken bool
}

// Check verifies the image store against its invariants: index.json parses
// and names valid references; every blob it reaches exists with its size
// and, unless quick, its digest; every manifest's config and layers exist and
// agree; nothing half-written is left in tmp/ or beside index.json. The
// caller holds Exclusive. Repairs that need the store's lock take it
// themselves: the caller runs them after releasing it.
func (s *Store) Check(quick bool) CheckResult {
	r := CheckResult{Needed: map[digest.Digest][]Image{}, Keep: map[digest.Digest]bool{}, Used: map[digest.Digest]bool{}}
	s.checkLayout(&r)
	idx, err := s.readIndex()
	if err != nil {
		p := filepath.Join(s.dir, ocispec.ImageIndexFile)
		r.Problems = append(r.Problems, fsck.Problem{
			Path: p, What: "the index of names cannot be read: " + indexError(err, p),
			Repair: s.rebuildIndex,
			Fix:    "keep it as index.json.corrupt and list every manifest found among the blobs as an unnamed image (the names are lost: tag them again)",
		})
		r.Broken = true
		s.checkTmp(&r)
		return r
	}
	c := &checker{s: s, quick: quick, r: &r, blobs: map[digest.Digest]error{}, done: map[digest.Digest]bool{}}
	for _, d := range idx.Manifests {
		c.image(d)
	}
	c.cache()
	c.conversions()
	c.unusedBlobs()
	s.checkTmp(&r)
	return r
}

type checker struct {
	s     *Store
	quick bool
	r     *CheckResult
	blobs map[digest.Digest]error // verified, or what is wrong
	done  map[digest.Digest]bool
}

func (c *checker) add(p fsck.Problem) { c.r.Problems = append(c.r.Problems, p) }

// blob verifies blob d of size size (-1: unknown): it exists, has that size
// and, unless quick, that digest. The error says what is wrong.
func (c *checker) blob(d digest.Digest, size int64) error {
	if err, ok := c.blobs[d]; ok {
		return err
	}
	err := c.verify(d, size)
	c.blobs[d] = err
	c.r.Used[d] = true
	return err
}

// small reads and verifies a manifest or a config, as blob does, once.
func (c *checker) small(d digest.Digest, size int64) ([]byte, error) {
	if err, ok := c.blobs[d]; ok && err != nil {
		return nil, err
	}
	c.r.Used[d] = true
	err := d.Validate()
	var b []byte
	if err == nil {
		b, err = os.ReadFile(c.s.BlobPath(d))
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		err = errors.New("the blob is missing")
	case err != nil:
	case size >= 0 && int64(len(b)) != size:
		err = fmt.Errorf("the blob has %d bytes, its descriptor says %d", len(b), size)
	case !c.quick && d.Algorithm().FromBytes(b) != d:
		err = errors.New("the blob's content does not match its digest")
	}
	c.blobs[d] = err
	return b, err
}

func (c *checker) verify(d digest.Digest, size int64) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%q is not a digest", d)
	}
	f, err := os.Open(c.s.BlobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("the blob is missing")
	} else if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if size >= 0 && st.Size() != size {
		return fmt.Errorf("the blob has %d bytes, its descriptor says %d", st.Size(), size)
	}
	if c.quick {
		return nil
	}
	v := d.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return fmt.Errorf("reading the blob: %w", err)
	}
	if !v.Verified() {
		return errors.New("the blob's content does not match its digest")
	}
	return nil
}

// image checks the image of index descriptor d.
func (c *checker) image(d ocispec.Descriptor) {
	name := nameOf(d)
	what := "image " + ShortID(d.Digest)
	if name != "" {
		what = "image " + FamiliarName(name)
		if _, err := ParseName(name); err != nil {
			c.add(fsck.Problem{
				Path: filepath.Join(c.s.dir, ocispec.ImageIndexFile), What: fmt.Sprintf("%s: the name %q is not a valid reference: %v", what, name, err),
				Repair: func(ctx context.Context) error { return c.s.dropName(ctx, name, d) },
				Fix:    "drop the name (the image stays, unnamed, if it has no other)",
			})
		}
	}
	if reason, ok := d.Annotations[AnnotationBroken]; ok {
		// Known and accounted for: the store is sound with it, and rmi
		// removes it.
		c.add(fsck.Problem{
			Path: c.s.BlobPath(d.Digest), What: fmt.Sprintf("%s is marked broken: %s", what, reason), Harmless: true,
			Fix: "remove it with `cairn rmi " + refOf(name, d) + "`, then load, pull or build it again",
		})
		c.s.markBrokenBlobs(d, c.r.Used, c.r.Keep)
		return
	}
	first := !c.done[d.Digest]
	c.done[d.Digest] = true
	reason := c.reach(d, name, first)
	if reason == "" {
		return
	}
	if !first {
		return // said for its first descriptor
	}
	c.add(fsck.Problem{
		Path: c.s.BlobPath(d.Digest), What: what + ": " + reason,
		Repair: func(ctx context.Context) error { return c.s.markBroken(ctx, d.Digest, reason) },
		Fix:    "mark the image broken, so that `images` shows it and `cairn rmi " + refOf(name, d) + "` removes it (no layer another image needs is removed)",
	})
}

func refOf(name string, d ocispec.Descriptor) string {
	if name != "" {
		return FamiliarName(name)
	}
	return d.Digest.Encoded()[:12]
}

// reach verifies what image descriptor d reaches and returns what is
// wrong with it, or "". Its sound layers' chains go into Needed.
func (c *checker) reach(d ocispec.Descriptor, name string, first bool) string {
	b, err := c.small(d.Digest, d.Size)
	if err != nil {
		return fmt.Sprintf("manifest %s: %v", d.Digest, err)
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Sprintf("index %s is not JSON: %v", d.Digest, err)
		}
		var found int
		for _, m := range idx.Manifests {
			if !c.s.HasBlob(m.Digest) {
				continue // a platform that was not pulled
			}
			found++
			if reason := c.reach(m, name, first); reason != "" {
				return reason
			}
		}
		if found == 0 {
			return fmt.Sprintf("index %s: none of its %d manifests is in the store", d.Digest, len(idx.Manifests))
		}
		return ""
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Sprintf("manifest %s is not JSON: %v", d.Digest, err)
	}
	cb, err := c.small(m.Config.Digest, m.Config.Size)
	if err != nil {
		return fmt.Sprintf("config %s: %v", m.Config.Digest, err)
	}
	var cfg Config
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return fmt.Sprintf("config %s: %v", m.Config.Digest, err)
	}
	for _, chain := range ChainIDs(cfg.RootFS.DiffIDs) {
		c.r.Keep[chain] = true // a broken image's too: rmi frees them
	}
	for i, l := range m.Layers {
		if err := c.blob(l.Digest, l.Size); err != nil {
			return fmt.Sprintf("layer %d (%s): %v", i+1, l.Digest, err)
		}
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Sprintf("config %s lists %d layers, manifest %s %d", m.Config.Digest, len(cfg.RootFS.DiffIDs), d.Digest, len(m.Layers))
	}
	if first {
		img := Image{ID: m.Config.Digest, Manifest: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}}
		if name != "" {
			img.Names = []string{name}
		}
		for _, chain := range ChainIDs(cfg.RootFS.DiffIDs) {
			c.r.Needed[chain] = append(c.r.Needed[chain], img)
		}
	}
	return ""
}

// cache checks the build cache: an entry is a key's image, or garbage.
func (c *checker) cache() {
	files, err := os.ReadDir(c.s.cache)
	if err != nil {
		return
	}
	for _, f := range files {
		p := filepath.Join(c.s.cache, f.Name())
		if strings.HasPrefix(f.Name(), ".") {
			c.add(fsck.Problem{Path: p, What: "a build cache entry half-written by a killed build", Harmless: true, Sweep: true, Fix: "remove it"})
			continue
		}
		b, err := os.ReadFile(p)
		var e cacheEntry
		if err == nil {
			err = json.Unmarshal(b, &e)
		}
		if err != nil {
			c.add(fsck.Problem{Path: p, What: fmt.Sprintf("a build cache entry that cannot be read: %v", err), Harmless: true, Sweep: true, Fix: "remove it"})
			continue
		}
		if reason := c.reach(e.Manifest, "", false); reason != "" {
			c.add(fsck.Problem{Path: p, What: "a build cache entry whose image is gone: " + reason, Harmless: true, Sweep: true, Fix: "remove it (the step runs again in the next build)"})
		}
	}
}

// conversions checks the compressed forms of layers kept for pushes.
func (c *checker) conversions() {
	files, err := os.ReadDir(c.s.conversions)
	if err != nil {
		return
	}
	for _, f := range files {
		p := filepath.Join(c.s.conversions, f.Name())
		src, _, _ := strings.Cut(f.Name(), ".")
		b, err := os.ReadFile(p)
		var conv conversion
		if err == nil {
			err = json.Unmarshal(b, &conv)
		}
		switch {
		case !c.r.Used[digest.NewDigestFromEncoded(digest.SHA256, src)]:
			c.add(fsck.Problem{Path: p, What: "the compressed form of a layer no image has", Harmless: true, Sweep: true, Fix: "remove it"})
		case err != nil:
			c.add(fsck.Problem{Path: p, What: fmt.Sprintf("a conversion record that cannot be read: %v", err), Harmless: true, Sweep: true, Fix: "remove it (the next push compresses the layer again)"})
		case c.blob(conv.Blob.Digest, conv.Blob.Size) != nil:
			c.add(fsck.Problem{Path: p, What: fmt.Sprintf("the compressed layer %s it names: %v", conv.Blob.Digest, c.blobs[conv.Blob.Digest]), Repair: func(context.Context) error { return os.Remove(p) }, Fix: "remove the record (the next push compresses the layer again)"})
		}
	}
}

// unusedBlobs reports the blobs nothing names, and files of blobs/ that are no blob.
func (c *checker) unusedBlobs() {
	dir := filepath.Join(c.s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.add(fsck.Problem{Path: dir, What: fmt.Sprintf("the blobs cannot be listed: %v", err), Fix: "check the directory's permissions"})
		return
	}
	var unused []fsck.Problem
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if c.r.Used[d] {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if d.Validate() != nil {
			unused = append(unused, fsck.Problem{Path: p, What: "a file among the blobs that is not named by a digest", Harmless: true, Sweep: true, Fix: "remove it"})
			continue
		}
		what := "a blob no image names"
		if info, err := e.Info(); err == nil {
			what = fmt.Sprintf("a blob no image names (%d bytes)", info.Size())
		}
		unused = append(unused, fsck.Problem{Path: p, What: what, Harmless: true, Sweep: true, Fix: "remove it"})
	}
	sort.Slice(unused, func(i, j int) bool { return unused[i].Path < unused[j].Path })
	c.r.Problems = append(c.r.Problems, unused...)
}

// checkLayout checks images/oci-layout and what atomicfile left beside it.
func (s *Store) checkLayout(r *CheckResult) {
	p := filepath.Join(s.dir, ocispec.ImageLayoutFile)
	var l ocispec.ImageLayout
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, &l)
	}
	if err == nil && l.Version != ocispec.ImageLayoutVersion {
		err = fmt.Errorf("version %q, want %q", l.Version, ocispec.ImageLayoutVersion)
	}
	if err != nil {
		r.Problems = append(r.Problems, fsck.Problem{
			Path: p, What: fmt.Sprintf("the OCI layout file: %v", unwrapPath(err, p)),
			Repair: func(context.Context) error { return s.writeLayout() }, Fix: "write it again",
		})
	}
	if left, _ := filepath.Glob(filepath.Join(s.dir, ".*.tmp-*")); len(left) > 0 {
		for _, f := range left {
			r.Problems = append(r.Problems, fsck.Problem{Path: f, What: "a temporary file of a rewrite of the index cut short", Sweep: true, Fix: "remove it"})
		}
	}
}

// checkTmp reports what killed processes left in tmp/.
func (s *Store) checkTmp(r *CheckResult) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		r.Problems = append(r.Problems, fsck.Problem{
			Path: filepath.Join(s.tmp, e.Name()), What: "work in progress of a process that was killed (" + tmpKind(e.Name()) + ")",
			Sweep: true, Fix: "unmount what is mounted there and remove it",
		})
	}
}

func tmpKind(name string) string {
	kind, _, _ := strings.Cut(name, "-")
	switch kind {
	case "blob":
		return "a half-written blob"
	case "snapshot":
		return "a half-unpacked layer"
	case "container":
		return "a container half-created"
	case "trash", "volume":
		return "a removal cut short"
	case "view", "cp":
		return "a view of a container"
	case "build":
		return "a build step"
	}
	return kind
}

// unwrapPath drops path p from err's text, which the problem names already.
func unwrapPath(err error, p string) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == p {
		return pe.Err
	}
	if rest, ok := strings.CutPrefix(err.Error(), p+": "); ok {
		return errors.New(rest)
	}
	return err
}

// indexError is what readIndex said, without the path and the advice.
func indexError(err error, p string) string {
	msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	msg = strings.TrimPrefix(msg, p+": ")
	msg, _, _ = strings.Cut(msg, ": `cairn system check")
	if msg == p+" is missing" {
		return "it is missing"
	}
	return msg
}
