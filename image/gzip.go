package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// The gzip stream of a push, made on every core.
//
// As pgzip does, the layer is cut into blocks of gzipBlock bytes, each
// deflated on a goroutine of its own with the previous block's last 32 KiB
// as its dictionary and ended by a sync flush, so that the blocks put end
// to end are one deflate stream. Unlike pgzip, a block that deflate
// shrinks by less than 1/gzipStoredMargin is written as deflate's stored
// blocks instead: layers of data compressed already (archives, images,
// models, the benchmark's random files) cost a puller a copy instead of a
// Huffman decode, about ten times faster, for under 2% of such a block's
// size. And a block of near-uniform bytes whose first 64 KiB deflate
// cannot shrink either is stored without deflating the rest
// (incompressible): deflate costs most where it gains least. pgzip, which
// this writer replaced, has no way to do either: a pull of the
// benchmark's image took half the CPU, and its cold push a third
// (docs/testing.md). Docker's gzip (Go's) stores a block only where that is
// smaller. Any gunzip reads the stream; it is the same for the same layer.

const (
	gzipBlock = 1 << 20
	gzipDict  = 32 << 10
	// gzipStoredMargin: a block deflated to more than 63/64 of its size is
	// stored.
	gzipStoredMargin = 64
	// gzipProbe is how much of a block of near-uniform bytes is deflated
	// to learn whether the rest is worth it (see incompressible).
	gzipProbe = 64 << 10
	// gzipMaxBlocks bounds the blocks in flight (each about 3 MiB with its
	// output and compressor) on a machine of many cores.
	gzipMaxBlocks = 16
)

// gzipWriter writes the gzip stream of what is written to it, deflated at
// gzipLevel, to w; Close ends the stream and waits for it to be written.
// It is not safe for concurrent use.
type gzipWriter struct {
	w    io.Writer
	cur  []byte // the block being filled
	tail []byte // the previous block's last gzipDict bytes
	crc  uint32
	size uint32 // modulo 2^32, as gzip's trailer has it
	// queue holds, in the stream's order, where each block's output comes.
	queue  chan chan []byte
	done   chan struct{} // closed when the writer goroutine has ended
	mu     sync.Mutex
	err    error // the first error of w, or of deflate
	closed bool
}

var (
	// deflaters and storers are compressors for reuse (each holds a few
	// hundred KiB), at gzipLevel and at flate.NoCompression.
	deflaters, storers sync.Pool
	// gzipBuffers are blocks and their outputs for reuse.
	gzipBuffers = sync.Pool{New: func() any { return make([]byte, 0, gzipBlock+gzipBlock/gzipStoredMargin+64) }}
)

func newGzipWriter(w io.Writer) *gzipWriter {
	z := &gzipWriter{w: w, cur: gzipBuffers.Get().([]byte)[:0],
		queue: make(chan chan []byte, min(runtime.GOMAXPROCS(0), gzipMaxBlocks)), done: make(chan struct{})}
	go z.writeOut()
	return z
}

// writeOut writes the header, each block's output in order, and once the
// queue is closed the trailer.
func (z *gzipWriter) writeOut() {
	defer close(z.done)
	// No file name, no modification time, the operating system unknown:
	// the header compress/gzip writes.
	z.write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
	for r := range z.queue {
		if out := <-r; out != nil {
			z.write(out)
			gzipBuffers.Put(out[:0])
		}
	}
	z.write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, z.crc), z.size))
}

// write writes p to w unless an error came before.
func (z *gzipWriter) write(p []byte) {
	if z.failed() != nil {
		return
	}
	if _, err := z.w.Write(p); err != nil {
		z.fail(err)
	}
}

func (z *gzipWriter) fail(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = err
	}
}

func (z *gzipWriter) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *gzipWriter) Write(p []byte) (int, error) {
	if z.closed {
		return 0, errors.New("gzip: write after close")
	}
	if err := z.failed(); err != nil {
		return 0, err
	}
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p))
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), gzipBlock-len(z.cur))
		z.cur = append(z.cur, p[:k]...)
		p = p[k:]
		if len(z.cur) == gzipBlock {
			z.send(false)
		}
	}
	return n, nil
}

// send hands the block filled to a goroutine that deflates it, once fewer
// than the queue's capacity are in flight. Every block but the final one
// is whole (gzipBlock bytes), and gives the next its dictionary.
func (z *gzipWriter) send(final bool) {
	block, dict := z.cur, z.tail
	if !final {
		z.tail = append([]byte(nil), block[len(block)-gzipDict:]...)
		z.cur = gzipBuffers.Get().([]byte)[:0]
	}
	r := make(chan []byte, 1)
	z.queue <- r
	go func() {
		out, err := deflateBlock(gzipBuffers.Get().([]byte)[:0], block, dict, final)
		gzipBuffers.Put(block[:0])
		if err != nil {
			z.fail(err)
			out = nil
		}
		r <- out
	}()
}

// deflateBlock appends to out p deflated with dictionary dict, ending with
// a sync flush, or with the final block if final; stored if deflate
// shrinks it too little, or if it is not worth trying (incompressible).
func deflateBlock(out, p, dict []byte, final bool) ([]byte, error) {
	buf := bytes.NewBuffer(out)
	if !incompressible(p, dict) {
		if err := flateInto(&deflaters, gzipLevel, buf, p, dict, final); err != nil {
			return nil, err
		}
		if buf.Len() <= len(p)-len(p)/gzipStoredMargin {
			return buf.Bytes(), nil
		}
		buf.Reset()
	}
	if err := flateInto(&storers, flate.NoCompression, buf, p, nil, final); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// flateInto writes p to w through a compressor of pool (all of the same
// level) with dictionary dict, ending with a sync flush, or with the final
// block if final.
func flateInto(pool *sync.Pool, level int, w io.Writer, p, dict []byte, final bool) error {
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriterDict(w, level, dict); err != nil {
			return err
		}
	} else {
		fw.ResetDict(w, dict)
	}
	if _, err := fw.Write(p); err != nil {
		return err
	}
	end := fw.Flush
	if final {
		end = fw.Close
	}
	if err := end(); err != nil {
		return err
	}
	pool.Put(fw)
	return nil
}

// incompressible reports whether deflating block p whole is not worth its
// cost, as deflate costs most where it gains least (10 ms for a MiB of the
// benchmark's random files, for 0.2%): its bytes are near uniform, so that
// Huffman coding alone cannot gain 1/gzipStoredMargin on them (their
// order-0 entropy is above 8·(1−1/64) bits a byte), and its first
// gzipProbe bytes, deflated, gain less than that too, so that no repeats
// make up for it there. Repeats of such bytes further in the block alone
// are lost to compression.
func incompressible(p, dict []byte) bool {
	if len(p) < 4*gzipProbe || entropy(p) < 8*(1-1.0/gzipStoredMargin) {
		return false
	}
	var probe bytes.Buffer
	probe.Grow(gzipProbe + gzipProbe/gzipStoredMargin)
	if flateInto(&deflaters, gzipLevel, &probe, p[:gzipProbe], dict, false) != nil {
		return false
	}
	return probe.Len() > gzipProbe-gzipProbe/gzipStoredMargin
}

// entropy is the order-0 entropy of p in bits a byte.
func entropy(p []byte) float64 {
	var h [4][256]uint32 // four counts, so that neighbouring bytes do not wait on each other
	i := 0
	for ; i+4 <= len(p); i += 4 {
		h[0][p[i]]++
		h[1][p[i+1]]++
		h[2][p[i+2]]++
		h[3][p[i+3]]++
	}
	for ; i < len(p); i++ {
		h[0][p[i]]++
	}
	e, n := 0.0, float64(len(p))
	for b := range 256 {
		if c := h[0][b] + h[1][b] + h[2][b] + h[3][b]; c > 0 {
			q := float64(c) / n
			e -= q * math.Log2(q)
		}
	}
	return e
}

// Close deflates what is left, writes the trailer and waits until all is
// written, returning the first error of the stream.
func (z *gzipWriter) Close() error {
	if z.closed {
		return z.failed()
	}
	z.closed = true
	z.send(true)
	close(z.queue)
	<-z.done
	return z.failed()
}
