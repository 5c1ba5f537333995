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
// incompressible content, made once and kept in benchDir.
func bigArchive(b *testing.B) string {
	b.Helper()
	path := filepath.Join(benchDir(b), "load-1g-50k-3layers.tar")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := b.TempDir()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	var diffIDs []digest.Digest
	var layers []string
	const files, total = 50000, 1 << 30
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
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%02d/", l, d), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)})
			for i := 0; i < files/3/50; i++ {
				size := 1024 + rng.IntN(2*total/files-2048) // about 21 KiB on average
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%02d/f%05d", l, d, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: time.Unix(1700000000, 0)})
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
		names = append(names, name)
	}
	put := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	put(cd.Encoded()+".json", cfg)
	m, _ := json.Marshal([]map[string]any{{"Config": cd.Encoded() + ".json", "RepoTags": []string{"cairn-bench/big:1"}, "Layers": names}})
	put("manifest.json", m)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	out.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path
}

// settle waits until files deleted by the previous step no longer slow down
// the next one. On ext4 without a journal (this machine's root filesystem),
// the inode allocator skips every inode deleted in the last 60 seconds (300
// while its inode table block is dirty): creating 50,000 files just after
// deleting 50,000 others costs ten times as long, whoever does it. So both
// loads are measured on a filesystem that has written its deletions back
// and let them age.
func settle(b *testing.B) {
	b.Helper()
	if err := exec.Command("sync").Run(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(61 * time.Second)
}

// BenchmarkLoadVsDocker loads the same 1 GiB, 50,000-file, three-layer
// docker-archive into cairn and into the real Docker engine, alternately, and
// reports cairn's speed-up (docker's time / cairn's).
func BenchmarkLoadVsDocker(b *testing.B) {
	docker := testutil.Docker(b)
	archive := bigArchive(b)
	st, _ := os.Stat(archive)
	var cairnTime, dockerTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := newStore(b)
		docker.RunErr("rmi", "-f", "cairn-bench/big:1")
		settle(b)
		b.StartTimer()

		start := time.Now()
		s.ok("load", "-i", archive)
		cairnTime += time.Since(start)

		b.StopTimer()
		os.RemoveAll(s.root)
		settle(b)
		start = time.Now()
		docker.Run(b, "load", "-q", "-i", archive)
		dockerTime += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	docker.RunErr("rmi", "-f", "cairn-bench/big:1")
	b.ReportMetric(float64(st.Size())/(1<<20)/cairnTime.Seconds()*float64(b.N), "cairn-MiB/s")
	b.ReportMetric(float64(st.Size())/(1<<20)/dockerTime.Seconds()*float64(b.N), "docker-MiB/s")
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
