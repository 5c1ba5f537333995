package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
)

// A layer with a ".wh..wh..opq" at its root hides every layer below it, as
// OCI says; overlayfs ignores the opaque mark of a lower layer's root (and
// Docker shows the layers below), so cairn's mounts of the chain start at
// that layer. The image: layer 1 (hidden), layer 2 with an opaque root and
// busybox, layer 3 over it.
func opaqueRootImage(t *testing.T) fixtureImage {
	l1 := layerTar(t, file("one", "1"), file("shared", "from 1"), dir("lowdir/"), file("lowdir/x", "x"),
		dir("bin/"), file("bin/lowtool", "low"), dir("d/"), file("d/one", "1"))
	l2 := []tartest.Entry{fixtures.Opaque("")}
	l2 = append(l2, tarEntries(t, busyboxTar(t))...)
	l2 = append(l2, file("two", "2"), file("shared", "from 2"), file("del2", "2"), dir("d/"), file("d/two", "2"),
		fixtures.Whiteout("d/one"), fixtures.Whiteout("one")) // whiteouts of hidden names: no-ops
	l3 := layerTar(t, file("three", "3"))
	return fixtureImage{Names: []string{"opq"}, Layers: [][]byte{l1, layerTar(t, l2...), l3}, Cmd: []string{"sh"}}
}

// tarEntries reads a tar stream as entries.
func tarEntries(t *testing.T, b []byte) []tartest.Entry {
	t.Helper()
	var out []tartest.Entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tartest.Entry{Header: *h, Body: string(body)})
	}
}

// tarFiles reads a tar stream as name → body (directories end in "/", as
// names: their body is ""), leaving out the names under busybox's own
// directories.
func tarFiles(t *testing.T, b []byte, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range tarEntries(t, b) {
		name := strings.TrimPrefix(strings.TrimPrefix(e.Header.Name, "./"), prefix)
		if e.Header.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		switch top, _, _ := strings.Cut(name, "/"); top {
		case "bin", "sbin", "usr", "etc", "dev", "proc", "sys", "tmp", "root", "var", "":
			if name != "bin/lowtool" {
				continue
			}
		}
		out[name] = e.Body
	}
	return out
}

func sortedKeys(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// probe lists which of the fixture's names a container sees, then /shared.
const probe = `for f in /one /two /three /shared /del2 /new /lowdir /lowdir/x /lowdir/y /bin/lowtool /d/one /d/two; do test -e $f && echo $f; done; cat /shared; echo; cat /one 2>/dev/null || true`

// run, diff, export, cp, commit and a run of the committed image all see
// layer 2 and above, never layer 1.
func TestOpaqueRootHidesLowerLayers(t *testing.T) {
	s := newStore(t)
	s.ok("load", "-i", writeFile(t, dockerArchive(t, opaqueRootImage(t))))

	if out := s.ok("run", "--rm", "opq", "sh", "-c", probe); out != "/two\n/three\n/shared\n/del2\n/d/two\nfrom 2\n" {
		t.Fatalf("run sees %q", out)
	}
	// d is layer 2's alone: no whiteout of layer 2 shows in it.
	if out := s.ok("run", "--rm", "opq", "ls", "-a", "/d"); out != ".\n..\ntwo\n" {
		t.Fatalf("ls -a /d: %q", out)
	}

	// A new file, a file of layer 2 deleted, and names that only the hidden
	// layer 1 had made again: a file, and a directory.
	s.ok("run", "--name", "c", "opq", "sh", "-c", "echo new > /new; rm /del2; echo back > /one; mkdir /lowdir; echo y > /lowdir/y")
	if out := s.ok("diff", "c"); out != "D /del2\nA /lowdir\nA /lowdir/y\nA /new\nA /one\n" {
		t.Fatalf("diff: %q", out)
	}

	// export and cp out of the stopped container show the same tree.
	want := map[string]string{"d/": "", "d/two": "2", "lowdir/": "", "lowdir/y": "y\n", "new": "new\n", "one": "back\n", "shared": "from 2", "three": "3", "two": "2"}
	exported := tarFiles(t, []byte(s.ok("export", "c")), "")
	if sortedKeys(exported) != sortedKeys(want) {
		t.Fatalf("export has %s, want %s", sortedKeys(exported), sortedKeys(want))
	}
	for name, body := range want {
		if exported[name] != body {
			t.Fatalf("export: %s is %q, want %q", name, exported[name], body)
		}
	}
	copied := tarFiles(t, []byte(s.ok("cp", "c:/", "-")), "/")
	if sortedKeys(copied) != sortedKeys(exported) {
		t.Fatalf("cp c:/ has %s, export %s", sortedKeys(copied), sortedKeys(exported))
	}
	if got := tarFiles(t, []byte(s.ok("cp", "c:/lowdir", "-")), ""); sortedKeys(got) != "lowdir/ lowdir/y" {
		t.Fatalf("cp c:/lowdir has %s", sortedKeys(got))
	}
	for _, hidden := range []string{"c:/bin/lowtool", "c:/d/one", "c:/lowdir/x", "c:/del2"} {
		if r := s.run(nil, "cp", hidden, "-"); r.Code == 0 {
			t.Fatalf("cp %s: found a hidden file", hidden)
		}
	}

	// The committed layer is the container's upper directory alone.
	s.ok("commit", "c", "opq2")
	entries, _, _ := s.topLayer("opq2")
	var names []string
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != ".wh.del2 lowdir/ lowdir/y new one" {
		t.Fatalf("committed layer has %s", got)
	}
	if string(entries["one"].body) != "back\n" || entries["lowdir/"].hdr.Typeflag != tar.TypeDir {
		t.Fatalf("committed layer: one %q, lowdir type %c", entries["one"].body, entries["lowdir/"].hdr.Typeflag)
	}
	if out := s.ok("run", "--rm", "opq2", "sh", "-c", probe); out != "/one\n/two\n/three\n/shared\n/new\n/lowdir\n/lowdir/y\n/d/two\nfrom 2\nback\n" {
		t.Fatalf("run of the committed image sees %q", out)
	}
	s.ok("rm", "c")
}

// A build's RUN and COPY --from stand on the same cut chain.
func TestOpaqueRootInBuild(t *testing.T) {
	s := newStore(t)
	s.ok("load", "-i", writeFile(t, dockerArchive(t, opaqueRootImage(t))))
	ctx := buildContext(t, map[string]string{"Dockerfile": `FROM opq
RUN for f in /one /lowdir /bin/lowtool /d/one; do test ! -e $f || exit 1; done; echo ran > /ran
COPY --from=opq /d /copied/
`})
	s.ok("build", "-t", "opq-built", ctx)
	if out := s.ok("run", "--rm", "opq-built", "sh", "-c", "cat /ran; ls /copied"); out != "ran\ntwo\n" {
		t.Fatalf("built image: %q", out)
	}
}
