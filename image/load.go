package image

import (
	"archive/tar"
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

	// maxMetadata bounds what an archive entry that is not a layer may hold in
	// memory: manifests, configs and indexes are a few kilobytes.
	maxMetadata = 32 << 20
	copyBuffer  = 1 << 20
)

// Load reads a docker-archive (as `docker save` writes it, in its legacy or its
// OCI form) or an oci-archive from r, in one pass: each layer is stored and
// unpacked as it streams by. Nothing becomes visible before the whole archive
// has been read and every digest verified; on any error the store is as it was.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) {
	release, err := s.Lease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	l := newLoader(s, ctx)
	defer l.cleanup()
	err = l.read(r)
	if werr := l.wait(); werr != nil {
		return nil, werr // a layer's own error says more than the archive's
	}
	if err != nil {
		return nil, err
	}
	var plans []*plan
	switch {
	case l.has("manifest.json"):
		plans, err = l.dockerPlans()
	case l.has(ocispec.ImageIndexFile):
		plans, err = l.ociPlans()
	default:
		return nil, fmt.Errorf("%w: archive has neither manifest.json (docker-archive) nor index.json (oci-archive)", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%w: archive holds no image", ErrInvalid)
	}
	return l.commit(plans)
}

// ingested is an archive entry written to a temporary blob file.
type ingested struct {
	entry  string
	w      *blobWriter
	digest digest.Digest
	size   int64
	comp   rootfs.Compression
	diffID digest.Digest // set once the content has been read as a layer
	key    string        // a pending snapshot of it, until used
	done   bool          // moved into the store
	err    error         // of its unpacking
}

type loader struct {
	s     *Store
	ctx   context.Context
	files map[string][]byte    // small entries, by archive path
	blobs map[string]*ingested // large or layer entries, by archive path
	links map[string]string    // symlinks and hardlinks between entries
	all   []*ingested
	buf   []byte

	wg     sync.WaitGroup
	sem    chan struct{} // bounds the unpacks running at once
	failed atomic.Bool   // an unpack failed: stop reading the archive
}

func newLoader(s *Store, ctx context.Context) *loader {
	return &loader{
		s: s, ctx: ctx, files: map[string][]byte{}, blobs: map[string]*ingested{}, links: map[string]string{},
		buf: make([]byte, copyBuffer), sem: make(chan struct{}, runtime.NumCPU()+1),
	}
}

func (l *loader) read(r io.Reader) error {
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 64<<10)
	for {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		if l.failed.Load() {
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
			ing, err := l.ingest(hdr.Name, br, layer)
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

// ingest writes r to a temporary blob. When it is a layer and the store has an
// unpacker, the layer is unpacked at the same time, on a goroutine that reads the
// blob file as it grows: the archive is read once, and several layers unpack at
// once (creating files is what loading spends its time on).
func (l *loader) ingest(entry string, r io.Reader, layer bool) (*ingested, error) {
	w, err := l.s.newBlobWriter()
	if err != nil {
		return nil, err
	}
	ing := &ingested{entry: entry, w: w}
	l.all = append(l.all, ing)
	var dst io.Writer = w
	var g *growth
	if layer && l.s.unpacker != nil {
		g = newGrowth()
		dst = &growingWriter{w: w, g: g}
		if err := l.unpackAsync(ing, g); err != nil {
			g.finish(err)
			return nil, err
		}
	}
	_, err = io.CopyBuffer(dst, r, l.buf)
	if err == nil {
		err = w.Close()
	}
	if g != nil {
		g.finish(err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: archive entry %q: %w", ErrInvalid, entry, err)
	}
	ing.digest, ing.size = w.Digest(), w.size
	return ing, nil
}

// unpackAsync starts unpacking ing from its blob file as g says it grows; at
// most maxUnpacks run at once. wait collects their results.
func (l *loader) unpackAsync(ing *ingested, g *growth) error {
	f, err := os.Open(ing.w.f.Name())
	if err != nil {
		return err
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer f.Close()
		l.sem <- struct{}{}
		defer func() { <-l.sem }()
		if err := l.unpackStream(ing, &followReader{f: f, g: g}); err != nil {
			ing.err = fmt.Errorf("archive entry %q: %w", ing.entry, err)
			l.failed.Store(true)
		}
	}()
	return nil
}

// wait waits for every unpack started and returns the first error, in archive order.
func (l *loader) wait() error {
	l.wg.Wait()
	for _, ing := range l.all {
		if ing.err != nil {
			return ing.err
		}
		if ing.key != "" && ing.diffID == "" {
			ing.diffID = ing.digest // uncompressed: the blob is the diff
		}
	}
	return nil
}

// unpackStream reads a (possibly compressed) layer stream to its end into a
// pending snapshot, recording its compression and, when compressed, its diff ID
// (an uncompressed layer's diff ID is its digest).
func (l *loader) unpackStream(ing *ingested, raw io.Reader) error {
	key, comp, diffID, err := l.s.unpackLayer(l.ctx, raw)
	if err != nil {
		return err
	}
	ing.key, ing.comp = key, comp
	if diffID != "" {
		ing.diffID = diffID
	}
	return nil
}

// unpackLayer reads a layer stream, compressed or not, to its end (what
// follows the compressed stream included) into a pending snapshot. diffID
// is the digest of the uncompressed tar when the stream was compressed;
// empty when it was not, the stream's own digest being its diff ID.
func (s *Store) unpackLayer(ctx context.Context, raw io.Reader) (key string, comp rootfs.Compression, diffID digest.Digest, err error) {
	dec, comp, err := rootfs.Decompress(raw)
	if err != nil {
		return "", 0, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer dec.Close()
	var src io.Reader = dec
	dh := digest.SHA256.Digester()
	if comp != rootfs.Uncompressed {
		src = io.TeeReader(dec, dh.Hash())
	}
	if key, err = s.unpacker.Unpack(ctx, src); err != nil {
		return "", 0, "", err
	}
	if comp == rootfs.Uncompressed {
		return key, comp, "", nil
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		s.unpacker.Discard(key)
		return "", 0, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return key, comp, dh.Digest(), nil
}

// growth tells readers of a file how much of it has been written.
type growth struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int64
	done bool
	err  error
}

func newGrowth() *growth {
	g := &growth{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *growth) advance(n int) {
	g.mu.Lock()
	g.n += int64(n)
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *growth) finish(err error) {
	g.mu.Lock()
	if !g.done {
		g.done, g.err = true, err
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}

type growingWriter struct {
	w *blobWriter
	g *growth
}

func (gw *growingWriter) Write(p []byte) (int, error) {
	n, err := gw.w.Write(p)
	gw.g.advance(n)
	return n, err
}

// followReader reads a file while it is written, up to what growth says is there.
type followReader struct {
	f   *os.File
	g   *growth
	off int64
}

func (r *followReader) Read(p []byte) (int, error) {
	r.g.mu.Lock()
	for r.off >= r.g.n && !r.g.done {
		r.g.cond.Wait()
	}
	avail, err := r.g.n-r.off, r.g.err
	r.g.mu.Unlock()
	if avail == 0 {
		if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, rerr := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

func (l *loader) cleanup() {
	l.wg.Wait()
	for _, ing := range l.all {
		if !ing.done {
			ing.w.Abort()
		}
		if ing.key != "" && l.s.unpacker != nil {
			l.s.unpacker.Discard(ing.key)
		}
	}
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

// plan is an image to add: its blobs, verified, and its names.
type plan struct {
	manifest []byte
	config   []byte
	layers   []layerSource
	diffIDs  []digest.Digest
	names    []string
	what     string // how errors name the image
	hidden   bool   // not in the index: an intermediate image of a build
}

// layerSource is a layer of a plan: an ingested entry, or a blob the store has.
type layerSource struct {
	ing    *ingested
	digest digest.Digest
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
	if len(base) != 64 || !isHex(base) {
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

// verify checks a plan's layers against its config's diff IDs, and makes an OCI
// manifest for it if the archive had none.
func (l *loader) verify(p *plan) error {
	var c Config
	if err := json.Unmarshal(p.config, &c); err != nil {
		return fmt.Errorf("%w: %s: config: %w", ErrInvalid, p.what, err)
	}
	p.diffIDs = c.RootFS.DiffIDs
	if len(p.diffIDs) != len(p.layers) {
		return fmt.Errorf("%w: %s: config lists %d layers, the manifest %d", ErrInvalid, p.what, len(p.diffIDs), len(p.layers))
	}
	for i, src := range p.layers {
		if src.ing == nil {
			continue // a blob the store has: verified when it came in, unpacked at commit
		}
		if src.ing.diffID == "" {
			// Not unpacked while streaming (not recognised as a layer): do it now.
			if err := l.unpackLater(src.ing); err != nil {
				return fmt.Errorf("%s: layer %d: %w", p.what, i+1, err)
			}
		}
		if src.ing.diffID != p.diffIDs[i] {
			return fmt.Errorf("%w: %s: layer %d (%q) has diff ID %s, the config says %s", ErrInvalid, p.what, i+1, src.ing.entry, src.ing.diffID, p.diffIDs[i])
		}
	}
	if p.manifest == nil {
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(p.config), Size: int64(len(p.config))},
			Layers:    []ocispec.Descriptor{},
		}
		for _, src := range p.layers {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMediaType(src.ing.comp), Digest: src.ing.digest, Size: src.ing.size})
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		p.manifest = b
	}
	return nil
}

func layerMediaType(c rootfs.Compression) string {
	switch c {
	case rootfs.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case rootfs.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// unpackLater reads an ingested entry back from its temporary file as a layer.
func (l *loader) unpackLater(ing *ingested) error {
	f, err := os.Open(ing.w.f.Name())
	if err != nil {
		return err
	}
	defer f.Close()
	if l.s.unpacker == nil {
		dec, comp, err := rootfs.Decompress(f)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		defer dec.Close()
		ing.comp = comp
		dh := digest.SHA256.Digester()
		if _, err := io.Copy(dh.Hash(), dec); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		ing.diffID = dh.Digest()
		return nil
	}
	if err := l.unpackStream(ing, f); err != nil {
		return err
	}
	if ing.diffID == "" {
		ing.diffID = ing.digest
	}
	return nil
}

// commit moves a verified archive's blobs into the store, makes the snapshots
// its layers need, and only then names the images.
func (l *loader) commit(plans []*plan) ([]Image, error) {
	var out []Image
	for _, p := range plans {
		for _, src := range p.layers {
			if src.ing != nil && !src.ing.done {
				if _, err := src.ing.w.Commit(); err != nil {
					return nil, err
				}
				src.ing.done = true
			}
		}
		cd, err := l.s.writeBlob(p.config)
		if err != nil {
			return nil, err
		}
		md, err := l.s.writeBlob(p.manifest)
		if err != nil {
			return nil, err
		}
		if err := l.snapshots(p); err != nil {
			return nil, err
		}
		mt := ocispec.MediaTypeImageManifest
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(p.manifest, &probe) == nil && probe.MediaType == mediaTypeDockerManifest {
			mt = mediaTypeDockerManifest
		}
		out = append(out, Image{ID: cd, Manifest: ocispec.Descriptor{MediaType: mt, Digest: md, Size: int64(len(p.manifest))}, Names: p.names})
	}
	err := l.s.updateIndex(l.ctx, func(n *names) error {
		for i, img := range out {
			if plans[i].hidden {
				continue
			}
			if len(img.Names) == 0 {
				n.addUnnamed(img.Manifest)
			}
			for _, name := range img.Names {
				n.set(name, img.Manifest)
			}
		}
		return nil
	})
	return out, err
}

// snapshots makes sure every layer of p has its snapshot.
func (l *loader) snapshots(p *plan) error {
	if l.s.unpacker == nil {
		return nil
	}
	return l.s.ensureSnapshots(l.ctx, p.diffIDs, func(i int) (string, error) {
		if ing := p.layers[i].ing; ing != nil && ing.key != "" {
			key := ing.key
			ing.key = "" // a pending snapshot serves one chain only
			return key, nil
		}
		return "", nil
	}, func(i int) digest.Digest { return p.layers[i].digest })
}

// ensureSnapshots commits or unpacks the snapshot of each layer of a stack that
// has none. pending may offer an already unpacked layer; blob names the layer's
// blob in the store, from which it is unpacked otherwise.
func (s *Store) ensureSnapshots(ctx context.Context, diffIDs []digest.Digest, pending func(int) (string, error), blob func(int) digest.Digest) error {
	chains := ChainIDs(diffIDs)
	for i, chain := range chains {
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		key, err := pending(i)
		if err != nil {
			return err
		}
		if s.unpacker.Exists(chain) {
			if key != "" {
				s.unpacker.Discard(key)
			}
			continue
		}
		if key == "" {
			var diffID digest.Digest
			key, diffID, err = s.unpackBlob(ctx, blob(i))
			if err != nil {
				return err
			}
			if diffID != diffIDs[i] {
				s.unpacker.Discard(key)
				return fmt.Errorf("%w: layer %s has diff ID %s, the config says %s", ErrInvalid, blob(i), diffID, diffIDs[i])
			}
		}
		if err := s.unpacker.Commit(key, chain, parent, diffIDs[i]); err != nil {
			return err
		}
	}
	return nil
}

// unpackBlob unpacks a stored layer blob into a pending snapshot.
func (s *Store) unpackBlob(ctx context.Context, d digest.Digest) (string, digest.Digest, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	key, _, diffID, err := s.unpackLayer(ctx, f)
	if err != nil {
		return "", "", fmt.Errorf("layer %s: %w", d, err)
	}
	return key, cmp.Or(diffID, d), nil
}

// EnsureSnapshots unpacks any layer of img whose snapshot is missing (an image
// another OCI tool wrote into the layout, say) and returns the chain IDs.
func (s *Store) EnsureSnapshots(ctx context.Context, img Image) ([]digest.Digest, error) {
	m, err := s.Manifest(img.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	c, _, err := s.Config(img)
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(c.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%w: image %s: config lists %d layers, the manifest %d", ErrInvalid, ShortID(img.ID), len(c.RootFS.DiffIDs), len(m.Layers))
	}
	if s.unpacker != nil {
		release, err := s.Lease(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		err = s.ensureSnapshots(ctx, c.RootFS.DiffIDs, func(int) (string, error) { return "", nil },
			func(i int) digest.Digest { return m.Layers[i].Digest })
		if err != nil {
			return nil, err
		}
	}
	return ChainIDs(c.RootFS.DiffIDs), nil
}
