// Package atomicfile writes files so that a reader sees either the old content
// or the new, never a part: a temporary file in the same directory, fsync, rename,
// and fsync of the directory.
package atomicfile
