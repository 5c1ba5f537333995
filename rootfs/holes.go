package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"golang.org/x/sys/unix"
)

// Applying a sparse entry without expanding its holes.
//
// archive/tar reads every sparse format (GNU's old one, PAX 0.0, 0.1 and
// 1.0) and hands a sparse file out as all its bytes, the zeros of its
// holes made one by one: a 10 GiB file of 5 bytes took 0.8 s to apply
// here, clearing and comparing 10 GiB of zeros, and a few bytes of layer
// can announce a file of petabytes. The reader of a sparse entry knows
// its holes, and its WriteTo seeks over them when it writes to an
// io.WriteSeeker, but tar.Reader does not pass WriteTo on (the sparse API
// was withdrawn from Go 1.10, golang/go#22735). So the applier reaches
// that reader, the current entry's, through reflection: the same code,
// archive/tar's own checks of the map against the data included, without
// the zeros. Where Go's internals no longer match (a field renamed, a
// reader type changed), holesOf returns nil and the entry is read as any
// other; TestApplySparseSkipsHoles fails then, so that it is noticed.

// currField is the index of tar.Reader's reader of the current entry, an
// interface; nil if it is not there.
var currField = func() []int {
	f, ok := reflect.TypeFor[tar.Reader]().FieldByName("curr")
	if !ok || f.Type.Kind() != reflect.Interface {
		return nil
	}
	return f.Index
}()

// holesOf returns the writer of the current entry of tr if that entry is
// a sparse file, else nil.
func holesOf(tr *tar.Reader) io.WriterTo {
	if currField == nil {
		return nil
	}
	f := reflect.ValueOf(tr).Elem().FieldByIndex(currField)
	// An unexported field: read through its address.
	cur := reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem()
	if cur.IsNil() || cur.Elem().Type().String() != "*tar.sparseFileReader" {
		return nil
	}
	w, _ := cur.Interface().(io.WriterTo)
	return w
}

// writeSparse writes a sparse entry of size bytes to the new file fd
// through its reader's WriteTo: data is written, holes are seeked over,
// blocks of zeros in the data skipped as write skips them.
func (a *applier) writeSparse(ctx context.Context, fd int, src io.WriterTo, size int64) error {
	w := &holeWriter{ctx: ctx, a: a, fd: fd, size: size}
	n, err := src.WriteTo(w)
	switch {
	case w.err != nil:
		return w.err
	case err != nil:
		return fmt.Errorf("read: %w", markInvalid(err))
	case n != size:
		return fmt.Errorf("read: %d bytes of %d: %w", n, size, markInvalid(io.ErrUnexpectedEOF))
	}
	if w.end < size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	return nil
}

// holeWriter is the io.WriteSeeker that a sparse entry is written to: a
// file being made, of a known size.
type holeWriter struct {
	ctx  context.Context
	a    *applier
	fd   int
	size int64
	off  int64 // where the next write goes
	end  int64 // just past the last byte written
	err  error // of the file, not of the stream
}

var errPastSize = errors.New("sparse data past the file's size")

func (w *holeWriter) Write(p []byte) (int, error) {
	if err := w.check(int64(len(p))); err != nil {
		return 0, err
	}
	if err := w.put(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom copies a data fragment through the applier's buffer: io.CopyN,
// which archive/tar copies fragments with, would make a small one of its
// own for each.
func (w *holeWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := 0, error(nil)
		for n < len(w.a.buf) && err == nil {
			var m int
			m, err = r.Read(w.a.buf[n:])
			n += m
		}
		if n > 0 {
			if cerr := w.check(int64(n)); cerr != nil {
				return total, cerr
			}
			if perr := w.put(w.a.buf[:n]); perr != nil {
				return total, perr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Seek moves over a hole. archive/tar seeks from the current offset only.
func (w *holeWriter) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return 0, errors.ErrUnsupported
	}
	if err := w.check(offset); err != nil {
		return 0, err
	}
	w.off += offset
	return w.off, nil
}

// check refuses n more bytes past the file's size (archive/tar never asks
// for them) and looks at ctx.
func (w *holeWriter) check(n int64) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if n > w.size-w.off {
		return fmt.Errorf("read: %w", markInvalid(errPastSize))
	}
	return nil
}

// put writes p at the offset, but for its whole blocks of zeros, and but
// for the zero byte that archive/tar writes last to give a file that ends
// with a hole its size: writeSparse truncates it to its size instead.
func (w *holeWriter) put(p []byte) error {
	if len(p) == 1 && p[0] == 0 && w.off == w.size-1 {
		w.off++
		return nil
	}
	end, err := pwriteData(w.fd, p, w.off)
	if err != nil {
		w.err = fmt.Errorf("write: %w", err)
		return w.err
	}
	w.end = max(w.end, end)
	w.off += int64(len(p))
	return nil
}
