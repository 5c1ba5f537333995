package image

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cairn-runtime/cairn/rootfs"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gzipLevel is the level layers are compressed at: gzip's default, as
// Docker pushes them (klauspost's level 6, one above that library's
// default, which skopeo uses).
const gzipLevel = 6

// Compressing is a layer being compressed for a push: reading it gives the
// compressed bytes as they are made, and each is also written to a
// temporary blob of the store. At the end of the stream (io.EOF) the blob
// is kept and the conversion recorded, so that the next push reuses it;
// Descriptor then describes it. Closing it before the end stops the
// compression and drops the blob: nothing is recorded.
//
// Every core compresses one layer: gzip in blocks of 1 MiB compressed in
// parallel, each with the previous block's last 32 KiB as its dictionary,
// and stored where deflate gains too little (gzip.go), zstd with its
// encoder's own concurrency. WriteTo hands the
// compressor's blocks to the writer whole, so that an upload sends them
// without copying them through small buffers.
type Compressing struct {
	pipe  pipe
	layer ocispec.Descriptor
	in    atomic.Int64       // bytes of the layer read
	done  chan struct{}      // closed when the goroutines have ended
	desc  ocispec.Descriptor // set before the stream ends, without error
}

// Compress starts compressing layer (a layer blob of the store, described
// as its manifest describes it, in another compression than c) into c.
// The compression runs on goroutines of its own until the stream ends, is
// closed, or ctx ends.
func (s *Store) Compress(ctx context.Context, layer ocispec.Descriptor, c rootfs.Compression) (*Compressing, error) {
	if c == rootfs.Uncompressed {
		return nil, errors.New("image: Compress needs gzip or zstd")
	}
	f, err := s.OpenBlob(layer.Digest)
	if err != nil {
		return nil, err
	}
	release, err := s.Lease(ctx)
	if err != nil {
		f.Close()
		return nil, err
	}
	z := &Compressing{pipe: newPipe(ctx), layer: layer, done: make(chan struct{})}
	go func() {
		defer close(z.done)
		defer release()
		defer f.Close()
		d, err := s.compress(ctx, z, f, c)
		if err != nil {
			err = fmt.Errorf("compress layer %s: %w", layer.Digest, err)
		}
		z.desc = d
		z.pipe.end(err)
	}()
	return z, nil
}

func (z *Compressing) Read(p []byte) (int, error) { return z.pipe.Read(p) }

// WriteTo writes the rest of the stream to w, each of the compressor's
// writes whole.
func (z *Compressing) WriteTo(w io.Writer) (int64, error) { return z.pipe.WriteTo(w) }

// In is the count of the layer's bytes read so far.
func (z *Compressing) In() int64 { return z.in.Load() }

// Descriptor describes the compressed layer, once the stream has ended.
func (z *Compressing) Descriptor() (ocispec.Descriptor, bool) {
	select {
	case <-z.pipe.ended:
		return z.desc, z.desc.Digest != ""
	default:
		return ocispec.Descriptor{}, false
	}
}

// Close stops the compression if it has not ended and waits for its
// goroutines, which leave nothing behind.
func (z *Compressing) Close() error {
	z.pipe.close()
	<-z.done
	return nil
}

// compress writes f (the layer's blob) compressed into a blob of the store
// and into z's pipe, then keeps the blob and records the conversion.
func (s *Store) compress(ctx context.Context, z *Compressing, f io.Reader, c rootfs.Compression) (ocispec.Descriptor, error) {
	dec, from, err := rootfs.Decompress(f)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer dec.Close()
	w, err := s.newBlobWriter()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	keep := false
	defer func() {
		if !keep {
			w.Abort()
		}
	}()
	out := teeWriter{w, &z.pipe}
	var enc io.WriteCloser
	switch c {
	case rootfs.Gzip:
		enc = newGzipWriter(out)
	case rootfs.Zstd:
		if enc, err = zstd.NewWriter(out, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	// The diff ID of an uncompressed layer is its digest; only a layer
	// converted from another compression is hashed as it is decoded.
	var dh hash.Hash
	if from != rootfs.Uncompressed {
		dh = digest.SHA256.Hash()
	}
	_, err = copyCtx(ctx, &input{enc: enc, diffID: dh, n: &z.in}, dec, make([]byte, copyBuffer))
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := w.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := w.Commit()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	keep = true
	conv := conversion{Blob: ocispec.Descriptor{MediaType: layerMediaType(c), Digest: d, Size: w.size}, DiffID: z.layer.Digest}
	if dh != nil {
		conv.DiffID = digest.NewDigest(digest.SHA256, dh)
	}
	if err := s.recordConversion(z.layer.Digest, c, conv); err != nil {
		return ocispec.Descriptor{}, err
	}
	return conv.Blob, nil
}

// input takes the layer's uncompressed bytes to the encoder.
type input struct {
	enc    io.Writer
	diffID hash.Hash // nil: not hashed
	n      *atomic.Int64
}

func (in *input) Write(p []byte) (int, error) {
	if in.diffID != nil {
		in.diffID.Write(p)
	}
	n, err := in.enc.Write(p)
	in.n.Add(int64(n))
	return n, err
}

// teeWriter writes to the blob, then to the pipe.
type teeWriter struct {
	blob *blobWriter
	pipe *pipe
}

func (t teeWriter) Write(p []byte) (int, error) {
	if _, err := t.blob.Write(p); err != nil {
		return 0, err
	}
	return t.pipe.Write(p)
}

// errClosed: the reader of a compression closed it before its end.
var errClosed = errors.New("compression closed by its reader")

// pipe is io.Pipe with a WriteTo that passes each write on whole.
type pipe struct {
	ctx    context.Context // a write waits for a reader to take it until ctx ends
	ch     chan []byte     // a write waiting for its reader
	ack    chan struct{}   // the reader is done with it
	closed chan struct{}   // the reader closed
	ended  chan struct{}   // the writer ended, with err
	once   sync.Once
	err    error
	cur    []byte // what Read has left of the write it took
}

func newPipe(ctx context.Context) pipe {
	return pipe{ctx: ctx, ch: make(chan []byte), ack: make(chan struct{}), closed: make(chan struct{}), ended: make(chan struct{})}
}

// Write waits until the reader has taken all of b, or closed.
func (p *pipe) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	select {
	case p.ch <- b:
	case <-p.closed:
		return 0, errClosed
	case <-p.ctx.Done():
		return 0, p.ctx.Err()
	}
	// The reader has b: it answers, or closes.
	select {
	case <-p.ack:
		return len(b), nil
	case <-p.closed:
		return 0, errClosed
	}
}

// end ends the stream: the reader gets err, or io.EOF if it is nil.
func (p *pipe) end(err error) {
	if err == nil {
		err = io.EOF
	}
	p.err = err
	close(p.ended)
}

// next takes the next write, or the writer's end.
func (p *pipe) next() ([]byte, error) {
	select {
	case b := <-p.ch:
		return b, nil
	case <-p.ended:
		return nil, p.err
	case <-p.closed:
		return nil, errClosed
	}
}

func (p *pipe) Read(b []byte) (int, error) {
	if len(p.cur) == 0 {
		next, err := p.next()
		if err != nil {
			return 0, err
		}
		p.cur = next
	}
	n := copy(b, p.cur)
	if p.cur = p.cur[n:]; len(p.cur) == 0 {
		p.done()
	}
	return n, nil
}

// WriteTo writes each write of the pipe to w, whole, until the end.
func (p *pipe) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(p.cur) > 0 {
		k, err := w.Write(p.cur)
		n += int64(k)
		if err != nil {
			return n, err
		}
		p.cur = nil
		p.done()
	}
	for {
		b, err := p.next()
		if err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
		p.done()
	}
}

// done tells the writer that the reader is done with its write.
func (p *pipe) done() {
	select {
	case p.ack <- struct{}{}:
	case <-p.closed:
	}
}

func (p *pipe) close() { p.once.Do(func() { close(p.closed) }) }
