package integration

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
)

// fingerprint is every path of the store but the lock files, and index.json.
func (s *store) fingerprint() string {
	s.t.Helper()
	var paths []string
	filepath.Walk(s.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !strings.Contains(p, "/locks/") {
			paths = append(paths, strings.TrimPrefix(p, s.root))
		}
		return nil
	})
	sort.Strings(paths)
	idx, _ := os.ReadFile(filepath.Join(s.root, "images", "index.json"))
	return strings.Join(paths, "\n") + "\n" + string(idx)
}

// Bad archives get an error that names what is wrong, and the store stays as it was.
func TestHostileArchivesLeaveStoreUnchanged(t *testing.T) {
	good := fixtureImage{Names: []string{"good"}, Layers: [][]byte{layerTar(t, file("f", "ok"))}}
	escape := layerTar(t, file("../../escape", "x"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layerTar(t, file("big", strings.Repeat("z", 100000))))
	zw.Close()
	truncatedGzip := gz.Bytes()[:gz.Len()/2]

	withConfig := func(mut func(img *fixtureImage) []byte) []byte { img := good; return mut(&img) }
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"layer escaping its root", dockerArchive(t, fixtureImage{Names: []string{"bad"}, Layers: [][]byte{escape}}), "../../escape"},
		{"truncated gzip layer", func() []byte {
			// The config's diff ID cannot be known for a broken stream; any will do.
			a := dockerArchive(t, fixtureImage{Names: []string{"bad"}, Layers: [][]byte{truncatedGzip}})
			return a
		}(), "layer.tar"},
		{"diff ID mismatch", func() []byte {
			a := dockerArchive(t, good)
			return bytes.Replace(a, []byte("ok"), []byte("KO"), 1)
		}(), "diff ID"},
		{"config digest mismatch", withConfig(func(img *fixtureImage) []byte {
			a := dockerArchive(t, *img)
			return bytes.Replace(a, []byte(`"os":"linux"`), []byte(`"os":"LINUX"`), 1)
		}), "has digest"},
		{"truncated archive", func() []byte {
			a := dockerArchive(t, fixtureImage{Names: []string{"bad"}, Layers: [][]byte{layerTar(t, file("big", strings.Repeat("y", 200000)))}})
			return a[:100000]
		}(), "archive"},
		{"not an archive", bytes.Repeat([]byte("garbage!"), 1000), "archive"},
		{"missing layer", func() []byte {
			cfg, cd := good.config()
			m := `[{"Config":"` + cd.Encoded() + `.json","RepoTags":["bad"],"Layers":["nope/layer.tar"]}]`
			var entries []tartest.Entry
			for name, b := range map[string][]byte{cd.Encoded() + ".json": cfg, "manifest.json": []byte(m)} {
				entries = append(entries, tartest.Context{}.File(name, string(b)))
			}
			return tartest.Tar(t, entries...)
		}(), `no layer "nope/layer.tar"`},
	}
	s := newStore(t)
	s.ok("load", "-i", writeFile(t, dockerArchive(t, good)))
	before := s.fingerprint()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.run(nil, "load", "-i", writeFile(t, c.archive))
			if r.Code != 1 || !strings.Contains(r.Stderr, c.want) {
				t.Fatalf("want exit 1 and an error naming %q; got exit %d: %s", c.want, r.Code, r.Stderr)
			}
			t.Logf("%s", r.Stderr)
			if after := s.fingerprint(); after != before {
				t.Fatalf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.root), "escape")); err == nil {
				t.Fatal("a layer wrote outside the store")
			}
		})
	}
	s.checkConsistent()
}
