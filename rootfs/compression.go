package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a layer stream. It is detected from the
// stream's first bytes, never assumed from a media type.
type Compression int

// Compressions a layer stream may have.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression returns the compression of a stream that starts with
// head. Four bytes are enough; anything unrecognised is Uncompressed.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], []byte{0x2a, 0x4d, 0x18}):
		return Zstd // a zstd skippable frame, 0x184D2A5?
	}
	return Uncompressed
}

// Decompress returns the uncompressed stream of r and the compression it
// detected. Errors of the compressed data itself (bad checksum, truncation,
// corrupt blocks) wrap [ErrInvalid]; errors of r are returned as they are.
//
// The decoder runs ahead of its reader on other goroutines, which read r.
// Close stops them, waiting for a Read of r under way to return, and
// releases the decoder; it does not close r. After Close, r is the
// caller's alone again.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	src := &source{r: r}
	// The decoders take a *bufio.Reader as it is: flate's fast path reads
	// one (any other io.ByteReader is read a byte at a time, through an
	// interface, at less than half the speed).
	br := bufio.NewReaderSize(src, 64<<10)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, Uncompressed, err
	}
	c := DetectCompression(head)
	if c == Uncompressed {
		return io.NopCloser(br), c, nil
	}

	d := &decoder{c: c, src: src}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, d.wrap(err)
		}
		d.r, d.close = zr, func() { zr.Close() }
		// Inflate is serial and slow: run it on another core, ahead of Apply.
		return readAhead(d, 4, 1<<20), c, nil
	case Zstd:
		// The zstd decoder runs ahead on goroutines of its own.
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, c, err
		}
		d.r, d.close = zr, zr.Close
	}
	return d, c, nil
}

// decoder tells the errors of the compressed data from those of its source.
type decoder struct {
	c     Compression
	src   *source
	r     io.Reader
	close func()
}

func (d *decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.wrap(err)
	}
	return n, err
}

func (d *decoder) Close() error {
	if d.close != nil {
		d.close()
		d.close = nil
	}
	return nil
}

func (d *decoder) wrap(err error) error {
	if d.src.err != nil && d.src.err != io.EOF && errors.Is(err, d.src.err) {
		return err // the source failed, not the data
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s stream: %w: %w", d.c, err, ErrInvalid)
}

// source remembers the last error of the compressed stream, below the
// buffer the decoders read.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// readahead runs a reader on its own goroutine, up to n blocks ahead.
type readahead struct {
	rc    io.ReadCloser
	full  chan []byte // blocks read, in order; closed at the end
	free  chan []byte
	err   error // why the goroutine stopped; read once full is closed
	block []byte
	cur   []byte // unread part of block

	stop    chan struct{}
	stopped chan struct{}
}

func readAhead(rc io.ReadCloser, n, size int) *readahead {
	ra := &readahead{
		rc:      rc,
		full:    make(chan []byte, n),
		free:    make(chan []byte, n),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	for range n {
		ra.free <- make([]byte, size)
	}
	go ra.run()
	return ra
}

func (ra *readahead) run() {
	defer close(ra.stopped)
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := fill(ra.rc, buf[:cap(buf)])
		if n > 0 {
			ra.full <- buf[:n] // never blocks: there are n buffers
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

// fill reads into buf until it is full or r fails.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.block != nil {
			ra.free <- ra.block
			ra.block = nil
		}
		b, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.block, ra.cur = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

func (ra *readahead) Close() error {
	select {
	case <-ra.stop:
	default:
		close(ra.stop)
	}
	<-ra.stopped
	return ra.rc.Close()
}
