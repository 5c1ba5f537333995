package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The user-mode network of a rootless store (Options.UserMode): an
// unprivileged user can make network namespaces but no bridge, veth or
// firewall line on the host. So a container on the default network gets
// a namespace of its own, bound in the user's runtime directory, and a
// pasta process (Debian's passt) connects it to the host's network through
// the host's sockets: outbound connections are the user's own, and each
// published port is a socket pasta binds on the host and splices into the
// namespace. The container sees eth0 at 10.0.2.100/24 with the gateway
// 10.0.2.2, as slirp4netns has it; the gateway does not lead to the host's
// loopback (--no-map-gw), as in rootless Docker. User networks need root.

// The addresses a rootless container has.
var (
	userModeSubnet  = netip.MustParsePrefix("10.0.2.0/24")
	userModeGateway = netip.MustParseAddr("10.0.2.2")
	userModeIP      = netip.MustParseAddr("10.0.2.100")
)

// pasta is the user-mode network's helper, found on PATH.
const pasta = "pasta"

// UserModeHelper is the path of the user-mode network's helper, pasta.
func UserModeHelper() (string, error) {
	p, err := exec.LookPath(pasta)
	if err != nil {
		return "", fmt.Errorf("a rootless container's network needs pasta (Debian's package passt): %w", err)
	}
	return p, nil
}

// attachUserMode is Attach for a rootless store, under the lock.
func (s *Store) attachUserMode(req Request) (*Attachment, error) {
	er := req.Networks[0]
	n, err := s.get(er.Network)
	if err != nil {
		return nil, err
	}
	if !n.IsDefault() || len(req.Networks) > 1 {
		return nil, errUserMode(n.Name)
	}
	if err := checkDefaultEndpoint(er); err != nil {
		return nil, err
	}
	if err := checkUnprivilegedPorts(req.Ports); err != nil {
		return nil, err
	}
	path, err := UserModeHelper()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("%w: a rootless container's network needs /dev/net/tun, which this user cannot open (%w): as root, chmod 0666 /dev/net/tun (Debian's own mode), or run it with --network none or host", ErrInvalid, err)
	} else {
		f.Close()
	}
	ports := append([]PortBinding(nil), req.Ports...)
	// The ports are bound here first, as for root: a port taken is
	// Docker's "port is already allocated", and a port 0 gets the kernel's
	// pick; pasta binds them again an instant later.
	held, err := reserve(ports)
	if err != nil {
		return nil, err
	}
	for _, f := range held {
		f.Close()
	}
	r := &Record{
		ID: req.ID, Name: req.Name, Root: s.root, NetNS: filepath.Join(s.netns, "cairn-"+short(req.ID)),
		Hostname: req.Hostname, Domainname: req.Domainname, HostsPath: req.HostsPath, ResolvPath: req.ResolvPath,
		Ports: ports,
		Endpoints: []Endpoint{{
			NetworkID: n.ID, NetworkName: n.Name, Subnet: userModeSubnet, Gateway: userModeGateway,
			IP: userModeIP, MAC: macFor(userModeIP), IfName: "eth0",
		}},
	}
	if r.ExtraHosts, err = extraHosts(req.ExtraHosts, userModeGateway); err != nil {
		return nil, err
	}
	a := &Attachment{Record: r}
	fail := func(err error) (*Attachment, error) {
		if derr := s.detach(r); derr != nil {
			err = fmt.Errorf("%w (and undoing it: %w)", err, derr)
		}
		return nil, err
	}
	// Written before anything is made: Detach finds what may exist.
	if err := s.write(r); err != nil {
		return fail(err)
	}
	// The user's namespaces are bound in a plain directory: every cairn
	// of the user shares one mount namespace, and a container's copy of
	// the binds goes with its old root at pivot_root, so there is no
	// other namespace to propagate an unbind to, and no mount is left.
	if err := newNetNS(r.NetNS, false); err != nil {
		return fail(err)
	}
	if r.Pasta, err = startPasta(path, r); err != nil {
		return fail(err)
	}
	if err := s.write(r); err != nil {
		return fail(err)
	}
	if err := s.writeNameFiles(r, req.DNS); err != nil {
		return fail(err)
	}
	return a, nil
}

// errUserMode refuses a user network to a rootless store.
func errUserMode(name string) error {
	return fmt.Errorf("%w: network %s: a rootless container has only the default network (pasta), host and none: user-defined networks need root", ErrInvalid, name)
}

// checkUnprivilegedPorts refuses the host ports an unprivileged user
// cannot bind, in the words of rootless Docker.
func checkUnprivilegedPorts(ports []PortBinding) error {
	start := 1024
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			start = n
		}
	}
	for _, p := range ports {
		if p.HostPort != 0 && int(p.HostPort) < start {
			return fmt.Errorf("%w: cannot expose privileged port %d, you can add 'net.ipv4.ip_unprivileged_port_start=%d' to /etc/sysctl.conf (currently %d), or choose a larger port number (>= %d)",
				ErrInvalid, p.HostPort, p.HostPort, start, start)
		}
	}
	return nil
}

// startPasta connects r's namespace with pasta, which forwards r's ports,
// and returns its pid once it has set the namespace up and bound them (it
// then runs on in the background, in a session of its own, until the
// namespace's file goes or it is killed).
func startPasta(path string, r *Record) (int, error) {
	pidFile := r.NetNS + ".pasta"
	defer os.Remove(pidFile)
	args := []string{
		"--config-net", "--netns", r.NetNS, "--quiet", "--pid", pidFile,
		"--address", userModeIP.String(), "--netmask", "24", "--gateway", userModeGateway.String(),
		"--ns-ifname", "eth0", "--no-map-gw",
		// Nothing of the namespace is forwarded back to the host.
		"--tcp-ns", "none", "--udp-ns", "none",
	}
	var tcp, udp []string
	for _, p := range r.Ports {
		spec := fmt.Sprintf("%d:%d", p.HostPort, p.ContainerPort)
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			spec = p.HostIP.String() + "/" + spec
		}
		if p.Proto == "udp" {
			udp = append(udp, spec)
		} else {
			tcp = append(tcp, spec)
		}
	}
	for _, f := range []struct {
		flag  string
		specs []string
	}{{"--tcp-ports", tcp}, {"--udp-ports", udp}} {
		if len(f.specs) == 0 {
			args = append(args, f.flag, "none")
		}
		for _, s := range f.specs {
			args = append(args, f.flag, s)
		}
	}
	// Its output goes to a file, not a pipe: the pasta that stays in the
	// background keeps it open.
	log, err := os.CreateTemp(filepath.Dir(r.NetNS), "pasta-*.log")
	if err != nil {
		return 0, err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		return 0, fmt.Errorf("pasta for %s: %w: %s", short(r.ID), err, pastaMessage(out))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("pasta for %s: its pid: %w", short(r.ID), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pasta for %s: its pid file: %q", short(r.ID), b)
	}
	return pid, nil
}

// pastaMessage is what pasta said, without its complaints that it has no
// syslog.
func pastaMessage(out []byte) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "Failed to send") && l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// stopPasta ends the pasta of a record, if it is still that pasta.
func stopPasta(pid int) error {
	if pid <= 0 {
		return nil
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "pasta" {
		return nil // gone already: it quits when its namespace's file goes
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop pasta %d: %w", pid, err)
	}
	return nil
}
