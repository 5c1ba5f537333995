package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/runtime"
)

// A network's create body is taken as far as cairn can honour it, and
// refused with the field named where it cannot.
func TestNetworkCreateOptions(t *testing.T) {
	ok := `{"Name":"p_default","CheckDuplicate":true,"Attachable":true,"Labels":{"a":"b"},"Options":{"com.docker.network.bridge.enable_icc":"true"},` +
		`"IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]}}`
	var req networkCreate
	if err := json.Unmarshal([]byte(ok), &req); err != nil {
		t.Fatal(err)
	}
	o, err := req.createOptions()
	if err != nil || o.Name != "p_default" || o.Subnet != "10.9.0.0/24" || o.Gateway != "10.9.0.1" || !o.Attachable || o.Labels["a"] != "b" ||
		o.Options["com.docker.network.bridge.enable_icc"] != "true" {
		t.Errorf("%+v %v", o, err)
	}
	for body, want := range map[string]string{
		`{}`:                               "needs a name",
		`{"Name":"n","Driver":"macvlan"}`:  `"macvlan" is not supported`,
		`{"Name":"n","Scope":"swarm"}`:     `scope "swarm"`,
		`{"Name":"n","EnableIPv6":true}`:   "IPv6",
		`{"Name":"n","EnableIPv4":false}`:  "without IPv4",
		`{"Name":"n","Ingress":true}`:      "swarm",
		`{"Name":"n","Options":{"x":"1"}}`: "network option x=1",
		`{"Name":"n","Internal":true,"Options":{"com.docker.network.bridge.enable_ip_masquerade":"true"}}`: "enable_ip_masquerade=true",
		`{"Name":"n","IPAM":{"Driver":"dhcp"}}`:                                                           `IPAM driver "dhcp"`,
		`{"Name":"n","IPAM":{"Options":{"a":"b"}}}`:                                                       "IPAM options",
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/16"},{"Subnet":"10.2.0.0/16"}]}}`:              "one IPv4 subnet, not 2",
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.1.0/24"}]}}`:               "IP range",
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","AuxiliaryAddresses":{"a":"10.1.0.5"}}]}}`: "auxiliary",
	} {
		var req networkCreate
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if _, err := req.createOptions(); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (status %d), want 400 with %q", body, err, statusOf(err), want)
		}
	}
}

// The network store's refusals keep their sentinel for errors.Is and get
// dockerd's status and, as writeError answers them, its words.
func TestNetworkErrorStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		text   string
	}{
		{fmt.Errorf("%w: network x not found", network.ErrNotFound), 404, "network x not found"},
		{fmt.Errorf("%w: bridge is a pre-defined network and cannot be removed", network.ErrPredefined), 403, "bridge is a pre-defined network and cannot be removed"},
		{fmt.Errorf("%w: error while removing network: network n id 0123 has active endpoints", network.ErrInUse), 403, "error while removing network: network n id 0123 has active endpoints"},
		{fmt.Errorf("%w: endpoint with name web already exists in network n", network.ErrExists), 403, "endpoint with name web already exists in network n"},
		{fmt.Errorf("%w: container web is not connected to network n", network.ErrNotConnected), 500, "container web is not connected to network n"},
		{fmt.Errorf("%w: web", runtime.ErrNotFound), 404, "No such container: web"},
	} {
		err := networkError(c.err)
		if statusOf(err) != c.status || dockerError(err).Error() != c.text || !errors.Is(err, c.err) {
			t.Errorf("%v: %d %q", c.err, statusOf(err), dockerError(err).Error())
		}
	}
	err := volumeError(fmt.Errorf("%w: v", runtime.ErrVolumeNotFound), "v")
	if statusOf(err) != 404 || err.Error() != "get v: no such volume" || !errors.Is(err, runtime.ErrVolumeNotFound) {
		t.Errorf("volume not found: %d %q", statusOf(err), err)
	}
	err = volumeError(fmt.Errorf("%w: remove v: volume is in use - [abc]", runtime.ErrConflict), "v")
	if statusOf(err) != 409 || dockerError(err).Error() != "remove v: volume is in use - [abc]" {
		t.Errorf("volume in use: %d %q", statusOf(err), err)
	}
}
