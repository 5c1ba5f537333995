package integration

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// BenchmarkPushPullVsSkopeo pushes the 1 GiB, three-layer image of
// BenchmarkLoadVsDocker (50,000 incompressible files, kept uncompressed in
// the store) to a local docker-registry and pulls it back, with cairn and
// with `skopeo copy` between the same endpoints (the store's OCI layout and
// the registry), each against a registry of its own started for the step,
// so that every blob is uploaded. It reports skopeo's time over cairn's:
//
//	push-cold-x:   cairn compresses the layers (gzip) as skopeo does, on
//	               every core, as it uploads them
//	push-warm-x:   cairn's compressed layers are remembered from the cold push
//	pull-x:        skopeo into an OCI layout only stores the blobs; cairn also
//	               unpacks every layer into its snapshot, ready to run
//	pull-last-byte-x: the same skopeo against the moment cairn has the last
//	               byte of the last layer (its "Download complete" line), while
//	               its unpacks, which follow the bytes, finish
//	pull-unpack-x: skopeo into containers-storage (overlay), which unpacks
//	               the layers as cairn does: the same work
//	total-x:       cold push + pull, against skopeo's push + pull to a layout
//
// and the time of a second pull of the image, all of whose layers are there.
// The CPU time of each cold push, the pusher's and the registry's, says
// where the two cores went (cairn-push-cold-cpu-s, skopeo-push-cpu-s,
// registry-cairn-cpu-s, registry-skopeo-cpu-s).
//
// Every store and registry lives on a tmpfs mounted for the benchmark: this
// measures the programs, not this machine's disk, whose ext4 (no journal)
// makes creating files after many were deleted several times slower, and
// each step deletes what it made.
func BenchmarkPushPullVsSkopeo(b *testing.B) {
	testutil.RequiresTool(b, "skopeo")
	archive, tag := bigArchive(b, 0)
	fs := mountTmpfs(b, "12g")
	at := func(name string) *store {
		s := &store{t: b, root: filepath.Join(fs, name)}
		b.Cleanup(s.cleanup)
		return s
	}
	src := at("src")
	src.ok("load", "-i", archive)
	layout := filepath.Join(src.root, "images")
	var cairnCold, cairnWarm, cairnPull, skopeoPush, skopeoPull, skopeoUnpack, again []time.Duration
	var cairnLastByte []time.Duration
	timeIt := func(fn func()) time.Duration {
		start := time.Now()
		fn()
		return time.Since(start)
	}
	var cairnCPU, skopeoCPU, regCairnCPU, regSkopeoCPU []time.Duration
	// pushIt times push to reg, and adds the CPU time of the pusher (a
	// child of this process) and of the registry to cpu and regCPU.
	pushIt := func(reg *testutil.RegistryServer, cpu, regCPU *[]time.Duration, push func()) time.Duration {
		c0, r0 := childrenCPU(), registryCPU(b, reg)
		d := timeIt(push)
		*cpu = append(*cpu, childrenCPU()-c0)
		*regCPU = append(*regCPU, registryCPU(b, reg)-r0)
		return d
	}
	registry := func(name string) *testutil.RegistryServer {
		return testutil.StartRegistry(b, testutil.RegistryOptions{Dir: filepath.Join(fs, name)})
	}
	drop := func(r *testutil.RegistryServer) {
		r.Stop()
		os.RemoveAll(r.Dir)
	}
	for i := 0; i < b.N; i++ {
		cairnRound := func() {
			reg := registry("reg-cairn")
			ref := reg.Addr + "/bench/big:1"
			src.ok("tag", tag, ref)
			os.RemoveAll(filepath.Join(src.root, "conversions")) // cold: compress again
			cairnCold = append(cairnCold, pushIt(reg, &cairnCPU, &regCairnCPU, func() { src.ok("push", "-q", ref) }))
			dst := at("dst")
			lastByte, ready := pullTimed(b, dst, ref)
			cairnLastByte, cairnPull = append(cairnLastByte, lastByte), append(cairnPull, ready)
			again = append(again, timeIt(func() { dst.ok("pull", "-q", ref) }))
			dst.cleanup()
			os.RemoveAll(dst.root)
			drop(reg)
			reg = registry("reg-warm")
			ref = reg.Addr + "/bench/big:1"
			src.ok("tag", tag, ref)
			cairnWarm = append(cairnWarm, timeIt(func() { src.ok("push", "-q", ref) }))
			drop(reg)
		}
		skopeoRound := func() {
			reg := registry("reg-skopeo")
			ref := "docker://" + reg.Addr + "/bench/big:1"
			skopeoPush = append(skopeoPush, pushIt(reg, &skopeoCPU, &regSkopeoCPU, func() {
				skopeo(b, "copy", "--dest-tls-verify=false", "oci:"+layout+":docker.io/"+tag, ref)
			}))
			oci := filepath.Join(fs, "oci")
			skopeoPull = append(skopeoPull, timeIt(func() {
				skopeo(b, "copy", "--src-tls-verify=false", ref, "oci:"+oci+":big")
			}))
			os.RemoveAll(oci)
			cs := filepath.Join(fs, "containers-storage")
			skopeoUnpack = append(skopeoUnpack, timeIt(func() {
				skopeo(b, "copy", "--src-tls-verify=false", ref, "containers-storage:[overlay@"+cs+"/root+"+cs+"/run]bench/big:1")
			}))
			unmountUnder(b, cs)
			os.RemoveAll(cs)
			drop(reg)
		}
		if i%2 == 0 {
			cairnRound()
			skopeoRound()
		} else {
			skopeoRound()
			cairnRound()
		}
	}
	mc, mw, mp := median(cairnCold), median(cairnWarm), median(cairnPull)
	sp, sl, su := median(skopeoPush), median(skopeoPull), median(skopeoUnpack)
	b.ReportMetric(mc.Seconds(), "cairn-push-cold-s")
	b.ReportMetric(mw.Seconds(), "cairn-push-warm-s")
	b.ReportMetric(mp.Seconds(), "cairn-pull-s")
	b.ReportMetric(median(cairnLastByte).Seconds(), "cairn-pull-last-byte-s")
	b.ReportMetric(sp.Seconds(), "skopeo-push-s")
	b.ReportMetric(sl.Seconds(), "skopeo-pull-s")
	b.ReportMetric(su.Seconds(), "skopeo-pull-unpack-s")
	b.ReportMetric(median(cairnCPU).Seconds(), "cairn-push-cold-cpu-s")
	b.ReportMetric(median(skopeoCPU).Seconds(), "skopeo-push-cpu-s")
	b.ReportMetric(median(regCairnCPU).Seconds(), "registry-cairn-cpu-s")
	b.ReportMetric(median(regSkopeoCPU).Seconds(), "registry-skopeo-cpu-s")
	b.ReportMetric(sp.Seconds()/mc.Seconds(), "push-cold-x")
	b.ReportMetric(sp.Seconds()/mw.Seconds(), "push-warm-x")
	b.ReportMetric(sl.Seconds()/mp.Seconds(), "pull-x")
	b.ReportMetric(sl.Seconds()/median(cairnLastByte).Seconds(), "pull-last-byte-x")
	b.ReportMetric(su.Seconds()/mp.Seconds(), "pull-unpack-x")
	b.ReportMetric((sp+sl).Seconds()/(mc+mp).Seconds(), "total-x")
	b.ReportMetric(float64(median(again).Microseconds())/1000, "pull-again-ms")
}

// pullTimed pulls ref into s and returns when the last layer's last byte
// was in, checked (the last "Download complete" line cairn prints), and
// when the image was ready (cairn's exit).
func pullTimed(b *testing.B, s *store, ref string) (lastByte, ready time.Duration) {
	b.Helper()
	cmd := exec.Command(cairnBin, "--root", s.root, "pull", ref)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), ": Download complete") {
			lastByte = time.Since(start)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("cairn pull %s: %v\n%s", ref, err, stderr.String())
	}
	ready = time.Since(start)
	if lastByte == 0 {
		b.Fatalf("cairn pull %s said no \"Download complete\"", ref)
	}
	return lastByte, ready
}

// childrenCPU is the CPU time of the children this process has waited for.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// registryCPU is the CPU time used so far by the docker-registry of reg
// (found by its configuration's path in its command line).
func registryCPU(b *testing.B, reg *testutil.RegistryServer) time.Duration {
	b.Helper()
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		cl, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cl, []byte("docker-registry")) || !bytes.Contains(cl, []byte(reg.Dir+"/")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if err != nil {
			break
		}
		// utime and stime, in clock ticks (100 a second), after the command's name.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(utime+stime) * 10 * time.Millisecond
	}
	b.Fatalf("no docker-registry process serves %s", reg.Dir)
	return 0
}

func skopeo(b *testing.B, args ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "skopeo", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// unmountUnder unmounts what containers-storage left mounted under dir.
func unmountUnder(b *testing.B, dir string) {
	data, _ := os.ReadFile("/proc/self/mounts")
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mounts = append(mounts, f[1])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], 0); err != nil {
			b.Errorf("unmount %s: %v", mounts[i], err)
		}
	}
}
