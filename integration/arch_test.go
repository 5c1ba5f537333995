package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// The architecture's import rules hold: imports only point down, and only
// runtime/ imports libcontainer.
func TestImportsPointDown(t *testing.T) {
	const mod = "github.com/cairn-runtime/cairn/"
	forbidden := map[string][]string{
		"rootfs":   {"image", "snapshot", "runtime", "commit", "builder", "registry", "cmd"},
		"image":    {"snapshot", "runtime", "commit", "builder", "registry", "cmd"},
		"snapshot": {"image", "runtime", "commit", "builder", "registry", "cmd"},
		"runtime":  {"commit", "builder", "registry", "cmd"},
		"commit":   {"runtime", "builder", "registry", "cmd"},
		"builder":    {"registry", "cmd"},
		"registry": {"snapshot", "runtime", "commit", "builder", "cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "../"+pkg).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "directory not found") || strings.Contains(string(out), "no Go files") || strings.Contains(string(out), "cannot find") {
				continue // that room is not built yet
			}
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == mod+b || strings.HasPrefix(dep, mod+b+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
	// libcontainer is imported by runtime/ alone: every other package of
	// the module reaches it, if at all, through runtime's API.
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, dep := range f[1:] {
			if f[0] != mod+"runtime" && strings.Contains(dep, "opencontainers/runc/libcontainer") {
				t.Errorf("%s imports libcontainer (%s): only runtime/ may", f[0], dep)
			}
		}
	}
}
