package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// FuzzApply applies two layers per input, each into a fresh sandbox, and
// fails if anything beside root changed or an fd leaked:
//
//   - script, a layer written one entry per line as "TYPE NAME [ARG]", in
//     which "$OUT" stands for the absolute path of the canary directory
//     (see parseScript); the fuzzer mutates names, links and whiteouts while
//     the tar stays well formed;
//   - raw, bytes read through Decompress, to reach the tar and decompressor
//     parsers.
//
// Run it with: go test -fuzz=FuzzApply ./rootfs
func FuzzApply(f *testing.F) {
	testutil.RequiresRoot(f)
	for _, h := range hostiles {
		entries := h.layer("$OUT")
		raw, err := tartest.Bytes(h.layer("/nonexistent/canary")...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(script(entries), raw)
	}
	valid := tartest.Tar(f, tartest.Dir("etc"), tartest.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), tartest.Symlink("bin", "usr/bin"),
		tartest.Hardlink("etc/passwd-", "etc/passwd"), tartest.Whiteout("var/gone"), tartest.Opaque("usr"), tartest.Fifo("run/fifo"))
	f.Add(script([]tartest.Entry{tartest.File("a/b", "x"), tartest.Whiteout("a/b"), tartest.Opaque("a"), tartest.Symlink("c", "$OUT/.."), tartest.File("c/x", "")}), gzipped(f, valid))
	f.Add("l $OUT/x y\nf z/../../q", zstded(f, valid))
	f.Add("", valid[:700])
	f.Add("", tartest.Sparse("s", 1<<20, []int64{10}, []string{"data"}))

	f.Fuzz(func(t *testing.T, script string, raw []byte) {
		fds := openFds(t)

		root, canary := sandbox(t)
		before := snapshot(t, root)
		if data, err := tartest.Bytes(parseScript(script, canary)...); err == nil {
			apply(t, root, data)
		}
		checkCanary(t, root, before)

		root, _ = sandbox(t)
		before = snapshot(t, root)
		// A few bytes may announce a sparse file of petabytes: bound the time.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if rc, _, err := Decompress(bytes.NewReader(raw)); err == nil {
			Apply(ctx, root, rc)
			rc.Close()
		}
		checkCanary(t, root, before)

		if now := openFds(t); now != fds {
			t.Errorf("open fds: %d before, %d after", fds, now)
		}
	})
}

// parseScript reads a layer written one entry per line as "TYPE NAME [ARG]",
// "$OUT" standing for out. TYPE is f (file, ARG its contents), d (directory),
// l (symlink to ARG), h (hard link to ARG), c (character device 1:3),
// b (block device 7:0), p (fifo), x (file with the xattr ARG, "name=value").
// Lines it cannot read are skipped.
func parseScript(s, out string) []tartest.Entry {
	var fs []tartest.Entry
	for _, line := range strings.Split(s, "\n") {
		typ, rest, _ := strings.Cut(line, " ")
		name, arg, _ := strings.Cut(strings.ReplaceAll(rest, "$OUT", out), " ")
		switch typ {
		case "f":
			fs = append(fs, tartest.File(name, arg))
		case "d":
			fs = append(fs, tartest.Dir(name))
		case "l":
			fs = append(fs, tartest.Symlink(name, arg))
		case "h":
			fs = append(fs, tartest.Hardlink(name, arg))
		case "c":
			fs = append(fs, tartest.Char(name, 1, 3))
		case "b":
			fs = append(fs, tartest.Block(name, 7, 0))
		case "p":
			fs = append(fs, tartest.Fifo(name))
		case "x":
			k, v, _ := strings.Cut(arg, "=")
			fs = append(fs, tartest.File(name, "").Xattr(k, v))
		}
	}
	return fs
}

// script writes entries in the form parseScript reads.
func script(fs []tartest.Entry) string {
	var b strings.Builder
	for _, f := range fs {
		h := f.Header
		switch h.Typeflag {
		case tar.TypeReg:
			fmt.Fprintf(&b, "f %s %s\n", h.Name, f.Body)
		case tar.TypeDir:
			fmt.Fprintf(&b, "d %s\n", h.Name)
		case tar.TypeSymlink:
			fmt.Fprintf(&b, "l %s %s\n", h.Name, h.Linkname)
		case tar.TypeLink:
			fmt.Fprintf(&b, "h %s %s\n", h.Name, h.Linkname)
		case tar.TypeChar:
			fmt.Fprintf(&b, "c %s\n", h.Name)
		case tar.TypeBlock:
			fmt.Fprintf(&b, "b %s\n", h.Name)
		case tar.TypeFifo:
			fmt.Fprintf(&b, "p %s\n", h.Name)
		}
	}
	return b.String()
}
