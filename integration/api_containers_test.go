package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
	"github.com/moby/moby/api/types/container"
)

// The docker client changes containers the cairn CLI made, and the CLI
// sees what it did: stop (and a stop of a stopped one, which is no
// error), restart, kill, pause and unpause, rename, update of the limits
// (set on the running container's cgroups) and of the restart policy, rm
// of a running container refused then forced, and container prune.
func TestAPIContainerLifecycle(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		docker := func(args ...string) string {
			t.Helper()
			out, stderr, code := dockerAt(t, bin, sock, args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d %s", bin, strings.Join(args, " "), code, stderr)
			}
			return out
		}
		s.ok("run", "-d", "--network", "none", "--name", "box", "busybox", "sleep", "1000")
		started := s.ok("inspect", "--format", "{{.State.StartedAt}}", "box")

		docker("stop", "-t", "1", "box")
		if got := s.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "box"); got != "exited 137\n" {
			t.Errorf("%s stop: %q", bin, got)
		}
		docker("stop", "box") // dockerd's 304: no error

		docker("restart", "-t", "1", "box")
		if got := s.status("box"); got != "running" {
			t.Errorf("%s restart: %q", bin, got)
		}
		if again := s.ok("inspect", "--format", "{{.State.StartedAt}}", "box"); again == started {
			t.Errorf("%s restart: started at %s still", bin, again)
		}

		docker("pause", "box")
		if got := s.status("box"); got != "paused" {
			t.Errorf("%s pause: %q", bin, got)
		}
		docker("unpause", "box")
		if got := s.status("box"); got != "running" {
			t.Errorf("%s unpause: %q", bin, got)
		}

		docker("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "77", "--restart", "on-failure:2", "box")
		if got := s.ok("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "box"); got != "67108864 134217728 77 on-failure:2\n" {
			t.Errorf("%s update: %q", bin, got)
		}
		limits := s.ok("exec", "box", "sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
		if limits != "67108864\n77\n" {
			t.Errorf("%s update: the cgroups say %q", bin, limits)
		}

		docker("rename", "box", "renamed")
		if got := s.status("renamed"); got != "running" {
			t.Errorf("%s rename: %q", bin, got)
		}

		docker("kill", "renamed")
		if got := s.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "renamed"); got != "exited 137\n" {
			t.Errorf("%s kill: %q", bin, got)
		}
		s.ok("start", "renamed")
		docker("kill", "-s", "TERM", "renamed") // sleep as pid 1 ignores TERM
		time.Sleep(300 * time.Millisecond)
		if got := s.status("renamed"); got != "running" {
			t.Errorf("%s kill -s TERM: %q", bin, got)
		}

		id := strings.TrimSpace(s.ok("inspect", "--format", "{{.Id}}", "renamed"))
		_, stderr, code := dockerAt(t, bin, sock, "rm", "renamed")
		want := "Error response from daemon: You cannot remove a running container " + id + ". Stop the container before attempting removal or force remove"
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%s rm of a running container: exit %d %q", bin, code, stderr)
		}
		docker("rm", "-f", "renamed")
		if got := s.ok("ps", "-aq"); got != "" {
			t.Errorf("%s rm -f: left %q", bin, got)
		}

		// Prune takes the stopped ones only.
		s.ok("run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "1000")
		s.ok("run", "--network", "none", "--name", "done", "busybox", "sh", "-c", "echo data > /junk")
		s.ok("create", "--network", "none", "--name", "made", "busybox", "true")
		ids := map[string]bool{}
		for _, n := range []string{"done", "made"} {
			ids[strings.TrimSpace(s.ok("inspect", "--format", "{{.Id}}", n))] = true
		}
		out := docker("container", "prune", "-f")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || lines[0] != "Deleted Containers:" || !ids[lines[1]] || !ids[lines[2]] || lines[1] == lines[2] || !strings.HasPrefix(lines[4], "Total reclaimed space: ") {
			t.Errorf("%s container prune: %q", bin, out)
		}
		if lines[len(lines)-1] == "Total reclaimed space: 0B" {
			t.Errorf("%s container prune: nothing reclaimed of /junk: %q", bin, out)
		}
		if got := s.ok("ps", "-a", "--format", "{{.Names}}"); got != "up\n" {
			t.Errorf("%s container prune left %q", bin, got)
		}
		s.ok("rm", "-f", "up")
	}
}

// The docker client's errors, through cairn's socket and through dockerd's,
// are the same (exit code and words, the IDs aside); so are `docker diff`
// after the same changes and `docker top`'s columns.
func TestAPIContainerErrorsMatchDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	u := cpUnique()
	img := "cairn-test/api-ctr:" + u
	cpImage(t, s, docker, img)
	run, made := u+"-run", u+"-made"
	change := []string{"sh", "-c", "mkdir -p /data/sub && echo hi > /data/sub/f && rm /d/f && rm -r /d/sub/deep && echo x >> /etc/passwd && touch /d/exe"}
	for _, e := range []func(args ...string){
		func(args ...string) { s.ok(args...) },
		func(args ...string) { docker.Run(t, args...) },
	} {
		e("run", "-d", "--network", "none", "--name", run, img, "sleep", "1000")
		e("create", "--network", "none", "--name", made, img, "true")
		e(append([]string{"exec", run}, change...)...)
	}
	t.Cleanup(func() { docker.RunErr("rm", "-f", run, made) })
	sock, _ := s.apiService("0")
	nosuch := u + "-nosuch"
	cases := [][]string{
		{"stop", nosuch}, {"kill", nosuch}, {"restart", nosuch}, {"pause", nosuch}, {"rm", nosuch}, {"rename", nosuch, u + "-new"},
		{"update", "--memory", "64m", nosuch}, {"top", nosuch}, {"diff", nosuch}, {"export", nosuch}, {"cp", nosuch + ":/etc", "-"},
		{"kill", made}, {"kill", "-s", "FOO", run}, {"kill", "-s", "0", run}, {"rm", run}, {"pause", made}, {"unpause", run}, {"unpause", made},
		{"rename", run, made}, {"rename", run, run}, {"rename", run, "a/b"}, {"top", made},
		{"cp", run + ":/nope", "-"}, {"cp", "-", run + ":/nope"},
		{"diff", run}, {"diff", made},
	}
	for _, bin := range dockerClients(t) {
		for _, args := range cases {
			dOut, dErr, dCode := dockerAtIn(t, bin, dockerdSocket(docker), []byte{}, args...)
			cOut, cErr, cCode := dockerAtIn(t, bin, sock, []byte{}, args...)
			norm := func(s string) string { return strings.TrimSpace(hexID.ReplaceAllString(s, "ID")) }
			// dockerd lists a diff in no fixed order.
			if dCode != cCode || norm(dErr) != norm(cErr) || !sameLines(dOut, cOut) {
				t.Errorf("%s %s:\ndockerd: exit %d %q %q\ncairn:   exit %d %q %q", bin, strings.Join(args, " "), dCode, dOut, dErr, cCode, cOut, cErr)
			}
		}
		if d, c := docker.Run(t, "top", run), s.ok("top", run); strings.Split(d, "\n")[0] != strings.Split(c, "\n")[0] {
			t.Errorf("top's columns: dockerd %q, cairn %q", d, c)
		}
		out, _, _ := dockerAt(t, bin, sock, "top", run, "-o", "pid,args")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], "sleep 1000") {
			t.Errorf("%s top -o pid,args: %q", bin, out)
		}
	}
	if c, d := s.ok("diff", run), docker.Run(t, "diff", run); !sameLines(d, c) || !strings.Contains(d, "D /d/f\n") {
		t.Errorf("diff: cairn's %q, dockerd's %q", c, d)
	}
}

// top, stats and export through the socket: the rows of the container's
// processes; a sample whose CPU figures are a rate (a busy container is
// seen busy), with memory, pids and block I/O; a stream of one sample a
// second that ends when the container stops; the tar `cairn export`
// writes.
func TestAPIContainerStats(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "busy", "busybox", "sh", "-c", "while :; do :; done")
	s.ok("run", "-d", "--network", "none", "--name", "idle", "busybox", "sleep", "1000")
	s.ok("create", "--network", "none", "--name", "made", "busybox", "true")
	sock, _ := s.apiService("0")
	for _, bin := range dockerClients(t) {
		out, stderr, _ := dockerAt(t, bin, sock, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}} {{.NetIO}} {{.BlockIO}}", "busy", "idle")
		rows := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 12 {
				rows[f[0]] = f
			}
		}
		if len(rows) != 2 {
			t.Fatalf("%s stats --no-stream: %q %q", bin, out, stderr)
		}
		cpu, _ := strconv.ParseFloat(strings.TrimSuffix(rows["busy"][1], "%"), 64)
		if cpu < 5 {
			t.Errorf("%s stats: a busy loop at %v%% CPU: %q", bin, cpu, out)
		}
		for _, r := range rows {
			if r[2] == "0B" || r[4] == "0B" || r[5] != "1" || r[6]+r[8] != "0B0B" || r[10] != "/" {
				t.Errorf("%s stats: %q", bin, r)
			}
		}
		if r := rows["idle"]; r[1] != "0.00%" {
			t.Errorf("%s stats: sleep at %s CPU", bin, r[1])
		}
		out, stderr, _ = dockerAt(t, bin, sock, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "made")
		if out != "made 0.00% 0B / 0B 0\n" {
			t.Errorf("%s stats of a created container: %q %q", bin, out, stderr)
		}
	}

	// A stream: a sample a second, each with the one before as precpu,
	// until the container stops.
	client := unixClient(sock)
	resp, err := client.Get("http://cairn/v1.41/containers/idle/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var samples []container.StatsResponse
	for len(samples) < 3 {
		var v container.StatsResponse
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("stats stream: %v after %d samples", err, len(samples))
		}
		samples = append(samples, v)
	}
	for i := 1; i < len(samples); i++ {
		gap := samples[i].Read.Sub(samples[i-1].Read)
		if gap < 500*time.Millisecond || gap > 3*time.Second || !samples[i].PreRead.Equal(samples[i-1].Read) {
			t.Errorf("stats stream: sample %d %v after the one before, preread %v", i, gap, samples[i].PreRead)
		}
	}
	if v := samples[2]; v.Name != "/idle" || v.PidsStats.Current != 1 || v.MemoryStats.Usage == 0 || v.CPUStats.SystemUsage == 0 {
		t.Errorf("stats stream: %+v", v)
	}
	s.ok("kill", "idle")
	ended := make(chan error, 1)
	go func() {
		for {
			var v container.StatsResponse
			if err := dec.Decode(&v); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("stats stream of a stopped container: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("stats stream: still going 10s after the container stopped")
	}

	// Export: the same tar as the CLI's, of a stopped container.
	for _, bin := range dockerClients(t) {
		out, stderr, code := dockerAt(t, bin, sock, "export", "made")
		if code != 0 {
			t.Fatalf("%s export: %s", bin, stderr)
		}
		got, want := cpTarList(t, []byte(out), nil), cpTarList(t, []byte(s.ok("export", "made")), nil)
		if len(got) < 100 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s export: %d entries, cairn export %d", bin, len(got), len(want))
		}
	}
	s.ok("rm", "-f", "busy", "idle", "made")
}

// docker cp through cairn's socket does what it does through dockerd's:
// out and in, files, directories and their contents, symlinks, tars on
// stdin and stdout, and the errors — the same trees and messages, for
// both docker clients; a copy in lands in the container, as `cairn exec`
// sees it.
func TestAPIContainerCp(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	u := cpUnique()
	img := "cairn-test/api-cp:" + u
	cpImage(t, s, docker, img)
	src := cpHostSource(t)
	stdinTar := cpTar(t, fixtures.Dir("t19/").Mode(0o750).Owner(3, 4), fixtures.File("t19/a", "from stdin\n").Mode(0o600).Owner(3, 4),
		fixtures.Symlink("t19/la", "a"))
	cases := []cpCase{
		{name: "file to a new name", args: []string{"CTR:/d/f", "HOST/out/new"}},
		{name: "directory to a new name", args: []string{"CTR:/d", "HOST/out/newdir"}},
		{name: "directory contents", args: []string{"CTR:/d/sub/.", "HOST/out"}},
		{name: "symlink followed", args: []string{"-L", "CTR:/d/asub", "HOST/out/followed"}},
		{name: "tar of a directory", args: []string{"CTR:/d", "-"}},
		{name: "missing source", args: []string{"CTR:/nope", "HOST/out/"}},
		{name: "directory over a file", args: []string{"CTR:/d", "HOST/out/existing"}},
		{name: "file into a directory", in: true, args: []string{"SRC/file", "CTR:/tmp/"}},
		{name: "archive mode with a user", in: true, user: "nobody", args: []string{"-a", "SRC/file", "CTR:/tmp/fa"}},
		{name: "directory to a new name", in: true, args: []string{"SRC/dir", "CTR:/tmp/newdir"}},
		{name: "file through a symlink", in: true, args: []string{"SRC/file", "CTR:/d/lf"}},
		{name: "tar from stdin", in: true, stdin: stdinTar, args: []string{"-", "CTR:/tmp"}},
		{name: "tar into a file", in: true, stdin: stdinTar, args: []string{"-", "CTR:/d/f"}},
		{name: "into a missing directory", in: true, args: []string{"SRC/file", "CTR:/nodir/x"}},
	}
	sock, _ := s.apiService("0")
	for i, bin := range dockerClients(t) {
		side := func(name, sock string, create func(args ...string)) cpEngine {
			return cpEngine{name: name, create: create,
				cp: func(stdin []byte, args ...string) (string, string, int) {
					return dockerAtIn(t, bin, sock, stdin, args...)
				},
				export: func(ctr string) []byte {
					out, _, _ := dockerAtIn(t, bin, sock, nil, "export", ctr)
					return []byte(out)
				},
			}
		}
		dockerdSide := side("dockerd", dockerdSocket(docker), func(args ...string) {
			docker.Run(t, append([]string{"create"}, args...)...)
			t.Cleanup(func() { docker.RunErr("rm", "-f", args[3]) })
		})
		cairnSide := side("cairn", sock, func(args ...string) { s.ok(append([]string{"create"}, args...)...) })
		t.Run(strings.ReplaceAll(strings.Trim(bin, "/"), "/", "_"), func(t *testing.T) {
			cpCompare(t, cases, img, fmt.Sprintf("%s-%d", u, i), src, dockerdSide, cairnSide)
		})
	}

	// Into a running container: what it sees at once.
	s.ok("run", "-d", "--network", "none", "--name", u+"-live", img, "sleep", "1000")
	for _, bin := range dockerClients(t) {
		if _, stderr, code := dockerAt(t, bin, sock, "cp", filepath.Join(src, "dir"), u+"-live:/tmp/"); code != 0 {
			t.Fatalf("%s cp into a running container: %s", bin, stderr)
		}
		if got := s.ok("exec", u+"-live", "cat", "/tmp/dir/x", "/tmp/dir/sub/y"); got != "dir x\nsub y\n" {
			t.Errorf("%s cp into a running container: it sees %q", bin, got)
		}
		s.ok("exec", u+"-live", "rm", "-r", "/tmp/dir")
	}
	// The stat of a path, as the header dockerd sends.
	resp, err := unixClient(sock).Head("http://cairn/containers/" + u + "-live/archive?path=/d/lf")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var st struct {
		Name, LinkTarget string
		Mode             os.FileMode
	}
	if err := decodePathStat(resp, &st); err != nil || st.Name != "lf" || st.LinkTarget != "/d/f" || st.Mode&os.ModeSymlink == 0 {
		t.Errorf("HEAD archive of a symlink: %d %+v %v", resp.StatusCode, st, err)
	}
	s.ok("rm", "-f", u+"-live")
}

// decodePathStat reads the X-Docker-Container-Path-Stat header of resp.
func decodePathStat(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
