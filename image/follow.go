package image

import (
	"io"
	"os"
	"sync"
)

// A layer is unpacked while its bytes are written to its temporary blob
// file: the writer (growingWriter) tells a growth how far the file is
// written, and the unpack reads the file through a followReader, which
// waits for more until the growth is finished. The stream is read once, and
// the unpack never holds the writer back.

// growth tells readers of a file how much of it has been written.
type growth struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int64
	done bool
	err  error
}

func newGrowth() *growth {
	g := &growth{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *growth) advance(n int) {
	g.mu.Lock()
	g.n += int64(n)
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *growth) finish(err error) {
	g.mu.Lock()
	if !g.done {
		g.done, g.err = true, err
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}

type growingWriter struct {
	w *blobWriter
	g *growth
}

func (gw *growingWriter) Write(p []byte) (int, error) {
	n, err := gw.w.Write(p)
	gw.g.advance(n)
	return n, err
}

// followReader reads a file while it is written, up to what growth says is there.
type followReader struct {
	f   *os.File
	g   *growth
	off int64
}

func (r *followReader) Read(p []byte) (int, error) {
	r.g.mu.Lock()
	for r.off >= r.g.n && !r.g.done {
		r.g.cond.Wait()
	}
	avail, err := r.g.n-r.off, r.g.err
	r.g.mu.Unlock()
	if avail == 0 {
		if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, rerr := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}
