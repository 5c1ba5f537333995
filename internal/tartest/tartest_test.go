package tartest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// read returns the headers and data of a stream, as archive/tar reads it.
func read(t *testing.T, data []byte) ([]*tar.Header, []string, error) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hdrs []*tar.Header
	var bodies []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, bodies, nil
		}
		if err != nil {
			return hdrs, bodies, err
		}
		b, err := io.ReadAll(tr)
		hdrs, bodies = append(hdrs, hdr), append(bodies, string(b))
		if err != nil {
			return hdrs, bodies, err
		}
	}
}

func TestTar(t *testing.T) {
	mtime, atime := time.Unix(1, 2), time.Unix(3, 4)
	hdrs, bodies, err := read(t, Tar(t,
		Dir("d/").Mode(0o2750).Owner(1, 2),
		File("d/f", "data").Xattr("user.a", "b").PAX("comment", "c"),
		Symlink("l", "d/f").Times(mtime, atime),
		Hardlink("h", "d/f"),
		Char("null", 1, 3),
		Block("loop", 7, 0),
		Fifo("p").Format(tar.FormatGNU),
		Whiteout("d/gone"),
		Opaque(""),
		Context{ModTime: mtime}.Opaque("d"),
	))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, h := range hdrs {
		got = append(got, fmt.Sprintf("%c %s %o %d:%d %s %d:%d %d %q %v", h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid,
			h.Linkname, h.Devmajor, h.Devminor, h.ModTime.Unix(), bodies[i], h.PAXRecords))
	}
	tt := Time.Unix()
	want := []string{
		fmt.Sprintf("5 d/ 2750 1:2  0:0 %d \"\" map[]", tt),
		fmt.Sprintf("0 d/f 644 0:0  0:0 %d \"data\" map[SCHILY.xattr.user.a:b comment:c]", tt),
		"2 l 777 0:0 d/f 0:0 1 \"\" map[atime:3.000000004 mtime:1.000000002]",
		fmt.Sprintf("1 h 644 0:0 d/f 0:0 %d \"\" map[]", tt),
		fmt.Sprintf("3 null 600 0:0  1:3 %d \"\" map[]", tt),
		fmt.Sprintf("4 loop 600 0:0  7:0 %d \"\" map[]", tt),
		fmt.Sprintf("6 p 600 0:0  0:0 %d \"\" map[]", tt),
		fmt.Sprintf("0 d/.wh.gone 644 0:0  0:0 %d \"\" map[]", tt),
		fmt.Sprintf("0 .wh..wh..opq 644 0:0  0:0 %d \"\" map[]", tt),
		"0 d/.wh..wh..opq 644 0:0  0:0 1 \"\" map[]",
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n%q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
	if hdrs[6].Format != tar.FormatGNU {
		t.Errorf("fifo written as %v, want GNU", hdrs[6].Format)
	}

	base := File("f", "")
	_ = base.Xattr("user.x", "y")
	if base.Header.PAXRecords != nil {
		t.Error("a method changed the entry it was called on")
	}
}

func TestRaw(t *testing.T) {
	hdrs, bodies, err := read(t, Sparse("s", 1<<20, []int64{10, 1<<20 - 4}, []string{"data", "tail"}))
	if err != nil || len(hdrs) != 1 {
		t.Fatalf("sparse: %d entries, %v", len(hdrs), err)
	}
	if b := bodies[0]; hdrs[0].Name != "s" || len(b) != 1<<20 || b[10:14] != "data" || b[1<<20-4:] != "tail" {
		t.Errorf("sparse: %q of %d bytes, not the data written", hdrs[0].Name, len(b))
	}

	_, bodies, err = read(t, Short(t, File("short", "ten bytes!"), 100))
	if !errors.Is(err, io.ErrUnexpectedEOF) || bodies[0] != "ten bytes!" {
		t.Errorf("short: %q, %v; want ten bytes, then unexpected EOF", bodies, err)
	}

	raw := append(RawHeader("r", tar.TypeReg, 3), Pad([]byte("raw"))...)
	hdrs, bodies, err = read(t, append(raw, make([]byte, 1024)...))
	if err != nil || len(hdrs) != 1 || hdrs[0].Name != "r" || bodies[0] != "raw" || !hdrs[0].ModTime.Equal(Time) {
		t.Errorf("raw header: %v %q, %v", hdrs, bodies, err)
	}
}
