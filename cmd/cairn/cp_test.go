package main

import "testing"

// CONTAINER:PATH, as Docker splits it: a local path with a ":" is made
// explicit by "/" or "./".
func TestSplitCpArg(t *testing.T) {
	for arg, want := range map[string][2]string{
		"c:/etc/passwd":  {"c", "/etc/passwd"},
		"c:rel":          {"c", "rel"},
		"c:":             {"c", ""},
		"/abs:name":      {"", "/abs:name"},
		"./file:name":    {"", "./file:name"},
		"file":           {"", "file"},
		"-":              {"", "-"},
		"host0/c:/x":     {"host0/c", "/x"},
		"../up:and/down": {"", "../up:and/down"},
	} {
		if c, p := splitCpArg(arg); c != want[0] || p != want[1] {
			t.Errorf("splitCpArg(%q) = %q, %q; want %q, %q", arg, c, p, want[0], want[1])
		}
	}
}
