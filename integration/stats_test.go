package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// dockerBusybox imports the busybox rootfs into the test Docker engine
// under a name of the test's own, removed (with the containers the test
// names after it) at its end.
func dockerBusybox(t *testing.T, docker *testutil.DockerEngine) string {
	t.Helper()
	tag := fmt.Sprintf("cairn-test/%s:%d", strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")), os.Getpid())
	docker.Run(t, "import", busyboxRootfs(t), tag)
	t.Cleanup(func() { docker.RunErr("rmi", "-f", tag) })
	return tag
}

// dockerName is a container name of the test's own in the Docker engine,
// whose container is removed at the test's end.
func dockerName(t *testing.T, docker *testutil.DockerEngine, what string) string {
	name := fmt.Sprintf("cairn-test-%s-%d", what, os.Getpid())
	docker.RunErr("rm", "-f", name)
	t.Cleanup(func() { docker.RunErr("rm", "-f", name) })
	return name
}

// columns splits a table line at runs of two spaces or more, as Docker's
// tables separate their columns.
func columns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// lines are the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// jsonKeys are the sorted keys of the JSON object line.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", line, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// statsShapes are what each column of `stats` looks like, in Docker as in
// cairn.
var statsShapes = map[string]*regexp.Regexp{
	"CPU %":             regexp.MustCompile(`^\d+\.\d\d%$`),
	"MEM USAGE / LIMIT": regexp.MustCompile(`^\d+(\.\d+)?[KMGTP]?i?B / \d+(\.\d+)?[KMGTP]?i?B$`),
	"MEM %":             regexp.MustCompile(`^\d+\.\d\d%$`),
	"NET I/O":           regexp.MustCompile(`^\d+(\.\d+)?[kMGTP]?B / \d+(\.\d+)?[kMGTP]?B$`),
	"BLOCK I/O":         regexp.MustCompile(`^\d+(\.\d+)?[kMGTP]?B / \d+(\.\d+)?[kMGTP]?B$`),
	"PIDS":              regexp.MustCompile(`^\d+$`),
	"CONTAINER ID":      regexp.MustCompile(`^[0-9a-f]{12}$`),
}

// `stats --no-stream` has Docker's columns, each value in Docker's shape,
// and --format '{{json .}}' Docker's fields.
func TestStatsMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	img := dockerBusybox(t, docker)
	dname := dockerName(t, docker, "stats")
	docker.Run(t, "run", "-d", "--network", "none", "--name", dname, img, "sleep", "1000")
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")

	dout := lines(docker.Run(t, "stats", "--no-stream", dname))
	cout := lines(s.ok("stats", "--no-stream", "sleeper"))
	if len(dout) != 2 || len(cout) != 2 {
		t.Fatalf("want a header and a row:\ndocker %q\ncairn  %q", dout, cout)
	}
	dh, ch := columns(dout[0]), columns(cout[0])
	if strings.Join(dh, "|") != strings.Join(ch, "|") {
		t.Fatalf("headers differ:\ndocker %q\ncairn  %q", dh, ch)
	}
	for who, row := range map[string][]string{"docker": columns(dout[1]), "cairn": columns(cout[1])} {
		if len(row) != len(dh) {
			t.Fatalf("%s: %d columns, want %d: %q", who, len(row), len(dh), row)
		}
		for i, h := range dh {
			if re := statsShapes[h]; re != nil && !re.MatchString(row[i]) {
				t.Errorf("%s: column %s is %q, not like %s", who, h, row[i], re)
			}
		}
	}
	if name := columns(cout[1])[1]; name != "sleeper" {
		t.Errorf("NAME is %q", name)
	}
	dj := jsonKeys(t, lines(docker.Run(t, "stats", "--no-stream", "--format", "{{json .}}", dname))[0])
	cj := jsonKeys(t, lines(s.ok("stats", "--no-stream", "--format", "{{json .}}", "sleeper"))[0])
	if strings.Join(dj, ",") != strings.Join(cj, ",") {
		t.Errorf("--format json fields differ:\ndocker %v\ncairn  %v", dj, cj)
	}
	// Every field in a custom table, with Docker's headers.
	format := "table {{.Container}}\t{{.Name}}\t{{.ID}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
	dh = columns(lines(docker.Run(t, "stats", "--no-stream", "--format", format, dname))[0])
	ch = columns(lines(s.ok("stats", "--no-stream", "--format", format, "sleeper"))[0])
	if strings.Join(dh, "|") != strings.Join(ch, "|") {
		t.Errorf("custom table headers differ:\ndocker %q\ncairn  %q", dh, ch)
	}
}

// A container burning a CPU shows a CPU % above 0, and one run with
// --memory shows that limit.
func TestStatsCPUAndMemoryLimit(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "burner", "--memory", "64m", "busybox", "sh", "-c", "while :; do :; done")
	var last string
	waitFor(t, 30*time.Second, "CPU % above 0", func() bool {
		last = strings.TrimSpace(s.ok("stats", "--no-stream", "--format", "{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}", "burner"))
		f := strings.Split(last, "|")
		cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		return err == nil && cpu > 0
	})
	f := strings.Split(last, "|")
	if !strings.HasSuffix(f[1], " / 64MiB") || f[3] != "1" {
		t.Fatalf("stats of a container with --memory 64m: %q", last)
	}
	if mem, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "%"), 64); err != nil || mem <= 0 || mem >= 100 {
		t.Fatalf("MEM %%: %q", f[2])
	}
	// Without a limit, the host's memory is the limit.
	s.ok("run", "-d", "--name", "free", "busybox", "sleep", "1000")
	out := strings.TrimSpace(s.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", "free"))
	if strings.HasSuffix(out, " / 0B") || strings.HasSuffix(out, " / 64MiB") {
		t.Fatalf("stats of a container without a limit: %q", out)
	}
}

// stats lists the running containers, with -a the others too (with
// nothing used), streams frames until it is stopped, and names what it
// cannot find.
func TestStatsAllStreamAndErrors(t *testing.T) {
	s := newStore(t)
	s.busybox()
	up := strings.TrimSpace(s.ok("run", "-d", "--name", "up", "busybox", "sleep", "1000"))
	s.ok("run", "--name", "down", "busybox", "true")
	names := func(args ...string) string {
		var out []string
		for _, l := range lines(s.ok(append([]string{"stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}"}, args...)...)) {
			out = append(out, l)
		}
		sort.Strings(out)
		return strings.Join(out, ";")
	}
	if got := names(); !strings.HasPrefix(got, "up ") || strings.Contains(got, "down") {
		t.Fatalf("stats: %q", got)
	}
	if got := names("-a"); !strings.HasPrefix(got, "down 0.00% 0B / 0B 0;up ") {
		t.Fatalf("stats -a: %q", got)
	}
	if got := strings.TrimSpace(s.ok("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.Container}}", "up")); got != up+" up" {
		t.Fatalf("--no-trunc: %q, want %q", got, up+" up")
	}
	s.fails(1, "No such container", "stats", "--no-stream", "nosuch")

	bg := s.start("stats", "--format", "{{.Name}}", "up")
	waitFor(t, 20*time.Second, "three frames of stats", func() bool {
		return strings.Count(bg.stdout.String(), "\033[2J\033[H") >= 3
	})
	frames := strings.Split(bg.stdout.String(), "\033[2J\033[H")
	if frames[1] != "up\n" {
		t.Fatalf("a frame: %q", frames[1])
	}
	// Once the container is gone, stats of it ends.
	s.ok("rm", "-f", "up")
	if code := bg.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("stats exited %d: %s", code, bg.stderr)
	}
}

// `top` runs the host's ps and keeps the container's processes: Docker's
// columns by default and with ps options, the container's own pid.
func TestTopMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	img := dockerBusybox(t, docker)
	dname := dockerName(t, docker, "top")
	docker.Run(t, "run", "-d", "--network", "none", "--name", dname, img, "sleep", "1000")
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
	pid := fmt.Sprint(s.inspect("sleeper")["State"].(map[string]any)["Pid"])

	for _, args := range [][]string{nil, {"aux"}, {"-o", "pid,comm"}, {"-eo", "pid,user,args"}} {
		dout := lines(docker.Run(t, append([]string{"top", dname}, args...)...))
		cout := lines(s.ok(append([]string{"top", "sleeper"}, args...)...))
		if len(dout) != 2 || len(cout) != 2 {
			t.Fatalf("top %v: want a header and one process:\ndocker %q\ncairn  %q", args, dout, cout)
		}
		dh, ch := columns(dout[0]), columns(cout[0])
		if strings.Join(dh, "|") != strings.Join(ch, "|") {
			t.Fatalf("top %v: headers differ:\ndocker %q\ncairn  %q", args, dh, ch)
		}
		row := columns(cout[1])
		if len(row) != len(ch) {
			t.Fatalf("top %v: %d columns for %d titles: %q", args, len(row), len(ch), row)
		}
		for i, h := range ch {
			if h == "PID" && row[i] != pid {
				t.Errorf("top %v: PID %s, the container's is %s", args, row[i], pid)
			}
		}
		if last := row[len(row)-1]; !strings.HasPrefix(last, "sleep") {
			t.Errorf("top %v: the command is %q", args, last)
		}
	}
	// Every process of its cgroup, and no other.
	s.ok("exec", "-d", "sleeper", "sleep", "999")
	waitFor(t, 10*time.Second, "the exec'd process", func() bool {
		return len(lines(s.ok("top", "sleeper"))) == 3
	})
	s.ok("stop", "-t", "1", "sleeper")
	s.fails(1, "is not running", "top", "sleeper")
	s.fails(1, "No such container", "top", "nosuch")
	s.fails(1, `specifying "ppid=PID" is not allowed`, "top", "sleeper", "-o", "ppid=PID")
}
