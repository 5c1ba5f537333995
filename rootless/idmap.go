package rootless

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Range is a range of subordinate IDs: Count IDs from Start.
type Range struct {
	Start, Count int
}

// Mapping is one line of a uid_map or gid_map: Count IDs from Inside
// (in the namespace) are Outside… outside it.
type Mapping struct {
	Inside, Outside, Count int
}

// subordinate reads the ranges of a user (by name or ID) from a file in
// the format of /etc/subuid.
func subordinate(file, name string, id int) ([]Range, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Range
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		who, rest, _ := strings.Cut(line, ":")
		if who != name && who != strconv.Itoa(id) {
			continue
		}
		start, count, ok := strings.Cut(rest, ":")
		s, err1 := strconv.Atoi(start)
		c, err2 := strconv.Atoi(count)
		if !ok || err1 != nil || err2 != nil || s < 0 || c <= 0 {
			return nil, fmt.Errorf("%s:%d: %q is not NAME:START:COUNT", file, n, line)
		}
		out = append(out, Range{s, c})
	}
	return out, sc.Err()
}

// mappings are the lines of a namespace's map: 0 is the user's own ID,
// 1… the subordinate ranges in order.
func mappings(own int, ranges []Range) []Mapping {
	m := []Mapping{{0, own, 1}}
	next := 1
	for _, r := range ranges {
		m = append(m, Mapping{next, r.Start, r.Count})
		next += r.Count
	}
	return m
}
