// Package events is cairn's event journal: what `docker events` shows,
// without a daemon to remember it. Every cairn process that does something
// — creates, starts or removes a container, pulls or tags an image, sees a
// container die (its monitor) — appends one line to one file under the
// store's root, and `cairn events` reads that file, and follows it.
//
// An event is one JSON object on one line, written with one write(2) to a
// file opened O_APPEND, so that lines of concurrent processes never
// interleave; a line longer than PIPE_BUF (4096 bytes) has its attributes
// cut. The journal is bounded: when it passes its size, the process that
// notices renames it to events.log.1 (the one before goes) under the
// journal's lock, and starts a new one; readers read the previous file
// first.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-runtime/cairn/internal/lockfile"
)

// Types of the objects events are about, as Docker names them.
const (
	Container = "container"
	Image     = "image"
	Network   = "network"
	Volume    = "volume"
	Builder   = "builder"
)

// Event is one thing that happened, in the shape of Docker's events/message.
type Event struct {
	Type   string `json:"Type"`
	Action string `json:"Action"` // "create", "start", "die", "pull", "tag", "health_status: healthy"…
	Actor  Actor  `json:"Actor"`
	Scope  string `json:"scope"`
	// Time and TimeNano are when it happened, in seconds and nanoseconds
	// since the epoch, as Docker's API has them.
	Time     int64 `json:"time"`
	TimeNano int64 `json:"timeNano"`
}

// Actor is what an event is about: its ID, and attributes such as its
// name, image, exit code.
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// When is the event's time.
func (e Event) When() time.Time { return time.Unix(0, e.TimeNano) }

// Journal is the event journal of one store.
type Journal struct {
	path string
	max  int64
}

// DefaultMax bounds a journal file: at most twice this is kept.
const DefaultMax = 8 << 20

// Open returns the journal at path (created on first Append), kept under
// max bytes per file (0: DefaultMax).
func Open(path string, max int64) *Journal {
	if max <= 0 {
		max = DefaultMax
	}
	return &Journal{path: path, max: max}
}

// pipeBuf is the size under which one write to an O_APPEND file is never
// interleaved with another's.
const pipeBuf = 4096

// Append records e, stamped now if it has no time. A journal that cannot
// be written does not fail what it records: the error is returned for the
// caller to ignore or report.
func (j *Journal) Append(e Event) error {
	if j == nil {
		return nil
	}
	if e.TimeNano == 0 {
		now := time.Now()
		e.Time, e.TimeNano = now.Unix(), now.UnixNano()
	}
	if e.Scope == "" {
		e.Scope = "local"
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(b)+1 > pipeBuf {
		e.Actor.Attributes = map[string]string{"name": e.Actor.Attributes["name"]}
		if b, err = json.Marshal(e); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	st, serr := f.Stat()
	f.Close()
	if err != nil {
		return err
	}
	if serr == nil && st.Size() > j.max {
		return j.rotate()
	}
	return nil
}

// rotate moves a journal that passed its size aside, under its lock.
func (j *Journal) rotate() error {
	l, err := lockfile.Exclusive(context.Background(), j.path+".lock")
	if err != nil {
		return err
	}
	defer l.Unlock()
	st, err := os.Stat(j.path)
	if err != nil || st.Size() <= j.max {
		return nil // another process did it
	}
	return os.Rename(j.path, j.path+".1")
}

// ReadOptions say which events Read returns.
type ReadOptions struct {
	Since, Until time.Time // zero: from the first; to now (or for ever with Follow)
	Follow       bool      // go on with events as they come, until ctx ends or Until passes
}

// Read calls fn with every event between o.Since and o.Until, oldest
// first, and with Follow those that come after, until ctx is done.
func (j *Journal) Read(ctx context.Context, o ReadOptions, fn func(Event) error) error {
	seen := func(e Event) (bool, error) {
		t := e.When()
		if !o.Since.IsZero() && t.Before(o.Since) {
			return false, nil
		}
		if !o.Until.IsZero() && t.After(o.Until) {
			return true, nil
		}
		return false, fn(e)
	}
	for _, p := range []string{j.path + ".1", j.path} {
		stop, _, err := readFile(p, 0, seen)
		if err != nil || stop {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	// Follow the journal from where it is now, and into a new file when it
	// is rotated.
	f, err := openOrWait(ctx, j.path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	off, _ := f.Seek(0, io.SeekEnd)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		stop, n, err := readFile(f.Name(), off, seen)
		if err != nil || stop {
			return err
		}
		off += n
		if st, err := os.Stat(j.path); err == nil {
			if fst, ferr := f.Stat(); ferr == nil && !os.SameFile(st, fst) {
				// Rotated: what is left of the old file is read above; the
				// new one from its start.
				f.Close()
				if f, err = os.Open(j.path); err != nil {
					return err
				}
				off = 0
			}
		}
	}
}

// readFile reads the events of path from off, and says how far it read
// (whole lines only) and whether fn asked to stop.
func readFile(path string, off int64, fn func(Event) (bool, error)) (stop bool, n int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	} else if err != nil {
		return false, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false, 0, err
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return false, n, nil // a line being written: the next read has it
		} else if err != nil {
			return false, n, err
		}
		n += int64(len(line))
		var e Event
		if json.Unmarshal(line, &e) != nil {
			continue // a line of another version, or cut: skipped
		}
		if stop, err := fn(e); stop || err != nil {
			return stop, n, err
		}
	}
}

func openOrWait(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("events: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
	}
}
