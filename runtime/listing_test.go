package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/opencontainers/go-digest"
)

// lossy is a record with every kind of value gob alone would lose: empty
// slices and maps, pointers to zero values, at each depth.
func lossy(id string) *Container {
	zero, no := 0, false
	swap := int64(0)
	c := &Container{
		ID: id, Name: "n-" + id[:6], Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Path: "true", Args: []string{},
		ImageID: digest.FromString("image " + id), Chain: digest.FromString("chain " + id),
		Config: Config{Image: "busybox", StopTimeout: &zero},
		Host: HostConfig{
			NetworkMode: "none", MaskedPaths: []string{}, ReadonlyPaths: []string{"/proc/bus"}, Init: &no, MemorySwappiness: &swap,
			PortBindings: nat.PortMap{"80/tcp": []nat.PortBinding{}, "81/tcp": {{HostIP: "", HostPort: "8081"}}},
			LogConfig:    LogConfig{Type: LogJSONFile, Config: map[string]string{}},
			Sysctls:      map[string]string{"net.ipv4.ip_forward": ""},
		},
		Mounts:   []Mount{{Type: "volume", Name: "v", Destination: "/v", RW: true}},
		Networks: map[string]*EndpointSettings{"a": {}, "b": {Aliases: []string{}}},
		State:    State{Status: Exited, Health: &Health{Log: []HealthProbe{}}},
	}
	c.Config.Cmd = []string{}
	c.Config.Labels = map[string]string{}
	c.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	return c
}

// fromJSON is c as a record's file gives it back.
func fromJSON(t *testing.T, c *Container) *Container {
	b, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Container
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

func TestShapeGivesBackWhatGobLoses(t *testing.T) {
	want := fromJSON(t, lossy(newID()))
	e, ok := recordsCache.make(want, fileID{Ino: 1})
	if !ok {
		t.Fatal("the record cannot be cached")
	}
	b, err := encodeCache([]*cachedRecord{e})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c")
	os.WriteFile(path, b, 0o600)
	got := load(recordsCache, path)[want.ID]
	if got == nil {
		t.Fatal("the entry did not load")
	}
	if !reflect.DeepEqual(&got.Rec, want) {
		t.Fatalf("after the cache:\n%+v\nwant\n%+v", got.Rec, *want)
	}
	// Without its shape, gob alone loses them: the test tests something.
	bare := &cachedRecord{Rec: *want}
	b, _ = encodeCache([]*cachedRecord{bare})
	os.WriteFile(path, b, 0o600)
	if back := load(recordsCache, path)[want.ID]; back == nil || reflect.DeepEqual(&back.Rec, want) {
		t.Fatal("gob kept what it was expected to lose: this test proves nothing")
	}
}

// newStoreAt is a container store with n records, written as Create
// writes them, and a run directory of its own.
func newStoreAt(t *testing.T, n int) *Store {
	root := t.TempDir()
	s := &Store{dir: filepath.Join(root, "containers"), run: filepath.Join(root, "run")}
	os.MkdirAll(s.dir, 0o711)
	for i := 0; i < n; i++ {
		c := fromJSON(t, lossy(newID()))
		os.MkdirAll(s.path(c.ID), 0o700)
		b, _ := encode(c)
		if err := os.WriteFile(s.path(c.ID, "container.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// recordsFromFiles is what records must return: every record as its file has it.
func recordsFromFiles(t *testing.T, s *Store) map[string]*Container {
	ids, err := s.ids()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Container{}
	for _, id := range ids {
		if c, err := s.read(id); err == nil {
			out[id] = c
		}
	}
	return out
}

func checkListing(t *testing.T, s *Store) {
	t.Helper()
	recs, err := s.records()
	if err != nil {
		t.Fatal(err)
	}
	want := recordsFromFiles(t, s)
	if len(recs) != len(want) {
		t.Fatalf("records: %d, want %d", len(recs), len(want))
	}
	for _, c := range recs {
		if !reflect.DeepEqual(c, want[c.ID]) {
			t.Fatalf("record %s:\n%+v\nwant\n%+v", c.ID, *c, *want[c.ID])
		}
	}
	heads, err := s.heads()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		w := want[h.ID]
		if w == nil || h.Name != w.Name || h.Image != w.ImageID || h.Chain != w.Chain {
			t.Fatalf("head %+v, record %+v", *h, w)
		}
	}
}

// The cache is used once its records are settled, and a record written
// since (a new file renamed over it, as update writes), one removed and
// one added are each seen at the next list.
func TestListingCacheFollowsTheRecords(t *testing.T) {
	defer func(d time.Duration) { timestampSlack = d }(timestampSlack)
	timestampSlack = 0
	s := newStoreAt(t, 20)
	checkListing(t, s)
	if _, err := os.Stat(s.cachePath("containers")); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	before, _ := os.ReadFile(s.cachePath("containers"))
	checkListing(t, s)
	if after, _ := os.ReadFile(s.cachePath("containers")); string(after) != string(before) {
		t.Fatal("a list that read nothing new wrote the cache again")
	}
	ids, _ := s.ids()
	// Renamed: same size, new file.
	c, _ := s.read(ids[3])
	c.Name = "x" + c.Name[1:]
	if err := s.write(c); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(s.path(ids[5]))
	extra := newStoreAt(t, 1)
	added, _ := extra.ids()
	os.Rename(extra.path(added[0]), s.path(added[0]))
	checkListing(t, s)
	heads, _ := s.heads()
	found := false
	for _, h := range heads {
		found = found || h.ID == ids[3] && h.Name == c.Name
	}
	if !found {
		t.Fatalf("the rename of %s is not seen", ids[3])
	}
	// A cache that does not decode is no cache.
	os.WriteFile(s.cachePath("containers"), []byte("garbage"), 0o600)
	os.WriteFile(s.cachePath("container-heads"), []byte("garbage"), 0o600)
	checkListing(t, s)
}

// A record changed within the slack is read from its file every time,
// and never kept: the cache cannot hold what a later file of the same
// inode and times would be taken for.
func TestListingCacheKeepsNoUnsettledRecord(t *testing.T) {
	s := newStoreAt(t, 3)
	checkListing(t, s)
	if cached := load(recordsCache, s.cachePath("containers")); len(cached) != 0 {
		t.Fatalf("%d records written just now are cached", len(cached))
	}
}

// Lists running while records are created, rewritten and removed each see
// every record that stayed, once, as its file has it, and no half of one.
func TestListingCacheUnderConcurrentChanges(t *testing.T) {
	defer func(d time.Duration) { timestampSlack = d }(timestampSlack)
	timestampSlack = 0
	s := newStoreAt(t, 30)
	stable, _ := s.ids()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := fromJSON(t, lossy(newID()))
			tmp := filepath.Join(filepath.Dir(s.dir), fmt.Sprintf("stage-%d", i))
			os.MkdirAll(tmp, 0o700)
			b, _ := encode(c)
			os.WriteFile(filepath.Join(tmp, "container.json"), b, 0o600)
			os.Rename(tmp, s.path(c.ID))
			c.State.Status = Running
			s.write(c)
			os.RemoveAll(s.path(c.ID))
			old, _ := s.read(stable[i%len(stable)])
			old.RestartCount++
			s.write(old)
		}
	}()
	for i := 0; i < 200; i++ {
		recs, err := s.records()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, c := range recs {
			seen[c.ID]++
			if c.Path != "true" || c.Args == nil {
				t.Fatalf("a record half read: %+v", *c)
			}
		}
		for _, id := range stable {
			if seen[id] != 1 {
				t.Fatalf("list %d: container %s seen %d times", i, id, seen[id])
			}
		}
	}
	close(stop)
	wg.Wait()
	checkListing(t, s)
}
