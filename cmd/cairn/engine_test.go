package main

import (
	"slices"
	"testing"
)

// A bare KEY of -e takes cairn's own environment's value, or is left out, as
// Docker's CLI does; KEY=VALUE and malformed entries pass as they are (the
// runtime refuses an empty name).
func TestResolveEnv(t *testing.T) {
	t.Setenv("CAIRN_TEST_HOST", "host=val")
	got := resolveEnv([]string{"A=1", "CAIRN_TEST_HOST", "CAIRN_TEST_UNSET_X", "=x", "B="})
	want := []string{"A=1", "CAIRN_TEST_HOST=host=val", "=x", "B="}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
