package engine

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-runtime/cairn/events"
)

// Filters are the --filter KEY=VALUE of a list or prune command, as
// Docker's filters.Args holds them: the values of one key are alternatives
// (any may match; label is the exception, where every one must), and
// different keys must all match.
type Filters map[string][]string

// Add adds value to key (once).
func (f Filters) Add(key, value string) {
	if !slices.Contains(f[key], value) {
		f[key] = append(f[key], value)
	}
}

// Contains reports whether key has a value.
func (f Filters) Contains(key string) bool { return len(f[key]) > 0 }

// Get returns the values of key, in the order they were given.
func (f Filters) Get(key string) []string { return f[key] }

// filterError is a bad filter, in Docker's words: it is ErrInvalid for
// errors.Is, and its text is Docker's alone.
type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }
func (e *filterError) Unwrap() error { return ErrInvalid }

func invalidFilter(format string, args ...any) error {
	return &filterError{msg: fmt.Sprintf(format, args...)}
}

// invalidFilterValue is Docker's invalidFilter{key, values}: "Invalid
// filter 'key=[v1 v2]'".
func invalidFilterValue(key string, values []string) error {
	return invalidFilter("Invalid filter '%s=%s'", key, fmt.Sprint(values))
}

// Validate refuses a key that is not accepted, as Docker does: "Invalid
// filter 'KEY'".
func (f Filters) Validate(accepted ...string) error {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(accepted, k) {
			return invalidFilter("Invalid filter '%s'", k)
		}
	}
	return nil
}

// exactMatch is Docker's ExactMatch: true without values for key.
func (f Filters) exactMatch(key, s string) bool {
	vs := f[key]
	return len(vs) == 0 || slices.Contains(vs, s)
}

// match is Docker's Match: an exact value, or a value that is a regular
// expression s matches (unanchored).
func (f Filters) match(key, s string) bool {
	if f.exactMatch(key, s) {
		return true
	}
	for _, v := range f[key] {
		if ok, err := regexp.MatchString(v, s); err == nil && ok {
			return true
		}
	}
	return false
}

// fuzzyMatch is Docker's FuzzyMatch: an exact value or a prefix of s.
func (f Filters) fuzzyMatch(key, s string) bool {
	if f.exactMatch(key, s) {
		return true
	}
	for _, v := range f[key] {
		if strings.HasPrefix(s, v) {
			return true
		}
	}
	return false
}

// matchKV is Docker's MatchKVList: every value of key, KEY or KEY=VALUE,
// is among labels.
func (f Filters) matchKV(key string, labels map[string]string) bool {
	vs := f[key]
	if len(vs) == 0 {
		return true
	}
	if len(labels) == 0 {
		return false
	}
	for _, v := range vs {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != want {
			return false
		}
	}
	return true
}

// matchLabels is the label and label! filters of a prune, as Docker's
// matchLabels: every label= matches, and not every label!= does.
func (f Filters) matchLabels(labels map[string]string) bool {
	if !f.matchKV("label", labels) {
		return false
	}
	return !f.Contains("label!") || !f.matchKV("label!", labels)
}

// boolValue is Docker's GetBoolOrDefault: one value, true/1 or false/0.
func (f Filters) boolValue(key string, def bool) (bool, error) {
	vs := f[key]
	if len(vs) == 0 {
		return def, nil
	}
	isTrue := slices.Contains(vs, "true") || slices.Contains(vs, "1")
	isFalse := slices.Contains(vs, "false") || slices.Contains(vs, "0")
	if len(vs) > 1 || isTrue == isFalse {
		return def, invalidFilterValue(key, vs)
	}
	return isTrue, nil
}

// until is the until filter of a prune: the time before which objects are
// pruned (zero without the filter).
func (f Filters) until(now time.Time) (time.Time, error) {
	vs := f["until"]
	switch len(vs) {
	case 0:
		return time.Time{}, nil
	case 1:
	default:
		return time.Time{}, invalidFilter("more than one until filter specified")
	}
	// Docker's GetTimestamp, as --since and --until of events read it.
	t, err := events.ParseTime(vs[0], now)
	if err != nil {
		return time.Time{}, invalidFilter("failed to parse value as time or duration: %q", vs[0])
	}
	return t, nil
}
