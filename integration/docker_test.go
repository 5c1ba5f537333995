package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// An image `docker save` wrote loads into cairn with the same ID (config) and
// diff IDs, and its layers (a whiteout among them) merge as Docker shows them.
func TestDockerSaveLoadsIntoCairn(t *testing.T) {
	docker := testutil.Docker(t)
	tag := "cairn-test/from-docker:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	docker.Run(t, "import", busyboxRootfs(t), tag+"-base")
	defer docker.RunErr("rmi", "-f", tag, tag+"-base")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello from docker\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+tag+"-base\nCOPY hello.txt /hello.txt\nRUN rm /bin/ls && mkdir -p /data && echo x > /data/x\nCMD [\"cat\", \"/hello.txt\"]\n"), 0o644)
	docker.Run(t, "build", "--network", "none", "-q", "-t", tag, ctxDir)
	archive := filepath.Join(t.TempDir(), "docker.tar")
	docker.Run(t, "save", "-o", archive, tag)

	s := newStore(t)
	out := s.ok("load", "-i", archive)
	if !strings.Contains(out, "Loaded image: "+tag) {
		t.Fatalf("load: %q", out)
	}
	var dv, cv []struct {
		Id     string
		RootFS struct{ Layers []string }
		Config struct{ Cmd []string }
	}
	json.Unmarshal([]byte(docker.Run(t, "image", "inspect", tag)), &dv)
	json.Unmarshal([]byte(s.ok("image", "inspect", tag)), &cv)
	if len(dv) != 1 || len(cv) != 1 || dv[0].Id != cv[0].Id || strings.Join(dv[0].RootFS.Layers, ",") != strings.Join(cv[0].RootFS.Layers, ",") {
		t.Fatalf("docker and cairn disagree:\ndocker %+v\ncairn  %+v", dv, cv)
	}
	if len(cv[0].RootFS.Layers) != 3 || strings.Join(cv[0].Config.Cmd, " ") != "cat /hello.txt" {
		t.Fatalf("loaded image: %+v", cv[0])
	}
	s.checkConsistent()
	s.viewImage(tag, func(root string) {
		if b, err := os.ReadFile(filepath.Join(root, "hello.txt")); err != nil || string(b) != "hello from docker\n" {
			t.Fatalf("hello.txt: %q %v", b, err)
		}
		if _, err := os.Lstat(filepath.Join(root, "bin/ls")); !os.IsNotExist(err) {
			t.Fatalf("bin/ls was deleted in Docker but is there: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(root, "bin/cat")); err != nil {
			t.Fatalf("bin/cat: %v", err)
		}
	})
}

// An image `cairn save` wrote loads into Docker, and `docker run` of it works,
// whiteout included.
func TestCairnSaveRunsInDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	img := fixtureImage{
		Names: []string{"cairn-test/to-docker:1"},
		Layers: [][]byte{
			busyboxTar(t),
			layerTar(t, dir("etc/"), file("etc/motd", "made by cairn\n"), file("bin/.wh.ls", "")),
		},
		Cmd: []string{"cat", "/etc/motd"},
	}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, img)))
	archive := filepath.Join(t.TempDir(), "cairn.tar")
	s.ok("save", "-o", archive, "cairn-test/to-docker:1")
	defer docker.RunErr("rmi", "-f", "cairn-test/to-docker:1")
	out := docker.Run(t, "load", "-i", archive)
	if !strings.Contains(out, "cairn-test/to-docker:1") {
		t.Fatalf("docker load: %q", out)
	}
	if got := docker.Run(t, "run", "--rm", "--network", "none", "cairn-test/to-docker:1"); got != "made by cairn\n" {
		t.Fatalf("docker run: %q", got)
	}
	if _, _, err := docker.RunErr("run", "--rm", "--network", "none", "cairn-test/to-docker:1", "test", "!", "-e", "/bin/ls"); err != nil {
		t.Fatalf("bin/ls should be deleted by the whiteout: %v", err)
	}
	_, cd := img.config()
	if id := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", "{{.Id}}", "cairn-test/to-docker:1")); id != cd.String() {
		t.Fatalf("docker's ID %s, cairn's %s", id, cd)
	}
}
