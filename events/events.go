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
	// FromNow skips what the journal holds when Read begins: only what is
	// appended after is read (with Follow), as `docker events` without
	// --since or --until.
	FromNow bool
	Filter  Filter // nil: every event
}

// Read calls fn with every event between o.Since and o.Until that o.Filter
// takes, in the order they were appended, and with Follow those that come
// after, until ctx is done or Until passes. Nothing appended while Read
// runs is missed, nor given twice: the journal is read through one open
// file from its start to its end and on, across a rotation.
//
// Lines of concurrent processes are appended in the order of their
// writes, which is nearly but not strictly the order of their times: an
// event past Until does not end the reading of what is there.
func (j *Journal) Read(ctx context.Context, o ReadOptions, fn func(Event) error) error {
	seen := func(e Event) error {
		t := e.When()
		if !o.Since.IsZero() && t.Before(o.Since) || !o.Until.IsZero() && t.After(o.Until) || !o.Filter.Match(e) {
			return nil
		}
		return fn(e)
	}
	// The current file is opened first: what is appended from now on is
	// in it (or, once it is rotated, in the file that replaces it).
	var f *os.File
	var err error
	if o.Follow {
		f, err = openOrWait(ctx, j.path)
	} else {
		f, err = os.Open(j.path)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if f != nil {
		defer func() { f.Close() }()
	}
	var off int64
	if o.FromNow {
		if f != nil {
			if off, err = f.Seek(0, io.SeekEnd); err != nil {
				return fmt.Errorf("events: %w", err)
			}
		}
		if !o.Follow {
			return nil
		}
	} else if off, err = j.readHistory(f, seen); err != nil {
		return err
	}
	if f == nil || !o.Follow {
		return nil
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n, err := readFrom(f, off, seen)
		if err != nil {
			return err
		}
		off += n
		if st, err := os.Stat(j.path); err == nil {
			if fst, ferr := f.Stat(); ferr == nil && !os.SameFile(st, fst) {
				// Rotated: what a writer put in the old file before the
				// rename is read, then the file between (if it was rotated
				// twice meanwhile), then the new file from its start.
				if _, err = readFrom(f, off, seen); err != nil {
					return err
				}
				if prev, err := os.Open(j.path + ".1"); err == nil {
					ps, perr := prev.Stat()
					if perr == nil && !os.SameFile(ps, fst) && !os.SameFile(ps, st) {
						_, err = readFrom(prev, 0, seen)
					}
					prev.Close()
					if err != nil {
						return err
					}
				}
				nf, err := os.Open(j.path)
				if err != nil {
					return fmt.Errorf("events: %w", err)
				}
				f.Close()
				f, off = nf, 0
				continue
			}
		}
		if !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
	}
}

// readHistory reads what the journal holds: the previous file, then f,
// the current one, to its end, and says how far it read f.
func (j *Journal) readHistory(f *os.File, seen func(Event) error) (int64, error) {
	// The previous file, unless it is the one just opened, rotated meanwhile.
	if prev, err := os.Open(j.path + ".1"); err == nil {
		same := false
		if f != nil {
			ps, perr := prev.Stat()
			fs, ferr := f.Stat()
			same = perr == nil && ferr == nil && os.SameFile(ps, fs)
		}
		if !same {
			_, err = readFrom(prev, 0, seen)
		}
		prev.Close()
		if err != nil {
			return 0, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("events: %w", err)
	}
	if f == nil {
		return 0, nil
	}
	n, err := readFrom(f, 0, seen)
	return n, err
}

// readFrom reads the events of f from off, passing each to fn, and says
// how far it read (whole lines only).
func readFrom(f *os.File, off int64, fn func(Event) error) (n int64, err error) {
	r := bufio.NewReader(io.NewSectionReader(f, off, 1<<62))
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return n, nil // a line being written: the next read has it
		} else if err != nil {
			return n, err
		}
		n += int64(len(line))
		var e Event
		if json.Unmarshal(line, &e) != nil {
			continue // a line of another version, or cut: skipped
		}
		if err := fn(e); err != nil {
			return n, err
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
			return nil, err
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
