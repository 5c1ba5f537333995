package main

import (
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/distribution/reference"
)

// A name image.IsFamiliar takes is one the parse would give back as it is.
func TestIsFamiliarAgreesWithTheParse(t *testing.T) {
	for _, s := range []string{
		"busybox", "busybox:latest", "team/app:1", "a/b/c:v1.2-rc_3", "big/img424:1", "a-b.c_d/e:T", "x:.bad", "x:-bad",
		"library/busybox", "docker.io/busybox", "localhost/x", "localhost:5000/x:1", "reg.example/y", "Busybox", "a__b", "a--b",
		"a..b", "a.", "-a", "a/", "/a", "a//b", "a:b:c", "a@sha256:" + "ab", "", ":", "a:", "img:" + string(make([]byte, 0)),
	} {
		if !image.IsFamiliar(s) {
			continue
		}
		if got := familiarImage(s); got != s {
			t.Errorf("%q: isFamiliar, but the parse gives %q", s, got)
		}
		if _, err := reference.ParseNormalizedNamed(s); err != nil {
			t.Errorf("%q: isFamiliar, but it does not parse: %v", s, err)
		}
	}
}
