package integration

import (
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// helpFlag is a line of a --help: `  -a, --attach list   Attach to…`.
var helpFlag = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)

// helpFlags are the long flags a --help lists, with the text of each.
func helpFlags(help string) map[string]string {
	out := map[string]string{}
	last := ""
	for _, l := range strings.Split(help, "\n") {
		if m := helpFlag.FindStringSubmatch(l); m != nil {
			last = m[1]
			out[last] = l
		} else if last != "" && strings.TrimSpace(l) != "" && strings.HasPrefix(l, "    ") {
			out[last] += " " + strings.TrimSpace(l)
		}
	}
	return out
}

// dockerClients are the docker CLIs here: the one on PATH and Debian's
// docker.io (/usr/bin/docker, 20.10), if they differ.
func dockerClients(t *testing.T) []string {
	testutil.RequiresTool(t, "docker")
	onPath, _ := exec.LookPath("docker")
	out := []string{onPath}
	if st, err := os.Stat("/usr/bin/docker"); err == nil && st.Mode().IsRegular() && onPath != "/usr/bin/docker" {
		out = append(out, "/usr/bin/docker")
	}
	return out
}

// Every flag `docker run --help` lists is one `cairn run --help` lists:
// supported, or refused by name with the reason — and a refused one is
// refused when given (exit 125, the flag named), never ignored.
func TestHelpRunFlags(t *testing.T) {
	s := rfStore(t)
	cairnHelp := helpFlags(s.ok("run", "--help"))
	for _, docker := range dockerClients(t) {
		out, err := exec.Command(docker, "run", "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s run --help: %v\n%s", docker, err, out)
		}
		version, _ := exec.Command(docker, "version", "--format", "{{.Client.Version}}").Output()
		dockerFlags := helpFlags(string(out))
		delete(dockerFlags, "help")
		var supported, refused, missing []string
		for _, f := range slices.Sorted(maps.Keys(dockerFlags)) {
			line, ok := cairnHelp[f]
			switch {
			case !ok:
				missing = append(missing, f)
			case strings.Contains(line, "refused: "):
				refused = append(refused, "--"+f+" ("+strings.TrimSpace(line[strings.Index(line, "refused: ")+len("refused: "):])+")")
			default:
				supported = append(supported, f)
			}
		}
		t.Logf("docker %s run: %d flags (and --help); cairn supports %d and refuses %d:\n  %s",
			strings.TrimSpace(string(version)), len(dockerFlags), len(supported), len(refused), strings.Join(refused, "\n  "))
		if len(missing) > 0 {
			t.Errorf("%s run: flags cairn neither supports nor refuses: %v", docker, missing)
		}
		if strings.HasPrefix(string(version), "20.10.") && len(supported) < 88 {
			t.Errorf("docker 20.10's run has %d flags: cairn supports %d, fewer than 88", len(dockerFlags), len(supported))
		}
	}
	// A refused flag is refused when given.
	for f, line := range cairnHelp {
		if !strings.Contains(line, "refused: ") {
			continue
		}
		arg := "--" + f + "=x"
		if !strings.Contains(line, " value") { // a boolean
			arg = "--" + f + "=" + map[bool]string{true: "false", false: "true"}[strings.Contains(line, "(default: true)")]
		}
		r := s.run(nil, "run", "--rm", "--network", "none", arg, rfImage, "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, "--"+f) {
			t.Errorf("cairn run %s: exit %d, stderr %q: want 125, and the flag named", arg, r.Code, r.Stderr)
		}
	}
	// create has run's flags but those of the foreground.
	createHelp := helpFlags(s.ok("create", "--help"))
	for f := range cairnHelp {
		if _, ok := createHelp[f]; !ok && !slices.Contains([]string{"detach", "sig-proxy", "detach-keys"}, f) {
			t.Errorf("create lacks --%s", f)
		}
	}
}
