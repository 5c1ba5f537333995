package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/cairn-runtime/cairn/runtime"
	"github.com/opencontainers/go-digest"
)

// testImage is an image without layers (nothing to unpack: no root
// needed), for a docker-archive made in code.
type testImage struct {
	names   []string
	labels  map[string]string
	created time.Time
}

func (ti testImage) config() ([]byte, digest.Digest) {
	b, _ := json.Marshal(map[string]any{
		"created": ti.created.UTC().Format(time.RFC3339), "architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": ti.labels, "Cmd": []string{"true"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	return b, digest.FromBytes(b)
}

// loadImages loads imgs into e, as `docker load` of a docker-archive.
func loadImages(t *testing.T, e *Engine, imgs ...testImage) []digest.Digest {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	type item struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []item
	var ids []digest.Digest
	for _, img := range imgs {
		b, d := img.config()
		put(d.Encoded()+".json", b)
		manifest = append(manifest, item{Config: d.Encoded() + ".json", RepoTags: img.names, Layers: []string{}})
		ids = append(ids, d)
	}
	mb, _ := json.Marshal(manifest)
	put("manifest.json", mb)
	tw.Close()
	if _, err := e.Images.Load(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return ids
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	e, err := Open(Options{Root: filepath.Join(dir, "root"), Run: filepath.Join(dir, "run"), NetworkRun: filepath.Join(dir, "network")})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func names(list []ImageSummary) string {
	var out []string
	for _, s := range list {
		out = append(out, s.Repository+":"+s.Tag)
	}
	return strings.Join(out, " ")
}

// ImageList's filters, and PruneImages on the same images: dangling ones
// only, then every image no container uses, an image in use keeping its
// last name.
func TestImageListAndPrune(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	at := time.Date(2023, 11, 14, 0, 0, 0, 0, time.UTC)
	ids := loadImages(t, e,
		testImage{names: []string{"app:1", "app:2", "other/app:latest"}, labels: map[string]string{"role": "app"}, created: at},
		testImage{names: []string{"db:1"}, labels: map[string]string{"role": "db"}, created: at.Add(time.Hour)},
		testImage{labels: map[string]string{"role": "none"}, created: at.Add(2 * time.Hour)},
		testImage{labels: map[string]string{"role": "used"}, created: at.Add(3 * time.Hour)},
	)
	for _, c := range []struct {
		f    Filters
		want string
	}{
		{Filters{}, "<none>:<none> <none>:<none> db:1 app:1 app:2 other/app:latest"},
		{Filters{"dangling": {"true"}}, "<none>:<none> <none>:<none>"},
		{Filters{"dangling": {"false"}}, "db:1 app:1 app:2 other/app:latest"},
		{Filters{"reference": {"app"}}, "app:1 app:2"},
		{Filters{"reference": {"*/app", "db:*"}}, "db:1 other/app:latest"},
		{Filters{"label": {"role=app"}}, "app:1 app:2 other/app:latest"},
		{Filters{"before": {"db:1"}}, "app:1 app:2 other/app:latest"},
		{Filters{"since": {"db:1"}, "dangling": {"true"}}, "<none>:<none> <none>:<none>"},
	} {
		list, err := e.ImageList(ImageListOptions{Filters: c.f})
		if err != nil || names(list) != c.want {
			t.Errorf("ImageList(%v) = %q, %v; want %q", c.f, names(list), err, c.want)
		}
	}
	if _, err := e.ImageList(ImageListOptions{Filters: Filters{"dangling": {"maybe"}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("dangling=maybe: %v", err)
	}
	if _, err := e.ImageList(ImageListOptions{Filters: Filters{"before": {"nosuch"}}}); err == nil || err.Error() != "No such image: nosuch:latest" {
		t.Errorf("before=nosuch: %v", err)
	}

	for _, ref := range []string{ids[3].String(), "app:1"} {
		if _, err := e.Containers.Create(ctx, runtime.CreateOptions{Image: ref, Host: runtime.HostConfig{NetworkMode: "none"}}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.PruneImages(ctx, PruneOptions{})
	if err != nil || len(rep.Items) != 1 || rep.Items[0].Deleted != ids[2].String() {
		t.Fatalf("prune of the dangling images: %+v %v", rep, err)
	}
	rep, err = e.PruneImages(ctx, PruneOptions{All: true, Filters: Filters{"label!": {"role=db"}}})
	if err != nil || len(rep.Items) != 2 || rep.Items[0].Untagged != "app:1" || rep.Items[1].Untagged != "app:2" {
		t.Fatalf("prune -a of an image in use: %+v %v", rep, err)
	}
	if list, _ := e.ImageList(ImageListOptions{}); names(list) != "<none>:<none> db:1 other/app:latest" {
		t.Errorf("after the prunes: %q", names(list))
	}
	if _, err := e.PruneImages(ctx, PruneOptions{Filters: Filters{"x": {"1"}}}); err == nil || err.Error() != "Invalid filter 'x'" {
		t.Errorf("an unknown filter: %v", err)
	}
}

// ContainerSummaries with Docker's filters on created containers; Rename
// under the names lock; PruneContainers with its filters (as root: a
// removal unmounts).
func TestContainerFiltersRenamePrune(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	loadImages(t, e, testImage{names: []string{"app:1"}, created: time.Date(2023, 11, 14, 0, 0, 0, 0, time.UTC)})
	var made []string
	for _, n := range []string{"web1", "web2", "db"} {
		c, err := e.Containers.Create(ctx, runtime.CreateOptions{Name: n, Image: "app:1", Labels: map[string]string{"tier": n[:2]}, Host: runtime.HostConfig{NetworkMode: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, c.ID)
		time.Sleep(2 * time.Millisecond)
	}
	list := func(o ListOptions) string {
		t.Helper()
		l, err := e.ContainerSummaries(ctx, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		var out []string
		for _, c := range l {
			out = append(out, c.Name)
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{}, ""},
		{ListOptions{All: true}, "db web2 web1"},
		{ListOptions{Filters: Filters{"status": {"created"}}}, "db web2 web1"},
		{ListOptions{All: true, Filters: Filters{"name": {"^web"}}}, "web2 web1"},
		{ListOptions{All: true, Filters: Filters{"name": {"^/db$", "1$"}}}, "db web1"},
		{ListOptions{All: true, Filters: Filters{"label": {"tier=we"}}}, "web2 web1"},
		{ListOptions{All: true, Filters: Filters{"id": {made[1][:6]}}}, "web2"},
		{ListOptions{All: true, Filters: Filters{"before": {"db"}}}, "web2 web1"},
		{ListOptions{All: true, Filters: Filters{"since": {"web1"}}}, "db web2"},
		{ListOptions{All: true, Filters: Filters{"ancestor": {"app:1"}}}, "db web2 web1"},
		{ListOptions{All: true, Filters: Filters{"ancestor": {"app"}}}, ""},
		{ListOptions{All: true, Filters: Filters{"exited": {"0"}}}, ""},
		{ListOptions{Limit: 2}, "db web2"},
		{ListOptions{Latest: true}, "db"},
	} {
		if got := list(c.o); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
	for f, want := range map[string]string{"x": "Invalid filter 'x'", "status": "Invalid filter 'status=foo'", "exited": `strconv.Atoi: parsing "foo": invalid syntax`, "before": "no such container foo"} {
		if _, err := e.ContainerSummaries(ctx, ListOptions{Filters: Filters{f: {"foo"}}}); err == nil || err.Error() != want {
			t.Errorf("filter %s=foo: %v, want %q", f, err, want)
		}
	}

	for _, c := range []struct {
		ref, name string
		is        error
		want      string
	}{
		{"web1", "web2", runtime.ErrConflict, `Error when allocating new name: Conflict. The container name "/web2" is already in use by container "` + made[1] + `". You have to remove (or rename) that container to be able to reuse that name.`},
		{"web1", "web1", runtime.ErrInvalid, "Renaming a container with the same name as its current name"},
		{"web1", "w", runtime.ErrInvalid, "Error when allocating new name: Invalid container name (/w), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{"nosuch", "x1", runtime.ErrNotFound, "No such container: nosuch"},
	} {
		if err := e.Containers.Rename(ctx, c.ref, c.name); !errors.Is(err, c.is) || err.Error() != c.want {
			t.Errorf("Rename(%s, %s) = %v, want %q", c.ref, c.name, err, c.want)
		}
	}
	if err := e.Containers.Rename(ctx, made[0][:8], "/front"); err != nil {
		t.Fatal(err)
	}
	if got := list(ListOptions{All: true}); got != "db web2 front" {
		t.Errorf("after the rename: %q", got)
	}

	// The removal of a container unmounts and removes cgroups: root's.
	testutil.RequiresRoot(t)
	rep, err := e.PruneContainers(ctx, Filters{"label!": {"tier=db"}, "until": {"1h"}})
	if err != nil || len(rep.Deleted) != 0 {
		t.Errorf("until an hour ago: %+v %v", rep, err)
	}
	rep, err = e.PruneContainers(ctx, Filters{"label!": {"tier=db"}})
	if err != nil || len(rep.Deleted) != 2 {
		t.Errorf("prune of all but db: %+v %v", rep, err)
	}
	if got := list(ListOptions{All: true}); got != "db" {
		t.Errorf("after the prune: %q", got)
	}
}
