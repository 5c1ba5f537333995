package image

import (
	"testing"

	"github.com/distribution/reference"
)

// A name IsFamiliar takes is one the parse gives back as it is, so that
// FamiliarName (and ps's IMAGE column) may skip the parse for it.
func TestIsFamiliarAgreesWithTheParse(t *testing.T) {
	for _, s := range []string{
		"busybox", "busybox:latest", "team/app:1", "a/b/c:v1.2-rc_3", "big/img424:1", "a-b.c_d/e:T", "x:.bad", "x:-bad",
		"library/busybox", "docker.io/busybox", "localhost/x", "localhost:5000/x:1", "reg.example/y", "Busybox", "a__b", "a--b",
		"a..b", "a.", "-a", "a/", "/a", "a//b", "a:b:c", "a@sha256:ab", "", ":", "a:",
	} {
		if !IsFamiliar(s) {
			continue
		}
		n, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			t.Errorf("%q: IsFamiliar, but it does not parse: %v", s, err)
			continue
		}
		if got := reference.FamiliarString(n); got != s {
			t.Errorf("%q: IsFamiliar, but the parse gives %q", s, got)
		}
	}
	if got := FamiliarName("docker.io/library/busybox:latest"); got != "busybox:latest" {
		t.Errorf("FamiliarName of a full name: %q", got)
	}
}
