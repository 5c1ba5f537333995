package runtime

// The listing cache: what a list of containers reads instead of every
// container.json, each entry checked against its record's file.
//
// A list of containers (ps, a name looked up, the name check of create and
// rename, rmi's question of who uses an image, the snapshots prune keeps)
// had to read and decode every record: with a thousand containers, most of
// the time of `ps -a` or `inspect NAME`. Two files in the run directory
// keep what the last list read, each entry with the identity of the file it
// came from (inode, size, modification and change times): the full records
// (cache/containers), and only the ID, name, image and chain of each
// (cache/container-heads), which most lists need and which reads in a tenth
// of the time. A list stats each container.json and takes the cached entry
// when its file is the one the entry came from; it reads the others, and
// writes the cache again when what it read differs from it.
//
// Why an entry is never stale: the entry was read through the file it was
// stat'ed through (fstat of the open file), and it is kept only for a file
// last modified and changed longer ago than timestampSlack before it was
// read, as git treats a "racily clean" index entry. Any write after that
// read — a new file renamed over container.json, as every writer does
// (Create's staged directory, atomicfile.Replace), or even one in place —
// leaves a file there whose modification time is after the read, less the
// granularity of the kernel's clock (a tick, far below the slack): never
// the entry's. Each cache file is written whole and renamed (atomicfile),
// by any process, without a lock: every version of it holds only true
// entries. A cache that does not decode, of another version, or gone (a
// reboot empties the run directory) is read as empty.

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// cacheVersion is the version of the cache's files: another is read as empty.
const cacheVersion = 2

// timestampSlack bounds how far a file's modification time may lag the
// clock read before it was made (the kernel's coarse clock: a tick).
var timestampSlack = 2 * time.Second

// fileID is the identity of a record's file.
type fileID struct {
	Ino                uint64
	Size, Mtime, Ctime int64
}

func fileIDOf(st *unix.Stat_t) fileID {
	return fileID{Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// settled reports whether an entry of a file of this identity, read at
// readAt, may be kept.
func (f fileID) settled(readAt time.Time) bool {
	return f.Mtime < readAt.Add(-timestampSlack).UnixNano() && f.Ctime < readAt.Add(-timestampSlack).UnixNano()
}

// head is what most lists need of a container.
type head struct {
	ID, Name     string
	Image, Chain digest.Digest
	File         fileID
}

func headOf(c *Container, f fileID) head {
	return head{ID: c.ID, Name: c.Name, Image: c.ImageID, Chain: c.Chain, File: f}
}

// cachedRecord is a whole record and its shape (see shape.go).
type cachedRecord struct {
	File  fileID
	Shape [][]string
	Rec   Container
}

// cacheFile is the content of either file: its version, then its entries.
type cacheFile[E any] struct {
	Version int
	Entries []*E
}

// cached is one file of the cache, of entries of type E.
type cached[E any] struct {
	file func(*E) fileID
	id   func(*E) string
	// make builds the entry of a record read from its file, and says
	// whether it can be kept in the file.
	make func(c *Container, f fileID) (*E, bool)
	// loaded finishes an entry decoded from the file; false drops it.
	loaded func(*E) bool
}

var (
	headsCache = cached[head]{
		file: func(h *head) fileID { return h.File }, id: func(h *head) string { return h.ID },
		make: func(c *Container, f fileID) (*head, bool) {
			h := headOf(c, f)
			return &h, true
		},
		loaded: func(*head) bool { return true },
	}
	recordsCache = cached[cachedRecord]{
		file: func(r *cachedRecord) fileID { return r.File }, id: func(r *cachedRecord) string { return r.Rec.ID },
		make: func(c *Container, f fileID) (*cachedRecord, bool) {
			shape, err := shapeOf(c)
			return &cachedRecord{File: f, Shape: shape, Rec: *c}, err == nil
		},
		loaded: func(r *cachedRecord) bool { return reshape(&r.Rec, r.Shape) },
	}
)

func (s *Store) cachePath(name string) string { return filepath.Join(s.run, "cache", name) }

// scan returns an entry for every container that has a record, in the
// order of ids, from the cache file at path where it holds one of the
// record's file, else from the record, and writes the file again when
// what it read differs from it. A record removed meanwhile is left out.
func scan[E any](s *Store, c cached[E], path string) ([]*E, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	dir, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	old := load(c, path)
	out := make([]*E, 0, len(ids))
	var keep []*E // the entries to write, when the file changes
	changed := false
	for _, id := range ids {
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), id+"/container.json", &st, 0); errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			return nil, &os.PathError{Op: "stat", Path: s.path(id, "container.json"), Err: err}
		}
		if e, ok := old[id]; ok && c.file(e) == fileIDOf(&st) {
			out = append(out, e)
			keep = append(keep, e)
			delete(old, id)
			continue
		}
		readAt := time.Now()
		rec, f, err := s.readFile(id)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		e, ok := c.make(rec, f)
		out = append(out, e)
		if ok && f.settled(readAt) {
			keep = append(keep, e)
			changed = true
		}
		if _, was := old[id]; was {
			delete(old, id)
			changed = true
		}
	}
	if changed || len(old) > 0 {
		save(c, path, keep) // a cache that cannot be written is no error: the next list reads the records
	}
	return out, nil
}

// load reads the cache file at path; an unreadable one is empty.
func load[E any](c cached[E], path string) map[string]*E {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	entries, err := decodeCache[E](b)
	if err != nil {
		return nil
	}
	out := make(map[string]*E, len(entries))
	for _, e := range entries {
		if e != nil && c.loaded(e) {
			out[c.id(e)] = e
		}
	}
	return out
}

// save writes entries to the cache file at path, leaving out any that
// would not read back as they are.
func save[E any](c cached[E], path string, entries []*E) error {
	b, err := encodeCache(entries)
	if err != nil {
		return err
	}
	back, err := decodeCache[E](b)
	if err != nil || len(back) != len(entries) {
		return fmt.Errorf("the listing cache does not read back: %v", err)
	}
	kept := entries[:0:0]
	for i, e := range back {
		if e != nil && c.loaded(e) && reflect.DeepEqual(e, entries[i]) {
			kept = append(kept, entries[i])
		}
	}
	if len(kept) != len(entries) {
		if b, err = encodeCache(kept); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	sweepTemporaries(path)
	return atomicfile.Replace(path, b, 0o600)
}

// A cache file is a run of chunks, each the 4-byte big-endian length of a
// gob stream of a cacheFile of up to chunkEntries entries, then that
// stream: the chunks decode at once, on as many threads as Go runs.
const chunkEntries = 256

func encodeCache[E any](entries []*E) ([]byte, error) {
	var buf bytes.Buffer
	for start := 0; start == 0 || start < len(entries); start += chunkEntries {
		var chunk bytes.Buffer
		part := entries[start:min(start+chunkEntries, len(entries))]
		if err := gob.NewEncoder(&chunk).Encode(cacheFile[E]{Version: cacheVersion, Entries: part}); err != nil {
			return nil, err
		}
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(chunk.Len())))
		buf.Write(chunk.Bytes())
	}
	return buf.Bytes(), nil
}

func decodeCache[E any](b []byte) ([]*E, error) {
	var chunks [][]byte
	for len(b) > 0 {
		if len(b) < 4 || uint64(len(b)-4) < uint64(binary.BigEndian.Uint32(b)) {
			return nil, errors.New("a chunk cut short")
		}
		n := binary.BigEndian.Uint32(b)
		chunks, b = append(chunks, b[4:4+n]), b[4+n:]
	}
	parts := make([][]*E, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	work := make(chan int, len(chunks))
	for i := range chunks {
		work <- i
	}
	close(work)
	for w := 0; w < min(len(chunks), goruntime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var cf cacheFile[E]
				if errs[i] = gob.NewDecoder(bytes.NewReader(chunks[i])).Decode(&cf); errs[i] == nil && cf.Version != cacheVersion {
					errs[i] = fmt.Errorf("version %d", cf.Version)
				}
				parts[i] = cf.Entries
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []*E
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// sweepTemporaries removes the temporary files a writer of path killed
// before its rename left (atomicfile's ".<name>.tmp-*"), once they are a
// minute old: no live writer takes that long.
func sweepTemporaries(path string) {
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, p := range left {
		if st, err := os.Lstat(p); err == nil && time.Since(st.ModTime()) > time.Minute {
			os.Remove(p)
		}
	}
}

// readFile reads container id's record and the identity of the file it
// read it from.
func (s *Store) readFile(id string) (*Container, fileID, error) {
	f, err := os.Open(s.path(id, "container.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fileID{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	} else if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fileID{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fileID{}, err
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fileID{}, fmt.Errorf("container %s: %w", ShortID(id), err)
	}
	return &c, fileIDOf(&st), nil
}

// heads lists what most lists need of every container (see scan).
func (s *Store) heads() ([]*head, error) {
	return scan(s, headsCache, s.cachePath("container-heads"))
}

// records reads every record (see scan), skipping those removed meanwhile.
func (s *Store) records() ([]*Container, error) {
	entries, err := scan(s, recordsCache, s.cachePath("containers"))
	if err != nil {
		return nil, err
	}
	out := make([]*Container, len(entries))
	for i, e := range entries {
		out[i] = &e.Rec
	}
	return out, nil
}
