package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logEntry is one line of Docker's json-file log.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLine is where a line without a newline is cut into several entries, as
// Docker does (its entries then lack the final "\n").
const maxLine = 16 << 10

// jsonLog appends a container's output to its log, one JSON object per line.
type jsonLog struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	partial map[string][]byte // per stream, the line begun
}

func openLog(path string) (*jsonLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &jsonLog{f: f, w: bufio.NewWriter(f), partial: map[string][]byte{}}, nil
}

type logStream struct {
	l    *jsonLog
	name string
}

func (l *jsonLog) stream(name string) io.Writer { return logStream{l, name} }

func (s logStream) Write(p []byte) (int, error) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	buf := append(l.partial[s.name], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if err := l.entry(s.name, buf[:i+1]); err != nil {
			return 0, err
		}
		buf = buf[i+1:]
	}
	for len(buf) >= maxLine {
		if err := l.entry(s.name, buf[:maxLine]); err != nil {
			return 0, err
		}
		buf = buf[maxLine:]
	}
	l.partial[s.name] = append(l.partial[s.name][:0], buf...)
	// Flushed at once, so that `logs -f` in another process sees each line.
	return n, l.w.Flush()
}

func (l *jsonLog) entry(stream string, line []byte) error {
	b, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: now()})
	if err != nil {
		return err
	}
	l.w.Write(b)
	return l.w.WriteByte('\n')
}

// flush writes out the unfinished line of stream.
func (l *jsonLog) flush(stream string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.partial[stream]; len(p) > 0 {
		l.entry(stream, p)
		l.partial[stream] = nil
	}
	l.w.Flush()
}

func (l *jsonLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	return l.f.Close()
}

// LogOptions are those of `cairn logs`.
type LogOptions struct {
	Follow     bool // go on until the container stops
	Tail       int  // only the last Tail lines; < 0: all
	Timestamps bool
}

// Logs writes the output a container has logged to stdout and stderr, each
// line to the stream it came from. With Follow it keeps writing what comes,
// until the container stops or ctx ends.
func (s *Store) Logs(ctx context.Context, ref string, o LogOptions, stdout, stderr io.Writer) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	f, err := os.Open(s.LogPath(c.ID))
	if errors.Is(err, os.ErrNotExist) {
		if !o.Follow {
			return nil
		}
		// Not started yet: wait for the log to appear.
		for f == nil {
			if !s.running(ctx, c.ID) {
				return nil
			}
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return nil
			}
			f, _ = os.Open(s.LogPath(c.ID))
		}
	} else if err != nil {
		return err
	}
	defer f.Close()
	write := func(line []byte) error {
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("log of %s: %w", ShortID(c.ID), err)
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			fmt.Fprintf(w, "%s ", e.Time.UTC().Format(time.RFC3339Nano))
		}
		_, err := io.WriteString(w, e.Log)
		return err
	}

	r := bufio.NewReaderSize(f, 64<<10)
	var line []byte
	// next returns the next whole line of the log, or nil at its current end.
	next := func() ([]byte, error) {
		for {
			chunk, err := r.ReadSlice('\n')
			line = append(line, chunk...)
			switch {
			case err == nil:
				out := line
				line = nil
				return out, nil
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case errors.Is(err, io.EOF):
				return nil, nil // a line being written stays in line
			default:
				return nil, err
			}
		}
	}
	if o.Tail >= 0 {
		var ring [][]byte
		for {
			l, err := next()
			if err != nil {
				return err
			}
			if l == nil {
				break
			}
			if o.Tail == 0 {
				continue
			}
			if len(ring) == o.Tail {
				ring = ring[1:]
			}
			ring = append(ring, bytes.Clone(l))
		}
		for _, l := range ring {
			if err := write(l); err != nil {
				return err
			}
		}
	}
	for {
		l, err := next()
		if err != nil {
			return err
		}
		if l != nil {
			if err := write(l); err != nil {
				return err
			}
			continue
		}
		if !o.Follow {
			return nil
		}
		if !s.running(ctx, c.ID) {
			// Its owner has written all it will: read what is left, and end.
			for {
				l, err := next()
				if err != nil || l == nil {
					return err
				}
				if err := write(l); err != nil {
					return err
				}
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil
		}
	}
}

// running reports whether container id runs (or is being started).
func (s *Store) running(ctx context.Context, id string) bool {
	c, err := s.Get(ctx, id)
	return err == nil && (c.State.Status == Running || c.State.Status == Paused)
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
