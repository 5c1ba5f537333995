package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The routes of `docker network`, `docker volume`, `docker events` and
// `docker system df` (api/networks.go, volumes.go, events.go, df.go),
// driven by the real docker clients against `cairn system service`, on
// containers the cairn CLI made: what the one front end does, the other
// sees. Where it is cheap, the answers are compared with dockerd's.

// apiAnswer reads an answer of the API: its status, and the message of
// its error body ("" for another body).
func apiAnswer(resp *http.Response) (int, string) {
	defer resp.Body.Close()
	var body struct{ Message string }
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	return resp.StatusCode, body.Message
}

// The docker clients create, list (with filters), inspect, connect,
// disconnect, remove and prune networks through the API, on a container
// the CLI runs; the refusals are dockerd's (a predefined network, one in
// use, a name taken, one that is not there), with its words.
func TestAPINetworkCommands(t *testing.T) {
	s := nwStore(t)
	sock, _ := s.apiService("0")
	id := strings.TrimSpace(s.ok("run", "-d", "--name", "web", "--dns", "127.0.0.1", "busybox", "sleep", "1000"))
	for _, bin := range dockerClients(t) {
		docker := func(args ...string) string {
			t.Helper()
			out, stderr, code := dockerAt(t, bin, sock, args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", bin, strings.Join(args, " "), code, stderr)
			}
			return out
		}
		refused := func(want string, args ...string) {
			t.Helper()
			if _, stderr, code := dockerAt(t, bin, sock, args...); code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("%s %s: exit %d, %q; want %q", bin, strings.Join(args, " "), code, stderr, want)
			}
		}
		netID := strings.TrimSpace(docker("network", "create", "--subnet", "198.51.100.0/26", "--label", "team=cairn", "apinet"))
		if got := strings.TrimSpace(s.ok("network", "inspect", "-f", "{{.Id}}", "apinet")); got != netID {
			t.Errorf("%s: network create printed %s, the CLI sees %s", bin, netID, got)
		}
		if out := docker("network", "ls", "--filter", "label=team=cairn", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"); out != "apinet bridge local\n" {
			t.Errorf("%s network ls --filter label: %q", bin, out)
		}
		if out := docker("network", "ls", "--filter", "type=custom", "-q"); out != netID[:12]+"\n" {
			t.Errorf("%s network ls --filter type=custom: %q", bin, out)
		}
		if out, want := docker("network", "ls", "--format", "{{.Name}}"), s.ok("network", "ls", "--format", "{{.Name}}"); !sameLines(out, want) {
			t.Errorf("%s network ls: %q, cairn network ls: %q", bin, out, want)
		}
		// docker-compose compares Options with its driver_opts, and reads
		// the labels it gave.
		if out := docker("network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Options}} {{.Labels}}", "apinet"); out != "apinet 198.51.100.0/26 198.51.100.1 map[] map[team:cairn]\n" {
			t.Errorf("%s network inspect: %q", bin, out)
		}
		refused("already exists", "network", "create", "apinet")

		docker("network", "connect", "--alias", "w", "--ip", "198.51.100.20", "apinet", "web")
		if out := s.ok("exec", "web", "sh", "-c", "ls /sys/class/net; ip -4 -o addr show eth1"); !strings.HasPrefix(out, "eth0\neth1\nlo\n") || !strings.Contains(out, "inet 198.51.100.20/26") {
			t.Errorf("%s: in web after connect:\n%s", bin, out)
		}
		// The short ID among the aliases, as dockerd: docker-compose looks
		// for it before it connects a container again.
		if out := docker("inspect", "-f", `{{(index .NetworkSettings.Networks "apinet").Aliases}} {{(index .NetworkSettings.Networks "apinet").IPAddress}}`, "web"); out != fmt.Sprintf("[w %s] 198.51.100.20\n", id[:12]) {
			t.Errorf("%s inspect web after connect: %q", bin, out)
		}
		if out := docker("network", "inspect", "-f", `{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}`, "apinet"); out != id+" web 198.51.100.20/26\n" {
			t.Errorf("%s network inspect: containers %q", bin, out)
		}
		refused("already exists in network apinet", "network", "connect", "apinet", "web")
		refused("No such container: nosuch", "network", "connect", "apinet", "nosuch")
		refused("has active endpoints", "network", "rm", "apinet")

		docker("network", "disconnect", "apinet", "web")
		if out := s.ok("exec", "web", "ls", "/sys/class/net"); out != "eth0\nlo\n" {
			t.Errorf("%s: in web after disconnect: %q", bin, out)
		}
		refused("is not connected to network apinet", "network", "disconnect", "apinet", "web")
		refused("bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
		refused("operation is not permitted on predefined host network", "network", "create", "host")
		docker("network", "rm", "apinet")
		if out := s.ok("network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "apinet") {
			t.Errorf("%s network rm: the CLI still lists it: %q", bin, out)
		}

		for _, n := range []string{"unused1", "unused2"} {
			docker("network", "create", "--label", "prune=me", n)
		}
		docker("network", "create", "keep")
		if out := docker("network", "prune", "-f", "--filter", "label=prune=me"); out != "Deleted Networks:\nunused1\nunused2\n\n" && out != "Deleted Networks:\nunused1\nunused2\n" {
			t.Errorf("%s network prune --filter: %q", bin, out)
		}
		if out := s.ok("network", "ls", "--format", "{{.Name}}"); out != "bridge\nhost\nnone\nkeep\n" {
			t.Errorf("%s: after network prune --filter: %q", bin, out)
		}
		if out := docker("network", "prune", "-f"); !strings.Contains(out, "keep") {
			t.Errorf("%s network prune: %q", bin, out)
		}
	}
	// The words of dockerd's refusals, as each client prints them.
	dsock := dockerdSocket(testutil.Docker(t))
	for _, bin := range dockerClients(t) {
		for _, args := range [][]string{
			{"network", "inspect", "nosuch"}, {"network", "rm", "nosuch"}, {"network", "rm", "none"}, {"network", "create", "none"},
		} {
			_, want, wcode := dockerAt(t, bin, dsock, args...)
			_, got, code := dockerAt(t, bin, sock, args...)
			if code != wcode || strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("%s %s: cairn exit %d %q, dockerd exit %d %q", bin, strings.Join(args, " "), code, got, wcode, want)
			}
		}
	}
	s.ok("rm", "-f", "web")
}

// The network a docker-compose 1.29 project makes, with the body compose
// sends, is one compose takes again on its next `up`: the same driver, no
// options, the IPAM config and labels it asked for, attachable.
func TestAPINetworkComposeReuse(t *testing.T) {
	s := nwStore(t)
	sock, _ := s.apiService("0")
	client := unixClient(sock)
	body := `{"Name":"proj_default","Driver":null,"Options":{},"IPAM":{"Driver":"default","Config":[{"Subnet":"198.51.100.64/26","IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}],"Options":null},` +
		`"CheckDuplicate":true,"Labels":{"com.docker.compose.network":"default","com.docker.compose.project":"proj","com.docker.compose.version":"1.29.2"},"Attachable":true,"Internal":false}`
	resp, err := client.Post("http://cairn/v1.41/networks/create", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var created struct{ Id, Warning string }
	if resp.StatusCode != 201 || json.Unmarshal(b, &created) != nil || len(created.Id) != 64 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	resp, err = client.Get("http://cairn/v1.41/networks/proj_default")
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Id, Driver           string
		Internal, Attachable bool
		EnableIPv6           bool
		Options, Labels      map[string]string
		IPAM                 struct {
			Driver  string
			Options map[string]string
			Config  []map[string]any
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if err != nil || n.Id != created.Id || n.Driver != "bridge" || len(n.Options) != 0 || n.Internal || !n.Attachable || n.EnableIPv6 ||
		n.Labels["com.docker.compose.project"] != "proj" || n.IPAM.Driver != "default" || len(n.IPAM.Options) != 0 ||
		len(n.IPAM.Config) != 1 || n.IPAM.Config[0]["Subnet"] != "198.51.100.64/26" || n.IPAM.Config[0]["IPRange"] != nil || n.IPAM.Config[0]["AuxiliaryAddresses"] != nil {
		t.Errorf("inspect: %v %+v", err, n)
	}
	// Listed by compose's filter; a second create is the 409 compose
	// expects of a name taken.
	if out, _, _ := dockerAt(t, dockerClients(t)[0], sock, "network", "ls", "--filter", "label=com.docker.compose.project=proj", "--format", "{{.Name}}"); out != "proj_default\n" {
		t.Errorf("network ls by compose's label: %q", out)
	}
	resp, err = client.Post("http://cairn/v1.41/networks/create", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || !strings.Contains(string(b), "network with name proj_default already exists") {
		t.Errorf("second create: %d %s", resp.StatusCode, b)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"Name":"v6","EnableIPv6":true}`, "IPv6 is not supported"},
		{`{"Name":"ov","Driver":"overlay"}`, `network driver "overlay" is not supported`},
		{`{"Name":"mtu","Options":{"com.docker.network.driver.mtu":"9000"}}`, "network option com.docker.network.driver.mtu=9000 is not supported"},
		{`{"Name":"two","IPAM":{"Config":[{"Subnet":"198.51.100.128/27"},{"Subnet":"198.51.100.160/27"}]}}`, "one IPv4 subnet"},
		{`{"Name":"sub","IPAM":{"Config":[{"Subnet":"nonsense"}]}}`, "invalid subnet nonsense"},
		{`{"Name":"bad/name"}`, `invalid network name "bad/name"`},
		{`{"Name":`, "invalid JSON"},
	} {
		resp, err := client.Post("http://cairn/v1.41/networks/create", "application/json", strings.NewReader(bad.body))
		if err != nil {
			t.Fatal(err)
		}
		if status, msg := apiAnswer(resp); status != 400 || !strings.Contains(msg, bad.want) {
			t.Errorf("create %s: %d %q, want 400 with %q", bad.body, status, msg, bad.want)
		}
	}
}

// The docker clients create, list (with filters), inspect, remove and
// prune volumes through the API; a volume a container of the CLI mounts is
// in use (409), and prune (API 1.41) takes every volume no container
// uses. Inspect, ls and the refusals read as dockerd's.
func TestAPIVolumeCommands(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	dsock := dockerdSocket(testutil.Docker(t))
	for _, bin := range dockerClients(t) {
		docker := func(args ...string) string {
			t.Helper()
			out, stderr, code := dockerAt(t, bin, sock, args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", bin, strings.Join(args, " "), code, stderr)
			}
			return out
		}
		if out := docker("volume", "create", "--label", "team=cairn", "apivol"); out != "apivol\n" {
			t.Errorf("%s volume create: %q", bin, out)
		}
		anon := strings.TrimSpace(docker("volume", "create"))
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
			t.Errorf("%s volume create without a name: %q", bin, anon)
		}
		if out := docker("volume", "ls", "--filter", "label=team=cairn", "--format", "{{.Name}} {{.Driver}} {{.Labels}}"); out != "apivol local team=cairn\n" {
			t.Errorf("%s volume ls --filter label: %q", bin, out)
		}
		if out := docker("volume", "ls", "-q", "--filter", "dangling=true"); !sameLines(out, "apivol\n"+anon+"\n") {
			t.Errorf("%s volume ls --filter dangling=true: %q", bin, out)
		}
		s.ok("run", "-d", "--network", "none", "--name", "user", "-v", "apivol:/data", "busybox", "sleep", "1000")
		if out := docker("volume", "ls", "-q", "--filter", "dangling=false"); out != "apivol\n" {
			t.Errorf("%s volume ls --filter dangling=false: %q", bin, out)
		}
		if out := docker("volume", "ls", "-q", "--filter", "name=apiv"); out != "apivol\n" {
			t.Errorf("%s volume ls --filter name: %q", bin, out)
		}
		format := "{{.Name}} {{.Driver}} {{.Mountpoint}} {{.Scope}} {{.Labels}}"
		if out, want := docker("volume", "inspect", "-f", format, "apivol"), s.ok("volume", "inspect", "-f", format, "apivol"); out != want {
			t.Errorf("%s volume inspect: %q, cairn volume inspect: %q", bin, out, want)
		}
		if _, stderr, code := dockerAt(t, bin, sock, "volume", "rm", "apivol"); code != 1 || !strings.Contains(stderr, "remove apivol: volume is in use - ["+strings.TrimSpace(s.ok("inspect", "-f", "{{.Id}}", "user"))+"]") {
			t.Errorf("%s volume rm of a volume in use: exit %d %q", bin, code, stderr)
		}
		s.ok("rm", "-f", "user")
		out := docker("volume", "prune", "-f")
		if !strings.HasPrefix(out, "Deleted Volumes:\n") || !strings.Contains(out, "\napivol\n") || !strings.Contains(out, "\n"+anon+"\n") {
			t.Errorf("%s volume prune: %q", bin, out)
		}
		if out := s.ok("volume", "ls", "-q"); out != "" {
			t.Errorf("%s: after volume prune, the CLI lists %q", bin, out)
		}

		// dockerd's shapes: a volume's inspect has the same fields, ls the
		// same table, the refusals the same words.
		name := "cairn-api-" + strings.ToLower(t.Name())
		t.Cleanup(func() { dockerAt(t, bin, dsock, "volume", "rm", "-f", name) })
		for _, at := range []string{sock, dsock} {
			if _, stderr, code := dockerAt(t, bin, at, "volume", "create", "--label", "a=b", name); code != 0 {
				t.Fatalf("%s volume create at %s: %s", bin, at, stderr)
			}
		}
		keys := func(at string) []string {
			out, _, _ := dockerAt(t, bin, at, "volume", "inspect", name)
			var v []map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
				t.Fatalf("%s volume inspect at %s: %v %q", bin, at, err, out)
			}
			var ks []string
			for k := range v[0] {
				ks = append(ks, k)
			}
			slices.Sort(ks)
			return ks
		}
		if got, want := keys(sock), keys(dsock); !slices.Equal(got, want) {
			t.Errorf("%s volume inspect fields: cairn %v, dockerd %v", bin, got, want)
		}
		for _, args := range [][]string{
			{"volume", "ls", "--filter", "name=" + name}, {"volume", "ls", "--filter", "name=" + name, "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}"},
			{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Options}}", name},
			{"volume", "rm", name}, {"volume", "inspect", "nosuch"}, {"volume", "rm", "nosuch"}, {"volume", "ls", "--filter", "colour=red"},
		} {
			wout, werr, wcode := dockerAt(t, bin, dsock, args...)
			gout, gerr, code := dockerAt(t, bin, sock, args...)
			if gout != wout || strings.TrimSpace(gerr) != strings.TrimSpace(werr) || code != wcode {
				t.Errorf("%s %s:\ncairn   exit %d %q %q\ndockerd exit %d %q %q", bin, strings.Join(args, " "), code, gout, gerr, wcode, wout, werr)
			}
		}
	}
}

// GET /events: docker events --since/--until with a filter gives what the
// CLI did meanwhile, in Docker's fields (with the legacy status and from);
// a follow gets its headers at once and each event as it comes.
func TestAPIEvents(t *testing.T) {
	s := newStore(t)
	s.busybox()
	sock, _ := s.apiService("0")
	start := time.Now()
	s.ok("volume", "create", "evvol")
	id := strings.TrimSpace(s.ok("run", "-d", "--network", "none", "--name", "ev", "busybox", "true"))
	s.ok("wait", "ev")
	s.ok("rm", "ev")
	s.ok("volume", "rm", "evvol")
	until := time.Now()
	for _, bin := range dockerClients(t) {
		out, stderr, code := dockerAt(t, bin, sock, "events", "--since", unixTime(start), "--until", unixTime(until),
			"--filter", "type=volume", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} {{.Scope}}")
		if code != 0 || out != "volume create evvol local local\nvolume destroy evvol local local\n" {
			t.Errorf("%s events --filter type=volume: exit %d %q %q", bin, code, out, stderr)
		}
		out, stderr, code = dockerAt(t, bin, sock, "events", "--since", unixTime(start), "--until", unixTime(until),
			"--filter", "container=ev", "--filter", "event=start", "--filter", "event=destroy", "--format", "{{.Status}} {{.ID}} {{.From}} {{.Actor.Attributes.name}}")
		if want := fmt.Sprintf("start %s busybox ev\ndestroy %s busybox ev\n", id, id); code != 0 || out != want {
			t.Errorf("%s events --filter container: exit %d %q %q, want %q", bin, code, out, stderr, want)
		}
		// With --since alone it follows: what comes later comes too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmdOut := &syncBuffer{}
		cmd := dockerCmd(ctx, t, bin, "unix://"+sock, "events", "--since", unixTime(until), "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
		cmd.Stdout = cmdOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.ok("network", "create", "evnet")
		waitFor(t, 30*time.Second, "the followed event", func() bool { return strings.Contains(cmdOut.String(), "create evnet\n") })
		s.ok("network", "rm", "evnet")
		waitFor(t, 30*time.Second, "the followed event", func() bool { return strings.Contains(cmdOut.String(), "destroy evnet\n") })
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		until = time.Now()
	}

	// The stream's headers come before any event; each event is a line
	// of Docker's JSON, flushed at once.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := url.Values{"filters": {`{"type":["volume"],"volume":["live"]}`}}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://cairn/v1.41/events?"+q.Encode(), nil)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	asked := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || time.Since(asked) > 5*time.Second {
		t.Fatalf("GET /events: %d %v after %v", resp.StatusCode, resp.Header, time.Since(asked))
	}
	s.ok("volume", "create", "live")
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatalf("the event: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil || m["Type"] != "volume" || m["Action"] != "create" || m["scope"] != "local" ||
		m["Actor"].(map[string]any)["ID"] != "live" || m["time"] == nil || m["timeNano"] == nil {
		t.Errorf("the event: %v %s", err, line)
	}
	s.ok("volume", "rm", "live")

	for _, c := range []struct{ query, want string }{
		{"filters=" + url.QueryEscape(`{"colour":["red"]}`), "invalid filter"},
		{"since=yesterday", "invalid value \"yesterday\" for since"},
	} {
		resp, err := unixClient(sock).Get("http://cairn/v1.41/events?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		if status, msg := apiAnswer(resp); status != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("GET /events?%s: %d %q", c.query, status, msg)
		}
	}
}

// docker system df [-v] through the API says what `cairn system df` says
// of the same store.
func TestAPIServiceSystemDf(t *testing.T) {
	s := newStore(t)
	s.busybox()
	s.ok("run", "-d", "--network", "none", "--name", "dfc", "-v", "dfvol:/data", "busybox", "sleep", "1000")
	s.ok("create", "--network", "none", "--name", "dfmade", "busybox", "true")
	sock, _ := s.apiService("0")
	want := s.ok("system", "df")
	for _, bin := range dockerClients(t) {
		if out, stderr, code := dockerAt(t, bin, sock, "system", "df"); code != 0 || out != want {
			t.Errorf("%s system df: exit %d %q\n%s\ncairn system df:\n%s", bin, code, stderr, out, want)
		}
		out, stderr, code := dockerAt(t, bin, sock, "system", "df", "-v")
		if code != 0 || !regexp.MustCompile(`(?m)^busybox +latest `).MatchString(out) || !regexp.MustCompile(`(?m)^dfvol +1 `).MatchString(out) ||
			!strings.Contains(out, " dfc\n") || !strings.Contains(out, " dfmade\n") {
			t.Errorf("%s system df -v: exit %d %q\n%s", bin, code, stderr, out)
		}
	}
	s.ok("rm", "-f", "-v", "dfc", "dfmade")
}
