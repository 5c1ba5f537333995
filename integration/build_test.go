package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
)

// buildContext writes files (path → content; a path ending in "/" is a
// directory) into a fresh context directory.
func buildContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

// tgz is a gzipped tar of files (path → content), mode 0640, owned by 42:43.
func tgz(t testing.TB, files map[string]string) string {
	t.Helper()
	dated := tartest.Context{ModTime: time.Unix(1600000000, 0)}
	var entries []tartest.Entry
	for name, body := range files {
		entries = append(entries, dated.File(name, body).Mode(0o640).Owner(42, 43))
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tartest.Tar(t, entries...))
	zw.Close()
	return buf.String()
}

// The examples: CMD, replaced by run's arguments; ENTRYPOINT,
// followed by them; the history, one row per instruction.
func TestBuildCmdAndEntrypoint(t *testing.T) {
	s := newStore(t)
	s.busybox()
	ctx := buildContext(t, map[string]string{
		"Dockerfile":  "FROM busybox\nWORKDIR /w\nRUN touch visible\nCMD [\"ls\",\"-a\"]\n",
		"file2":       "FROM busybox\nWORKDIR /w\nRUN touch visible\nENTRYPOINT [\"ls\",\"-a\"]\n",
		"mytomcat/Df": "FROM busybox\nENV CATALINA_HOME=/usr/local/tomcat\nWORKDIR $CATALINA_HOME\nRUN mkdir -p bin && echo start > bin/catalina.sh\nEXPOSE 8080\nCMD [\"cat\", \"bin/catalina.sh\"]\n",
	})
	out := s.ok("build", "-t", "cmd-test", ctx)
	for _, want := range []string{"Step 1/4 : FROM busybox", "Step 3/4 : RUN touch visible", " ---> Running in ", "Removing intermediate container", "Successfully built ", "Successfully tagged cmd-test:latest"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	s.ok("build", "-f", filepath.Join(ctx, "file2"), "-t", "entrypoint-test", ctx)
	if out := s.ok("run", "--rm", "cmd-test"); out != ".\n..\nvisible\n" {
		t.Errorf("run cmd-test: %q", out)
	}
	s.fails(127, `exec: "-l"`, "run", "--rm", "cmd-test", "-l")
	if out := s.ok("run", "--rm", "entrypoint-test", "-l"); !strings.Contains(out, "visible") || !strings.HasPrefix(out, "total") {
		t.Errorf("run entrypoint-test -l (ls -a -l): %q", out)
	}
	s.ok("build", "-q", "-t", "mytomcat:1", "-f", filepath.Join(ctx, "mytomcat/Df"), ctx)
	if out := s.ok("run", "--rm", "mytomcat:1"); out != "start\n" {
		t.Errorf("run mytomcat: %q", out)
	}
	hist := s.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "mytomcat:1")
	want := "/bin/sh -c #(nop)  CMD [\"cat\" \"bin/catalina.sh\"]\n" +
		"/bin/sh -c #(nop)  EXPOSE 8080\n" +
		"/bin/sh -c mkdir -p bin && echo start > bin/catalina.sh\n" +
		"/bin/sh -c #(nop) WORKDIR /usr/local/tomcat\n" +
		"/bin/sh -c #(nop)  ENV CATALINA_HOME=/usr/local/tomcat\n"
	if !strings.HasPrefix(hist, want) {
		t.Errorf("history:\n%s\nwant it to begin with\n%s", hist, want)
	}
	// -q prints the ID alone: the same build, the same image; intermediate
	// images are not listed.
	id := strings.TrimSpace(s.ok("build", "-q", ctx))
	if id+"\n" != s.ok("image", "inspect", "-f", "{{.Id}}", "cmd-test") {
		t.Errorf("build -q: %q", id)
	}
	if n := strings.Count(s.ok("images", "-q"), "\n"); n != 4 { // busybox, cmd-test, entrypoint-test, mytomcat
		t.Errorf("images: %d, want 4:\n%s", n, s.ok("images"))
	}
}

// The instructions, as Docker's builder has them.
func TestBuildInstructions(t *testing.T) {
	s := newStore(t)
	s.busybox()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/remote.txt":
			w.Header().Set("Last-Modified", time.Unix(1500000000, 0).UTC().Format(http.TimeFormat))
			fmt.Fprint(w, "from the server\n")
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	url := "http://" + l.Addr().String()

	df := `# a comment
ARG BASE=busybox
ARG UNUSED_AT_TOP
FROM ${BASE} AS builder
ARG VERSION=1.0
ARG BASE
RUN echo "version $VERSION from $BASE" > /version && \
    echo "proxy ${http_proxy:-none}" >> /version
COPY --chown=65534:65534 data/ /data/
COPY *.conf /etc/app/
ADD archive.tgz /unpacked/
ADD ` + url + `/files/remote.txt /remote/
COPY <<EOF /heredoc.txt
made by $VERSION
EOF
SHELL ["/bin/sh", "-ec"]
RUN <<EOT
echo one > /multi
echo two >> /multi
EOT
WORKDIR /work/dir
USER 65534:65534
RUN id -u > /tmp/uid; pwd > /tmp/pwd

FROM scratch AS empty
COPY --from=builder /version /version

FROM busybox
MAINTAINER Ann <ann@example.org>
COPY --from=builder /version /data /copied/
COPY --chmod=0750 one.conf /modes/
COPY --from=busybox /etc/passwd /from-image-passwd
COPY --from=empty /version /from-scratch
LABEL a=1 b="two words"
EXPOSE 80 53/udp
VOLUME /vol
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ONBUILD RUN echo triggered > /onbuild
ENV E1=one E2=${VERSION:-unset}
CMD ["sh"]
`
	ctx := buildContext(t, map[string]string{
		"Dockerfile":    df,
		"data/a":        "A",
		"data/sub/b":    "B",
		"data/skipped":  "no",
		"one.conf":      "1",
		"two.conf":      "2",
		"other.txt":     "x",
		"archive.tgz":   tgz(t, map[string]string{"in/tar.txt": "from the tar"}),
		".dockerignore": "data/skipped\n",
	})
	out := s.ok("build", "--build-arg", "VERSION=2.0", "--build-arg", "http_proxy=http://proxy.example:3128", "--build-arg", "NOPE=1", "-t", "all", ctx)
	if !strings.Contains(out, "[Warning] One or more build-args [NOPE] were not consumed") {
		t.Errorf("no warning for an unused build-arg:\n%s", out)
	}
	// The builder stage. (The proxy argument is no part of the cache key, as in Docker.)
	s.ok("build", "--build-arg", "VERSION=2.0", "--build-arg", "http_proxy=http://proxy.example:3128", "--target", "builder", "-t", "all:builder", ctx)
	check := func(ref, script, want string) {
		t.Helper()
		if got := s.ok("run", "--rm", "-u", "0", ref, "sh", "-c", script); got != want {
			t.Errorf("%s: %s:\n%q\nwant\n%q", ref, script, got, want)
		}
	}
	check("all:builder", "cat /version", "version 2.0 from busybox\nproxy http://proxy.example:3128\n")
	check("all:builder", "ls -ln /data | tail -n +2 | awk '{print $3, $4, $9}'; cat /data/sub/b", "65534 65534 a\n65534 65534 sub\nB")
	check("all:builder", "ls /etc/app; cat /heredoc.txt /multi", "one.conf\ntwo.conf\nmade by 2.0\none\ntwo\n")
	check("all:builder", "cat /unpacked/in/tar.txt; stat -c '%u:%g %a' /unpacked/in/tar.txt", "from the tar42:43 640\n")
	check("all:builder", "cat /remote/remote.txt; stat -c '%a %Y' /remote/remote.txt", "from the server\n600 1500000000\n")
	check("all:builder", "cat /tmp/uid /tmp/pwd", "65534\n/work/dir\n")
	if got := s.ok("image", "inspect", "-f", "{{.Config.User}} {{.Config.WorkingDir}} {{.Config.Shell}}", "all:builder"); got != "65534:65534 /work/dir [/bin/sh -ec]\n" {
		t.Errorf("builder config: %q", got)
	}
	// The proxy argument is used, but stays out of the history.
	if h := s.ok("history", "--no-trunc", "all:builder"); strings.Contains(h, "proxy.example") || !strings.Contains(h, "|2 BASE=busybox VERSION=2.0 /bin/sh -c echo") {
		t.Errorf("history of the builder stage:\n%s", h)
	}

	// The final stage.
	check("all", "ls /copied; cat /copied/version /from-scratch", "a\nsub\nversion\nversion 2.0 from busybox\nproxy http://proxy.example:3128\nversion 2.0 from busybox\nproxy http://proxy.example:3128\n")
	check("all", "stat -c %a /modes/one.conf; head -1 /from-image-passwd", "750\nroot:x:0:0:root:/root:/bin/sh\n")
	got := s.ok("image", "inspect", "-f", "{{.Author}}|{{.Config.Labels}}|{{.Config.ExposedPorts}}|{{.Config.Volumes}}|{{.Config.StopSignal}}|{{.Config.Healthcheck}}|{{.Config.OnBuild}}|{{.Config.Env}}|{{.Config.Cmd}}", "all")
	want := "Ann <ann@example.org>|map[a:1 b:two words]|map[53/udp:map[] 80/tcp:map[]]|map[/vol:map[]]|SIGQUIT|map[Interval:5000000000 Retries:2 Test:[CMD true]]|[RUN echo triggered > /onbuild]|[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin E1=one E2=unset]|[sh]\n"
	if got != want {
		t.Errorf("final config:\n%s\nwant\n%s", got, want)
	}
	// An image FROM it runs its ONBUILD trigger, and does not inherit it.
	child := buildContext(t, map[string]string{"Dockerfile": "FROM all\nRUN cat /onbuild\n"})
	out = s.ok("build", "-t", "child", child)
	if !strings.Contains(out, "# Executing 1 build trigger") || !strings.Contains(out, "triggered") {
		t.Errorf("ONBUILD trigger:\n%s", out)
	}
	if _, c := s.imageConfig("child"); c["config"].(map[string]any)["OnBuild"] != nil {
		t.Errorf("the child inherits OnBuild: %v", c["config"])
	}
	// Metadata steps add empty_layer entries; file steps, layers.
	_, c := s.imageConfig("all")
	layers := len(c["rootfs"].(map[string]any)["diff_ids"].([]any))
	empty := 0
	for _, h := range c["history"].([]any) {
		if h.(map[string]any)["empty_layer"] == true {
			empty++
		}
	}
	// busybox and the four COPY; MAINTAINER, LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, ENV, CMD.
	if layers != 5 || empty != 9 {
		t.Errorf("the final image has %d layers and %d empty_layer entries, want 5 and 9", layers, empty)
	}
	if out := s.ok("ps", "-aq"); out != "" {
		t.Errorf("build left containers: %q", out)
	}
}

// The cache: a step is reused while its parent, instruction, arguments and
// copied contents (not times) are the same; a changed file rebuilds from its
// step on; --no-cache rebuilds all; two builds at once share it safely.
func TestBuildCache(t *testing.T) {
	s := newStore(t)
	s.busybox()
	df := "FROM busybox\nARG V=1\nRUN echo $V > /v\nCOPY a /a\nRUN cat /a /v > /both\nCOPY b /b\nCMD [\"cat\", \"/both\"]\n"
	ctx := buildContext(t, map[string]string{"Dockerfile": df, "a": "A", "b": "B"})
	first := s.ok("build", "-t", "c:1", ctx)
	if strings.Contains(first, "Using cache") {
		t.Fatalf("first build used the cache:\n%s", first)
	}
	cached := func(out string) int { return strings.Count(out, " ---> Using cache") }
	if out := s.ok("build", "-t", "c:2", ctx); cached(out) != 6 {
		t.Errorf("rebuild: %d steps from the cache, want 6:\n%s", cached(out), out)
	}
	id1, id2 := s.ok("image", "inspect", "-f", "{{.Id}}", "c:1"), s.ok("image", "inspect", "-f", "{{.Id}}", "c:2")
	if id1 != id2 {
		t.Errorf("a cached rebuild made another image: %s %s", id1, id2)
	}
	// A new mtime is no change.
	future := time.Now().Add(time.Hour)
	must(t, os.Chtimes(filepath.Join(ctx, "a"), future, future))
	if out := s.ok("build", ctx); cached(out) != 6 {
		t.Errorf("after touching a: %d steps from the cache, want 6", cached(out))
	}
	// New content: from that step on.
	must(t, os.WriteFile(filepath.Join(ctx, "a"), []byte("A2"), 0o644))
	out := s.ok("build", "-t", "c:3", ctx)
	if cached(out) != 2 || !strings.Contains(out, "Step 4/7 : COPY a /a\n ---> ") || strings.Contains(out, "Step 4/7 : COPY a /a\n ---> Using cache") {
		t.Errorf("after changing a: %d cached, want 2 (ARG, first RUN):\n%s", cached(out), out)
	}
	if got := s.ok("run", "--rm", "c:3"); got != "A21\n" {
		t.Errorf("c:3: %q", got)
	}
	// Another build argument: the RUN that sees it runs again.
	if out := s.ok("build", "--build-arg", "V=2", ctx); cached(out) != 1 {
		t.Errorf("with V=2: %d cached, want 1 (ARG):\n%s", cached(out), out)
	}
	if out := s.ok("build", "--no-cache", ctx); cached(out) != 0 {
		t.Errorf("--no-cache used the cache")
	}
	// Two builds at once, in two processes, on one store.
	must(t, os.WriteFile(filepath.Join(ctx, "b"), []byte("B2"), 0o644))
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(nil, "build", "-t", fmt.Sprintf("par:%d", i), ctx)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("concurrent build %d: %+v", i, r)
		}
	}
	s.checkConsistent()
	// builder prune empties the cache; the images stay.
	s.ok("builder", "prune", "-f")
	if out := s.ok("build", ctx); cached(out) != 0 {
		t.Errorf("after builder prune: %d cached", cached(out))
	}
	if got := s.ok("run", "--rm", "c:1"); got != "A1\n" {
		t.Errorf("c:1 after prune: %q", got)
	}
	s.checkConsistent()
}

// Failures stop the build, name what failed, and leave no tagged image and
// no container.
func TestBuildFailures(t *testing.T) {
	s := newStore(t)
	s.busybox()
	ctx := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo before\nRUN echo output; exit 3\nRUN echo never\n",
		"syntax":     "FROM busybox\nRUN true\nNOTANINSTRUCTION x\n",
		"outside":    "FROM busybox\nCOPY ../secret /x\n",
		"missing":    "FROM busybox\nCOPY nothere /x\n",
		"noimage":    "FROM 127.0.0.1:9/nosuchimage\n",
		"multi":      "FROM busybox\nCOPY a b /dest\n",
		"a":          "a", "b": "b",
	})
	r := s.run(nil, "build", "-t", "broken", ctx)
	if r.Code != 3 || !strings.Contains(r.Stdout, "output") || strings.Contains(r.Stdout, "never") || !strings.Contains(r.Stderr, "returned a non-zero code: 3") {
		t.Fatalf("a failing RUN: %+v", r)
	}
	s.fails(1, "No such image: broken", "image", "inspect", "broken")
	s.fails(1, "line 3", "build", "-f", filepath.Join(ctx, "syntax"), ctx)
	s.fails(1, "forbidden path outside the build context", "build", "-f", filepath.Join(ctx, "outside"), ctx)
	s.fails(1, "file not found in build context", "build", "-f", filepath.Join(ctx, "missing"), ctx)
	s.fails(1, "registry unreachable: 127.0.0.1:9", "build", "-f", filepath.Join(ctx, "noimage"), ctx)
	s.fails(1, "must be a directory and end with a /", "build", "-f", filepath.Join(ctx, "multi"), ctx)
	s.fails(125, "invalid reference format", "build", "-t", "Bad:Tag", ctx)
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("failed builds left containers: %q", out)
	}
	if out := s.ok("images", "--format", "{{.Repository}}"); out != "busybox\n" {
		t.Fatalf("failed builds left images: %q", out)
	}
	s.checkConsistent()
}

// A sparse file of the context is copied with its holes: the layer of the
// COPY holds its data, not its zeros, and the file reads the same.
func TestBuildCopySparse(t *testing.T) {
	s := newStore(t)
	s.busybox()
	const size = 1 << 30
	ctx := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY big /big\n"})
	f, err := os.Create(filepath.Join(ctx, "big"))
	must(t, err)
	_, err = f.WriteAt([]byte("head"), 0)
	must(t, err)
	_, err = f.WriteAt([]byte("tail"), size-4)
	must(t, err)
	must(t, f.Close())
	s.ok("build", "-q", "-t", "sparse:1", ctx)
	if out := s.ok("run", "--rm", "sparse:1", "sh", "-c", "stat -c %s /big; head -c 4 /big; tail -c 4 /big"); out != fmt.Sprintf("%d\nheadtail", size) {
		t.Errorf("the copied file reads %q", out)
	}
	blobs, err := os.ReadDir(filepath.Join(s.root, "images/blobs/sha256"))
	must(t, err)
	for _, b := range blobs {
		if info, err := b.Info(); err == nil && info.Size() > 4<<20 {
			t.Errorf("blob %s of %d bytes: the sparse file was copied whole", b.Name(), info.Size())
		}
	}
}
