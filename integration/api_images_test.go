package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// dockerc is a docker client of a service's socket with a DOCKER_CONFIG of
// its own, kept across its calls (a login's credentials), and the classic
// builder for the 28.x client (DOCKER_BUILDKIT=0).
type dockerc struct {
	t                 *testing.T
	bin, sock, config string
}

func newDockerc(t *testing.T, bin, sock string) *dockerc {
	return &dockerc{t: t, bin: bin, sock: sock, config: t.TempDir()}
}

// run runs the client with stdin (nil: none): stdout, stderr, exit code.
func (d *dockerc) run(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	return runDocker(d.t, d.config, d.bin, d.sock, stdin, args...)
}

// ok runs the client and fails the test unless it exits 0; it returns stdout.
func (d *dockerc) ok(args ...string) string {
	d.t.Helper()
	out, stderr, code := d.run(nil, args...)
	if code != 0 {
		d.t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", d.bin, strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// lineWith is the first line of out that starts with prefix.
func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// layerIDs is the layers a pull's output names, sorted.
func layerIDs(out string) string {
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^([0-9a-f]{12}): `).FindAllStringSubmatch(out, -1) {
		if !slices.Contains(ids, m[1]) {
			ids = append(ids, m[1])
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

// docker pull through cairn's socket prints what dockerd prints for the
// same image (the target, each layer's id, the digest, the status), fetches
// the image cairn pushed, and says a second time that it is up to date; a
// name the registry lacks is dockerd's error. docker push sends a tag that
// cairn pulls back whole, with the digest the registry has; a name the
// store lacks is refused.
func TestAPIImagePullAndPush(t *testing.T) {
	reg := testutil.Registry(t)
	docker := testutil.Docker(t)
	src := newStore(t)
	src.busybox()
	repo := uniqueRepo(t, reg)
	src.ok("tag", "busybox", repo+":1")
	src.ok("push", repo+":1")
	id := src.ok("image", "inspect", "--format", "{{.Id}}", repo+":1")
	want := docker.Run(t, "pull", repo+":1")
	defer docker.RunErr("rmi", repo+":1")
	for i, bin := range dockerClients(t) {
		s := newStore(t)
		sock, _ := s.apiService("0")
		d := newDockerc(t, bin, sock)
		out := d.ok("pull", repo+":1")
		for _, prefix := range []string{"1: Pulling from ", "Digest: ", "Status: "} {
			if got, w := lineWith(out, prefix), lineWith(want, prefix); got == "" || got != w {
				t.Errorf("%s pull: %q, dockerd's: %q\n%s", bin, got, w, out)
			}
		}
		if got, w := layerIDs(out), layerIDs(want); got == "" || got != w {
			t.Errorf("%s pull names the layers %s, dockerd %s:\n%s", bin, got, w, out)
		}
		if got := s.ok("image", "inspect", "--format", "{{.Id}}", repo+":1"); got != id {
			t.Errorf("%s pull: image %s, pushed %s", bin, got, id)
		}
		if out := d.ok("pull", repo+":1"); !strings.Contains(out, "Status: Image is up to date for "+repo+":1\n") {
			t.Errorf("%s second pull: %q", bin, out)
		}
		_, stderr, code := d.run(nil, "pull", repo+":nosuch")
		if code != 1 || !strings.Contains(stderr, "Error response from daemon: ") || !strings.Contains(stderr, "manifest for "+repo+":nosuch not found") {
			t.Errorf("%s pull of a missing tag: exit %d, %q", bin, code, stderr)
		}

		repo2 := uniqueRepo(t, reg)
		tag := fmt.Sprint(i + 2)
		d.ok("tag", repo+":1", repo2+":"+tag)
		out = d.ok("push", repo2+":"+tag)
		m := regexp.MustCompile(`(?m)^` + tag + `: digest: (sha256:[0-9a-f]{64}) size: (\d+)$`).FindStringSubmatch(out)
		if !strings.HasPrefix(out, "The push refers to repository ["+repo2+"]\n") || m == nil ||
			!regexp.MustCompile(`(?m)^[0-9a-f]{12}: (Pushed|Layer already exists|Mounted from .*)$`).MatchString(out) {
			t.Fatalf("%s push: %q", bin, out)
		}
		if _, _, dg, size := remoteManifest(t, repo2, tag); dg.String() != m[1] || fmt.Sprint(size) != m[2] {
			t.Errorf("%s push said %s size %s; the registry has %s size %d", bin, m[1], m[2], dg, size)
		}
		back := newStore(t)
		back.ok("pull", repo2+":"+tag)
		if got := back.ok("image", "inspect", "--format", "{{.Id}}", repo2+":"+tag); got != id {
			t.Errorf("pulled back %s, pushed %s", got, id)
		}
		_, stderr, code = d.run(nil, "push", repo2+":nosuch")
		if code != 1 || !strings.Contains(stderr, "An image does not exist locally with the tag") {
			t.Errorf("%s push of a missing tag: exit %d, %q", bin, code, stderr)
		}
		s.checkConsistent()
	}
}

// ids hides what differs between two stores: image and container IDs,
// and the quoted reference of a message.
var idsRE = regexp.MustCompile(`[0-9a-f]{12,64}|"[^"]*"`)

// history, tag, rmi, save, load, prune and search through cairn's socket:
// as cairn's CLI shows the same store, with dockerd's words where they
// fail; an image saved through the socket loads back, and runs in dockerd.
func TestAPIImageCommands(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "user", "busybox", "sleep", "1000")
	defer s.ok("rm", "-f", "user")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN echo x > /x\nCMD [\"cat\", \"/x\"]\n"), 0o644)
	s.ok("build", "--network", "none", "-t", "app:1", ctxDir)
	sock, _ := s.apiService("0")
	// dockerd's answers to the same mistakes.
	base := "cairn-test/api-images-" + fmt.Sprint(time.Now().UnixNano())
	docker.Run(t, "import", busyboxRootfs(t), base)
	defer docker.RunErr("rmi", "-f", base)
	ctr := strings.TrimSpace(docker.Run(t, "create", "--network", "none", base, "true"))
	defer docker.RunErr("rm", "-f", ctr)
	mistakes := [][]string{{"rmi", "nosuch"}, {"history", "nosuch"}, {"tag", "nosuch", "x:1"}, {"commit", "nosuch"}, {"rmi", "IN-USE"}}
	// dockerdSays is what client bin prints for mistake k against dockerd.
	dockerdSays := func(bin string, k int) string {
		args := append([]string(nil), mistakes[k]...)
		if args[1] == "IN-USE" {
			args[1] = base
		}
		_, stderr, code := (&dockerc{t: t, bin: bin, sock: strings.TrimPrefix(docker.Host, "unix://"), config: t.TempDir()}).run(nil, args...)
		if code == 0 {
			t.Fatalf("dockerd %v succeeded", args)
		}
		return idsRE.ReplaceAllString(stderr, "X")
	}

	tmp := t.TempDir()
	for i, bin := range dockerClients(t) {
		d := newDockerc(t, bin, sock)
		f := "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}"
		if got, want := d.ok("history", "--no-trunc", "--format", f, "app:1"), s.ok("history", "--no-trunc", "--format", f, "app:1"); got != want || strings.Count(got, "\n") != 3 {
			t.Errorf("%s history: %q, cairn's: %q", bin, got, want)
		}
		d.ok("tag", "app:1", "team/other:2")
		if got := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "team/other"); got != "team/other:2\n" {
			t.Errorf("%s tag: cairn images: %q", bin, got)
		}
		if out := d.ok("rmi", "team/other:2"); out != "Untagged: team/other:2\n" {
			t.Errorf("%s rmi: %q", bin, out)
		}
		for k, args := range mistakes {
			args = append([]string(nil), args...)
			if args[1] == "IN-USE" {
				args[1] = "busybox"
			}
			_, stderr, code := d.run(nil, args...)
			if got, want := idsRE.ReplaceAllString(stderr, "X"), dockerdSays(bin, k); code != 1 || got != want {
				t.Errorf("%s %v: exit %d, %q; dockerd: %q", bin, args, code, got, want)
			}
		}
		// import of a tarball the client sends, with a message and a change.
		imported := fmt.Sprintf("imported:%d", i)
		if out := d.ok("import", "-m", "via the socket", "-c", `CMD ["echo","imported"]`, busyboxRootfs(t), imported); !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
			t.Errorf("%s import: %q", bin, out)
		}
		if got := s.ok("run", "--rm", "--network", "none", imported); got != "imported\n" {
			t.Errorf("%s import: the image runs %q", bin, got)
		}
		if got := s.ok("history", "--format", "{{.Comment}}", imported); got != "via the socket\n" {
			t.Errorf("%s import -m: %q", bin, got)
		}
		_, stderr, code := d.run(nil, "search", "busybox")
		if code != 1 || !strings.Contains(stderr, "search is not supported by cairn") {
			t.Errorf("%s search: exit %d, %q", bin, code, stderr)
		}

		// save | load, through the socket both ways.
		id := s.ok("image", "inspect", "--format", "{{.Id}}", "app:1")
		archive := filepath.Join(tmp, fmt.Sprintf("app-%d.tar", i))
		d.ok("save", "-o", archive, "app:1", "busybox")
		d.ok("tag", "app:1", "app:keep") // so that rmi only untags: the build cache holds the layers anyway
		d.ok("rmi", "app:1")
		if out := d.ok("load", "-i", archive); !strings.Contains(out, "Loaded image: app:1\n") || !strings.Contains(out, "Loaded image: busybox:latest\n") {
			t.Errorf("%s load: %q", bin, out)
		}
		if got := s.ok("image", "inspect", "--format", "{{.Id}}", "app:1"); got != id {
			t.Errorf("%s load: app:1 is %s, was %s", bin, got, id)
		}
		d.ok("rmi", "app:keep")
		if _, stderr, code := d.run([]byte("not an archive"), "load"); code != 1 || !strings.Contains(stderr, "Error response from daemon: ") {
			t.Errorf("%s load of garbage: exit %d, %q", bin, code, stderr)
		}
		if i == 0 {
			// What the socket saved loads into dockerd and runs there.
			named := base + ":app"
			d.ok("tag", "app:1", named)
			d.ok("save", "-o", archive, named)
			d.ok("rmi", named)
			if out := docker.Run(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: "+named) {
				t.Errorf("dockerd load: %q", out)
			}
			defer docker.RunErr("rmi", named)
			if out := docker.Run(t, "run", "--rm", "--network", "none", named); out != "x\n" {
				t.Errorf("dockerd run of the saved image: %q", out)
			}
			// dockerd shows the history the socket does.
			f := "{{.CreatedBy}}|{{.Comment}}"
			if got, want := docker.Run(t, "history", "--no-trunc", "--format", f, named), d.ok("history", "--no-trunc", "--format", f, "app:1"); got != want {
				t.Errorf("history: dockerd %q, cairn %q", got, want)
			}
		}

		// image prune: the dangling image goes, the others stay.
		dangling := strings.TrimSpace(s.ok("commit", "user"))
		out := d.ok("image", "prune", "-f")
		if !strings.Contains(out, "deleted: "+dangling+"\n") || !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("%s image prune: %q (dangling %s)", bin, out, dangling)
		}
		s.fails(1, "No such image", "image", "inspect", dangling)
		s.ok("image", "inspect", "app:1")
	}
	s.checkConsistent()
}

// A context's files: name → content; a name ending in "@" is a symlink to
// its content.
func contextTar(t *testing.T, files map[string]string) []byte {
	var entries []tartest.Entry
	for name, body := range files {
		if link, ok := strings.CutSuffix(name, "@"); ok {
			entries = append(entries, tartest.Symlink(link, body))
		} else {
			entries = append(entries, tartest.File(name, body))
		}
	}
	return tartest.Tar(t, entries...)
}

// postBuild sends a context to POST /build with query q: the status and
// the body.
func postBuild(t *testing.T, sock string, q url.Values, body []byte) (int, string) {
	t.Helper()
	resp, err := unixClient(sock).Post("http://cairn/v1.41/build?"+q.Encode(), "application/x-tar", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// docker build through cairn's socket, with the classic builder of both
// clients: COPY, RUN with a build argument, a label, -f, -q; a RUN that
// fails ends the build with its exit code and dockerd's message. A
// Dockerfile outside the context, a hostile context and BuildKit are
// refused with a 400 or 501 that names them; nothing is left in tmp/.
func TestAPIBuild(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nARG GREETING=none\nCOPY a.txt /a.txt\nRUN cat /a.txt && echo \"$GREETING\" > /g\nCMD [\"cat\", \"/g\"]\n"), 0o644)
	other := filepath.Join(t.TempDir(), "Other.dockerfile")
	os.WriteFile(other, []byte("FROM busybox\nCOPY a.txt /b.txt\nCMD [\"cat\", \"/b.txt\"]\n"), 0o644)
	badDir := t.TempDir()
	os.WriteFile(filepath.Join(badDir, "Dockerfile"), []byte("FROM busybox\nRUN exit 3\n"), 0o644)
	for i, bin := range dockerClients(t) {
		d := newDockerc(t, bin, sock)
		name, greeting := fmt.Sprintf("app:%d", i), fmt.Sprintf("hi-%d", i)
		args := []string{"build", "--network", "none", "--build-arg", "GREETING=" + greeting, "--label", "via=api"}
		out := d.ok(append(args, "-t", name, ctxDir)...)
		id := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", name))
		for _, want := range []string{"Step 1/5 : FROM busybox\n", "Step 4/5 : RUN cat /a.txt && echo \"$GREETING\" > /g\n", "\nhello\n",
			"Successfully built " + id[7:19] + "\n", "Successfully tagged " + name + "\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s build: no %q in\n%s", bin, want, out)
			}
		}
		if got := s.ok("run", "--rm", "--network", "none", name); got != greeting+"\n" {
			t.Errorf("%s build: the image runs %q", bin, got)
		}
		if got := s.ok("image", "inspect", "--format", "{{.Config.Labels.via}}", name); got != "api\n" {
			t.Errorf("%s build --label: %q", bin, got)
		}
		// Again, quiet, and the context gzipped: all of it cached.
		if got := d.ok(append(args, "-q", "--compress", ctxDir)...); got != id+"\n" {
			t.Errorf("%s build -q --compress: %q, want %s", bin, got, id)
		}
		d.ok("build", "--network", "none", "-f", other, "-t", name+"-f", ctxDir)
		if got := s.ok("run", "--rm", "--network", "none", name+"-f"); got != "hello\n" {
			t.Errorf("%s build -f: the image runs %q", bin, got)
		}
		out, stderr, code := d.run(nil, "build", "--network", "none", badDir)
		if code != 3 || !strings.Contains(stderr, "The command '/bin/sh -c exit 3' returned a non-zero code: 3") || !strings.Contains(out, "Step 2/2 : RUN exit 3") {
			t.Errorf("%s build of a failing RUN: exit %d\nstdout %s\nstderr %s", bin, code, out, stderr)
		}
	}
	if out := s.ok("ps", "-aq"); out != "" {
		t.Errorf("the builds left containers: %q", out)
	}

	ctx := contextTar(t, map[string]string{"a.txt": "a\n", "Dockerfile@": "/etc/passwd", "Good": "FROM busybox\n"})
	for _, c := range []struct {
		q      url.Values
		body   []byte
		status int
		want   string
	}{
		{url.Values{"dockerfile": {"../../../../etc/passwd"}}, ctx, 400, "Cannot locate specified Dockerfile: ../../../../etc/passwd"},
		{url.Values{}, ctx, 400, "Cannot locate specified Dockerfile: Dockerfile"},
		{url.Values{"dockerfile": {"Good"}, "t": {"Not A Tag"}}, ctx, 400, "invalid tag"},
		{url.Values{"dockerfile": {"Good"}, "version": {"2"}}, ctx, 501, "BuildKit is not supported by cairn"},
		{url.Values{"dockerfile": {"Good"}, "buildargs": {"{not json"}}, ctx, 400, "invalid buildargs"},
		{url.Values{}, tartest.Tar(t, tartest.File("../escape", "x")), 400, "build context"},
	} {
		status, body := postBuild(t, sock, c.q, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("POST /build?%s: %d %s, want %d with %q", c.q.Encode(), status, body, c.status, c.want)
		}
	}
	if status, body := postBuild(t, sock, url.Values{"dockerfile": {"Good"}, "t": {"good:1"}}, ctx); status != 200 || !strings.Contains(body, `"aux":{"ID":"sha256:`) {
		t.Errorf("POST /build of Good: %d %s", status, body)
	}
	if left, _ := filepath.Glob(filepath.Join(s.root, "tmp", "build-context-*")); len(left) > 0 {
		t.Errorf("contexts left in tmp/: %v", left)
	}
	s.checkConsistent()
}

// A client killed (SIGKILL) in the middle of a RUN step: the step's
// container is killed and removed, its context goes from tmp/, the service
// goes on serving and building, and the store keeps its promises.
func TestAPIBuildClientKilled(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN echo started && sleep 120\n"), 0o644)
	bin := dockerClients(t)[0]
	cmd := exec.Command(bin, "-H", "unix://"+sock, "build", "--no-cache", "--network", "none", ctxDir)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "DOCKER_BUILDKIT=0")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the RUN step", func() bool { return strings.Contains(out.String(), "\nstarted\n") })
	if s.ok("ps", "-aq") == "" {
		t.Fatal("no container runs the RUN step")
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, 30*time.Second, "the build's container to go", func() bool { return s.ok("ps", "-aq") == "" })
	waitFor(t, 30*time.Second, "the context to leave tmp/", func() bool {
		left, _ := filepath.Glob(filepath.Join(s.root, "tmp", "build-context-*"))
		return len(left) == 0
	})
	d := newDockerc(t, bin, sock)
	if out := d.ok("images", "--format", "{{.Repository}}"); out != "busybox\n" {
		t.Errorf("images after the kill: %q", out)
	}
	quick := t.TempDir()
	os.WriteFile(filepath.Join(quick, "Dockerfile"), []byte("FROM busybox\nRUN echo again > /a\n"), 0o644)
	d.ok("build", "--network", "none", "-t", "after:1", quick)
	s.checkConsistent()
}

// docker commit through cairn's socket of a container the CLI runs: author,
// message and a change, paused meanwhile, and the container goes on; the
// config of the request's body merges as dockerd merges it.
func TestAPICommit(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "c", "busybox", "sh", "-c", "echo hi > /f && exec sleep 1000")
	defer s.ok("rm", "-f", "c")
	waitFor(t, 10*time.Second, "the container's file", func() bool { return strings.Contains(s.ok("diff", "c"), "A /f") })
	sock, _ := s.apiService("0")
	for i, bin := range dockerClients(t) {
		d := newDockerc(t, bin, sock)
		name := fmt.Sprintf("snap:%d", i)
		id := strings.TrimSpace(d.ok("commit", "-a", "Ann <ann@example.com>", "-m", "first", "-c", `CMD ["cat","/f"]`, "c", name))
		if got := strings.TrimSpace(s.ok("image", "inspect", "--format", "{{.Id}}", name)); !strings.HasPrefix(id, "sha256:") || got != id {
			t.Errorf("%s commit: printed %q, the image is %s", bin, id, got)
		}
		if got := s.ok("image", "inspect", "--format", "{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}", name); got != "Ann <ann@example.com>|first|[\"cat\",\"/f\"]\n" {
			t.Errorf("%s commit: %q", bin, got)
		}
		if got := s.ok("run", "--rm", "--network", "none", name); got != "hi\n" {
			t.Errorf("%s commit: the image runs %q", bin, got)
		}
		if got := s.ok("inspect", "--format", "{{.State.Status}}", "c"); got != "running\n" {
			t.Errorf("%s commit: the container is %q after", bin, got)
		}
	}
	client := unixClient(sock)
	post := func(q, body string) (int, string) {
		resp, err := client.Post("http://cairn/v1.41/commit?"+q, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := post("container=c&repo=snap&tag=body&changes="+url.QueryEscape("LABEL from=change"),
		`{"Env":["A=b$c"],"Labels":{"k":"v \"q\""},"Entrypoint":["/bin/cat"],"WorkingDir":"/"}`)
	var res struct{ Id string }
	if status != 201 || json.Unmarshal([]byte(body), &res) != nil || !strings.HasPrefix(res.Id, "sha256:") {
		t.Fatalf("POST /commit with a config: %d %s", status, body)
	}
	if got := s.ok("image", "inspect", "--format", "{{json .Config.Env}}|{{json .Config.Labels}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}", "snap:body"); got != `["A=b$c"]|{"from":"change","k":"v \"q\""}|["/bin/cat"]|null`+"\n" {
		t.Errorf("the merged config: %s", got)
	}
	if got := s.ok("run", "--rm", "--network", "none", "snap:body", "/f"); got != "hi\n" {
		t.Errorf("snap:body runs %q", got)
	}
	for _, c := range []struct {
		q, body string
		status  int
		want    string
	}{
		{"container=c&changes=BOGUS+x", "", 400, "BOGUS is not a valid change command"},
		{"container=c&repo=Not+A+Name", "", 400, "invalid reference format"},
		{"container=c", "{not json", 400, "invalid JSON"},
		{"container=nosuch", "", 404, "No such container: nosuch"},
	} {
		if status, body := post(c.q, c.body); status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("POST /commit?%s: %d %s, want %d with %q", c.q, status, body, c.status, c.want)
		}
	}
	s.checkConsistent()
}
