package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/events"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/network"
	"github.com/opencontainers/go-digest"
)

// openEmpty opens an engine on a new root (no root privileges needed).
func openEmpty(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	e, err := Open(Options{Root: filepath.Join(dir, "root"), Run: filepath.Join(dir, "run"), NetworkRun: filepath.Join(dir, "network")})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// layerless is a docker-archive of one image without layers, named name,
// with labels.
func layerless(t *testing.T, name string, labels map[string]string) []byte {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": labels},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	id := digest.FromBytes(cfg)
	manifest, _ := json.Marshal([]map[string]any{{"Config": id.Encoded() + ".json", "RepoTags": []string{name}, "Layers": []string{}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		b    []byte
	}{{id.Encoded() + ".json", cfg}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.b)), Typeflag: tar.TypeReg})
		tw.Write(f.b)
	}
	tw.Close()
	return buf.Bytes()
}

func journal(t *testing.T, e *Engine) []events.Event {
	t.Helper()
	var out []events.Event
	if err := e.Events.Read(context.Background(), events.ReadOptions{}, func(ev events.Event) error { out = append(out, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// The engine's image, volume and network operations are in the journal
// with Docker's actors and attributes.
func TestEngineEvents(t *testing.T) {
	e := openEmpty(t)
	ctx := context.Background()
	imgs, err := e.LoadImages(ctx, bytes.NewReader(layerless(t, "app:1", map[string]string{"team": "a"})))
	if err != nil || len(imgs) != 1 {
		t.Fatalf("load: %v %v", imgs, err)
	}
	img := imgs[0]
	id := img.ID.String()
	if _, err := e.TagImage(ctx, "app:1", "localhost:5000/app:2"); err != nil {
		t.Fatal(err)
	}
	items, err := e.SaveItems([]string{"app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SaveImages(ctx, io.Discard, items); err != nil {
		t.Fatal(err)
	}
	e.emitRemoval(img, image.Removal{Untagged: []string{"app:1"}, Deleted: img.ID})
	e.emitPull("app:1")
	e.emitPush("localhost:5000/app:2")
	if _, err := e.CreateVolume(ctx, "data", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateVolume(ctx, "data", nil); err != nil { // there: no event
		t.Fatal(err)
	}
	if err := e.RemoveVolume(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveVolume(ctx, "data", true); err != nil { // gone: no event
		t.Fatal(err)
	}
	n, err := e.CreateNetwork(ctx, network.CreateOptions{Name: "front"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"image load " + id + " name=" + id + " team=a",
		"image tag " + id + " name=localhost:5000/app:2 team=a",
		"image save " + id + " name=" + id + " team=a",
		"image untag " + id + " name=" + id + " team=a",
		"image delete " + id + " name=" + id,
		"image pull app:1 name=app team=a",
		"image push localhost:5000/app:2 name=localhost:5000/app team=a",
		"volume create data driver=local",
		"volume destroy data driver=local",
		"network create " + n.ID + " name=front type=bridge",
	}
	var got []string
	for _, ev := range journal(t, e) {
		s := ev.Type + " " + ev.Action + " " + ev.Actor.ID
		for _, k := range []string{"driver", "name", "team", "type"} {
			if v, ok := ev.Actor.Attributes[k]; ok {
				s += " " + k + "=" + v
			}
		}
		got = append(got, s)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Info and DiskUsage of a store with one image of two names and no layer.
func TestInfoAndDiskUsage(t *testing.T) {
	e := openEmpty(t)
	ctx := context.Background()
	if _, err := e.LoadImages(ctx, bytes.NewReader(layerless(t, "app:1", nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.TagImage(ctx, "app:1", "app:2"); err != nil {
		t.Fatal(err)
	}
	info, err := e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Images != 1 || info.Containers != 0 || info.Driver != "overlay" || info.DockerRootDir != e.Root || info.NCPU < 1 ||
		info.MemTotal <= 0 || info.CgroupDriver != "cgroupfs" || info.KernelVersion == "" || info.ServerVersion == "" {
		t.Fatalf("info: %+v", info)
	}
	du, err := e.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(du.Images) != 1 || strings.Join(du.Images[0].Names, ",") != "app:1,app:2" || du.LayersSize != 0 ||
		len(du.Containers) != 0 || len(du.Volumes) != 0 || len(du.BuildCache) != 0 {
		t.Fatalf("disk usage: %+v", du)
	}
	// A test binary's build information lists no modules: libcontainer's
	// version is there in cairn's (see integration's TestVersionMatchesDocker).
	if b := BuildInfo(); b.Version == "" || b.GoVersion == "" {
		t.Fatalf("build info: %+v", b)
	}
	v := ServerVersion()
	if v.Platform.Name != "cairn Engine" || len(v.Components) < 1 || v.Components[0].Name != "Engine" {
		t.Fatalf("version: %+v", v)
	}
}
