package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sparse files, both ways. Apply writes the zeros of a file as holes, and
// the tar writer encodes a file with holes as a PAX 1.0 sparse entry, which
// GNU tar and archive/tar read.

const (
	holeBlock    = 32 << 10 // blocks of zeros this large become holes
	maxSparseMap = 1 << 20  // PAX 1.0 sparse map that archive/tar reads

	sparseName = "GNUSparseFile.0" // directory of a sparse entry's ustar name, as archive/tar names it
	paxName    = "PaxHeaders.0"    // and of its PAX header
)

var zeroBlock [holeBlock]byte

// write copies size bytes of r to the new file fd. Blocks of zeros are
// skipped over, not written, and the file is extended to size at the end.
//
// A file of petabytes of zeros takes a few bytes of compressed layer: ctx
// is checked as the copy goes. (A sparse entry, whose holes the tar reader
// would expand into all their zeros, goes through writeSparse.)
func (a *applier) write(ctx context.Context, fd int, r io.Reader, size int64) error {
	var off, end int64 // end: just past the last byte written
	for off < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := a.buf
		if rem := size - off; rem < int64(len(buf)) {
			buf = buf[:rem]
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read: %w", markInvalid(err))
		}
		e, err := pwriteData(fd, buf, off)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		end = max(end, e)
		off += int64(len(buf))
	}
	if end < size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	return nil
}

// pwriteData writes buf at off in fd but for its whole blocks of zeros,
// which it skips over, and returns the offset just past the last byte it
// wrote (0 if none). Where buf starts at a multiple of holeBlock, as write's
// do, the blocks skipped are the file's.
func pwriteData(fd int, buf []byte, off int64) (end int64, err error) {
	for i := 0; i < len(buf); {
		j := i
		for j < len(buf) && !zeroAt(buf, j) {
			j = min(j+holeBlock, len(buf))
		}
		if j > i {
			if err := pwrite(fd, buf[i:j], off+int64(i)); err != nil {
				return end, err
			}
			end = off + int64(j)
		}
		for j < len(buf) && zeroAt(buf, j) {
			j += holeBlock
		}
		i = j
	}
	return end, nil
}

// zeroAt reports whether buf holds a whole block of zeros at i.
func zeroAt(buf []byte, i int) bool {
	return len(buf)-i >= holeBlock && bytes.Equal(buf[i:i+holeBlock], zeroBlock[:])
}

func pwrite(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// A fragment is a run of data in a sparse file.
type fragment struct{ off, len int64 }

// DataRuns calls fn with the offset and length of each run of data of the
// regular file fd, size bytes long, in order, found with SEEK_DATA and
// SEEK_HOLE: the holes between them read as zeros and take no block. A
// file without holes is one run. It stops at fn's first error and returns
// it.
func DataRuns(fd int, size int64, fn func(off, n int64) error) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Blocks*512 >= size {
		if size == 0 {
			return nil
		}
		return fn(0, size) // every byte has a block: no holes
	}
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO || err == nil && data >= size {
			return nil // only a hole from off on
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if err := fn(data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

var errMapTooLong = errors.New("sparse map too long")

// scan returns the data fragments of a regular file with holes
// (DataRuns), followed by the empty fragment at its size that GNU tar
// writes (and needs, to extend a file that ends with a hole). It returns
// nil for a file without holes, or with too many to map (such a file is
// written whole).
func (t *TarWriter) scan(fd int, st *unix.Stat_t) []fragment {
	size := st.Size
	if st.Blocks*512 >= size {
		return nil // every byte has a block: no holes
	}
	frags := t.frags[:0]
	mapLen := 0
	err := DataRuns(fd, size, func(off, n int64) error {
		frags = append(frags, fragment{off, n})
		// The count and the last, empty fragment take at most 64 bytes.
		if mapLen += decimalLen(off) + decimalLen(n) + 2; mapLen > maxSparseMap-64 {
			return errMapTooLong
		}
		return nil
	})
	t.frags = frags
	if err != nil || len(frags) == 1 && frags[0] == (fragment{0, size}) {
		return nil
	}
	return append(frags, fragment{size, 0})
}

// sparse writes a sparse entry in the PAX format 1.0 of GNU tar: a PAX
// header with the GNU.sparse.* records, then a ustar header whose data is
// the sparse map (the number of fragments, then the offset and length of
// each, in decimal lines, padded to a block) followed by the fragments'
// data. archive/tar writes no sparse files (it drops GNU.sparse.* records),
// so this entry's headers are made here, and written to the same buffered
// output once archive/tar has flushed the padding of the entry before.
func (t *TarWriter) sparse(ctx context.Context, hdr *tar.Header, fd int, frags []fragment) (short bool, err error) {
	m := strconv.AppendInt(t.buf[:0], int64(len(frags)), 10)
	m = append(m, '\n')
	var data int64
	for _, f := range frags {
		m = strconv.AppendInt(m, f.off, 10)
		m = append(m, '\n')
		m = strconv.AppendInt(m, f.len, 10)
		m = append(m, '\n')
		data += f.len
	}
	m = append(m, zeroBlock[:blockPad(int64(len(m)))]...)

	t.dirty = true
	if err := t.tw.Flush(); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	if err := t.sparseHeaders(hdr, int64(len(m))+data); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	if _, err := t.bw.Write(m); err != nil { // m is in t.buf: write it before copying
		return false, fmt.Errorf("write: %w", err)
	}
	for _, f := range frags {
		s, err := t.copyRange(ctx, t.bw, fd, f.off, f.len)
		if err != nil {
			return short, err
		}
		short = short || s
	}
	if _, err := t.bw.Write(zeroBlock[:blockPad(data)]); err != nil {
		return short, fmt.Errorf("write: %w", err)
	}
	t.dirty = false
	return short, nil
}

func blockPad(n int64) int64 { return -n & 511 }

func decimalLen(x int64) int {
	n := 1
	for ; x >= 10; x /= 10 {
		n++
	}
	return n
}

// sparseHeaders writes the PAX and ustar headers of a sparse entry whose
// data (map and fragments) is size bytes, laid out as archive/tar lays out
// its own PAX headers.
func (t *TarWriter) sparseHeaders(hdr *tar.Header, size int64) error {
	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     hdr.Name,
		"GNU.sparse.realsize": strconv.FormatInt(hdr.Size, 10),
	}
	for k, v := range hdr.PAXRecords {
		recs[k] = v
	}
	dir, file := path.Split(hdr.Name)
	var b ustar
	b.str(0, 100, path.Join(dir, sparseName, file))
	b.num(100, 8, hdr.Mode, "", recs)
	b.num(108, 8, int64(hdr.Uid), "uid", recs)
	b.num(116, 8, int64(hdr.Gid), "gid", recs)
	b.num(124, 12, size, "size", recs)
	b.num(136, 12, hdr.ModTime.Unix(), "mtime", recs)
	b[156] = tar.TypeReg
	b.num(329, 8, 0, "", recs) // devmajor
	b.num(337, 8, 0, "", recs) // devminor

	var pax strings.Builder
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		pax.WriteString(paxRecord(k, recs[k]))
	}
	var x ustar
	name := strings.TrimRight(path.Join(dir, paxName, file), "/")
	x.str(0, 100, name)
	x.num(100, 8, 0, "", nil)
	x.num(108, 8, 0, "", nil)
	x.num(116, 8, 0, "", nil)
	x.num(124, 12, int64(pax.Len()), "", nil)
	x.num(136, 12, 0, "", nil)
	x[156] = tar.TypeXHeader
	x.finish()
	b.finish()

	for _, p := range [][]byte{x[:], []byte(pax.String()), zeroBlock[:blockPad(int64(pax.Len()))], b[:]} {
		if _, err := t.bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// ustar is a ustar header block being filled.
type ustar [512]byte

// str sets a string field: its ASCII characters, cut to the field.
func (b *ustar) str(off, n int, s string) {
	var a []byte
	for _, r := range s {
		if r > 0 && r < 0x80 {
			a = append(a, byte(r))
		}
	}
	copy(b[off:off+n], a)
}

// num sets a numeric field in octal, or to 0 with a PAX record key in recs
// when the value does not fit.
func (b *ustar) num(off, n int, x int64, key string, recs map[string]string) {
	if x < 0 || x >= 1<<(3*(n-1)) {
		recs[key] = strconv.FormatInt(x, 10)
		x = 0
	}
	s := strconv.FormatInt(x, 8)
	copy(b[off:off+n-1], strings.Repeat("0", n-1-len(s))+s)
}

// finish sets the magic and the checksum.
func (b *ustar) finish() {
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// paxRecord formats a PAX record, "%d %s=%s\n" whose length counts itself,
// as archive/tar does.
func paxRecord(k, v string) string {
	size := len(k) + len(v) + 3
	size += len(strconv.Itoa(size))
	rec := strconv.Itoa(size) + " " + k + "=" + v + "\n"
	if len(rec) != size {
		rec = strconv.Itoa(len(rec)) + " " + k + "=" + v + "\n"
	}
	return rec
}
