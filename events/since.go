package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidTime: a --since or --until that is neither a time, a duration
// nor Unix seconds.
var ErrInvalidTime = errors.New("invalid time")

// ParseTime reads the value of --since or --until as Docker's CLI does
// (its GetTimestamp): a duration before now ("10m", "1h30m"), Unix seconds
// with optional nanoseconds ("1700000000", "1700000000.5"), or an RFC 3339
// time, whole or cut short ("2026-12-02", "2026-12-02T10:00",
// "2026-12-02T10:00:00.5Z"), in now's zone when it names none.
func ParseTime(value string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return time.Unix(now.Add(-d).Unix(), 0), nil // Docker keeps whole seconds
	}
	const (
		rfc3339Local     = "2006-01-02T15:04:05"
		rfc3339NanoLocal = "2006-01-02T15:04:05.999999999"
		dateWithZone     = "2006-01-02Z07:00"
		dateLocal        = "2006-01-02"
	)
	// A Z, a + or a third dash says the value names its zone.
	inLocation := !(strings.ContainsAny(value, "zZ+") || strings.Count(value, "-") == 3)
	var format string
	switch {
	case strings.Contains(value, "."):
		format = time.RFC3339Nano
		if inLocation {
			format = rfc3339NanoLocal
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !inLocation && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone's offset has one
		}
		switch {
		case inLocation && colons == 0:
			format = "2006-01-02T15"
		case inLocation && colons == 1:
			format = "2006-01-02T15:04"
		case inLocation:
			format = rfc3339Local
		case colons == 0:
			format = "2006-01-02T15Z07:00"
		case colons == 1:
			format = "2006-01-02T15:04Z07:00"
		default:
			format = time.RFC3339
		}
	case inLocation:
		format = dateLocal
	default:
		format = dateWithZone
	}
	var t time.Time
	var err error
	if inLocation {
		t, err = time.ParseInLocation(format, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(format, value)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(value, "-") {
		return time.Time{}, fmt.Errorf("%w: %q: %w", ErrInvalidTime, value, err)
	}
	return parseUnix(value)
}

// parseUnix reads seconds since the epoch, with optional nanoseconds after
// a dot.
func parseUnix(value string) (time.Time, error) {
	bad := fmt.Errorf("%w: failed to parse value as time or duration: %q", ErrInvalidTime, value)
	secs, frac, _ := strings.Cut(value, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, bad
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		if ns, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil {
			return time.Time{}, bad
		}
	}
	return time.Unix(s, ns), nil
}
