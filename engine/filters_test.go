package engine

import (
	"errors"
	"testing"
	"time"
)

// Docker's rules for filters: values of a key are alternatives (regular
// expressions for name, prefixes for id), label values must all match, an
// unknown key or a bad value is ErrInvalid in Docker's words.
func TestFilters(t *testing.T) {
	f := Filters{}
	f.Add("name", "^web")
	f.Add("name", "db$")
	f.Add("name", "db$")
	if len(f.Get("name")) != 2 {
		t.Fatalf("Add twice: %v", f)
	}
	for s, want := range map[string]bool{"web1": true, "maindb": true, "api": false, "/web": false} {
		if got := f.match("name", s); got != want {
			t.Errorf("match(name, %q) = %v", s, got)
		}
	}
	if !f.match("id", "anything") || !f.fuzzyMatch("id", "x") {
		t.Error("a key without values matches everything")
	}
	id := Filters{"id": {"43af"}}
	if !id.fuzzyMatch("id", "43af3372") || id.fuzzyMatch("id", "x43af") {
		t.Error("id is a prefix")
	}
	labels := Filters{"label": {"a", "b=2"}}
	if !labels.matchKV("label", map[string]string{"a": "", "b": "2", "c": "3"}) || labels.matchKV("label", map[string]string{"a": "1"}) || labels.matchKV("label", nil) {
		t.Error("every label must match")
	}
	not := Filters{"label!": {"keep"}}
	if not.matchLabels(map[string]string{"keep": "1"}) || !not.matchLabels(map[string]string{"other": "1"}) {
		t.Error("label! excludes")
	}
	if err := (Filters{"x": {"1"}}).Validate(PsFilters...); !errors.Is(err, ErrInvalid) || err.Error() != "Invalid filter 'x'" {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := (Filters{"dangling": {"x"}}).boolValue("dangling", false); err == nil || err.Error() != "Invalid filter 'dangling=[x]'" {
		t.Errorf("bad bool: %v", err)
	}
	if v, err := (Filters{"is-task": {"1"}}).boolValue("is-task", false); err != nil || !v {
		t.Errorf("bool 1: %v %v", v, err)
	}
}

func TestUntil(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if got, err := (Filters{"until": {"10m"}}).until(now); err != nil || !got.Equal(now.Add(-10*time.Minute)) {
		t.Errorf("until=10m: %v %v", got, err)
	}
	if got, err := (Filters{"until": {"1700000000.5"}}).until(now); err != nil || !got.Equal(time.Unix(1700000000, 500000000)) {
		t.Errorf("until=1700000000.5: %v %v", got, err)
	}
	_, err := (Filters{"until": {"garbage"}}).until(now)
	if err == nil || err.Error() != `failed to parse value as time or duration: "garbage"` {
		t.Errorf("garbage: %v", err)
	}
	if _, err := (Filters{"until": {"1h", "2h"}}).until(now); err == nil {
		t.Error("two until filters")
	}
}
