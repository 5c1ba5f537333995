package rootfs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"maps"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tar fixtures, declared in code. A fixture is one tar entry; layer writes a
// list of them as a tar stream. Raw-byte tricks (truncation, bad checksums,
// hand-made PAX sparse headers) are at the end of this file.

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

type fixture struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) fixture {
	return fixture{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dir(name string) fixture {
	return fixture{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: testTime}}
}

func sym(name, target string) fixture {
	return fixture{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func hard(name, target string) fixture {
	return fixture{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}}
}

func device(name string, typ byte, major, minor int64) fixture {
	return fixture{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o600, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

func fifo(name string) fixture {
	return fixture{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o600, ModTime: testTime}}
}

// wh is the OCI whiteout of name.
func wh(name string) fixture {
	d, base := path.Split(name)
	return reg(d+whiteoutPrefix+base, "")
}

// opq is the OCI opaque whiteout of directory d.
func opq(d string) fixture { return reg(path.Join(d, whiteoutOpaque), "") }

func (f fixture) perm(mode int64) fixture { f.hdr.Mode = mode; return f }

func (f fixture) owner(uid, gid int) fixture { f.hdr.Uid, f.hdr.Gid = uid, gid; return f }

func (f fixture) format(format tar.Format) fixture { f.hdr.Format = format; return f }

func (f fixture) times(mtime, atime time.Time) fixture {
	f.hdr.ModTime, f.hdr.AccessTime, f.hdr.Format = mtime, atime, tar.FormatPAX
	return f
}

func (f fixture) xattr(name, value string) fixture {
	f.hdr.PAXRecords = maps.Clone(f.hdr.PAXRecords)
	if f.hdr.PAXRecords == nil {
		f.hdr.PAXRecords = map[string]string{}
	}
	f.hdr.PAXRecords[paxXattr+name] = value
	f.hdr.Format = tar.FormatPAX
	return f
}

// layer writes the fixtures as one tar stream.
func layer(t testing.TB, entries ...fixture) []byte {
	t.Helper()
	b, err := writeLayer(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeLayer(entries []fixture) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("fixture %q: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return nil, fmt.Errorf("fixture %q: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// shortLayer writes one regular file whose header announces size bytes but
// whose data is body alone, and returns the stream cut right there.
func shortLayer(t testing.TB, name string, size int64, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes() // no Close: tw would complain, rightly
}

// rawHeader is a ustar header block with a correct checksum.
func rawHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }

// paxRecords encodes PAX records, "%d %s=%s\n" with the length counting
// itself (as archive/tar's formatPAXRecord does).
func paxRecords(kv ...string) []byte {
	var b bytes.Buffer
	for i := 0; i < len(kv); i += 2 {
		rest := " " + kv[i] + "=" + kv[i+1] + "\n"
		size := len(rest) + len(strconv.Itoa(len(rest)))
		rec := strconv.Itoa(size) + rest
		if len(rec) != size {
			rec = strconv.Itoa(len(rec)) + rest
		}
		b.WriteString(rec)
	}
	return b.Bytes()
}

// sparseLayer is a PAX 1.0 sparse file (as GNU tar --sparse writes it) of
// realsize bytes holding data at the given offsets, followed by the end of
// the archive.
func sparseLayer(name string, realsize int64, offsets []int64, data []string) []byte {
	m := fmt.Sprintf("%d\n", len(offsets))
	var body strings.Builder
	for i, off := range offsets {
		m += fmt.Sprintf("%d\n%d\n", off, len(data[i]))
		body.WriteString(data[i])
	}
	content := append(pad([]byte(m)), body.String()...)
	pax := paxRecords(
		"GNU.sparse.major", "1",
		"GNU.sparse.minor", "0",
		"GNU.sparse.name", name,
		"GNU.sparse.realsize", fmt.Sprint(realsize),
	)
	var out []byte
	out = append(out, rawHeader("PaxHeaders/"+name, tar.TypeXHeader, int64(len(pax)))...)
	out = append(out, pad(pax)...)
	out = append(out, rawHeader("GNUSparseFile.0/"+name, tar.TypeReg, int64(len(content)))...)
	out = append(out, pad(content)...)
	return append(out, make([]byte, 1024)...)
}
