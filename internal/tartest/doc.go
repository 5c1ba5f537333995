// Package tartest declares tar streams in code, for tests: the layers that
// rootfs applies, the layers and archives that the end-to-end tests load.
// It is imported by tests only, and imports nothing of cairn.
//
// An [Entry] is one tar entry, made by a function of its kind ([File],
// [Dir], [Symlink], [Hardlink], [Char], [Block], [Fifo], and the OCI
// whiteouts [Whiteout] and [Opaque]) and changed by its methods (mode,
// owner, times, xattrs, PAX records, format). [Tar] writes entries as one
// stream:
//
//	layer := tartest.Tar(t,
//		tartest.Dir("etc"),
//		tartest.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n").Mode(0o600),
//		tartest.Symlink("bin", "usr/bin"),
//		tartest.Whiteout("var/gone"),
//	)
//
// Entries are dated [Time], so that a fixture is the same bytes on every
// run. A [Context] makes entries with other defaults: another date, or the
// PAX format for all.
//
// Streams that archive/tar would refuse to write, the hostile ones, are
// made of raw bytes: [Short] cuts an entry's data short, [RawHeader] and
// [PAXRecords] build headers by hand, and [Sparse] writes a PAX 1.0 sparse
// file as GNU tar does.
package tartest
