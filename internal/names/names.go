// Package names holds Docker's rule for the names a user gives containers,
// volumes and networks, and the form of the IDs cairn gives things, so that
// every store checks them alike.
package names

// Valid reports whether n follows Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func Valid(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '_' && r != '.' && r != '-') {
			return false
		}
	}
	return true
}

// Hex reports whether s is lowercase hex digits only (an ID or a prefix of
// one).
func Hex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ID reports whether s is a whole ID: the 64 lowercase hex digits of a
// container's ID or of a sha256 digest (an image, a blob, a layer chain),
// as digest.Validate checks the latter, without its regexp (2 ms of a list
// of 1,000 snapshots).
func ID(s string) bool { return len(s) == 64 && Hex(s) }
