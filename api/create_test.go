package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/network"
	"github.com/moby/moby/api/pkg/stdcopy"
)

// A create body as the docker CLI sends it lands where run's flags put the
// same options.
func TestCreateOptions(t *testing.T) {
	body := `{
		"Image": "busybox", "Cmd": ["sh", "-c", "true"], "Entrypoint": [""], "Env": ["A=1"],
		"Labels": {"l": "v"}, "WorkingDir": "/w", "User": "1:2", "Hostname": "h", "Domainname": "example.org",
		"Tty": true, "OpenStdin": true, "AttachStdin": true, "AttachStdout": true,
		"StopSignal": "SIGINT", "StopTimeout": 3, "MacAddress": "02:42:ac:11:00:09",
		"ExposedPorts": {"90/udp": {}, "80/tcp": {}},
		"Volumes": {"/anon": {}, "/data": {}},
		"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
		"HostConfig": {
			"Binds": ["/srv:/data:ro"], "NetworkMode": "net1", "AutoRemove": true, "Memory": 1048576,
			"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": ""}]},
			"Dns": ["10.0.0.1"], "DnsSearch": ["s"], "DnsOptions": ["ndots:1"], "ExtraHosts": ["a:10.0.0.2"],
			"PublishAllPorts": true, "RestartPolicy": {"Name": "no"}, "OomKillDisable": null, "PidsLimit": null
		},
		"NetworkingConfig": {"EndpointsConfig": {"net1": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}}
	}`
	var req createRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	o, err := createOptions("c1", &req)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "c1" || o.Image != "busybox" || !reflect.DeepEqual(o.Args, []string{"sh", "-c", "true"}) || !reflect.DeepEqual(o.Entrypoint, []string{""}) {
		t.Errorf("command: %+v", o)
	}
	if !o.Tty || !o.OpenStdin || !o.AttachStdin || !o.AttachStdout || o.AttachStderr || o.StopSignal != "SIGINT" || *o.StopTimeout != 3 {
		t.Errorf("streams, stop: %+v", o)
	}
	if o.Healthcheck == nil || o.Healthcheck.Interval != time.Second || o.Hostname != "h" || o.User != "1:2" || o.WorkingDir != "/w" {
		t.Errorf("health check, hostname, user, workdir: %+v", o)
	}
	if want := []string{"/srv:/data:ro", "/anon"}; !reflect.DeepEqual(o.Volumes, want) {
		t.Errorf("volumes %v, want %v (the bind's target is not also an anonymous volume)", o.Volumes, want)
	}
	n := o.Network
	if n.Mode != "net1" || n.Domainname != "example.org" || n.MAC != "02:42:ac:11:00:09" || n.IP != "10.1.0.5" || !reflect.DeepEqual(n.Aliases, []string{"web"}) {
		t.Errorf("network: %+v", n)
	}
	if !n.PublishAll || !reflect.DeepEqual(n.Expose, []string{"80/tcp", "90/udp"}) || !reflect.DeepEqual(n.DNS.Servers, []string{"10.0.0.1"}) || !reflect.DeepEqual(n.ExtraHosts, []string{"a:10.0.0.2"}) {
		t.Errorf("network: %+v", n)
	}
	want := []network.PortBinding{
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		{ContainerPort: 80, Proto: "tcp"},
	}
	if len(n.Ports) != 2 || !reflect.DeepEqual(sortedPorts(n.Ports), sortedPorts(want)) {
		t.Errorf("ports %+v, want %+v", n.Ports, want)
	}
	if !o.Host.AutoRemove || o.Host.Memory != 1<<20 {
		t.Errorf("host: %+v", o.Host)
	}
}

func sortedPorts(p []network.PortBinding) map[string]bool {
	m := map[string]bool{}
	for _, b := range p {
		m[b.Host()+"->"+b.Port()] = true
	}
	return m
}

// Entrypoint null or [] keeps the image's; an endpoint names the network
// when the mode does not.
func TestCreateOptionsDefaults(t *testing.T) {
	for _, body := range []string{`{"Image":"i","Entrypoint":null,"NetworkingConfig":{"EndpointsConfig":{"n":null}}}`, `{"Image":"i","Entrypoint":[],"HostConfig":{"NetworkMode":"default"},"NetworkingConfig":{"EndpointsConfig":{"n":{}}}}`} {
		var req createRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		o, err := createOptions("", &req)
		if err != nil || o.Entrypoint != nil || o.Network.Mode != "n" {
			t.Errorf("%s: entrypoint %#v, mode %q, %v", body, o.Entrypoint, o.Network.Mode, err)
		}
	}
}

func TestCreateRefused(t *testing.T) {
	for body, want := range map[string]string{
		`{"HostConfig":{"Links":["a:b"]}}`:                                                "HostConfig.Links",
		`{"HostConfig":{"DeviceRequests":[{"Count":-1}]}}`:                                "HostConfig.DeviceRequests",
		`{"HostConfig":{"CpuCount":2}}`:                                                   "Windows only",
		`{"HostConfig":{"Mounts":[{"Type":"volume","VolumeOptions":{"Subpath":"x"}}]}}`:   "Subpath",
		`{"HostConfig":{"Mounts":[{"Type":"bind","BindOptions":{"NonRecursive":true}}]}}`: "NonRecursive",
	} {
		var refused struct{ HostConfig *refusedHost }
		if err := json.Unmarshal([]byte(body), &refused); err != nil {
			t.Fatal(err)
		}
		err := checkRefused(refused.HostConfig)
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a 400 naming %s", body, err, want)
		}
	}
	if err := checkRefused(&refusedHost{}); err != nil {
		t.Errorf("nothing refused: %v", err)
	}
	for _, body := range []string{`{"Cmd":["x"]}`, `{"Image":"i","NetworkDisabled":true}`, `{"Image":"i","HostConfig":{"PortBindings":{"80/sctp":[{}]}}}`,
		`{"Image":"i","NetworkingConfig":{"EndpointsConfig":{"a":{},"b":{}}}}`, `{"Image":"i","NetworkingConfig":{"EndpointsConfig":{"a":{"Links":["x"]}}}}`} {
		var req createRequest
		json.Unmarshal([]byte(body), &req)
		if _, err := createOptions("", &req); statusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400", body, err)
		}
	}
}

func TestFamiliar(t *testing.T) {
	for in, want := range map[string]string{"busybox": "busybox:latest", "docker.io/library/busybox:1": "busybox:1", "localhost:5000/a/b": "localhost:5000/a/b:latest", "Bad:Ref": "Bad:Ref"} {
		if got := familiar(in); got != want {
			t.Errorf("familiar(%q) = %q, want %q", in, got, want)
		}
	}
}

// Docker's frames, read back by moby's own reader.
func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	out, errOut := outputs(&buf, false, true, true)
	out.Write([]byte("one\n"))
	errOut.Write([]byte("two\n"))
	out.Write(nil)
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, &buf); err != nil || o.String() != "one\n" || e.String() != "two\n" {
		t.Errorf("stdcopy: %q %q %v", o.String(), e.String(), err)
	}
	if out, errOut := outputs(&buf, true, true, true); out != &buf || errOut != nil {
		t.Errorf("with a TTY: %v %v, want the stream itself, raw", out, errOut)
	}
}

func TestUnixTime(t *testing.T) {
	for in, want := range map[string]time.Time{"": {}, "0": {}, "1690000000": time.Unix(1690000000, 0), "1690000000.5": time.Unix(1690000000, 5e8), "1690000000.000000001": time.Unix(1690000000, 1)} {
		if got, err := unixTime(in); err != nil || !got.Equal(want) {
			t.Errorf("unixTime(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"yesterday", "1.x", "-"} {
		if _, err := unixTime(bad); err == nil {
			t.Errorf("unixTime(%q): no error", bad)
		}
	}
}
