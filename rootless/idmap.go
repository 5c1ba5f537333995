package rootless

import (
	"fmt"
	"strconv"

	"github.com/moby/sys/user"
)

// Mapping is one line of a uid_map or gid_map: Count IDs from Inside
// (in the namespace) are Outside… outside it.
type Mapping struct {
	Inside, Outside, Count int64
}

// subordinate reads the ranges of a user (by name or ID) from a file in
// the format of /etc/subuid.
func subordinate(file, name string, id int) ([]user.SubID, error) {
	ranges, err := user.ParseSubIDFileFilter(file, func(e user.SubID) bool { return e.Name == name || e.Name == strconv.Itoa(id) })
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		// The parser takes a line it cannot read whole for zeros.
		if r.SubID < 0 || r.Count <= 0 {
			return nil, fmt.Errorf("%s: a line of %s is not NAME:START:COUNT with a positive count", file, r.Name)
		}
	}
	return ranges, nil
}

// mappings are the lines of a namespace's map: 0 is the user's own ID,
// 1… the subordinate ranges in order.
func mappings(own int, ranges []user.SubID) []Mapping {
	m := []Mapping{{0, int64(own), 1}}
	next := int64(1)
	for _, r := range ranges {
		m = append(m, Mapping{next, r.SubID, r.Count})
		next += r.Count
	}
	return m
}
