package names

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestValid(t *testing.T) {
	for n, want := range map[string]bool{"web": true, "a.b_c-1": true, "9lives": true, "": false, "-x": false, ".x": false, "_x": false, "a b": false, "a/b": false, "é": false} {
		if got := Valid(n); got != want {
			t.Errorf("Valid(%q) = %v, want %v", n, got, want)
		}
	}
}

// ID agrees with digest.Validate on sha256 digests, and Hex takes
// lowercase hex digits only.
func TestIDAgreesWithValidate(t *testing.T) {
	good := digest.FromString("chain").Encoded()
	for _, n := range []string{good, strings.ToUpper(good), good[:63], good + "0", "", "tmp",
		good[:10] + "g" + good[11:], good[:10] + "/" + good[11:], good[:10] + "\x00" + good[11:],
		strings.Repeat("f", 64), strings.Repeat("0", 64), good[:10] + "é" + good[12:]} {
		want := digest.NewDigestFromEncoded(digest.SHA256, n).Validate() == nil
		if got := ID(n); got != want {
			t.Errorf("ID(%q) = %v, digest.Validate says %v", n, got, want)
		}
	}
	for s, want := range map[string]bool{"": true, "0a9f": true, "0A": false, "g": false, "ab cd": false} {
		if got := Hex(s); got != want {
			t.Errorf("Hex(%q) = %v, want %v", s, got, want)
		}
	}
}
