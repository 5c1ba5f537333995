package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// cairn's pattern replaced urfave/cli's (a name is no longer cut at its
// first space), and that is safe: no flag name of any command holds a comma
// or a space.
func TestFlagNamesPlain(t *testing.T) {
	if got := cli.FlagNames("a b", nil); len(got) != 1 || got[0] != "a b" {
		t.Fatalf("urfave/cli's flag-name pattern was not replaced: FlagNames(%q) = %q", "a b", got)
	}
	app := newApp()
	n := 0
	var walk func(path string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(path string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			for _, name := range f.Names() {
				n++
				if strings.ContainsAny(name, ", ") {
					t.Errorf("%s: flag %q holds a comma or space", path, name)
				}
			}
		}
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Flags, c.Subcommands)
		}
	}
	walk("cairn", app.Flags, app.Commands)
	if n < 200 {
		t.Fatalf("only %d flag names seen", n)
	}
}

// BenchmarkFlagNames is the cost of one of the ten thousand FlagNames calls
// of parsing `run`'s flags.
func BenchmarkFlagNames(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cli.FlagNames("publish-all", []string{"P"})
	}
}
