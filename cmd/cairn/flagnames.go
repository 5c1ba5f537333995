package main

import (
	"regexp"
	_ "unsafe" // for go:linkname
)

// cliFlagNameTail is urfave/cli's pattern for what FlagNames strips from a
// flag's name: everything from a comma or space on (v1's "name, n" form).
// FlagNames runs it on every name of every flag each time a flag is looked
// up, and each lookup walks all of a command's flags: parsing `run`'s
// hundred-odd flags ran that backtracking pattern some ten thousand times,
// about 5 ms of every `cairn run`. cairn's flag names hold no comma or space
// (TestFlagNamesPlain checks every one), so a pattern that matches none
// does the same: one that needs more bytes than any name has, which regexp
// turns down by the input's length before it starts a matcher
// (BenchmarkFlagNames, a call for a flag of two names, alternated runs:
// about a third less than with a pattern that begins with a NUL byte, which
// needs a matcher's state for each name, and under half of urfave's own).
//
//go:linkname cliFlagNameTail github.com/urfave/cli/v2.commaWhitespace
var cliFlagNameTail *regexp.Regexp

func init() { cliFlagNameTail = regexp.MustCompile(`\x00{256}`) }
