package integration

import (
	"regexp"
	"strings"
	"testing"
)

// dockerContainerCommands are the subcommands of Docker 20.10's `docker
// container`.
var dockerContainerCommands = []string{"attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs",
	"ls", "pause", "port", "prune", "rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "update", "wait"}

// subcommands lists the commands of a help text.
func helpCommands(help string) []string {
	_, list, _ := strings.Cut(help, "COMMANDS:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^   (\S+?),?(\s|$)`).FindAllStringSubmatch(list, -1) {
		if m[1] != "help" {
			out = append(out, m[1])
		}
	}
	return out
}

// `cairn container` groups the container commands as Docker's: each of
// Docker's that cairn has at the top level is there, nothing else is, and
// each does what the top-level command does; ls is ps (ps and list its
// aliases); inspect is of containers only; prune is the group's own.
func TestGroupsContainer(t *testing.T) {
	s := newStore(t)
	s.busybox()
	top := map[string]bool{}
	for _, c := range helpCommands(s.ok("--help")) {
		top[c] = true
	}
	got := helpCommands(s.ok("container", "--help"))
	for _, c := range got {
		if !contains(dockerContainerCommands, c) {
			t.Errorf("container %s is not Docker's", c)
		}
	}
	for _, c := range dockerContainerCommands {
		if (top[c] || c == "ls" || c == "inspect" || c == "prune") && !contains(got, c) {
			t.Errorf("container lacks %s (cairn has it at the top level): %q", c, got)
		}
	}

	s.ok("container", "run", "--network", "none", "--name", "grouped", "busybox", "sh", "-c", "echo out")
	ps := s.ok("ps", "-a")
	for _, args := range [][]string{{"container", "ls", "-a"}, {"container", "ps", "-a"}, {"container", "list", "-a"}} {
		if out := s.ok(args...); out != ps {
			t.Errorf("%s:\n%s\nps -a:\n%s", strings.Join(args, " "), out, ps)
		}
	}
	if out := s.ok("container", "logs", "grouped"); out != "out\n" {
		t.Errorf("container logs: %q", out)
	}
	if out := s.ok("container", "inspect", "--format", "{{.Name}} {{.State.Status}}", "grouped"); out != "/grouped exited\n" {
		t.Errorf("container inspect: %q", out)
	}
	// inspect of an image is the top-level inspect's; container inspect's is not.
	s.ok("inspect", "busybox")
	s.fails(1, "No such container: busybox", "container", "inspect", "busybox")
	s.ok("container", "rename", "grouped", "regrouped")
	id := strings.TrimSpace(s.ok("ps", "-aq", "--no-trunc"))
	if out := s.ok("container", "prune", "-f"); out != "Deleted Containers:\n"+id+"\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("container prune: %q", out)
	}
	s.fails(125, "requires exactly 2 arguments", "container", "rename", "x")
}

// `cairn image` has Docker's subcommands: build, history, import, inspect,
// load, ls (list), prune, pull, push, rm, save, tag.
func TestGroupsImage(t *testing.T) {
	s := newStore(t)
	s.busybox()
	want := []string{"build", "history", "import", "inspect", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"}
	if got := helpCommands(s.ok("image", "--help")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("image subcommands %q, want %q", got, want)
	}
	if a, b, c := s.ok("image", "ls"), s.ok("image", "list"), s.ok("images"); a != c || b != c {
		t.Errorf("image ls %q, image list %q, images %q", a, b, c)
	}
	if out := s.ok("image", "inspect", "--format", "{{.RepoTags}}", "busybox"); out != "[busybox:latest]\n" {
		t.Errorf("image inspect: %q", out)
	}
	if out := s.ok("image", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("image prune of nothing: %q", out)
	}
	// The groups Docker has besides: network, volume, builder, system.
	for _, g := range []string{"network", "volume", "builder", "system"} {
		if len(helpCommands(s.ok(g, "--help"))) == 0 {
			t.Errorf("%s has no subcommands", g)
		}
	}
	if !contains(helpCommands(s.ok("system", "--help")), "prune") {
		t.Errorf("system lacks prune")
	}
}
