package image

// Facts: what the lists of images learn of each image's blobs, kept for
// the next list.
//
// A list of images (images, ps's IMAGE column, a name looked up, rmi's and
// prune's questions) read and verified every manifest, and `images` every
// config and every layer's snapshot record besides: with a thousand images,
// most of its time. What it learns is about content: the config a manifest
// names, what a list shows of a config (created, labels, diff IDs), the
// unpacked size of a layer chain. Content never changes under its digest,
// so such a fact is true for ever, whoever wrote it; the blobs themselves
// were verified when they came in and when the fact was learnt. A list
// still stats each blob it takes a fact about (a blob the store lost is
// still an error) and each snapshot whose size it takes (a layer not
// unpacked counts nothing). Each kind of fact lives in a file of its own
// (the run directory's cache/image-manifests, image-configs, layer-sizes), written whole and
// renamed (atomicfile) without a lock by any process, after a list that
// learnt something, without those about content the store no longer has. A file that
// does not decode, of another version, or gone (the run directory does not
// outlive a reboot) is read as empty.

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// factsVersion is the version of the facts file: another is read as empty.
const factsVersion = 2

// manifestFact is what a manifest names: its config and layers.
type manifestFact struct {
	Config digest.Digest
	Layers []digest.Digest
}

// Summary is what the lists of images show of an image's config.
type Summary struct {
	Created *time.Time
	Labels  map[string]string
	DiffIDs []digest.Digest
}

// table is one kind of fact, kept in a file of its own (a list of
// containers needs only the configs of manifests, not what `images` shows).
type table[V any] struct {
	file   string // the file's name, beside the others
	once   sync.Once
	mu     sync.Mutex
	known  map[digest.Digest]V // what the file and this process know
	learnt bool
}

// tableFile is the content of a table's file.
type tableFile[V any] struct {
	Version int
	Facts   map[digest.Digest]V
}

// facts are the store's tables, in the directory dir ("": kept in memory only).
type facts struct {
	dir       string
	manifests table[manifestFact]
	configs   table[Summary]
	sizes     table[int64]         // chain ID → unpacked size
	indexes   table[ocispec.Index] // the digest of index.json → what it says
	// lastIndex is the digest of the index the last list read: the only
	// one whose fact a save keeps.
	lastIndex atomic.Value
	// listedBlobs are the blobs the last list found.
	listedBlobs atomic.Pointer[blobs]
}

func newFacts(dir string) *facts {
	return &facts{dir: dir, manifests: table[manifestFact]{file: "image-manifests"},
		configs: table[Summary]{file: "image-configs"}, sizes: table[int64]{file: "layer-sizes"},
		indexes: table[ocispec.Index]{file: "image-index"}}
}

// KeepFacts makes the store keep what its lists learn in files of the
// directory dir (in the run directory), for the lists of later processes
// (see facts.go).
func (s *Store) KeepFacts(dir string) { s.facts = newFacts(dir) }

func (t *table[V]) load(dir string) {
	t.once.Do(func() {
		t.known = map[digest.Digest]V{}
		if dir == "" {
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, t.file))
		if err != nil {
			return
		}
		var tf tableFile[V]
		if gob.NewDecoder(bytes.NewReader(b)).Decode(&tf) == nil && tf.Version == factsVersion {
			for k, v := range tf.Facts {
				t.known[k] = v
			}
		}
	})
}

// prefetchList starts reading the facts List needs (the index's, the
// manifests'), each file on a thread of its own while List reads the index
// and the blobs: each decodes in a few milliseconds of a list's few tens.
func (s *Store) prefetchList() {
	go s.facts.indexes.load(s.facts.dir)
	go s.facts.manifests.load(s.facts.dir)
}

// PrefetchSummaries starts reading the facts Summaries and LayerSize need
// besides (the configs', the layers' sizes), for a list that shows them.
func (s *Store) PrefetchSummaries() {
	go s.facts.configs.load(s.facts.dir)
	go s.facts.sizes.load(s.facts.dir)
}

func (t *table[V]) get(dir string, key digest.Digest) (V, bool) {
	t.load(dir)
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.known[key]
	return v, ok
}

func (t *table[V]) put(dir string, key digest.Digest, v V) {
	t.load(dir)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known[key] = v
	t.learnt = true
}

// save writes what the table knows of what is still there (the facts
// about content the store no longer has are dropped), if it learnt anything.
func (t *table[V]) save(dir string, there func(digest.Digest) bool) error {
	if dir == "" {
		return nil
	}
	t.mu.Lock()
	if !t.learnt {
		t.mu.Unlock()
		return nil
	}
	kept := make(map[digest.Digest]V, len(t.known))
	for k, v := range t.known {
		if there(k) {
			kept[k] = v
		}
	}
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(tableFile[V]{Version: factsVersion, Facts: kept})
	t.learnt = false
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(dir, t.file), buf.Bytes(), 0o600)
}

// SaveFacts writes the facts of each kind of which the lists of this
// process learnt any, but those about blobs the last list did not find
// (or, without a list, that are not there), the sizes of layers of no
// config kept, and what an index other than the last one read says.
func (s *Store) SaveFacts() error {
	f := s.facts
	there := s.HasBlob
	if have := f.listedBlobs.Load(); have != nil {
		there = func(d digest.Digest) bool { return have.has(s, d) == nil }
	}
	// The sizes kept are those of the layers of the configs kept.
	layered := map[digest.Digest]bool{}
	f.sizes.mu.Lock()
	sized := f.sizes.learnt
	f.sizes.mu.Unlock()
	if sized {
		f.configs.load(f.dir)
		f.configs.mu.Lock()
		for id, sum := range f.configs.known {
			if there(id) {
				for _, chain := range ChainIDs(sum.DiffIDs) {
					layered[chain] = true
				}
			}
		}
		f.configs.mu.Unlock()
	}
	current := func(d digest.Digest) bool { return d == f.lastIndex.Load() }
	return errors.Join(f.manifests.save(f.dir, there), f.configs.save(f.dir, there),
		f.sizes.save(f.dir, func(chain digest.Digest) bool { return layered[chain] }), f.indexes.save(f.dir, current))
}

// listedIndex is readIndex for a list: index.json read and hashed, and
// what it says taken from the facts when they know that content (its
// JSON decodes in a fifth of the time of the index of a thousand images).
// A writer of the index reads it itself (readIndex).
func (s *Store) listedIndex() (ocispec.Index, error) {
	p := filepath.Join(s.dir, ocispec.ImageIndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return s.readIndex() // its error
	}
	d := digest.FromBytes(b)
	s.facts.lastIndex.Store(d)
	if idx, ok := s.facts.indexes.get(s.facts.dir, d); ok {
		return idx, nil
	}
	idx, err := parseIndex(p, b)
	if err != nil {
		return idx, err
	}
	s.rememberIndex(b, idx)
	return idx, nil
}

// rememberIndex keeps idx as what index.json says when its content is b,
// if idx, as the facts give it back (gob keeps no empty map apart from
// none), is what b parses to or what writes b. The writer of an index
// (writeIndex) remembers it too, so that the list after a change reads no
// JSON.
func (s *Store) rememberIndex(b []byte, idx ocispec.Index) {
	var buf bytes.Buffer
	var back ocispec.Index
	if gob.NewEncoder(&buf).Encode(idx) != nil || gob.NewDecoder(&buf).Decode(&back) != nil {
		return
	}
	if !reflect.DeepEqual(back, idx) {
		if again, err := json.Marshal(back); err != nil || !bytes.Equal(again, b) {
			return
		}
	}
	d := digest.FromBytes(b)
	s.facts.lastIndex.Store(d)
	s.facts.indexes.put(s.facts.dir, d, back)
}

// blobs are the blobs the store has: the names of blobs/sha256, read at
// once (cheaper than a stat of each blob a list takes a fact about).
type blobs map[string]bool

func (s *Store) blobs() (blobs, error) {
	d, err := os.Open(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make(blobs, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// has reports whether blob d is among them, with the error of its absence.
func (b blobs) has(s *Store, d digest.Digest) error {
	if d.Algorithm() == digest.SHA256 && b[d.Encoded()] {
		return nil
	}
	return fmt.Errorf("blob %s: %w", d, &fs.PathError{Op: "open", Path: s.BlobPath(d), Err: fs.ErrNotExist})
}

// configOf returns the digest of the config manifest d names; have are the
// blobs the store has.
func (s *Store) configOf(d digest.Digest, have blobs) (digest.Digest, error) {
	m, err := s.manifestOf(d, have)
	return m.Config, err
}

// manifestOf returns what manifest d names; have are the blobs the store has.
func (s *Store) manifestOf(d digest.Digest, have blobs) (manifestFact, error) {
	if m, ok := s.facts.manifests.get(s.facts.dir, d); ok {
		if err := have.has(s, d); err != nil {
			return manifestFact{}, err
		}
		return m, nil
	}
	m, err := s.Manifest(d)
	if err != nil {
		return manifestFact{}, err
	}
	fact := manifestFact{Config: m.Config.Digest}
	for _, l := range m.Layers {
		fact.Layers = append(fact.Layers, l.Digest)
	}
	s.facts.manifests.put(s.facts.dir, d, fact)
	return fact, nil
}

// Summaries returns what the lists of images show of the config of each
// of imgs, in their order; a broken image's is empty. Whether a config's
// blob is there is what the last List saw (which listed imgs), not asked
// again.
func (s *Store) Summaries(imgs []Image) ([]Summary, error) {
	have := s.facts.listedBlobs.Load()
	if have == nil {
		b, err := s.blobs()
		if err != nil {
			return nil, err
		}
		have = &b
	}
	var err error
	out := make([]Summary, len(imgs))
	for i, img := range imgs {
		if out[i], err = s.summary(img, *have); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Summary is Summaries of one image.
func (s *Store) Summary(img Image) (Summary, error) {
	sums, err := s.Summaries([]Image{img})
	if err != nil {
		return Summary{}, err
	}
	return sums[0], nil
}

func (s *Store) summary(img Image, have blobs) (Summary, error) {
	if img.Broken != "" {
		return Summary{}, nil
	}
	if sum, ok := s.facts.configs.get(s.facts.dir, img.ID); ok {
		if err := have.has(s, img.ID); err != nil {
			return Summary{}, err
		}
		return sum, nil
	}
	c, _, err := s.Config(img)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Created: c.Created, Labels: c.Config.Labels, DiffIDs: c.RootFS.DiffIDs}
	s.facts.configs.put(s.facts.dir, img.ID, sum)
	return sum, nil
}

// LayerSize returns the unpacked size of layer chain, from what measure
// said of it before, or from measure (which reads the snapshot); the
// caller has checked that the snapshot exists.
func (s *Store) LayerSize(chain digest.Digest, measure func() (int64, error)) (int64, error) {
	if n, ok := s.facts.sizes.get(s.facts.dir, chain); ok {
		return n, nil
	}
	n, err := measure()
	if err != nil {
		return 0, err
	}
	s.facts.sizes.put(s.facts.dir, chain, n)
	return n, nil
}
