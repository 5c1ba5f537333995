package tartest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"path"
	"testing"
	"time"
)

// Time is the modification time of the entries that the package's
// functions make.
var Time = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// An Entry is one tar entry: its header and, for a regular file, its data.
// Its methods return a changed copy, so that one entry can be the base of
// several.
type Entry struct {
	Header tar.Header
	Body   string
}

// A Context makes entries that share their date and format. The zero
// Context dates nothing: its entries have a zero ModTime, as a header
// written without one.
type Context struct {
	ModTime time.Time
	Format  tar.Format // tar.FormatUnknown: archive/tar picks
}

// std is the Context of the package's functions.
var std = Context{ModTime: Time}

// entry returns an entry of type typ, mode mode, with c's defaults.
func (c Context) entry(typ byte, name string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: c.ModTime, Format: c.Format}}
}

// File returns a regular file holding body, mode 0644.
func (c Context) File(name, body string) Entry {
	e := c.entry(tar.TypeReg, name, 0o644)
	e.Header.Size, e.Body = int64(len(body)), body
	return e
}

// Dir returns a directory, mode 0755.
func (c Context) Dir(name string) Entry { return c.entry(tar.TypeDir, name, 0o755) }

// Symlink returns a symbolic link to target, mode 0777.
func (c Context) Symlink(name, target string) Entry {
	e := c.entry(tar.TypeSymlink, name, 0o777)
	e.Header.Linkname = target
	return e
}

// Hardlink returns a hard link to target, an earlier entry, mode 0644.
func (c Context) Hardlink(name, target string) Entry {
	e := c.entry(tar.TypeLink, name, 0o644)
	e.Header.Linkname = target
	return e
}

// Char returns a character device, mode 0600.
func (c Context) Char(name string, major, minor int64) Entry {
	return c.device(tar.TypeChar, name, major, minor)
}

// Block returns a block device, mode 0600.
func (c Context) Block(name string, major, minor int64) Entry {
	return c.device(tar.TypeBlock, name, major, minor)
}

func (c Context) device(typ byte, name string, major, minor int64) Entry {
	e := c.entry(typ, name, 0o600)
	e.Header.Devmajor, e.Header.Devminor = major, minor
	return e
}

// Fifo returns a named pipe, mode 0600.
func (c Context) Fifo(name string) Entry { return c.entry(tar.TypeFifo, name, 0o600) }

// Whiteout returns the OCI whiteout of name, "dir/.wh.base": an empty
// regular file that deletes name from the layers below.
func (c Context) Whiteout(name string) Entry {
	dir, base := path.Split(name)
	return c.File(dir+".wh."+base, "")
}

// Opaque returns the OCI opaque whiteout of the directory dir,
// "dir/.wh..wh..opq", which hides what the layers below hold in dir; dir
// "" is the root.
func (c Context) Opaque(dir string) Entry { return c.File(path.Join(dir, ".wh..wh..opq"), "") }

// File returns a regular file holding body, mode 0644, dated Time.
func File(name, body string) Entry { return std.File(name, body) }

// Dir returns a directory, mode 0755, dated Time.
func Dir(name string) Entry { return std.Dir(name) }

// Symlink returns a symbolic link to target, mode 0777, dated Time.
func Symlink(name, target string) Entry { return std.Symlink(name, target) }

// Hardlink returns a hard link to target, mode 0644, dated Time.
func Hardlink(name, target string) Entry { return std.Hardlink(name, target) }

// Char returns a character device, mode 0600, dated Time.
func Char(name string, major, minor int64) Entry { return std.Char(name, major, minor) }

// Block returns a block device, mode 0600, dated Time.
func Block(name string, major, minor int64) Entry { return std.Block(name, major, minor) }

// Fifo returns a named pipe, mode 0600, dated Time.
func Fifo(name string) Entry { return std.Fifo(name) }

// Whiteout returns the OCI whiteout of name, dated Time.
func Whiteout(name string) Entry { return std.Whiteout(name) }

// Opaque returns the OCI opaque whiteout of dir, dated Time.
func Opaque(dir string) Entry { return std.Opaque(dir) }

// Mode sets the permission bits, with the setuid, setgid and sticky bits.
func (e Entry) Mode(mode int64) Entry { e.Header.Mode = mode; return e }

// Owner sets the owner, as numbers.
func (e Entry) Owner(uid, gid int) Entry { e.Header.Uid, e.Header.Gid = uid, gid; return e }

// Format sets the header format, tar.FormatPAX or tar.FormatGNU say.
func (e Entry) Format(f tar.Format) Entry { e.Header.Format = f; return e }

// Times sets the modification and access times, in the PAX format, which
// keeps them to the nanosecond.
func (e Entry) Times(mtime, atime time.Time) Entry {
	e.Header.ModTime, e.Header.AccessTime, e.Header.Format = mtime, atime, tar.FormatPAX
	return e
}

// Xattr adds the xattr name, as a SCHILY.xattr PAX record.
func (e Entry) Xattr(name, value string) Entry { return e.PAX("SCHILY.xattr."+name, value) }

// PAX adds a PAX record, and sets the PAX format.
func (e Entry) PAX(key, value string) Entry {
	e.Header.PAXRecords = maps.Clone(e.Header.PAXRecords)
	if e.Header.PAXRecords == nil {
		e.Header.PAXRecords = map[string]string{}
	}
	e.Header.PAXRecords[key] = value
	e.Header.Format = tar.FormatPAX
	return e
}

// Write writes the entries to w as one tar stream, with its end.
func Write(w io.Writer, entries ...Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := e.Header
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("tartest: entry %q: %w", e.Header.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			return fmt.Errorf("tartest: entry %q: %w", e.Header.Name, err)
		}
	}
	return tw.Close()
}

// Bytes returns the entries as one tar stream, with its end.
func Bytes(entries ...Entry) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, entries...); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Tar returns the entries as one tar stream, with its end. It stops the
// test if archive/tar refuses an entry.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	b, err := Bytes(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
