package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// infoKey is one "Key: value" line of `info` or `version`, with its depth
// and the key it is under ("Engine/Version").
type infoKey struct {
	indent int
	key    string
	value  string
}

// block returns the "Key: value" lines of the block of out that begins
// with a line starting with title ("Server:"), up to a blank line.
func block(out, title string) []infoKey {
	var keys []infoKey
	in := false
	for _, l := range strings.Split(out, "\n") {
		if !in {
			in = strings.HasPrefix(l, title)
			continue
		}
		if strings.TrimSpace(l) == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue // a list's item: a security option, a registry
		}
		trimmed := strings.TrimLeft(k, " ")
		indent := len(k) - len(trimmed)
		for j := len(keys) - 1; j >= 0 && indent > 1; j-- {
			if keys[j].indent == indent-1 {
				trimmed = strings.SplitN(keys[j].key, "/", 2)[0] + "/" + trimmed
				break
			}
		}
		keys = append(keys, infoKey{indent, trimmed, strings.TrimSpace(v)})
	}
	return keys
}

// sameShape checks that every key of got is one of want's (or of extra),
// at the same depth, and in want's order.
func sameShape(t *testing.T, what string, got, want []infoKey, extra ...string) {
	t.Helper()
	pos := map[[2]any]int{}
	for i, k := range want {
		pos[[2]any{k.indent, k.key}] = i
	}
	last := -1
	for _, k := range got {
		i, ok := pos[[2]any{k.indent, k.key}]
		if !ok {
			if !slices.Contains(extra, k.key) {
				t.Errorf("%s: %q (depth %d) is not in Docker's", what, k.key, k.indent)
			}
			continue
		}
		if i < last {
			t.Errorf("%s: %q is out of Docker's order", what, k.key)
		}
		last = i
	}
}

func valueOf(keys []infoKey, indent int, key string) string {
	for _, k := range keys {
		if k.indent == indent && k.key == key {
			return k.value
		}
	}
	return "<missing>"
}

// `info` is Docker's, line by line, with cairn's counts and the host's
// facts as Docker sees them; --format reads Docker's fields.
func TestInfoMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	s.ok("run", "--name", "down", "busybox", "true")

	dout, cout := docker.Run(t, "info"), s.ok("info")
	dk, ck := block(dout, "Server:"), block(cout, "Server:")
	if len(ck) < 30 {
		t.Fatalf("cairn info's Server block: %q", cout)
	}
	// docker.io 20.10's CLI prints Registry and Labels, which later CLIs
	// left out.
	sameShape(t, "info", ck, dk, "Registry", "Labels")
	for _, k := range []string{"Kernel Version", "Operating System", "OSType", "Architecture", "CPUs", "Total Memory", "Name",
		"Cgroup Version", "Cgroup Driver", "Logging Driver", "Default Runtime", "Swarm", "Debug Mode", "Experimental"} {
		if d, c := valueOf(dk, 1, k), valueOf(ck, 1, k); d != c {
			t.Errorf("info %s: docker %q, cairn %q", k, d, c)
		}
	}
	for _, c := range []struct {
		indent     int
		key, value string
	}{{1, "Containers", "2"}, {2, "Containers/Running", "1"}, {2, "Containers/Paused", "0"}, {2, "Containers/Stopped", "1"}, {1, "Images", "1"},
		{1, "Storage Driver", "overlay"}, {1, "Docker Root Dir", s.root}} {
		if got := valueOf(ck, c.indent, c.key); got != c.value {
			t.Errorf("info %s: %q, want %q", c.key, got, c.value)
		}
	}
	if !strings.Contains(cout, "\n Security Options:\n  seccomp\n   Profile: default\n  no-new-privileges\n") {
		t.Errorf("info's security options: %q", cout)
	}
	got := strings.TrimSpace(s.ok("info", "--format", "{{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.DockerRootDir}} {{.OSType}} {{.Driver}}"))
	if want := "1 1 1 " + s.root + " linux overlay"; got != want {
		t.Errorf("info --format: %q, want %q", got, want)
	}
	dj := jsonKeys(t, docker.Run(t, "info", "--format", "{{json .}}"))
	for _, k := range jsonKeys(t, s.ok("info", "--format", "{{json .}}")) {
		if !slices.Contains(dj, k) {
			t.Errorf("info's JSON field %s is not Docker's", k)
		}
	}
}

// `version` has Docker's Client and Server blocks, the server named
// "cairn Engine", with libcontainer's version as runc's.
func TestVersionMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	dout, cout := docker.Run(t, "version"), s.ok("version")
	// docker.io 20.10's CLI prints the client's Experimental, which later
	// CLIs left out.
	sameShape(t, "version Client", block(cout, "Client:"), block(dout, "Client:"), "Experimental")
	if !strings.Contains(cout, "\nServer: cairn Engine\n") {
		t.Fatalf("version: %q", cout)
	}
	ds, cs := block(dout, "Server"), block(cout, "Server")
	sameShape(t, "version Server", cs, ds)
	if v := valueOf(cs, 1, "Engine"); v != "" {
		t.Errorf("the Engine component: %q", v)
	}
	if v := valueOf(cs, 1, "runc"); v != "" {
		t.Errorf("no runc component: %q", v)
	}
	if v := valueOf(block(cout, "Client:"), 1, "Go version"); v != goruntime.Version() {
		t.Errorf("Go version %q, want %q", v, goruntime.Version())
	}
	if v := valueOf(block(cout, "Client:"), 1, "OS/Arch"); v != goruntime.GOOS+"/"+goruntime.GOARCH {
		t.Errorf("OS/Arch %q", v)
	}
	got := strings.TrimSpace(s.ok("version", "--format", "{{.Client.Version}} {{.Server.Version}} {{.Server.Platform.Name}} {{(index .Server.Components 0).Name}}"))
	f := strings.Fields(got)
	if len(f) != 5 || f[0] != f[1] || f[2]+" "+f[3] != "cairn Engine" || f[4] != "Engine" {
		t.Errorf("version --format: %q", got)
	}
	dj, cj := jsonKeys(t, docker.Run(t, "version", "--format", "{{json .}}")), jsonKeys(t, s.ok("version", "--format", "json"))
	if strings.Join(dj, ",") != strings.Join(cj, ",") {
		t.Errorf("version json: docker %v, cairn %v", dj, cj)
	}
}

// `system df` is Docker's summary, with Docker's rules for what is active
// and reclaimable, and -v Docker's four tables.
func TestSystemDfMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	s.busybox()
	s.ok("run", "--name", "wrote", "busybox", "sh", "-c", "echo 1234 > /f")
	s.ok("run", "-d", "--name", "up", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f; sleep 1000")
	waitFor(t, 10*time.Second, "the volume's file", func() bool {
		b, err := os.ReadFile(filepath.Join(s.root, "volumes", "data", "_data", "f"))
		return err == nil && string(b) == "hello\n"
	})

	dout, cout := lines(docker.Run(t, "system", "df")), lines(s.ok("system", "df"))
	if len(dout) != 5 || len(cout) != 5 {
		t.Fatalf("system df:\ndocker %q\ncairn  %q", dout, cout)
	}
	for i := range dout {
		d, c := columns(dout[i]), columns(cout[i])
		if i == 0 && strings.Join(d, "|") != strings.Join(c, "|") || i > 0 && d[0] != c[0] || len(d) != len(c) {
			t.Errorf("system df line %d:\ndocker %q\ncairn  %q", i, d, c)
		}
	}
	want := map[string]string{
		"Images":        "1|1|" + columns(cout[1])[3] + "|0B (0%)",
		"Containers":    "2|1|5B|5B (100%)",
		"Local Volumes": "1|1|6B|0B (0%)",
		"Build Cache":   "0|0|0B|0B",
	}
	for _, l := range cout[1:] {
		c := columns(l)
		if got := strings.Join(c[1:], "|"); got != want[c[0]] {
			t.Errorf("system df %s: %s, want %s", c[0], got, want[c[0]])
		}
	}
	dj := jsonKeys(t, lines(docker.Run(t, "system", "df", "--format", "{{json .}}"))[0])
	cj := jsonKeys(t, lines(s.ok("system", "df", "--format", "{{json .}}"))[0])
	if strings.Join(dj, ",") != strings.Join(cj, ",") {
		t.Errorf("system df json: docker %v, cairn %v", dj, cj)
	}

	// -v: the same titles, and tables with the same headers.
	shape := func(out string) []string {
		var s []string
		ls := strings.Split(out, "\n")
		for i, l := range ls {
			switch {
			case strings.HasSuffix(l, "usage:") || strings.HasPrefix(l, "Build cache usage:"):
				s = append(s, strings.SplitN(l, ":", 2)[0])
				if i+2 < len(ls) {
					s = append(s, strings.Join(columns(ls[i+2]), "|"))
				}
			}
		}
		return s
	}
	dv, cv := shape(docker.Run(t, "system", "df", "-v")), shape(s.ok("system", "df", "-v"))
	if strings.Join(dv, "\n") != strings.Join(cv, "\n") || len(cv) != 8 {
		t.Errorf("system df -v:\ndocker %q\ncairn  %q", dv, cv)
	}
	v := s.ok("system", "df", "-v")
	for _, re := range []string{`(?m)^busybox\s+latest\s+[0-9a-f]{12}\s+.*\s2$`, `(?m)^[0-9a-f]{12}\s+busybox\s+"sh -c 'echo 1234 > …"\s+0\s+5B\s+.*\swrote$`,
		`(?m)^[0-9a-f]{12}\s+busybox\s+.*\s1\s+0B\s+.*\sup$`, `(?m)^data\s+1\s+6B$`} {
		if !regexp.MustCompile(re).MatchString(v) {
			t.Errorf("system df -v has no line like %s:\n%s", re, v)
		}
	}
}

// `completion bash` is a script that, sourced in bash, completes cairn's
// commands, subcommands, flags and container names.
func TestCompletionBash(t *testing.T) {
	testutil.RequiresTool(t, "bash")
	s := newStore(t)
	s.busybox()
	s.ok("create", "--name", "completed", "busybox", "true")
	script := filepath.Join(t.TempDir(), "cairn.bash")
	if err := os.WriteFile(script, []byte(s.ok("completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory with "cairn" on PATH: the script lists containers with it.
	bin := t.TempDir()
	if err := os.Symlink(cairnBin, filepath.Join(bin, "cairn")); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		prog := `source "$1"; shift; complete -p cairn >/dev/null || exit 3
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cairn; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v\n%s", words, err, out)
		}
		return lines(string(out))
	}
	has := func(got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("completions %q lack %q", got, w)
			}
		}
	}
	has(complete("cairn", ""), "run", "ps", "images", "stats", "top", "events", "info", "version", "system", "completion")
	has(complete("cairn", "--"), "--root", "--config", "--help")
	has(complete("cairn", "st"), "start", "stop", "stats")
	has(complete("cairn", "system", ""), "df", "info", "events")
	has(complete("cairn", "image", "l"), "ls", "list", "load")
	has(complete("cairn", "stats", "--"), "--all", "--no-stream", "--no-trunc", "--format", "--help")
	has(complete("cairn", "system", "df", "-"), "--verbose", "-v", "--format")
	has(complete("cairn", "--root", s.root, "top", ""), "completed")
	has(complete("cairn", "--root="+s.root, "rm", "-f", "comp"), "completed")
	if got := complete("cairn", "--root", "/nonexistent", "events", "--since", ""); slices.Contains(got, "completed") {
		t.Errorf("a flag's value completed as a container: %q", got)
	}
	for _, shell := range []string{"zsh", "fish"} {
		out := s.ok("completion", shell)
		if !strings.Contains(out, "stats") || !strings.Contains(out, "no-stream") {
			t.Errorf("completion %s: %.200q", shell, out)
		}
	}
	s.fails(125, "unsupported shell", "completion", "tcsh")
}
