package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// rootlessUser is an unprivileged user made for a test, as runc's rootless
// suite makes one: with or without subordinate IDs (useradd gives 65,536 of
// each), a home, and a copy of cairn it may execute. It is removed, with
// what its cairn left, when the test ends.
type rootlessUser struct {
	t        testing.TB
	name     string
	uid, gid int
	home     string
	shared   string // a directory the user may read (fixtures) and run cairn from
	bin      string
	runDir   string // its XDG_RUNTIME_DIR, as logind would make it
}

func newRootlessUser(t testing.TB, name string, subIDs bool) *rootlessUser {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, tool := range []string{"useradd", "userdel", "newuidmap", "newgidmap", "pasta"} {
		testutil.RequiresTool(t, tool)
	}
	removeUser(name) // a killed run's
	if _, err := os.Stat("/run/user"); os.IsNotExist(err) {
		// As logind makes it, where no logind runs; gone with the test,
		// after the user's own directory (cleanups run last first).
		must(t, os.Mkdir("/run/user", 0o755))
		t.Cleanup(func() { os.Remove("/run/user") })
	}
	args := []string{"--create-home", "--shell", "/bin/sh"}
	if !subIDs {
		args = append(args, "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	u := &rootlessUser{t: t, name: name}
	t.Cleanup(u.remove)
	pw, err := user.Lookup(name)
	must(t, err)
	u.uid, _ = strconv.Atoi(pw.Uid)
	u.gid, _ = strconv.Atoi(pw.Gid)
	u.home = pw.HomeDir
	u.shared, err = os.MkdirTemp("", "cairn-rootless-")
	must(t, err)
	must(t, os.Chmod(u.shared, 0o755))
	u.bin = filepath.Join(u.shared, "cairn")
	copyFile(t, cairnBin, u.bin, 0o755)
	u.runDir = filepath.Join("/run/user", pw.Uid)
	must(t, os.MkdirAll(u.runDir, 0o700))
	must(t, os.Chown(u.runDir, u.uid, u.gid))
	return u
}

// remove ends the processes the user's cairn left (its pause processes,
// and a pasta or a container a failed test left), then removes the user,
// its home and runtime directories, and the shared directory.
func (u *rootlessUser) remove() {
	removeUser(u.name)
	os.RemoveAll(u.shared)
	os.RemoveAll(u.runDir)
	os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("cairn-run-%d", u.uid)))
}

// removeUser kills the processes of user name, which only its tests
// started, and removes it with its home.
func removeUser(name string) {
	pw, err := user.Lookup(name)
	if err != nil {
		return
	}
	uid, _ := strconv.Atoi(pw.Uid)
	for range 50 {
		if killUserProcesses(uid) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	exec.Command("userdel", "--remove", name).Run()
	os.RemoveAll(pw.HomeDir)
}

// killUserProcesses SIGKILLs the processes whose real UID is uid, and
// says how many it found.
func killUserProcesses(uid int) int {
	n := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+d.Name(), &st) == nil && int(st.Uid) == uid {
			syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, mode))
	must(t, os.Chmod(to, mode))
}

// in is u for subtest t.
func (u *rootlessUser) in(t testing.TB) *rootlessUser {
	v := *u
	v.t = t
	return &v
}

// file writes a fixture the user can read into the shared directory.
func (u *rootlessUser) file(name string, b []byte) string {
	p := filepath.Join(u.shared, name)
	must(u.t, os.WriteFile(p, b, 0o644))
	return p
}

// env is the environment of the user's commands: a login's, with the
// runtime directory, changed by extra (KEY= unsets KEY).
func (u *rootlessUser) env(extra ...string) []string {
	env := map[string]string{
		"HOME": u.home, "USER": u.name, "LOGNAME": u.name, "PATH": "/usr/local/bin:/usr/bin:/bin",
		"XDG_RUNTIME_DIR": u.runDir,
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out []string
	for k, v := range env {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// cairn runs cairn as the user, bounded in time, in its home.
func (u *rootlessUser) cairn(env []string, in []byte, args ...string) result {
	u.t.Helper()
	return u.command(env, in, u.bin, args...)
}

// command runs a program as the user, bounded in time, in its home.
func (u *rootlessUser) command(env []string, in []byte, name string, args ...string) result {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, u.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	return runCmd(u.t, cmd, in)
}

func (u *rootlessUser) ok(env []string, args ...string) string {
	u.t.Helper()
	r := u.cairn(env, nil, args...)
	if r.Code != 0 {
		u.t.Fatalf("cairn %s as %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), u.name, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func (u *rootlessUser) fails(env []string, want string, args ...string) result {
	u.t.Helper()
	r := u.cairn(env, nil, args...)
	if r.Code == 0 || !strings.Contains(r.Stderr, want) {
		u.t.Fatalf("cairn %s as %s: want a failure saying %q, got exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), u.name, want, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// pausePID is the pause process of the user's namespace under runDir.
func (u *rootlessUser) pausePID(runDir string) int {
	b, err := os.ReadFile(filepath.Join(runDir, "pause.pid"))
	must(u.t, err)
	pid, err := strconv.Atoi(strings.Fields(string(b))[0])
	must(u.t, err)
	return pid
}

// hostState is what a rootless cairn must not change outside the user's
// directories: the host's mounts, links, firewall, network namespaces and
// cairn's root state, and the containers' cgroups.
func hostState(t testing.TB) []string {
	t.Helper()
	out := append(leftovers(), networkState(true)...)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, "mount "+f[4])
		}
	}
	for _, dir := range []string{"/run/cairn", "/var/lib/cairn", "/run/netns"} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil {
				out = append(out, "file "+p)
			}
			return nil
		})
	}
	return out
}

// openDevice gives device (/dev/net/tun for pasta, /dev/fuse for
// fuse-overlayfs) the mode an unprivileged user needs, Debian's default
// 0666, which this machine does not have, for the test, and puts the old
// mode back after it.
func openDevice(t testing.TB, device string) {
	fi, err := os.Stat(device)
	if err != nil {
		t.Fatalf("rootless cairn needs %s: %v", device, err)
	}
	old := fi.Mode().Perm()
	must(t, os.Chmod(device, 0o666))
	t.Cleanup(func() { os.Chmod(device, old) })
}

// rootCommit commits change, run as root in a new store on the image tag
// of archive, and returns the store and the summary of the layer.
func rootCommit(t testing.TB, archive, tag, change string) (*store, string) {
	t.Helper()
	root := newStore(t)
	root.ok("load", "-i", archive)
	root.ok("run", "--name", "c", "--network", "none", tag, "sh", "-c", change)
	root.ok("commit", "c", "cairn-test/root-commit:1")
	saved := filepath.Join(t.TempDir(), "root.tar")
	root.ok("save", "-o", saved, "cairn-test/root-commit:1")
	root.ok("rm", "c")
	root.ok("rmi", "cairn-test/root-commit:1")
	return root, topLayerOf(t, saved)
}

// topLayerOf summarizes the top layer of the image of a saved archive.
func topLayerOf(t testing.TB, archive string) string {
	t.Helper()
	_, layers := dockerArchiveLayers(t, archive)
	return strings.Join(layers[len(layers)-1], "\n")
}

// longName makes a file of a 255-byte name: fuse-overlayfs 1.10 cannot
// (ENAMETOOLONG), so its variant goes without.
const longName = "touch /app/$(printf 'n%.0s' $(seq 255)) && "

// commitChange is a container change without devices, committed by root
// and by a rootless user: the layers must be the same.
const commitChange = "mkdir -p /app/sub && echo hi > /app/x && ln -s x /app/l && ln /app/x /app/h && chmod 4755 /app/x && " +
	"mkfifo /app/p && chown 1234:5678 /app/sub && chown -h 4321:8765 /app/l && rm /etc/group && rm -rf /usr/sbin && " +
	"rm -rf /root && mkdir /root && echo new > /root/f && chmod 1777 /tmp && mkdir -p /deep/a/b/c && touch /deep/a/b/c/d && " +
	"ln /bin/busybox /app/bb && mv /bin/cat /bin/cat2 && chmod 2750 /app/sub && touch -t 200902132331.30 /app/x && " +
	longName + "rm -rf /usr/bin && echo was-a-dir > /usr/bin && rm /bin/ln && mkdir /bin/ln && " +
	"chmod 600 /etc/passwd && chown 65534:65534 /etc/passwd"

// A user with subordinate IDs does the whole workflow without root: load,
// run with -p reached from 127.0.0.1, exec, commit (the same layer as
// root's), build with RUN chown, push, rm, rmi; nothing outside its
// directories changes and no mount is left.
func TestRootlessWorkflow(t *testing.T) {
	reg := testutil.Registry(t)
	u := newRootlessUser(t, "cairn-rl-test", true)
	openDevice(t, "/dev/net/tun")
	env := u.env()
	tag := "cairn-test/rootless:1"
	archive := u.file("busybox.tar", dockerArchive(t, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Cmd: []string{"sh"}}))
	// Root's commit of the same change, first: root's store has state in
	// /run/cairn, which the user's must not touch.
	root, rootLayer := rootCommit(t, archive, tag, commitChange)
	before := hostState(t)

	// Its store and runtime state are its own.
	u.ok(env, "load", "-i", archive)
	store := filepath.Join(u.home, ".local", "share", "cairn")
	if _, err := os.Stat(filepath.Join(store, "images", "index.json")); err != nil {
		t.Fatalf("the user's store is not in ~/.local/share/cairn: %v", err)
	}
	info := u.ok(env, "info")
	for _, want := range []string{"rootless", "UID Map: 0:" + strconv.Itoa(u.uid) + ":1 1:", "userxattr: true", "Network: pasta", "Docker Root Dir: " + store} {
		if !strings.Contains(info, want) {
			t.Errorf("cairn info lacks %q:\n%s", want, info)
		}
	}
	pause := u.pausePID(filepath.Join(u.runDir, "cairn"))

	// run -d -p, reached from the host's loopback; exec; the next command
	// sees and stops what the first started.
	port := freePort(t)
	u.ok(env, "run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), tag,
		"sh", "-c", "echo served-rootless > /index.html && exec httpd -f -p 8080 -h /")
	if body := httpGetRetry(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); body != "served-rootless\n" {
		t.Errorf("GET through pasta: %q", body)
	}
	if out := u.ok(env, "exec", "web", "id", "-u"); out != "0\n" {
		t.Errorf("exec id -u: %q", out)
	}
	if out := u.ok(env, "ps", "--format", "{{.Names}} {{.Ports}}"); !strings.Contains(out, fmt.Sprintf("web 127.0.0.1:%d->8080/tcp", port)) {
		t.Errorf("ps: %q", out)
	}
	u.ok(env, "stop", "-t", "1", "web")
	u.ok(env, "rm", "web")
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Errorf("port %d still answers after rm", port)
	}

	// --network host: the host's interfaces; none: loopback alone.
	ifaces := func(procNetDev string) string {
		var names []string
		for _, l := range strings.Split(procNetDev, "\n")[2:] {
			if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	// The host's, as this thread sees it: /proc/net is the main thread's,
	// which a test that joined another namespace on a locked thread may
	// have left there (Go wedges, not ends, a locked main thread).
	goruntime.LockOSThread()
	hostDev, err := os.ReadFile("/proc/thread-self/net/dev")
	goruntime.UnlockOSThread()
	must(t, err)
	if got, want := ifaces(u.ok(env, "run", "--rm", "--network", "host", tag, "cat", "/proc/net/dev")), ifaces(string(hostDev)); got != want {
		t.Errorf("--network host sees %q, the host has %q", got, want)
	}
	if got := ifaces(u.ok(env, "run", "--rm", "--network", "none", tag, "cat", "/proc/net/dev")); got != "lo" {
		t.Errorf("--network none sees %q", got)
	}

	// commit: the same layer as root's for the same change.
	u.ok(env, "run", "--name", "c", "--network", "none", tag, "sh", "-c", commitChange)
	r := u.cairn(env, nil, "commit", "-m", "rootless", "c", "cairn-test/rootless-commit:1")
	if r.Code != 0 {
		t.Fatalf("commit: %s", r.Stderr)
	}
	ours := filepath.Join(u.home, "ours.tar")
	u.ok(env, "save", "-o", ours, "cairn-test/rootless-commit:1")
	if a := topLayerOf(t, ours); a != rootLayer {
		t.Errorf("the rootless commit's layer differs from root's:\nrootless:\n%s\nroot:\n%s", a, rootLayer)
	}
	if out := u.ok(env, "run", "--rm", "--network", "none", "cairn-test/rootless-commit:1", "sh", "-c",
		"stat -c '%u:%g %a' /app/sub /app/x; ls /root; test -e /etc/group || echo gone"); out != "1234:5678 2750\n0:0 4755\nf\ngone\n" {
		t.Errorf("run of the rootless commit: %q", out)
	}

	// build: RUN chown survives it; COPY --chown too.
	ctx := filepath.Join(u.shared, "ctx")
	must(t, os.Mkdir(ctx, 0o755))
	must(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+tag+"\nRUN mkdir /data && echo x > /data/f && chown -R 1234:4321 /data\nCOPY --chown=77:88 Dockerfile /copied\n"), 0o644))
	u.ok(env, "build", "-t", "cairn-test/rootless-built:1", ctx)
	if out := u.ok(env, "run", "--rm", "--network", "none", "cairn-test/rootless-built:1", "stat", "-c", "%u:%g", "/data/f", "/copied"); out != "1234:4321\n77:88\n" {
		t.Errorf("owners after build: %q", out)
	}

	// The Engine API: the user's service on the user's socket, in the
	// same namespace as its CLI (the docker client is root's here, which
	// the socket's mode lets in).
	svc := exec.Command(u.bin, "system", "service", "--time", "60")
	svc.Env, svc.Dir = env, u.home
	svc.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	must(t, svc.Start())
	defer func() { svc.Process.Signal(syscall.SIGTERM); svc.Wait() }()
	sock := filepath.Join(u.runDir, "cairn", "docker.sock")
	waitFor(t, 10*time.Second, "the user's API socket", func() bool { _, err := os.Stat(sock); return err == nil })
	if out, errOut, code := dockerAt(t, "docker", sock, "run", "--rm", "--network", "none", "cairn-test/rootless-built:1", "stat", "-c", "%u", "/data/f"); code != 0 || out != "1234\n" {
		t.Errorf("docker run through the user's socket: exit %d: %q %s", code, out, errOut)
	}

	// push (root pulls and runs it below).
	ref := fmt.Sprintf("%s/cairn-test/rootless-%d:1", reg, time.Now().UnixNano())
	u.ok(env, "tag", "cairn-test/rootless-built:1", ref)
	u.ok(env, "push", ref)

	// rm, rmi: the store is empty, and no mount is left in the user's
	// namespace.
	u.ok(env, "rm", "c")
	u.ok(env, "rmi", tag, "cairn-test/rootless-commit:1", "cairn-test/rootless-built:1", ref)
	if out := u.ok(env, "images", "-q"); out != "" {
		t.Errorf("images left: %q", out)
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pause))
	must(t, err)
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, store) || strings.Contains(l, u.runDir) {
			t.Errorf("a mount is left in the user's namespace: %s", l)
		}
	}
	if after := hostState(t); strings.Join(subtract(after, before), "\n") != "" || strings.Join(subtract(before, after), "\n") != "" {
		t.Errorf("the host changed:\nnew: %v\ngone: %v", subtract(after, before), subtract(before, after))
	}
	root.ok("pull", ref)
	if out := root.ok("run", "--rm", "--network", "none", ref, "stat", "-c", "%u:%g", "/data/f"); out != "1234:4321\n" {
		t.Errorf("root's run of the image the user pushed: %q", out)
	}
}

// httpGetRetry fetches url, retrying for up to 10 s while the server starts.
func httpGetRetry(t testing.TB, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := httpGet(url)
		if err == nil {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// What a rootless cairn refuses, it refuses by name and with the fix, and
// its store stays as it was: IDs outside the mapping, limits, privileged
// ports, user networks, pause, a closed /dev/net/tun; device nodes in a
// layer are skipped with a warning that names them.
func TestRootlessRefusals(t *testing.T) {
	u := newRootlessUser(t, "cairn-rl-refuse", true)
	openDevice(t, "/dev/net/tun")
	env := u.env()
	tag := "cairn-test/rootless-refuse:1"
	u.ok(env, "load", "-i", u.file("busybox.tar", dockerArchive(t, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Cmd: []string{"sh"}})))

	// An ID beyond the 65,536 the user has: the file and the ID are named,
	// and nothing is kept.
	far := dockerArchive(t, fixtureImage{Names: []string{"cairn-test/far:1"}, Layers: [][]byte{busyboxTar(t), layerTar(t, dir("srv"), file("srv/far", "x").Owner(70000, 70000))}})
	r := u.fails(env, `"srv/far": owned by 70000:70000, an ID outside this user namespace's`, "load", "-i", u.file("far.tar", far))
	if !strings.Contains(r.Stderr, "/etc/subuid") {
		t.Errorf("the error does not say where IDs come from: %s", r.Stderr)
	}
	if out := u.ok(env, "images", "--format", "{{.Repository}}"); out != "cairn-test/rootless-refuse\n" {
		t.Errorf("images after the refused load: %q", out)
	}

	// Device nodes: skipped, named.
	dev := dockerArchive(t, fixtureImage{Names: []string{"cairn-test/dev:1"}, Layers: [][]byte{busyboxTar(t), layerTar(t, dir("srv"), fixtures.Char("srv/null2", 1, 3), fixtures.Block("srv/disk", 8, 0), fixtures.Fifo("srv/fifo"))}})
	r = u.cairn(env, nil, "load", "-i", u.file("dev.tar", dev))
	if r.Code != 0 || !strings.Contains(r.Stderr, `layer entry "srv/null2": device 1:3 skipped`) || !strings.Contains(r.Stderr, `"srv/disk": device 8:0 skipped`) {
		t.Errorf("load of device nodes: exit %d, %s", r.Code, r.Stderr)
	}
	if out := u.ok(env, "run", "--rm", "--network", "none", "cairn-test/dev:1", "sh", "-c", "ls /srv/null2 /srv/disk 2>&1; test -p /srv/fifo && echo fifo"); !strings.Contains(out, "No such file") || !strings.Contains(out, "fifo") {
		t.Errorf("the image's devices: %q", out)
	}

	u.fails(env, "--memory: resource limits of a rootless container need cgroup v2", "run", "--rm", "-m", "64m", tag, "true")
	u.fails(env, "--pids-limit: resource limits", "create", "--pids-limit", "10", tag)
	u.fails(env, "cannot expose privileged port 80, you can add 'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf", "run", "--rm", "-p", "80:80", tag, "true")
	u.fails(env, "user-defined networks need root", "network", "create", "mine")
	u.ok(env, "run", "-d", "--name", "long", "--network", "none", tag, "sleep", "60")
	u.fails(env, "cannot pause container", "pause", "long")
	r = u.cairn(env, nil, "commit", "long", "cairn-test/committed-running:1")
	if r.Code != 0 || !strings.Contains(r.Stderr, "committed without pausing it") {
		t.Errorf("commit of a running rootless container: exit %d: %s", r.Code, r.Stderr)
	}
	u.ok(env, "rm", "-f", "long")

	must(t, os.Chmod("/dev/net/tun", 0o600))
	u.fails(env, "chmod 0666 /dev/net/tun", "run", "--rm", "-p", "18099:80", tag, "true")
	must(t, os.Chmod("/dev/net/tun", 0o666))
	if out := u.ok(env, "ps", "-aq"); out != "" {
		t.Errorf("containers left by the refusals: %q", out)
	}
}

// The variants of runc's rootless suite: no XDG_RUNTIME_DIR (as under su),
// no newuidmap (one ID), no subordinate IDs.
func TestRootlessVariants(t *testing.T) {
	u := newRootlessUser(t, "cairn-rl-var", true)
	tag := "cairn-test/rootless-var:1"
	archive := u.file("busybox.tar", dockerArchive(t, fixtureImage{Names: []string{tag}, Layers: [][]byte{busyboxTar(t)}, Cmd: []string{"sh"}}))

	t.Run("no XDG_RUNTIME_DIR", func(t *testing.T) {
		u := u.in(t)
		env := u.env("XDG_RUNTIME_DIR=")
		u.ok(env, "load", "-i", archive)
		if out := u.ok(env, "run", "--rm", "--network", "none", tag, "echo", "ok"); out != "ok\n" {
			t.Errorf("run: %q", out)
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("cairn-run-%d", u.uid))
		fi, err := os.Stat(filepath.Join(dir, "pause.pid"))
		if err != nil {
			t.Fatalf("no pause process recorded in %s: %v", dir, err)
		}
		if d, _ := os.Stat(dir); d.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
			t.Errorf("%s: mode %v, not the user's alone", dir, d.Mode())
		}
		u.ok(env, "rmi", tag)
	})

	t.Run("no newuidmap", func(t *testing.T) {
		u := u.in(t)
		// A PATH with pasta but without the setuid helpers, and a store
		// and runtime directory of their own: a namespace of one ID.
		bin := filepath.Join(u.shared, "bin")
		must(t, os.Mkdir(bin, 0o755))
		must(t, os.Symlink("/usr/bin/pasta", filepath.Join(bin, "pasta")))
		run := filepath.Join(u.runDir, "single")
		must(t, os.Mkdir(run, 0o700))
		must(t, os.Chown(run, u.uid, u.gid))
		env := u.env("PATH="+bin, "XDG_RUNTIME_DIR="+run, "XDG_DATA_HOME="+filepath.Join(u.home, "single"))
		r := u.cairn(env, nil, "load", "-i", archive)
		if r.Code != 0 || !strings.Contains(r.Stderr, "newuidmap and newgidmap not found") {
			t.Fatalf("load without newuidmap: exit %d: %s", r.Code, r.Stderr)
		}
		if out := u.ok(env, "run", "--rm", "--network", "none", tag, "sh", "-c", "id -u; cat /proc/self/uid_map"); !strings.HasPrefix(out, "0\n") || !strings.Contains(out, fmt.Sprintf(" %d ", u.uid)) || strings.Count(strings.TrimSpace(out), "\n") != 1 {
			t.Errorf("run with one ID: %q", out)
		}
		owned := dockerArchive(t, fixtureImage{Names: []string{"cairn-test/owned:1"}, Layers: [][]byte{busyboxTar(t), layerTar(t, file("owned", "x").Owner(1234, 1234))}})
		u.fails(env, `"owned": owned by 1234:1234, an ID outside this user namespace's`, "load", "-i", u.file("owned.tar", owned))
		u.ok(env, "rmi", tag)
	})

	t.Run("fuse-overlayfs", func(t *testing.T) {
		// As where the kernel's overlayfs cannot be mounted rootless:
		// the same layer as root's for the same change.
		testutil.RequiresTool(t, "fuse-overlayfs")
		u := u.in(t)
		openDevice(t, "/dev/fuse")
		run := filepath.Join(u.runDir, "fuse")
		must(t, os.Mkdir(run, 0o700))
		must(t, os.Chown(run, u.uid, u.gid))
		env := u.env("CAIRN_OVERLAY=fuse-overlayfs", "XDG_RUNTIME_DIR="+run, "XDG_DATA_HOME="+filepath.Join(u.home, "fuse"))
		u.ok(env, "load", "-i", archive)
		if info := u.ok(env, "info"); !strings.Contains(info, "Storage: fuse-overlayfs") {
			t.Errorf("info does not say fuse-overlayfs:\n%s", info)
		}
		change := strings.Replace(commitChange, longName, "", 1)
		u.ok(env, "run", "--name", "c", "--network", "none", tag, "sh", "-c", change)
		if out := u.ok(env, "diff", "c"); strings.Contains(out, ".wh.") {
			t.Errorf("diff shows fuse-overlayfs's marks:\n%s", out)
		}
		u.ok(env, "commit", "c", "cairn-test/fuse:1")
		ours := filepath.Join(u.home, "fuse.tar")
		u.ok(env, "save", "-o", ours, "cairn-test/fuse:1")
		_, rootLayer := rootCommit(t, archive, tag, change)
		if a := topLayerOf(t, ours); a != rootLayer {
			t.Errorf("the fuse-overlayfs commit's layer differs from root's:\nfuse-overlayfs:\n%s\nroot:\n%s", a, rootLayer)
		}
		// A container on the committed image: the opaque directory and
		// the whiteouts hold through fuse-overlayfs's lower layers too.
		if out := u.ok(env, "run", "--rm", "--network", "none", "cairn-test/fuse:1", "sh", "-c", "ls /root; test -e /etc/group || echo gone; cat /usr/bin"); out != "f\ngone\nwas-a-dir\n" {
			t.Errorf("run of the fuse-overlayfs commit: %q", out)
		}
		u.ok(env, "rm", "c")
		u.ok(env, "rmi", tag, "cairn-test/fuse:1")
	})

	t.Run("no subordinate IDs", func(t *testing.T) {
		v := newRootlessUser(t, "cairn-rl-nosub", false)
		v.fails(v.env(), "user cairn-rl-nosub has no subordinate IDs in /etc/subuid: add a line \"cairn-rl-nosub:100000:65536\" there, as root: usermod --add-subuids", "images")
		if _, err := os.Stat(filepath.Join(v.home, ".local", "share", "cairn")); err == nil {
			t.Error("a store was made for a user cairn refused")
		}
	})
}
