package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/docker/go-units"
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

// jsonLog appends a container's output to its log, one JSON object per
// line, rotating it as its log options say: when the file has reached
// maxSize, it becomes PATH.1 (PATH.1 becomes PATH.2…, up to maxFiles-1
// files kept) and a new file is begun; with maxFiles 1 the file is emptied.
type jsonLog struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	w        *bufio.Writer
	size     int64 // of the file, as written
	maxSize  int64 // 0: no rotation
	maxFiles int
	partial  map[string][]byte // per stream, the line begun
}

// ErrLogNotReadable is `logs` of a container whose log driver keeps
// nothing (none), in Docker's words.
var ErrLogNotReadable = errors.New("configured logging driver does not support reading")

// Docker's defaults of the local log driver.
const (
	localMaxSize  = 20 * 1000 * 1000 // 20m, as units.FromHumanSize reads it
	localMaxFiles = 5
)

// logOptions are what a container's LogConfig says of its log.
type logOptions struct {
	none     bool
	maxSize  int64
	maxFiles int
}

func logOptionsOf(lc LogConfig) logOptions {
	o := logOptions{maxFiles: 1}
	switch lc.Type {
	case LogNone:
		o.none = true
		return o
	case LogLocal:
		o.maxSize, o.maxFiles = localMaxSize, localMaxFiles
	}
	if v, ok := lc.Config["max-size"]; ok {
		o.maxSize, _ = units.FromHumanSize(v)
	}
	if v, ok := lc.Config["max-file"]; ok {
		o.maxFiles, _ = strconv.Atoi(v)
	}
	return o
}

// checkLogConfig checks --log-driver and --log-opt, refusing by name what
// cairn does not do, and fills in the default driver (json-file).
func checkLogConfig(lc *LogConfig) error {
	if lc.Type == "" {
		lc.Type = LogJSONFile
	}
	if lc.Config == nil {
		lc.Config = map[string]string{}
	}
	switch lc.Type {
	case LogJSONFile, LogLocal:
	case LogNone:
		for k := range lc.Config {
			return fmt.Errorf("%w: unknown log opt '%s' for none log driver: it keeps nothing", ErrInvalid, k)
		}
		return nil
	default:
		return fmt.Errorf("%w: --log-driver %s: cairn keeps a container's log in a file (json-file, local) or not at all (none): the other drivers are Docker's daemon's and its plugins'", ErrInvalid, lc.Type)
	}
	for _, k := range slices.Sorted(maps.Keys(lc.Config)) {
		v := lc.Config[k]
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("%w: --log-opt max-size=%s: max-size must be a positive number", ErrInvalid, v)
			}
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: --log-opt max-file=%s: max-file cannot be less than 1", ErrInvalid, v)
			}
			if _, ok := lc.Config["max-size"]; !ok && lc.Type == LogJSONFile && n > 1 {
				return fmt.Errorf("%w: --log-opt max-file=%s: max-file needs max-size: a log is rotated when it reaches max-size", ErrInvalid, v)
			}
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%w: --log-opt compress=%s: true or false", ErrInvalid, v)
			}
			if b {
				return fmt.Errorf("%w: --log-opt compress=%s: cairn does not compress rotated log files", ErrInvalid, v)
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
			return fmt.Errorf("%w: --log-opt %s: cairn's %s log does not record a container's labels, environment or tag with each line", ErrInvalid, k, lc.Type)
		default:
			return fmt.Errorf("%w: unknown log opt '%s' for %s log driver", ErrInvalid, k, lc.Type)
		}
	}
	return nil
}

// openLog opens the log of container c for appending, as its log options
// say; nil (and no error) for the none driver.
func (s *Store) openLog(c *Container) (*jsonLog, error) {
	o := logOptionsOf(c.Host.LogConfig)
	if o.none {
		return nil, nil
	}
	path := s.LogPath(c.ID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &jsonLog{path: path, f: f, w: bufio.NewWriter(f), size: st.Size(), maxSize: o.maxSize, maxFiles: max(o.maxFiles, 1), partial: map[string][]byte{}}, nil
}

// rotate begins a new log file, as Docker's json-file does: PATH.N-2 →
// PATH.N-1, …, PATH → PATH.1; with one file, PATH is emptied.
func (l *jsonLog) rotate() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	if l.maxFiles <= 1 {
		if err := l.f.Truncate(0); err != nil {
			return err
		}
		l.size = 0
		return nil
	}
	l.f.Close()
	for i := l.maxFiles - 1; i > 1; i-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", l.path, i-1), fmt.Sprintf("%s.%d", l.path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	l.w.Reset(f)
	return nil
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
	// As Docker: a file that has reached max-size is rotated before the
	// next entry, so that an entry is never split across files.
	if l.maxSize > 0 && l.size >= l.maxSize {
		if err := l.rotate(); err != nil {
			return fmt.Errorf("rotate the log %s: %w", l.path, err)
		}
	}
	l.w.Write(b)
	l.size += int64(len(b)) + 1
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
	// Since and Until (zero: unbounded) keep the lines logged between
	// them; with Follow, the logs end once Until has passed.
	Since, Until time.Time
}

// Logs writes the output a container has logged to stdout and stderr, each
// line to the stream it came from, across its rotated files, oldest first.
// With Follow it keeps writing what comes, into the files the log rotates
// to, until the container stops or ctx ends. A container that logs nothing
// (--log-driver none) is ErrLogNotReadable.
func (s *Store) Logs(ctx context.Context, ref string, o LogOptions, stdout, stderr io.Writer) error {
	c, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if logOptionsOf(c.Host.LogConfig).none {
		return ErrLogNotReadable
	}
	path := s.LogPath(c.ID)
	live, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if !o.Follow {
			return nil
		}
		// Not started yet: wait for the log to appear.
		for live == nil {
			if !s.running(ctx, c.ID) {
				return nil
			}
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return nil
			}
			live, _ = os.Open(path)
		}
	} else if err != nil {
		return err
	}
	defer func() { live.Close() }()
	// The rotated files, opened after the live one: a rotation meanwhile
	// makes one of them the file already open, which is read once.
	var files []*os.File
	for i := 1; ; i++ {
		f, err := os.Open(fmt.Sprintf("%s.%d", path, i))
		if err != nil {
			break
		}
		defer f.Close()
		if sameFile(f, live) {
			continue
		}
		files = append([]*os.File{f}, files...) // oldest first
	}
	parse := func(line []byte) (logEntry, bool, error) {
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return e, false, fmt.Errorf("log of %s: %w", ShortID(c.ID), err)
		}
		keep := (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || !e.Time.After(o.Until))
		return e, keep, nil
	}
	write := func(line []byte) error {
		e, keep, err := parse(line)
		if err != nil || !keep {
			return err
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			fmt.Fprintf(w, "%s ", e.Time.UTC().Format(time.RFC3339Nano))
		}
		_, err = io.WriteString(w, e.Log)
		return err
	}
	var ring [][]byte
	emit := write
	if o.Tail >= 0 {
		emit = func(l []byte) error {
			if o.Tail == 0 {
				return nil
			}
			if _, keep, err := parse(l); err != nil || !keep {
				return err // the tail is of the lines kept
			}
			if len(ring) == o.Tail {
				ring = ring[1:]
			}
			ring = append(ring, bytes.Clone(l))
			return nil
		}
	}
	for _, f := range files {
		lr := newLineReader(f)
		if err := lr.each(emit); err != nil {
			return err
		}
	}
	lr := newLineReader(live)
	if err := lr.each(emit); err != nil {
		return err
	}
	for _, l := range ring {
		if err := write(l); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		if err := lr.each(write); err != nil {
			return err
		}
		// At the end of the file: the writer may have moved to a new one
		// (what it wrote to this one before is read first), or emptied it.
		if next, err := os.Open(path); err == nil {
			if !sameFile(next, live) {
				if err := lr.each(write); err != nil {
					next.Close()
					return err
				}
				live.Close()
				live, lr = next, newLineReader(next)
				continue
			}
			next.Close()
		}
		if st, err := live.Stat(); err == nil && st.Size() < lr.pos {
			live.Seek(0, io.SeekStart)
			lr = newLineReader(live)
			continue
		}
		if !s.running(ctx, c.ID) || !o.Until.IsZero() && time.Now().After(o.Until) {
			// Its owner has written all it will (or what comes is past
			// Until): read what is left, and end.
			return lr.each(write)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil
		}
	}
}

// sameFile reports whether two open files are the same file.
func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// lineReader reads the whole lines of a log file as they are written; a
// line being written stays until its end comes.
type lineReader struct {
	r    *bufio.Reader
	line []byte
	pos  int64 // bytes of whole lines read
}

func newLineReader(f *os.File) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(f, 64<<10)}
}

// each calls fn for each whole line up to the current end of the file.
func (lr *lineReader) each(fn func([]byte) error) error {
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.line = append(lr.line, chunk...)
		switch {
		case err == nil:
			l := lr.line
			lr.line = nil
			lr.pos += int64(len(l))
			if err := fn(l); err != nil {
				return err
			}
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// running reports whether container id runs (or is being started).
func (s *Store) running(ctx context.Context, id string) bool {
	c, err := s.Get(ctx, id)
	return err == nil && c.Live()
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
