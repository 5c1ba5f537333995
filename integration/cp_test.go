package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
	"github.com/cairn-runtime/cairn/internal/testutil"
)

// cpLayer is the layer the cp tests copy from and into, over busybox:
// owners, modes (setuid, 0700), a hard link, and symlinks relative,
// absolute and to a directory.
func cpLayer(t testing.TB) []byte {
	return layerTar(t,
		dir("d/"),
		file("d/f", "hello\n").Mode(0o640).Owner(7, 8),
		file("d/exe", "#!/bin/sh\n").Mode(0o4755),
		dir("d/sub/"),
		file("d/sub/x", "x\n"),
		fixtures.Hardlink("d/sub/hx", "d/sub/x"),
		dir("d/sub/deep/").Mode(0o700).Owner(1, 2),
		file("d/sub/deep/y", "yy\n").Owner(1, 2),
		fixtures.Symlink("d/lf", "f"),
		fixtures.Symlink("d/asub", "/d/sub"),
		fixtures.Symlink("d/rel", "../etc"),
	)
}

// cpImage loads the cp image into s (as image name) and, through `cairn
// save`, into the test Docker engine.
func cpImage(t *testing.T, s *store, docker *testutil.DockerEngine, name string) {
	t.Helper()
	s.ok("load", "-i", writeFile(t, dockerArchive(t, fixtureImage{
		Names: []string{name}, Layers: [][]byte{busyboxTar(t), cpLayer(t)}, Cmd: []string{"sh"},
	})))
	if docker == nil {
		return
	}
	archive := filepath.Join(t.TempDir(), "cp.tar")
	s.ok("save", "-o", archive, name)
	docker.Run(t, "load", "-i", archive)
	t.Cleanup(func() { docker.RunErr("rmi", "-f", name) })
}

// cpUnique is a name no other test, nor another run, uses in the Docker engine.
func cpUnique() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "cairn-cp-" + hex.EncodeToString(b)
}

// cpHostSource makes the host tree that cases copy into containers.
func cpHostSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "file"), []byte("host file\n"), 0o644))
	must(t, os.Lchown(filepath.Join(src, "file"), 1234, 4321))
	must(t, os.Chmod(filepath.Join(src, "file"), os.ModeSetuid|0o750)) // after chown, which clears setuid
	must(t, os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o755))
	must(t, os.Chmod(filepath.Join(src, "dir", "sub"), 0o700))
	must(t, os.WriteFile(filepath.Join(src, "dir", "x"), []byte("dir x\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "dir", "sub", "y"), []byte("sub y\n"), 0o644))
	must(t, os.Symlink("x", filepath.Join(src, "dir", "lx")))
	must(t, os.Link(filepath.Join(src, "dir", "x"), filepath.Join(src, "dir", "hx")))
	must(t, os.Symlink("file", filepath.Join(src, "link")))
	for _, p := range []string{"dir", "dir/sub", "dir/x", "dir/sub/y", "dir/lx"} {
		must(t, os.Lchown(filepath.Join(src, p), 55, 66))
	}
	return src
}

// cpTar is a tar stream of entries.
func cpTar(t testing.TB, entries ...tartest.Entry) []byte { return tartest.Tar(t, entries...) }

// cpTarList lists a tar stream, one line per entry: type, mode, owner,
// size, name and link target. A hard link is listed as the file it links
// to, which the overlay may show either way.
func cpTarList(t testing.TB, b []byte, keep func(name string) bool) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	seen := map[string]string{}
	var out []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if keep != nil && !keep(name) {
			continue
		}
		var line string
		switch hdr.Typeflag {
		case tar.TypeLink:
			line = strings.Replace(seen[strings.TrimSuffix(hdr.Linkname, "/")], " "+hdr.Linkname+" ", " "+name+" ", 1)
			if line == "" {
				line = "link to missing " + hdr.Linkname + " " + name
			}
		case tar.TypeSymlink:
			line = fmt.Sprintf("l %04o %d:%d %s -> %s", hdr.Mode&0o7777, hdr.Uid, hdr.Gid, name, hdr.Linkname)
		case tar.TypeDir:
			line = fmt.Sprintf("d %04o %d:%d %s/", hdr.Mode&0o7777, hdr.Uid, hdr.Gid, name)
		default:
			data, _ := io.ReadAll(tr)
			line = fmt.Sprintf("%c %04o %d:%d %s %d %q", hdr.Typeflag, hdr.Mode&0o7777, hdr.Uid, hdr.Gid, name, hdr.Size, data)
		}
		seen[name] = line
		out = append(out, line)
	}
	return out
}

// cpTreeList lists the host tree under root, relative to it, as cpTarList.
func cpTreeList(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		mode := st.Mode & 0o7777
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, fmt.Sprintf("l %d:%d %s -> %s", st.Uid, st.Gid, rel, target))
		case fi.IsDir():
			out = append(out, fmt.Sprintf("d %04o %d:%d %s/", mode, st.Uid, st.Gid, rel))
		default:
			data, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("- %04o %d:%d %s %d %q", mode, st.Uid, st.Gid, rel, fi.Size(), data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cpCase is one cp of the differential test, run alike by Docker and cairn.
type cpCase struct {
	name string
	// args of cp: CTR is the case's container, HOST its host directory,
	// SRC the host source tree.
	args  []string
	stdin []byte
	// in: into a fresh container (created with user, if set), compared by
	// its export under d/ and tmp/; else out of the shared one.
	in   bool
	user string
}

// cpOutcome is what a cp did.
type cpOutcome struct {
	code int
	msg  string   // the error, normalized
	tree []string // what it made
}

var (
	cpDockerNoise = regexp.MustCompile(`(?m)^time=".*$\n?`)
	cpDockerRoot  = regexp.MustCompile(`/var/lib/cairn-test/docker/overlay2/[0-9a-f]+/merged`)
)

// cpNormalize is the message of a failed cp without what only says who
// failed: Docker's "Error response from daemon: " and "Error processing tar
// file(exit status 1): ", cairn's "Error: ", Docker's log lines, the host
// path of Docker's overlay, the case's host directory.
func cpNormalize(stderr, host string) string {
	s := cpDockerNoise.ReplaceAllString(stderr, "")
	s = cpDockerRoot.ReplaceAllString(s, "")
	for _, p := range []string{"Error response from daemon: ", "Error processing tar file(exit status 1): ", "Error: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return strings.TrimSpace(strings.ReplaceAll(s, host, "HOST"))
}

// cpExportFilter keeps the paths the cases copy into.
func cpExportFilter(name string) bool {
	return name == "d" || strings.HasPrefix(name, "d/") || name == "tmp" || strings.HasPrefix(name, "tmp/")
}

func cpExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// The same twenty copies, in and out of containers, with Docker and with
// cairn, give the same trees (names, types, modes, sizes, contents, symlink
// targets, owners) and the same errors (exit code and message).
func TestCpMatchesDocker(t *testing.T) {
	docker := testutil.Docker(t)
	s := newStore(t)
	prefix := cpUnique()
	img := "cairn-test/cp:" + prefix
	cpImage(t, s, docker, img)
	src := cpHostSource(t)
	stdinTar := cpTar(t,
		fixtures.Dir("t19/").Mode(0o750).Owner(3, 4),
		fixtures.File("t19/a", "from stdin\n").Mode(0o600).Owner(3, 4),
		fixtures.Symlink("t19/la", "a"),
		fixtures.Hardlink("t19/ha", "t19/a"),
	)
	conflictTar := cpTar(t, fixtures.File("sub", "not a directory\n"))

	cases := []cpCase{
		// Out of a container.
		{name: "file to a new name", args: []string{"CTR:/d/f", "HOST/out/new"}},
		{name: "file into a directory", args: []string{"CTR:/d/f", "HOST/out/"}},
		{name: "file over a file", args: []string{"CTR:/d/exe", "HOST/out/existing"}},
		{name: "directory to a new name", args: []string{"CTR:/d", "HOST/out/newdir"}},
		{name: "directory contents", args: []string{"CTR:/d/sub/.", "HOST/out"}},
		{name: "symlink as a symlink", args: []string{"CTR:/d/lf", "HOST/out/"}},
		{name: "symlink followed", args: []string{"-L", "CTR:/d/asub", "HOST/out/followed"}},
		{name: "tar of a directory", args: []string{"CTR:/d", "-"}},
		{name: "tar through a symlink with /", args: []string{"CTR:/d/asub/", "-"}},
		{name: "missing source", args: []string{"CTR:/nope", "HOST/out/"}},
		{name: "directory over a file", args: []string{"CTR:/d", "HOST/out/existing"}},
		{name: "file to a missing directory", args: []string{"CTR:/d/f", "HOST/out/nodir/"}},
		// Into a container.
		{name: "file into a directory", in: true, args: []string{"SRC/file", "CTR:/tmp/"}},
		{name: "archive mode with a user", in: true, user: "nobody", args: []string{"-a", "SRC/file", "CTR:/tmp/fa"}},
		{name: "directory to a new name", in: true, args: []string{"SRC/dir", "CTR:/tmp/newdir"}},
		{name: "directory contents into one", in: true, args: []string{"SRC/dir/.", "CTR:/d/sub"}},
		{name: "file through a symlink", in: true, args: []string{"SRC/file", "CTR:/d/lf"}},
		{name: "tar from stdin", in: true, stdin: stdinTar, args: []string{"-", "CTR:/tmp"}},
		{name: "tar into a file", in: true, stdin: stdinTar, args: []string{"-", "CTR:/d/f"}},
		{name: "directory over a file", in: true, stdin: conflictTar, args: []string{"-", "CTR:/d"}},
	}
	if len(cases) != 20 {
		t.Fatalf("%d cases", len(cases))
	}

	dockerSide := cpEngine{name: "docker",
		create: func(args ...string) {
			docker.Run(t, append([]string{"create"}, args...)...)
			t.Cleanup(func() { docker.RunErr("rm", "-f", args[3]) })
		},
		cp: func(stdin []byte, args ...string) (string, string, int) {
			stdout, stderr, err := docker.RunErrIn(stdin, args...)
			return stdout, stderr, cpExitCode(err)
		},
		export: func(ctr string) []byte {
			out, _, err := docker.RunErr("export", ctr)
			must(t, err)
			return []byte(out)
		},
	}
	cairnSide := cpEngine{name: "cairn",
		create: func(args ...string) { s.ok(append([]string{"create"}, args...)...) },
		cp: func(stdin []byte, args ...string) (string, string, int) {
			r := s.run(stdin, args...)
			return r.Stdout, r.Stderr, r.Code
		},
		export: func(ctr string) []byte { return []byte(s.ok("export", ctr)) },
	}
	cpCompare(t, cases, img, prefix, src, dockerSide, cairnSide)
}

// cpEngine is a side of a cp differential test: how it makes a container
// (create's arguments, "--network none --name NAME ..."; removed when the
// test ends), runs `cp ARGS`, and exports a container.
type cpEngine struct {
	name   string
	create func(args ...string)
	cp     func(stdin []byte, args ...string) (stdout, stderr string, code int)
	export func(ctr string) []byte
}

// cpCompare runs every case with engines a and b, each in a directory of
// its own, on containers of image img named after prefix, and reports
// where their outcomes (trees, exit codes, messages) differ.
func cpCompare(t *testing.T, cases []cpCase, img, prefix, src string, a, b cpEngine) {
	t.Helper()
	shared := prefix + "-out"
	a.create("--network", "none", "--name", shared, img, "true")
	b.create("--network", "none", "--name", shared, img, "true")
	base := t.TempDir()
	run := func(e cpEngine, i int, c cpCase) cpOutcome {
		host := filepath.Join(base, e.name, fmt.Sprint(i))
		must(t, os.MkdirAll(filepath.Join(host, "out"), 0o755))
		must(t, os.WriteFile(filepath.Join(host, "out", "existing"), []byte("old\n"), 0o644))
		ctr := shared
		if c.in {
			ctr = fmt.Sprintf("%s-%d", prefix, i)
			create := []string{"--network", "none", "--name", ctr}
			if c.user != "" {
				create = append(create, "--user", c.user)
			}
			e.create(append(create, img, "true")...)
		}
		args := []string{"cp"}
		for _, a := range c.args {
			a = strings.ReplaceAll(a, "CTR", ctr)
			a = strings.ReplaceAll(a, "HOST", host)
			args = append(args, strings.ReplaceAll(a, "SRC", src))
		}
		var o cpOutcome
		var stdout, stderr string
		stdout, stderr, o.code = e.cp(c.stdin, args...)
		if o.code != 0 {
			o.msg = strings.ReplaceAll(cpNormalize(stderr, host), ctr, "CTR")
			return o
		}
		switch {
		case c.args[len(c.args)-1] == "-":
			o.tree = cpTarList(t, []byte(stdout), nil)
		case c.in:
			o.tree = cpTarList(t, e.export(ctr), cpExportFilter)
		default:
			o.tree = cpTreeList(t, host)
		}
		return o
	}
	for i, c := range cases {
		d, k := run(a, i, c), run(b, i, c)
		what := fmt.Sprintf("case %d (%s): cp %s", i+1, c.name, strings.Join(c.args, " "))
		if d.code != k.code || d.msg != k.msg {
			t.Errorf("%s:\n%s: exit %d %q\n%s: exit %d %q", what, a.name, d.code, d.msg, b.name, k.code, k.msg)
			continue
		}
		if strings.Join(d.tree, "\n") != strings.Join(k.tree, "\n") {
			t.Errorf("%s: the trees differ\n%s:\n  %s\n%s:\n  %s", what, a.name, strings.Join(d.tree, "\n  "), b.name, strings.Join(k.tree, "\n  "))
		}
		if d.code == 0 && len(k.tree) == 0 {
			t.Errorf("%s: nothing to compare", what)
		}
	}
}

// A container whose /etc points to /, whose paths are symlinks to /root,
// to a directory of the host, absolute or climbing with ../, never makes
// cp read or write a file of the host: in and out, stopped and running,
// and while it swaps a directory for such symlinks under the copies.
func TestCpHostile(t *testing.T) {
	s := newStore(t)
	s.busybox()
	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "secret")
	must(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	marker := cpUnique()
	must(t, os.WriteFile(filepath.Join(hostDir, marker), []byte("payload\n"), 0o644))
	climb := strings.Repeat("../", 12)
	s.ok("run", "--privileged", "--name", "evil", "--network", "none", "busybox", "sh", "-c",
		"umount /etc/hosts /etc/hostname /etc/resolv.conf && mv /etc /etc.old && ln -s / /etc && "+
			"ln -s /root /r && ln -s "+climb+"root /r2 && ln -s "+hostDir+" /h && ln -s "+climb+strings.TrimPrefix(hostDir, "/")+" /h2 && "+
			"echo inside > /root/inside")
	hostState := func() []string {
		var out []string
		for _, p := range []string{"/" + marker, "/etc/" + marker, "/root/" + marker, filepath.Join(hostDir, "new-"+marker)} {
			if _, err := os.Lstat(p); err == nil {
				out = append(out, p)
			}
		}
		return append(out, cpTreeList(t, hostDir)...)
	}
	before := strings.Join(hostState(), "\n")
	out := t.TempDir()
	payload := filepath.Join(hostDir, marker)

	// Out: what the container's symlinks name inside it, or nothing.
	s.fails(1, "Could not find the file /etc/passwd in container evil", "cp", "evil:/etc/passwd", out)
	s.fails(1, "Could not find the file /h/secret in container evil", "cp", "evil:/h/secret", out)
	s.fails(1, "Could not find the file /h2/secret in container evil", "cp", "evil:/h2/secret", out)
	s.fails(1, "Could not find the file /h/ in container evil", "cp", "evil:/h/", out)
	s.fails(1, "", "cp", "-L", "evil:/h2", out)
	s.ok("cp", "evil:/r/inside", out)
	s.ok("cp", "evil:/r2/.", filepath.Join(out, "r2"))
	// The container's root, as far as its climbing symlinks, which the
	// host refuses as Docker's CLI does.
	s.fails(1, `invalid symlink "`+filepath.Join(out, "root", "h2")+`"`, "cp", "evil:/etc/", filepath.Join(out, "root"))
	if b, err := os.ReadFile(filepath.Join(out, "inside")); err != nil || string(b) != "inside\n" {
		t.Errorf("cp evil:/r/inside: %q %v", b, err)
	}
	if got := cpTreeList(t, filepath.Join(out, "r2")); len(got) != 2 || !strings.Contains(got[1], " inside ") {
		t.Errorf("cp evil:/r2/.: not the container's /root: %v", got)
	}
	if _, err := os.Lstat(filepath.Join(out, "root", "etc.old", "passwd")); err != nil {
		t.Errorf("cp evil:/etc/ did not copy the container's root: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(out, "root", "usr")); err == nil {
		t.Errorf("cp evil:/etc/ copied the host's root")
	}
	if r := s.run(nil, "cp", "evil:/h2/", "-"); r.Code == 0 || strings.Contains(r.Stdout, "host secret") {
		t.Errorf("cp evil:/h2/ -: exit %d, %d bytes", r.Code, len(r.Stdout))
	}

	// In: into the container, whatever its symlinks say.
	s.ok("cp", payload, "evil:/etc/")
	s.ok("cp", payload, "evil:/r/")
	s.ok("cp", payload, "evil:/r2/x-"+marker)
	s.fails(1, "no such directory", "cp", payload, "evil:/h/")
	s.fails(1, "Could not find the file", "cp", payload, "evil:/h2")
	s.fails(1, "Could not find the file /h2 in container evil", "cp", payload, "evil:/h2/x")
	hostile := cpTar(t, fixtures.File("../../"+marker, "x"))
	if r := s.run(hostile, "cp", "-", "evil:/root"); r.Code != 1 || !strings.Contains(r.Stderr, "is outside of") {
		t.Errorf("cp - of ../../%s: exit %d %s", marker, r.Code, r.Stderr)
	}
	hostile = cpTar(t, fixtures.Symlink("esc", "../../../"+strings.TrimPrefix(hostDir, "/")), fixtures.File("esc/new-"+marker, "x"))
	if r := s.run(hostile, "cp", "-", "evil:/root"); r.Code != 1 || !strings.Contains(r.Stderr, "invalid symlink") {
		t.Errorf("cp - of a symlink out: exit %d %s", r.Code, r.Stderr)
	}
	// An absolute symlink, and a hard link, resolve in the container,
	// which has no such directory or file.
	hostile = cpTar(t, fixtures.Symlink("abs", hostDir), fixtures.File("abs/new-"+marker, "x"))
	if r := s.run(hostile, "cp", "-", "evil:/"); r.Code != 1 {
		t.Errorf("cp - through an absolute symlink: exit %d %s", r.Code, r.Stderr)
	}
	hostile = cpTar(t, fixtures.Hardlink("hl", secret))
	if r := s.run(hostile, "cp", "-", "evil:/"); r.Code != 1 {
		t.Errorf("cp - of a hard link to the host: exit %d %s", r.Code, r.Stderr)
	}
	export := cpTarList(t, []byte(s.ok("export", "evil")), nil)
	for _, want := range []string{" " + marker + " 8 ", " root/" + marker + " 8 ", " root/x-" + marker + " 8 "} {
		if !strings.Contains(strings.Join(export, "\n"), want) {
			t.Errorf("the container lacks %q:\n%s", want, strings.Join(export, "\n"))
		}
	}
	if strings.Contains(strings.Join(export, "\n"), "host secret") {
		t.Errorf("the host's secret is in the container")
	}
	if after := strings.Join(hostState(), "\n"); after != before {
		t.Fatalf("the host changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Running, while it swaps /t/d between a directory and symlinks out.
	loop := "mkdir -p /t/real && echo container > /t/real/secret && while true; do " +
		"ln -s / /t/d; rm -f /t/d; ln -s " + hostDir + " /t/d; rm -f /t/d; ln -s " + climb + strings.TrimPrefix(hostDir, "/") + " /t/d; rm -f /t/d; " +
		"ln -s /t/real /t/d; rm -f /t/d; mkdir /t/d; rm -rf /t/d; done"
	s.ok("run", "-d", "--name", "racer", "--network", "none", "busybox", "sh", "-c", loop)
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline) || i < 20; i++ {
		s.run(nil, "cp", payload, "racer:/t/d/")
		s.run(nil, "cp", payload, "racer:/t/d/new-"+marker)
		for _, src := range []string{"racer:/t/d/secret", "racer:/t/d/.", "racer:/t/d/"} {
			if r := s.run(nil, "cp", src, "-"); strings.Contains(r.Stdout, "host secret") {
				t.Fatalf("cp %s - read the host's secret", src)
			}
		}
		dst := filepath.Join(t.TempDir(), "o")
		s.run(nil, "cp", "racer:/t/d/secret", dst)
		if b, err := os.ReadFile(dst); err == nil && string(b) != "container\n" {
			t.Fatalf("cp racer:/t/d/secret: %q", b)
		}
	}
	s.ok("rm", "-f", "racer")
	if after := strings.Join(hostState(), "\n"); after != before {
		t.Fatalf("the host changed while the container raced:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// A copy into a stopped container lands in its layer: `diff` lists it,
// `commit` keeps it, and nothing stays mounted.
func TestCpDiffCommit(t *testing.T) {
	s := newStore(t)
	s.busybox()
	src := cpHostSource(t)
	s.ok("create", "--network", "none", "--name", "c", "busybox", "true")
	s.ok("cp", filepath.Join(src, "dir"), "c:/data")
	s.ok("cp", filepath.Join(src, "file"), "c:/etc/motd")
	s.ok("cp", "-", "c:/root") // an empty stdin: an empty tar
	diff := s.ok("diff", "c")
	for _, want := range []string{"A /data\n", "A /data/sub\n", "A /data/sub/y\n", "A /data/x\n", "A /data/lx\n", "C /etc\n", "A /etc/motd\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/root") {
		t.Errorf("an empty tar changed /root:\n%s", diff)
	}
	s.ok("commit", "c", "cp-committed")
	out := s.ok("run", "--rm", "--network", "none", "cp-committed", "sh", "-c", "cat /etc/motd /data/x /data/sub/y; stat -c '%a %u:%g' /etc/motd /data /data/sub; readlink /data/lx")
	want := "host file\ndir x\nsub y\n4750 1234:4321\n755 55:66\n700 55:66\nx\n"
	if out != want {
		t.Errorf("the committed image has\n%s\nwant\n%s", out, want)
	}
	b, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(b), s.root) {
		t.Errorf("a mount is left under the store:\n%s", b)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(entries) > 0 {
		t.Errorf("tmp/ holds %v", entries)
	}
}

// cp with "-": the tar of a directory out on stdout, and back in from
// stdin (gzip too) into another container, stopped and running.
func TestCpStdio(t *testing.T) {
	s := newStore(t)
	img := "cairn-test/cp-stdio"
	cpImage(t, s, nil, img)
	s.ok("create", "--network", "none", "--name", "from", img, "true")
	s.ok("create", "--network", "none", "--name", "to", img, "true")
	out := []byte(s.ok("cp", "from:/d", "-"))
	got := cpTarList(t, out, nil)
	want := []string{
		"d 0755 0:0 d/", `l 0777 0:0 d/asub -> /d/sub`, `0 4755 0:0 d/exe 10 "#!/bin/sh\n"`,
		`0 0640 7:8 d/f 6 "hello\n"`, "l 0777 0:0 d/lf -> f", "l 0777 0:0 d/rel -> ../etc",
		"d 0755 0:0 d/sub/", "d 0700 1:2 d/sub/deep/", `0 0644 1:2 d/sub/deep/y 3 "yy\n"`,
		`0 0644 0:0 d/sub/hx 2 "x\n"`, `0 0644 0:0 d/sub/x 2 "x\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cp from:/d -:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := s.run(out, "cp", "-", "to:/tmp"); r.Code != 0 {
		t.Fatalf("cp - to:/tmp: %s", r.Stderr)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(out)
	zw.Close()
	s.ok("start", "to")
	if r := s.run(nil, "cp", "-", "to:/tmp/none"); r.Code != 1 || !strings.Contains(r.Stderr, `destination "to:/tmp/none" must be a directory`) {
		t.Errorf("cp - into a missing directory: exit %d %s", r.Code, r.Stderr)
	}
	s.ok("run", "-d", "--name", "live", "--network", "none", img, "sleep", "60")
	if r := s.run(gz.Bytes(), "cp", "-", "live:/root"); r.Code != 0 {
		t.Fatalf("cp - (gzip) live:/root: %s", r.Stderr)
	}
	for _, c := range []string{"to", "live"} {
		dir := "/tmp"
		if c == "live" {
			dir = "/root"
		}
		back := []byte(s.ok("cp", c+":"+dir+"/d", "-"))
		if g := cpTarList(t, back, nil); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: what came back in:\n%s", c, strings.Join(g, "\n"))
		}
	}
	s.ok("rm", "-f", "live")
}

// cp into and out of a running container, while it runs: it sees the
// file as soon as the copy ends.
func TestCpRunning(t *testing.T) {
	s := newStore(t)
	s.busybox()
	src := cpHostSource(t)
	s.ok("run", "-d", "--name", "r", "--network", "none", "busybox", "sh", "-c",
		"while [ ! -f /tmp/dir/x ]; do sleep 0.05; done; cat /tmp/dir/x; echo done > /tmp/done; sleep 60")
	s.ok("cp", filepath.Join(src, "dir"), "r:/tmp/")
	waitFor(t, 20*time.Second, "the container to see the copy", func() bool {
		return strings.Contains(s.ok("logs", "r"), "dir x")
	})
	dst := filepath.Join(t.TempDir(), "done")
	waitFor(t, 20*time.Second, "the container's file", func() bool {
		return s.run(nil, "cp", "r:/tmp/done", dst).Code == 0
	})
	if b, _ := os.ReadFile(dst); string(b) != "done\n" {
		t.Errorf("cp r:/tmp/done: %q", b)
	}
	if got := s.ok("exec", "r", "stat", "-c", "%a %u:%g", "/tmp/dir/x", "/tmp/dir/sub"); got != "600 55:66\n700 55:66\n" {
		t.Errorf("in the container: %q", got)
	}
	s.ok("pause", "r")
	s.ok("cp", filepath.Join(src, "file"), "r:/tmp/paused")
	s.ok("unpause", "r")
	if got := s.ok("exec", "r", "cat", "/tmp/paused"); got != "host file\n" {
		t.Errorf("copied while paused: %q", got)
	}
	s.ok("rm", "-f", "r")
}

// A copy to a path in a volume lands in the volume, as Docker's; a
// read-only volume, and a container run with --read-only, refuse it.
func TestCpVolume(t *testing.T) {
	s := newStore(t)
	s.busybox()
	src := cpHostSource(t)
	s.ok("create", "--network", "none", "--name", "v", "-v", "cpvol:/data", "-v", "cpro:/ro:ro", "busybox", "true")
	s.ok("cp", filepath.Join(src, "file"), "v:/data/f")
	if got := s.ok("run", "--rm", "--network", "none", "-v", "cpvol:/vol", "busybox", "cat", "/vol/f"); got != "host file\n" {
		t.Errorf("the volume has %q", got)
	}
	if strings.Contains(s.ok("diff", "v"), "/data/f") {
		t.Errorf("the copy landed in the container's layer, not the volume")
	}
	dst := filepath.Join(t.TempDir(), "f")
	s.ok("cp", "v:/data/f", dst)
	if b, _ := os.ReadFile(dst); string(b) != "host file\n" {
		t.Errorf("cp v:/data/f: %q", b)
	}
	s.fails(1, "mounted volume is marked read-only", "cp", filepath.Join(src, "file"), "v:/ro/f")
	s.ok("create", "--network", "none", "--name", "ro", "--read-only", "busybox", "true")
	s.fails(1, "container rootfs is marked read-only", "cp", filepath.Join(src, "file"), "ro:/tmp/")
	s.ok("rm", "-v", "v", "ro")
}
