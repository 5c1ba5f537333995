package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// dockerArchiveLayers reads a `docker save` archive: the config of its
// (single) image and its layer tars, as entry summaries.
func dockerArchiveLayers(t testing.TB, archive string) (map[string]any, [][]string) {
	t.Helper()
	files := map[string][]byte{}
	f, err := os.Open(archive)
	must(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	must(t, json.Unmarshal(files["manifest.json"], &manifest))
	var cfg map[string]any
	must(t, json.Unmarshal(files[manifest[0].Config], &cfg))
	var layers [][]string
	for _, l := range manifest[0].Layers {
		layers = append(layers, summarize(t, files[l]))
	}
	return cfg, layers
}

// summarize lists a layer tar's entries without their times: name, type,
// mode, owner, size, link.
func summarize(t testing.TB, layer []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(strings.NewReader(string(layer)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		mode, link := h.Mode&0o7777, h.Linkname // Docker's headers carry the type bits in the mode too
		if strings.Contains(h.Name, ".wh.") {
			// Docker writes a whiteout with the mode of what it deletes, and,
			// since overlay links all its whiteouts to one inode, the second
			// one as a "link" to the first; OCI asks for neither.
			mode, link = 0, ""
		}
		out = append(out, fmt.Sprintf("%s %c %o %d:%d %d %s", h.Name, h.Typeflag, mode, h.Uid, h.Gid, h.Size, link))
	}
	slices.Sort(out)
	return out
}

// The same change committed by cairn and by the real Docker engine gives the
// same config, history and layer; and cairn's image runs in Docker.
func TestCommitMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	tag := "cairn-test/commit-base:1"
	s.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)},
		Cmd: []string{"sh"}, Env: []string{"IMAGE=1"}, Labels: map[string]string{"from": "image"}})))
	base := filepath.Join(t.TempDir(), "base.tar")
	s.ok("save", "-o", base, tag)
	docker.Run(t, "load", "-i", base)
	dname := "cairn-test-commit-" + strings.ToLower(t.Name())
	defer docker.RunErr("rm", "-f", dname)
	defer docker.RunErr("rmi", "-f", tag, "cairn-test/committed:docker", "cairn-test/committed:cairn")

	change := "mkdir -p /app/sub && echo hi > /app/x && ln -s x /app/l && ln /app/x /app/h && chmod 4755 /app/x && rm /etc/group && rm -rf /usr/sbin && mkfifo /app/p"
	args := []string{"-e", "RUN=1", "-w", "/app", tag, "sh", "-c", change}
	commitArgs := []string{"-a", "Ann <ann@example.org>", "-m", "the change", "-c", "ENV C=1", "-c", `CMD ["cat","/app/x"]`, "-c", "EXPOSE 8080", "-c", "LABEL by=commit", "-c", "USER nobody", "-c", "VOLUME /data", "-c", "ONBUILD RUN true"} // (Docker 20.10 refuses STOPSIGNAL here; cairn takes it)
	s.ok(append([]string{"run", "--name", "c"}, args...)...)
	s.ok(append(append([]string{"commit"}, commitArgs...), "c", "cairn-test/committed:cairn")...)
	docker.Run(t, append([]string{"run", "--network", "none", "--name", dname}, args...)...)
	docker.Run(t, append(append([]string{"commit"}, commitArgs...), dname, "cairn-test/committed:docker")...)

	ours := filepath.Join(t.TempDir(), "cairn.tar")
	s.ok("save", "-o", ours, "cairn-test/committed:cairn")
	theirs := filepath.Join(t.TempDir(), "docker.tar")
	docker.Run(t, "save", "-o", theirs, "cairn-test/committed:docker")
	cc, cl := dockerArchiveLayers(t, ours)
	dc, dl := dockerArchiveLayers(t, theirs)

	pick := func(c map[string]any) map[string]any {
		cfg := c["config"].(map[string]any)
		// (cairn also keeps the message as the config's "comment", which
		// `image inspect` shows; Docker 20.10 keeps it in the history only.)
		out := map[string]any{"author": c["author"]}
		for _, k := range []string{"Cmd", "Entrypoint", "Env", "ExposedPorts", "Labels", "User", "WorkingDir", "Volumes", "StopSignal", "OnBuild"} {
			out[k] = fmt.Sprint(cfg[k])
		}
		hist := c["history"].([]any)
		last := hist[len(hist)-1].(map[string]any)
		for _, k := range []string{"created_by", "author", "comment", "empty_layer"} {
			out["history."+k] = last[k]
		}
		out["layers"] = len(c["rootfs"].(map[string]any)["diff_ids"].([]any))
		return out
	}
	if a, b := pick(cc), pick(dc); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("configs differ:\ncairn  %v\ndocker %v", a, b)
	}
	if len(cl) != len(dl) || strings.Join(cl[len(cl)-1], "\n") != strings.Join(dl[len(dl)-1], "\n") {
		t.Errorf("the layers differ:\ncairn:\n%s\ndocker:\n%s", strings.Join(cl[len(cl)-1], "\n"), strings.Join(dl[len(dl)-1], "\n"))
	}

	// cairn's image, in Docker.
	docker.Run(t, "load", "-i", ours)
	if out := docker.Run(t, "run", "--rm", "--network", "none", "cairn-test/committed:cairn"); out != "hi\n" {
		t.Errorf("docker run of cairn's commit: %q", out)
	}
	if out := docker.Run(t, "run", "--rm", "--network", "none", "cairn-test/committed:cairn", "sh", "-c", "test -e /etc/group || test -e /usr/sbin || echo gone; readlink /app/l"); out != "gone\nx\n" {
		t.Errorf("docker run of cairn's commit: %q", out)
	}
	s.ok("rm", "c")
}

// copyHash matches the hash of what COPY or ADD copied, in a history entry:
// Docker's hashing is its own.
var copyHash = regexp.MustCompile(`(file|dir|multi):[0-9a-f]{64}`)

// nonZero drops the fields of a config that say nothing: Docker writes its
// container config's false, empty and null fields (and the parent's ID as
// "Image"), cairn leaves them out.
func nonZero(v any) map[string]any {
	out := map[string]any{}
	for k, x := range v.(map[string]any) {
		switch x := x.(type) {
		case nil:
			continue
		case bool:
			if !x {
				continue
			}
		case string:
			if x == "" || k == "Image" {
				continue
			}
		}
		out[k] = x
	}
	return out
}

// The same Dockerfile, built by cairn and by the real Docker engine (its
// classic builder), from the same base image, gives images with the same
// config and the same files in each layer; and cairn's image runs in Docker.
func TestBuildMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	s.busybox()
	base := "cairn-test/build-base:1"
	s.ok("tag", "busybox", base)
	baseTar := filepath.Join(t.TempDir(), "base.tar")
	s.ok("save", "-o", baseTar, base)
	docker.Run(t, "load", "-i", baseTar)
	ours, theirs := "cairn-test/built:cairn", "cairn-test/built:docker"
	defer docker.RunErr("rmi", "-f", base, ours, theirs, theirs+"-first")

	df := "ARG BASE=" + base + `
FROM $BASE AS first
ARG VERSION=1
LABEL l1="x" version=$VERSION
ENV APP=/app PATH=/usr/bin:/bin
WORKDIR /app
COPY hello.txt /app/
COPY dir /app/dir/
COPY --chown=65534:65534 hello.txt *.conf /owned/
ADD hello.txt /added/
ADD archive.tgz /unpacked/
RUN echo "v=$VERSION" > /app/v && mkdir /made && rm -rf /usr/sbin
USER nobody
EXPOSE 80 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD true
ONBUILD RUN echo trigger
SHELL ["/bin/sh", "-ec"]
MAINTAINER someone <s@example.org>
ENTRYPOINT ["/bin/echo"]
CMD ["hi"]

FROM ` + base + `
COPY --from=first /app/v /v
CMD ls -a
`
	ctx := buildContext(t, map[string]string{
		"Dockerfile": df, "hello.txt": "hello\n", "dir/a": "a", "dir/sub/b": "b", "x.conf": "x",
		"archive.tgz": tgz(t, map[string]string{"in/t.txt": "tar"}),
	})
	for _, target := range []string{"first", ""} {
		name := map[string]string{"first": "-first", "": ""}[target]
		args := []string{"build", "--build-arg", "VERSION=2"}
		if target != "" {
			args = append(args, "--target", target)
		}
		s.ok(append(args, "-t", ours+name, ctx)...)
		docker.Run(t, append(args, "--network", "none", "-t", theirs+name, ctx)...)

		a, b := filepath.Join(t.TempDir(), "cairn.tar"), filepath.Join(t.TempDir(), "docker.tar")
		s.ok("save", "-o", a, ours+name)
		docker.Run(t, "save", "-o", b, theirs+name)
		cc, cl := dockerArchiveLayers(t, a)
		dc, dl := dockerArchiveLayers(t, b)
		ccfg, _ := json.Marshal(nonZero(cc["config"]))
		dcfg, _ := json.Marshal(nonZero(dc["config"]))
		if string(ccfg) != string(dcfg) || cc["author"] != dc["author"] {
			t.Errorf("%s: configs differ:\ncairn  %s %v\ndocker %s %v", target, ccfg, cc["author"], dcfg, dc["author"])
		}
		if len(cl) != len(dl) {
			t.Errorf("%s: cairn's image has %d layers, Docker's %d", target, len(cl), len(dl))
			continue
		}
		for i := range cl {
			if strings.Join(cl[i], "\n") != strings.Join(dl[i], "\n") {
				t.Errorf("%s: layer %d differs:\ncairn:\n%s\ndocker:\n%s", target, i, strings.Join(cl[i], "\n"), strings.Join(dl[i], "\n"))
			}
		}
		// The history: one entry per instruction, and the same words but
		// for the hashes of what COPY and ADD copied.
		hist := func(c map[string]any) []string {
			var out []string
			for _, h := range c["history"].([]any) {
				by, _ := h.(map[string]any)["created_by"].(string)
				by = copyHash.ReplaceAllString(by, "$1:<hash>")
				out = append(out, fmt.Sprint(by, " empty=", h.(map[string]any)["empty_layer"]))
			}
			return out
		}
		if ch, dh := hist(cc), hist(dc); strings.Join(ch, "\n") != strings.Join(dh, "\n") {
			t.Errorf("%s: histories differ:\ncairn:\n%s\ndocker:\n%s", target, strings.Join(ch, "\n"), strings.Join(dh, "\n"))
		}
	}
	// cairn's image, in Docker.
	img := filepath.Join(t.TempDir(), "img.tar")
	s.ok("save", "-o", img, ours)
	docker.RunErr("rmi", "-f", ours)
	docker.Run(t, "load", "-i", img)
	if out := docker.Run(t, "run", "--rm", "--network", "none", ours, "cat", "/v"); out != "v=2\n" {
		t.Errorf("docker run of cairn's build: %q", out)
	}
}
