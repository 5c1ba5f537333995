package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// hostile is a layer that tries to reach outside its directory. out is the
// absolute path of the canary directory beside root. Either Apply fails
// with err and a message naming entry, or it succeeds and inside exists
// under root: the entry landed in the layer, never outside.
type hostile struct {
	name   string
	layer  func(out string) []tartest.Entry
	err    error
	entry  string
	inside string // relative to root; "$OUT" is out
}

var dotdots = strings.Repeat("../", 12)

var hostiles = []hostile{
	{name: "absolute name",
		layer:  func(out string) []tartest.Entry { return []tartest.Entry{tartest.File(out+"/secret", "pwned")} },
		inside: "$OUT/secret"},
	{name: "dotdot name",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File("../canary/secret", "pwned")} },
		err:   ErrUnsafe, entry: "../canary/secret"},
	{name: "dotdot above root after absolute",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File("/a/../../canary/secret", "pwned")} },
		err:   ErrUnsafe, entry: "/a/../../canary/secret"},
	{name: "dotdot deep in name",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.File("a/b/../../../canary/secret", "pwned")}
		},
		err: ErrUnsafe, entry: "a/b/../../../canary/secret"},
	{name: "dotdot device",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.Char("../canary/null", 1, 3)} },
		err:   ErrUnsafe, entry: "../canary/null"},
	{name: "PAX long name escaping",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.File(strings.Repeat("d/", 60)+strings.Repeat("../", 61)+"canary/secret", "pwned").Format(tar.FormatPAX)}
		},
		err: ErrUnsafe, entry: strings.Repeat("d/", 60) + strings.Repeat("../", 61) + "canary/secret"},
	{name: "GNU long name escaping",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.File(strings.Repeat("d/", 60)+strings.Repeat("../", 61)+"canary/secret", "pwned").Format(tar.FormatGNU)}
		},
		err: ErrUnsafe, entry: strings.Repeat("d/", 60) + strings.Repeat("../", 61) + "canary/secret"},
	{name: "GNU long link name escaping",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.Hardlink("h", strings.Repeat("d/", 60)+strings.Repeat("../", 61)+"canary/secret").Format(tar.FormatGNU)}
		},
		err: ErrUnsafe, entry: "h"},
	{name: "absolute symlink, write through it",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.File("l/secret", "pwned"), tartest.File("l/new", "pwned")}
		},
		inside: "$OUT/new"},
	{name: "relative symlink to the canary, write through it",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", "../canary"), tartest.File("l/new", "pwned"), tartest.Dir("l/dir").Mode(0o777), tartest.File("l/secret", "pwned")}
		},
		inside: "canary/secret"},
	{name: "relative dotdot symlink, write through it",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("a/b/l", dotdots), tartest.File("a/b/l"+out+"/new", "pwned"), tartest.File("a/b/l"+out+"/secret", "pwned")}
		},
		inside: "$OUT/secret"},
	{name: "symlink to /, write through it",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("r", "/"), tartest.File("r"+filepath.Dir(out)+"/beside", "pwned")}
		},
		inside: "$OUT/../beside"},
	{name: "symlink loop",
		layer: func(string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("a", "b"), tartest.Symlink("b", "a"), tartest.File("a/x", "pwned")}
		},
		err: ErrInvalid, entry: "a/x"},
	{name: "symlink chain too long",
		layer: func(out string) []tartest.Entry {
			var fs []tartest.Entry
			for i := 0; i < maxLinks+1; i++ {
				fs = append(fs, tartest.Symlink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
			}
			return append(fs, tartest.Symlink(fmt.Sprintf("l%d", maxLinks+1), out), tartest.File("l0/secret", "pwned"))
		},
		err: ErrInvalid, entry: "l0/secret"},
	{name: "symlink replaced by a directory, then used",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.Dir("l"), tartest.File("l/secret", "pwned")}
		},
		err: ErrInvalid, entry: "l"},
	{name: "directory replaced by a symlink, then used",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Dir("d"), tartest.Symlink("d", out), tartest.File("d/secret", "pwned")}
		},
		err: ErrInvalid, entry: "d"},
	{name: "file written over a symlink to a canary file",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out+"/secret"), tartest.File("l", "pwned")}
		},
		err: ErrInvalid, entry: "l"},
	{name: "directory over a symlink to the canary",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.Dir("l/").Mode(0o777)}
		},
		err: ErrInvalid, entry: "l/"},
	{name: "hardlink to /etc/passwd",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.Hardlink("h", "/etc/passwd")} },
		err:   ErrInvalid, entry: "h"},
	{name: "hardlink to the absolute canary",
		layer: func(out string) []tartest.Entry { return []tartest.Entry{tartest.Hardlink("h", out+"/secret")} },
		err:   ErrInvalid, entry: "h"},
	{name: "hardlink to dotdot",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.Hardlink("h", "../canary/secret")} },
		err:   ErrUnsafe, entry: "h"},
	{name: "hardlink through a symlinked parent",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.Hardlink("h", "l/secret")}
		},
		err: ErrInvalid, entry: "h"},
	{name: "hardlink to a symlink pointing out links the symlink",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out+"/secret"), tartest.Hardlink("h", "l")}
		},
		inside: "h"},
	{name: "hardlink to a directory",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.Dir("d"), tartest.Hardlink("h", "d")} },
		err:   ErrInvalid, entry: "h"},
	{name: "whiteout of dot",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File(".wh..", "")} },
		err:   ErrUnsafe, entry: ".wh.."},
	{name: "whiteout of dotdot",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File(".wh...", "")} },
		err:   ErrUnsafe, entry: ".wh..."},
	{name: "whiteout of dotdot in a directory",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File("a/.wh...", "")} },
		err:   ErrUnsafe, entry: "a/.wh..."},
	{name: "whiteout of an empty name",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File("a/.wh.", "")} },
		err:   ErrUnsafe, entry: "a/.wh."},
	{name: "whiteout above root",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File("../.wh.canary", "")} },
		err:   ErrUnsafe, entry: "../.wh.canary"},
	{name: "whiteout through a symlinked parent",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.File("l/.wh.secret", "")}
		},
		inside: "$OUT/secret"},
	{name: "opaque whiteout through a symlinked parent",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("l", out), tartest.Opaque("l")}
		},
		inside: "$OUT"},
	{name: "entries through a symlinked parent pointing outside",
		layer: func(out string) []tartest.Entry {
			return []tartest.Entry{tartest.Symlink("etc", out), tartest.File("etc/secret", "pwned"), tartest.Dir("etc/dir").Mode(0o777),
				tartest.Symlink("etc/link", "/x"), tartest.Fifo("etc/fifo"), tartest.Hardlink("etc/hard", "etc/secret")}
		},
		inside: "$OUT/hard"},
	{name: "root entry that is not a directory",
		layer: func(string) []tartest.Entry { return []tartest.Entry{tartest.File(".", "pwned")} },
		err:   ErrUnsafe, entry: "."},
	{name: "root entry as a symlink",
		layer: func(out string) []tartest.Entry { return []tartest.Entry{tartest.Symlink("/", out)} },
		err:   ErrUnsafe, entry: "/"},
	{name: "root entry as a directory changes root only",
		layer:  func(string) []tartest.Entry { return []tartest.Entry{tartest.Dir("/").Mode(0o700).Owner(7, 7)} },
		inside: "."},
}

func TestApplyHostile(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, tc := range hostiles {
		t.Run(tc.name, func(t *testing.T) {
			root, canary := sandbox(t)
			before := snapshot(t, root)
			_, err := apply(t, root, tartest.Tar(t, tc.layer(canary)...))
			checkCanary(t, root, before)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("Apply error = %v, want %v", err, tc.err)
				}
				if want := fmt.Sprintf("layer entry %q", tc.entry); !strings.Contains(err.Error(), want) {
					t.Errorf("Apply error = %q, want it to name %s", err, want)
				}
			case err != nil:
				t.Fatalf("Apply: %v", err)
			default:
				lstat(t, filepath.Join(root, strings.ReplaceAll(tc.inside, "$OUT", canary)))
			}
		})
	}
}

// The message names the entry exactly as written in the tar.
func TestApplyHostileMessage(t *testing.T) {
	testutil.RequiresRoot(t)
	root, _ := sandbox(t)
	_, err := apply(t, root, tartest.Tar(t, tartest.File("../etc/passwd", "x")))
	const want = `layer entry "../etc/passwd": path escapes the layer: rootfs: unsafe entry`
	if err == nil || err.Error() != want {
		t.Fatalf("Apply error = %v, want %s", err, want)
	}
}
