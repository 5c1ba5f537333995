// Package names holds Docker's rule for the names a user gives containers,
// volumes and networks, so that every store checks them alike.
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
