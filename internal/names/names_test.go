package names

import "testing"

func TestValid(t *testing.T) {
	for n, want := range map[string]bool{"web": true, "a.b_c-1": true, "9lives": true, "": false, "-x": false, ".x": false, "_x": false, "a b": false, "a/b": false, "é": false} {
		if got := Valid(n); got != want {
			t.Errorf("Valid(%q) = %v, want %v", n, got, want)
		}
	}
}
