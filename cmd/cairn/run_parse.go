package main

// Parsers of run's flag values: --cpus, --mount, --device, the blkio
// devices, --security-opt, --label-file and --env-file.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// parseCPUs parses --cpus: a decimal number of CPUs, within those this
// process may run on.
func parseCPUs(c string) (int64, error) {
	f, err := strconv.ParseFloat(c, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("failed to parse %s as a rational number", c)
	}
	if n := numCPU(); f > float64(n) || f > 0 && f < 0.01 {
		return 0, fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	}
	return int64(f * 1e9), nil
}

// parseMount parses one --mount as Docker's CLI does: comma-separated
// KEY=VALUE fields (a bare readonly or volume-nocopy is true); the type is
// volume unless it says.
func parseMount(v string) (runtime.MountSpec, error) {
	m := runtime.MountSpec{Type: "volume"}
	r := csv.NewReader(strings.NewReader(v))
	fields, err := r.Read()
	if err != nil {
		return m, err
	}
	boolValue := func(key, val string, bare bool) (bool, error) {
		if bare {
			return true, nil
		}
		switch strings.ToLower(val) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return false, fmt.Errorf("invalid value for %s: %s", key, val)
	}
	var bind, volume, tmpfs []string // the type's own keys, to check against the type
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		key = strings.ToLower(key)
		switch key {
		case "readonly", "ro", "volume-nocopy", "bind-nonrecursive":
		default:
			if !hasValue {
				return m, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			m.Type = strings.ToLower(val)
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = boolValue(key, val, !hasValue); err != nil {
				return m, err
			}
		case "consistency":
			// macOS's: a Linux bind is always consistent, which each of
			// these allows.
			switch val {
			case "default", "consistent", "cached", "delegated":
			default:
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
		case "bind-propagation":
			bind = append(bind, key)
			if m.BindOptions == nil {
				m.BindOptions = &runtime.BindOptions{}
			}
			m.BindOptions.Propagation = strings.ToLower(val)
		case "bind-nonrecursive":
			return m, fmt.Errorf("%s: cairn binds recursively, as Docker does by default", key)
		case "volume-nocopy":
			volume = append(volume, key)
			if m.VolumeOptions == nil {
				m.VolumeOptions = &runtime.VolumeOptions{}
			}
			if m.VolumeOptions.NoCopy, err = boolValue(key, val, !hasValue); err != nil {
				return m, err
			}
		case "volume-label":
			volume = append(volume, key)
			if m.VolumeOptions == nil {
				m.VolumeOptions = &runtime.VolumeOptions{}
			}
			lk, lv, _ := strings.Cut(val, "=")
			if m.VolumeOptions.Labels == nil {
				m.VolumeOptions.Labels = map[string]string{}
			}
			m.VolumeOptions.Labels[lk] = lv
		case "volume-driver":
			volume = append(volume, key)
			if val != "local" {
				return m, fmt.Errorf("volume-driver %s: cairn has the local volume driver only", val)
			}
		case "volume-opt":
			return m, fmt.Errorf("volume-opt %s: cairn's local volumes are directories of its own: they take no driver options", val)
		case "volume-subpath":
			return m, fmt.Errorf("volume-subpath %s: cairn mounts whole volumes only", val)
		case "tmpfs-size":
			tmpfs = append(tmpfs, key)
			n, err := units.RAMInBytes(val)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &runtime.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = n
		case "tmpfs-mode":
			tmpfs = append(tmpfs, key)
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil || n&^0o7777 != 0 {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &runtime.TmpfsOptions{}
			}
			m.TmpfsOptions.Mode = os.FileMode(n)
		default:
			return m, fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if m.Target == "" {
		return m, errors.New("target is required")
	}
	for typ, keys := range map[string][]string{"bind": bind, "volume": volume, "tmpfs": tmpfs} {
		if len(keys) > 0 && m.Type != typ {
			return m, fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", typ, m.Type)
		}
	}
	return m, nil
}

// parseDevice parses --device HOST[:CONTAINER][:PERMISSIONS], as Docker's
// CLI does.
func parseDevice(v string) (runtime.DeviceMapping, error) {
	var d runtime.DeviceMapping
	d.CgroupPermissions = "rwm"
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 3:
		d.CgroupPermissions = parts[2]
		d.PathInContainer = parts[1]
	case 2:
		if validDeviceMode(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 1:
	default:
		return d, fmt.Errorf("invalid device specification: %s", v)
	}
	d.PathOnHost = parts[0]
	if !validDeviceMode(d.CgroupPermissions) {
		return d, fmt.Errorf("invalid device mode: %s", d.CgroupPermissions)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !strings.HasPrefix(d.PathOnHost, "/") || !strings.HasPrefix(d.PathInContainer, "/") {
		return d, fmt.Errorf("%s is not an absolute path", v)
	}
	return d, nil
}

func validDeviceMode(m string) bool {
	if m == "" || len(m) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range m {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseWeightDevice parses --blkio-weight-device DEVICE:WEIGHT.
func parseWeightDevice(v string) (runtime.WeightDevice, error) {
	path, w, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return runtime.WeightDevice{}, fmt.Errorf("bad format: %s", v)
	}
	n, err := strconv.ParseUint(w, 10, 16)
	if err != nil || n > 0 && (n < 10 || n > 1000) {
		return runtime.WeightDevice{}, fmt.Errorf("invalid weight for device: %s", v)
	}
	return runtime.WeightDevice{Path: path, Weight: uint16(n)}, nil
}

// parseThrottleDevice parses --device-{read,write}-{bps,iops} DEVICE:RATE:
// bytes (with a unit: kb, mb, gb) or IO per second.
func parseThrottleDevice(v string, bps bool) (runtime.ThrottleDevice, error) {
	path, rate, ok := strings.Cut(v, ":")
	if !ok || !strings.HasPrefix(path, "/dev/") {
		return runtime.ThrottleDevice{}, fmt.Errorf("bad format: %s", v)
	}
	if bps {
		n, err := units.RAMInBytes(rate)
		if err != nil || n < 0 {
			return runtime.ThrottleDevice{}, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb", v)
		}
		return runtime.ThrottleDevice{Path: path, Rate: uint64(n)}, nil
	}
	n, err := strconv.ParseUint(rate, 10, 64)
	if err != nil {
		return runtime.ThrottleDevice{}, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>. Number must be a positive integer", v)
	}
	return runtime.ThrottleDevice{Path: path, Rate: n}, nil
}

// securityOpts checks --security-opt's form and, as Docker's CLI, reads a
// seccomp profile's file here (the calling process's): it travels as
// seccomp=<JSON>.
func securityOpts(in []string) ([]string, error) {
	out := slices.Clone(in)
	for i, opt := range out {
		k, v, ok := strings.Cut(opt, "=")
		if !ok && opt != "no-new-privileges" {
			if k, v, ok = strings.Cut(opt, ":"); !ok {
				return nil, fmt.Errorf("Invalid --security-opt: %q", opt)
			}
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %v", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %v", v, err)
			}
			out[i] = "seccomp=" + buf.String()
		}
	}
	return out, nil
}

// readLabelFile reads a --label-file as Docker does: a KEY=VALUE label per
// line; blank lines, # comments and lines without "=" are skipped.
func readLabelFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimLeft(line, " \t")
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			continue // as Docker's: a bare KEY in a label file is dropped
		}
		out = append(out, line)
	}
	return out, nil
}

// numCPU is the number of CPUs this process may run on.
func numCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		return set.Count()
	}
	return 1
}

// readEnvFile reads a file of KEY=VALUE lines as Docker's --env-file does:
// blank lines and lines starting with # are skipped; a bare KEY takes the
// host's value.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("%s:%d: no variable name on line '%s'", path, n, line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: variable '%s' contains whitespaces", path, n, k)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// bytesFlag reads a size flag (--memory 64m): its value, and whether it was
// given; --memory-swap -1 is unlimited.
func bytesFlag(cliContext *cli.Context, name string) (int64, bool, error) {
	v := cliContext.String(name)
	switch {
	case v == "":
		return 0, false, nil
	case name == "memory-swap" && v == "-1":
		return -1, true, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, false, flagError(cliContext, name, v, err)
	}
	return n, true, nil
}
