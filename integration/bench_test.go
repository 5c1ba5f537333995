package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/opencontainers/go-digest"
)

// benchDir keeps generated benchmark inputs between runs.
func benchDir(b *testing.B) string {
	d := os.Getenv("CAIRN_BENCH_DIR")
	if d == "" {
		d = "/var/tmp/cairn-bench"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.Fatal(err)
	}
	return d
}

// bigArchive is a docker-archive of 1 GiB in 50,000 files over three layers, of
// incompressible content, made once per variant and kept in benchDir. Each
// variant adds a small file to every layer: the same load work, other diff
// IDs, so that Docker cannot skip layers it has from an earlier variant.
func bigArchive(b *testing.B, variant int) (path, tag string) {
	b.Helper()
	tag = fmt.Sprintf("cairn-bench/big:v%d", variant)
	path = filepath.Join(benchDir(b), fmt.Sprintf("load-1g-50k-3layers-v%d.tar", variant))
	if _, err := os.Stat(path); err == nil {
		return path, tag
	}
	tmp := b.TempDir()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	var diffIDs []digest.Digest
	var layers []string
	const files, total = 50000, 1 << 30
	mtime := time.Unix(1700000000, 0)
	for l := 0; l < 3; l++ {
		lp := filepath.Join(tmp, fmt.Sprintf("layer%d.tar", l))
		f, err := os.Create(lp)
		if err != nil {
			b.Fatal(err)
		}
		h := digest.SHA256.Digester()
		tw := tar.NewWriter(io.MultiWriter(f, h.Hash()))
		buf := make([]byte, 64<<10)
		for d := 0; d < 50; d++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%02d/", l, d), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
			for i := 0; i < files/3/50; i++ {
				size := 1024 + rng.IntN(2*total/files-2048) // about 21 KiB on average
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%02d/f%05d", l, d, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: mtime})
				for size > 0 {
					n := min(size, len(buf))
					for j := 0; j < n; j += 8 {
						v := rng.Uint64()
						for k := 0; k < 8 && j+k < n; k++ {
							buf[j+k] = byte(v >> (8 * k))
						}
					}
					tw.Write(buf[:n])
					size -= n
				}
			}
		}
		mark := []byte(tag)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/variant", l), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(mark)), ModTime: mtime})
		tw.Write(mark)
		tw.Close()
		f.Close()
		diffIDs = append(diffIDs, h.Digest())
		layers = append(layers, lp)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd := digest.FromBytes(cfg)
	out, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	tw := tar.NewWriter(out)
	var names []string
	for i, lp := range layers {
		st, _ := os.Stat(lp)
		name := fmt.Sprintf("%d/layer.tar", i)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: st.Size()})
		f, _ := os.Open(lp)
		io.Copy(tw, f)
		f.Close()
		os.Remove(lp)
		names = append(names, name)
	}
	put := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	put(cd.Encoded()+".json", cfg)
	m, _ := json.Marshal([]map[string]any{{"Config": cd.Encoded() + ".json", "RepoTags": []string{tag}, "Layers": names}})
	put("manifest.json", m)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	out.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path, tag
}

// loadVariants counts the archive variants BenchmarkLoadVsDocker has used in
// this process (its first, one-iteration run included).
var loadVariants int

// BenchmarkLoadVsDocker loads the same 1 GiB, 50,000-file, three-layer
// docker-archive into cairn and into the real Docker engine, alternately, and
// reports cairn's speed-up (docker's time / cairn's).
//
// Nothing is deleted while it measures. On ext4 without a journal (this
// machine's root filesystem), the inode allocator skips every inode deleted
// in the last 60 seconds, or 300 while its inode table block is dirty — as
// it is while new files are being made in it: creating 50,000 files after
// deleting 50,000 others costs several times as long, whoever does it. So
// each iteration loads a variant of the archive (new diff IDs: Docker has to
// apply every layer) into a new store, and the stores and Docker's images are
// removed at the end.
func BenchmarkLoadVsDocker(b *testing.B) {
	docker := testutil.Docker(b)
	var cairnTime, dockerTime time.Duration
	var size int64
	var tags []string
	defer func() {
		if len(tags) > 0 {
			docker.RunErr(append([]string{"rmi", "-f"}, tags...)...)
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		archive, tag := bigArchive(b, loadVariants)
		loadVariants++
		tags = append(tags, tag)
		st, _ := os.Stat(archive)
		size += st.Size()
		s := newStore(b)
		exec.Command("sync").Run()
		b.StartTimer()

		start := time.Now()
		s.ok("load", "-i", archive)
		cairnTime += time.Since(start)

		b.StopTimer()
		exec.Command("sync").Run()
		start = time.Now()
		docker.Run(b, "load", "-q", "-i", archive)
		dockerTime += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(size)/(1<<20)/cairnTime.Seconds(), "cairn-MiB/s")
	b.ReportMetric(float64(size)/(1<<20)/dockerTime.Seconds(), "docker-MiB/s")
	b.ReportMetric(dockerTime.Seconds()/cairnTime.Seconds(), "x-faster-than-docker")
}

// BenchmarkImageCommands times `cairn images`, `tag` and `image inspect`, each a
// whole process, on a store of 100 images.
func BenchmarkImageCommands(b *testing.B) {
	s := newStore(b)
	var imgs []fixtureImage
	base := layerTar(b, dir("etc/"), file("etc/os-release", "bench"))
	for i := 0; i < 100; i++ {
		imgs = append(imgs, fixtureImage{Names: []string{fmt.Sprintf("bench/img%03d:1", i)}, Layers: [][]byte{base, layerTar(b, file(fmt.Sprintf("f%d", i), "x"))}})
	}
	s.ok("load", "-i", writeFile(b, dockerArchive(b, imgs...)))
	if n := strings.Count(s.ok("images", "-q"), "\n"); n != 100 {
		b.Fatalf("%d images, want 100", n)
	}
	for _, c := range []struct {
		name string
		args func(i int) []string
	}{
		{"images", func(int) []string { return []string{"images"} }},
		{"tag", func(i int) []string { return []string{"tag", "bench/img050:1", fmt.Sprintf("bench/tagged:%d", i%5)} }},
		{"inspect", func(int) []string { return []string{"image", "inspect", "bench/img042:1"} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s.ok(c.args(i)...)
			}
		})
	}
}
