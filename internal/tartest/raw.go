package tartest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// Short returns the stream of e alone, cut short: its header announces size
// bytes, but only e's body follows, and the stream ends right there,
// without padding or the end of the archive.
func Short(t testing.TB, e Entry, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	hdr := e.Header
	hdr.Size = size
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, e.Body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes() // no Close: tw would complain, rightly
}

// RawHeader returns a ustar header block with a correct checksum: an
// entry of type typ and size bytes, mode 0644, owned by 0:0, dated Time.
func RawHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", Time.Unix()))
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

// Pad pads b with zeros to a whole number of 512-byte blocks.
func Pad(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }

// PAXRecords encodes PAX records, given as keys and values in turn:
// "%d %s=%s\n", the length counting itself, as archive/tar writes them.
func PAXRecords(kv ...string) []byte {
	var b bytes.Buffer
	for i := 0; i+1 < len(kv); i += 2 {
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

// Sparse returns a stream of one PAX 1.0 sparse file, as GNU tar --sparse
// writes it, and the end of the archive: name is realsize bytes long, and
// zeros but for data[i] at offsets[i]. archive/tar reads such files but
// cannot write them.
func Sparse(name string, realsize int64, offsets []int64, data []string) []byte {
	m := fmt.Sprintf("%d\n", len(offsets))
	var body strings.Builder
	for i, off := range offsets {
		m += fmt.Sprintf("%d\n%d\n", off, len(data[i]))
		body.WriteString(data[i])
	}
	content := append(Pad([]byte(m)), body.String()...)
	pax := PAXRecords(
		"GNU.sparse.major", "1",
		"GNU.sparse.minor", "0",
		"GNU.sparse.name", name,
		"GNU.sparse.realsize", fmt.Sprint(realsize),
	)
	var out []byte
	out = append(out, RawHeader("PaxHeaders/"+name, tar.TypeXHeader, int64(len(pax)))...)
	out = append(out, Pad(pax)...)
	out = append(out, RawHeader("GNUSparseFile.0/"+name, tar.TypeReg, int64(len(content)))...)
	out = append(out, Pad(content)...)
	return append(out, make([]byte, 1024)...)
}
