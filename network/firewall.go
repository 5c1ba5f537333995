package network

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// The firewall is iptables', through one `iptables-restore --noflush`
// batch per change (one process, one transaction per table), after one
// `iptables-save` that says what is there. Every line cairn adds carries a
// comment "cairn:…" that names what it belongs to — the shared chains,
// a network, a container — so that removing one is finding its lines in
// what iptables-save prints, whatever became of the others, and a batch
// never adds a line that is there already.
//
//	filter FORWARD            -j CAIRN-FORWARD                                  cairn:base:forward
//	filter CAIRN-FORWARD      -j CAIRN-F<c>   (inserted first)                  cairn:<c>:forward
//	filter CAIRN-F<c>         -d ctr ! -i cairn+ -o br -p P --dport CP -j ACCEPT cairn:<c>:<host>:<proto>:accept
//	                          -i br -o br -j ACCEPT                             cairn:net:<n>:intra
//	                          -i br -o cairn+ -j DROP      (isolation)          cairn:net:<n>:isolate
//	                          -i br -j ACCEPT / DROP       (internal: DROP)     cairn:net:<n>:out
//	                          -o br -m conntrack --ctstate RELATED,ESTABLISHED  cairn:net:<n>:in
//	nat PREROUTING            -m addrtype --dst-type LOCAL -j CAIRN-PREROUTING  cairn:base:prerouting
//	nat OUTPUT                -m addrtype --dst-type LOCAL -j CAIRN-OUTPUT      cairn:base:output
//	nat POSTROUTING           -j CAIRN-POSTROUTING                              cairn:base:postrouting
//	nat CAIRN-POSTROUTING     -s subnet ! -o br -j MASQUERADE (not internal)    cairn:net:<n>:masquerade
//	                          -s 127.0.0.0/8 -o br -j MASQUERADE                cairn:net:<n>:loopback
//	                          -s subnet -o br --ctstate DNAT -j MASQUERADE      cairn:net:<n>:hairpin
//	nat CAIRN-PREROUTING      -j CAIRN-<c>                                      cairn:<c>:prerouting
//	nat CAIRN-OUTPUT          -j CAIRN-<c>, -j CAIRN-L<c>                       cairn:<c>:output…
//	nat CAIRN-<c>             -p tcp [-d ip] --dport HP -j DNAT --to ctr:CP      cairn:<c>:dnat…
//	nat CAIRN-L<c>            -p tcp -d 127.0.0.1 --dport HP -j DNAT …           (loopback: OUTPUT only)
//
// A port published on 127.0.0.1 is DNATed only in OUTPUT, for the host's
// own connections: a packet from outside addressed to 127.0.0.1 is never
// sent on to the container.

// rule is one line cairn wants in a table.
type rule struct {
	table  string
	chain  string
	insert bool   // at the top of chain rather than at its end
	spec   string // matches and target, without the comment
	tag    string // the comment: unique, "cairn:…"
}

func (r rule) line(op string) string {
	return fmt.Sprintf("%s %s %s -m comment --comment %s", op, r.chain, r.spec, r.tag)
}

// chain is a chain cairn wants in a table.
type chain struct {
	table, name string
	owned       bool // a container's: flushed and filled anew when applied
}

var baseChains = []chain{
	{"filter", "CAIRN-FORWARD", false},
	{"nat", "CAIRN-PREROUTING", false},
	{"nat", "CAIRN-OUTPUT", false},
	{"nat", "CAIRN-POSTROUTING", false},
}

func baseRules() []rule {
	return []rule{
		{table: "filter", chain: "FORWARD", spec: "-j CAIRN-FORWARD", tag: "cairn:base:forward"},
		{table: "nat", chain: "PREROUTING", spec: "-m addrtype --dst-type LOCAL -j CAIRN-PREROUTING", tag: "cairn:base:prerouting"},
		{table: "nat", chain: "OUTPUT", spec: "-m addrtype --dst-type LOCAL -j CAIRN-OUTPUT", tag: "cairn:base:output"},
		{table: "nat", chain: "POSTROUTING", spec: "-j CAIRN-POSTROUTING", tag: "cairn:base:postrouting"},
	}
}

func netTag(networkID string) string { return "cairn:net:" + networkID[:12] }

// networkRules are the lines of the network of endpoint e.
func networkRules(e *Endpoint) []rule {
	t, br, sub := netTag(e.NetworkID), e.Bridge, e.Subnet.String()
	out := []rule{
		{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-i %s -o %s -j ACCEPT", br, br), tag: t + ":intra"},
		{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-i %s -o cairn+ -j DROP", br), tag: t + ":isolate"},
	}
	if e.Internal {
		out = append(out,
			rule{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-i %s -j DROP", br), tag: t + ":out"},
			rule{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-o %s -j DROP", br), tag: t + ":in"},
		)
	} else {
		out = append(out,
			rule{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-i %s -j ACCEPT", br), tag: t + ":out"},
			rule{table: "filter", chain: "CAIRN-FORWARD", spec: fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br), tag: t + ":in"},
			rule{table: "nat", chain: "CAIRN-POSTROUTING", spec: fmt.Sprintf("-s %s ! -o %s -j MASQUERADE", sub, br), tag: t + ":masquerade"},
		)
	}
	out = append(out,
		rule{table: "nat", chain: "CAIRN-POSTROUTING", spec: fmt.Sprintf("-s 127.0.0.0/8 -o %s -j MASQUERADE", br), tag: t + ":loopback"},
		rule{table: "nat", chain: "CAIRN-POSTROUTING", spec: fmt.Sprintf("-s %s -o %s -m conntrack --ctstate DNAT -j MASQUERADE", sub, br), tag: t + ":hairpin"},
	)
	return out
}

func containerTag(id string) string { return "cairn:" + short(id) }

// containerChains and containerRules are the chains and lines of
// container r: its published ports.
func containerChains(r *Record) []chain {
	if len(r.Ports) == 0 {
		return nil
	}
	c := short(r.ID)
	return []chain{{"filter", "CAIRN-F" + c, true}, {"nat", "CAIRN-" + c, true}, {"nat", "CAIRN-L" + c, true}}
}

func containerRules(r *Record) []rule {
	if len(r.Ports) == 0 || len(r.Endpoints) == 0 {
		return nil
	}
	c, t := short(r.ID), containerTag(r.ID)
	e := r.Endpoints[0] // ports are published on the first network's address
	out := []rule{
		{table: "filter", chain: "CAIRN-FORWARD", insert: true, spec: "-j CAIRN-F" + c, tag: t + ":forward"},
		{table: "nat", chain: "CAIRN-PREROUTING", spec: "-j CAIRN-" + c, tag: t + ":prerouting"},
		{table: "nat", chain: "CAIRN-OUTPUT", spec: "-j CAIRN-" + c, tag: t + ":output"},
		{table: "nat", chain: "CAIRN-OUTPUT", spec: "-j CAIRN-L" + c, tag: t + ":output-loopback"},
	}
	for _, p := range r.Ports {
		to := fmt.Sprintf("%s:%d", e.IP, p.ContainerPort)
		key := fmt.Sprintf("%s:%s:%s", t, p.Host(), p.Proto)
		dnat := fmt.Sprintf("-p %s -m %s --dport %d -j DNAT --to-destination %s", p.Proto, p.Proto, p.HostPort, to)
		switch {
		case p.HostIP.IsValid() && p.HostIP.IsLoopback():
			out = append(out, rule{table: "nat", chain: "CAIRN-L" + c, spec: fmt.Sprintf("-d %s/32 %s", p.HostIP, dnat), tag: key})
		case p.HostIP.IsValid() && !p.HostIP.IsUnspecified():
			out = append(out, rule{table: "nat", chain: "CAIRN-" + c, spec: fmt.Sprintf("-d %s/32 %s", p.HostIP, dnat), tag: key})
		default:
			out = append(out, rule{table: "nat", chain: "CAIRN-" + c, spec: dnat, tag: key})
		}
		// Not from another of cairn's bridges: a published port does not
		// undo the isolation of networks (as Docker's isolation chains,
		// which come before its DOCKER chain). The same network's own
		// traffic is accepted by its :intra line.
		out = append(out, rule{table: "filter", chain: "CAIRN-F" + c,
			spec: fmt.Sprintf("-d %s/32 ! -i cairn+ -o %s -p %s -m %s --dport %d -j ACCEPT", e.IP, e.Bridge, p.Proto, p.Proto, p.ContainerPort), tag: key + ":accept"})
	}
	return out
}

// tables is what iptables-save printed: per table, its chains and lines.
type tables map[string]*table

type table struct {
	chains map[string]bool
	lines  []string // "-A CHAIN ..." as iptables-save prints them
}

func (t tables) has(tag string) bool {
	for _, tb := range t {
		for _, l := range tb.lines {
			if commentOf(l) == tag {
				return true
			}
		}
	}
	return false
}

func commentOf(line string) string {
	_, after, ok := strings.Cut(line, "--comment ")
	if !ok {
		return ""
	}
	c, _, _ := strings.Cut(after, " ")
	return strings.Trim(c, `"`)
}

func save() (tables, error) {
	var out bytes.Buffer
	cmd := exec.Command("iptables-save")
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("iptables-save: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseSave(&out)
}

// parseSave reads what iptables-save printed.
func parseSave(r io.Reader) (tables, error) {
	t := tables{}
	var cur *table
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "*"):
			cur = &table{chains: map[string]bool{}}
			t[l[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(l, "-A "):
			cur.lines = append(cur.lines, l)
		}
	}
	return t, sc.Err()
}

// batch is the input of one iptables-restore.
type batch map[string][]string

func (b batch) add(table, line string) { b[table] = append(b[table], line) }

func (b batch) restore() error {
	var in bytes.Buffer
	for _, name := range []string{"filter", "nat"} {
		if len(b[name]) == 0 {
			continue
		}
		fmt.Fprintf(&in, "*%s\n%s\nCOMMIT\n", name, strings.Join(b[name], "\n"))
	}
	if in.Len() == 0 {
		return nil
	}
	cmd := exec.Command("iptables-restore", "--noflush", "--wait")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ensure adds what of chains and rules is missing; the chains a container
// owns are flushed and filled anew.
func ensure(cur tables, chains []chain, rules []rule) batch {
	b := batch{}
	owned := map[string]bool{}
	for _, c := range chains {
		t := cur[c.table]
		if c.owned {
			owned[c.table+" "+c.name] = true
		}
		if t == nil || !t.chains[c.name] || c.owned {
			b.add(c.table, ":"+c.name+" - [0:0]") // declaring an existing chain flushes it
		}
	}
	for _, r := range rules {
		if owned[r.table+" "+r.chain] || !cur.has(r.tag) {
			if r.insert {
				b.add(r.table, r.line("-I"))
			} else {
				b.add(r.table, r.line("-A"))
			}
		}
	}
	return b
}

// remove deletes every line whose tag starts with one of prefixes, and
// the chains named, wherever they are.
func remove(cur tables, prefixes []string, chains []chain) batch {
	b := batch{}
	match := func(tag string) bool {
		for _, p := range prefixes {
			if tag == p || strings.HasPrefix(tag, p+":") {
				return true
			}
		}
		return false
	}
	gone := map[string]bool{}
	for _, c := range chains {
		gone[c.table+" "+c.name] = true
	}
	for name, t := range cur {
		for _, l := range t.lines {
			ch, _, _ := strings.Cut(strings.TrimPrefix(l, "-A "), " ")
			if gone[name+" "+ch] {
				continue // flushed with its chain
			}
			if match(commentOf(l)) {
				b.add(name, "-D "+strings.TrimPrefix(l, "-A "))
			}
		}
	}
	// Every chain flushed before any is deleted: one may jump to another.
	for _, op := range []string{"-F ", "-X "} {
		for _, c := range chains {
			if t := cur[c.table]; t != nil && t.chains[c.name] {
				b.add(c.table, op+c.name)
			}
		}
	}
	return b
}
