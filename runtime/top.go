package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
)

// Processes are what `docker top` shows of a container: the columns of the
// host's ps(1) and a row per process of the container.
type Processes struct {
	Titles []string
	Rows   [][]string
}

// Top lists the processes of running container ref as Docker does: it runs
// the host's ps with psArgs ("-ef" when there are none), limited to the
// pids of the container's cgroups where ps allows it, and keeps the rows
// of those pids (and the thread rows that follow one, with ps's -m).
func (s *Store) Top(ctx context.Context, ref string, psArgs []string) (*Processes, error) {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	if err := validatePSArgs(strings.Join(psArgs, " ")); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != Running && c.State.Status != Paused {
		return nil, fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
	}
	lc, err := libcontainer.Load(s.state, c.ID)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil, fmt.Errorf("%w: Container %s is not running", ErrConflict, c.ID)
	} else if err != nil {
		return nil, err
	}
	pids, err := lc.Processes()
	if err != nil {
		return nil, fmt.Errorf("processes of container %s: %w", ShortID(c.ID), err)
	}
	out, err := exec.CommandContext(ctx, "ps", append(psArgs, pidsArg(pids))...).Output()
	if err != nil {
		// Some options (f among them) refuse -q: ps lists everything, and
		// the rows are picked below.
		out, err = exec.CommandContext(ctx, "ps", psArgs...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
					err = errors.New(string(line))
				}
			}
			return nil, fmt.Errorf("ps: %w", err)
		}
	}
	return parsePS(out, pids)
}

// pidsArg is ps's "quick pid" selection of pids: -q1,2,3.
func pidsArg(pids []int) string {
	b := []byte("-q")
	for i, p := range pids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

// validatePSArgs refuses a renamed pid column (-o pid=PID is fine, -o
// ppid=PID is not): the PID column is how the rows are picked.
func validatePSArgs(args string) error {
	re := regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)
	for _, g := range re.FindAllStringSubmatch(args, -1) {
		if len(g) >= 3 && g[1] != "pid" {
			return fmt.Errorf("%w: specifying \"%s=%s\" is not allowed", ErrInvalid, g[1], g[2])
		}
	}
	return nil
}

// parsePS keeps the rows of ps's output whose PID is one of pids, and the
// thread rows (PID "-") after one of them; a row's last column takes the
// rest of the line (the command and its arguments).
func parsePS(out []byte, pids []int) (*Processes, error) {
	lines := strings.Split(string(out), "\n")
	p := &Processes{Titles: fieldsASCII(lines[0]), Rows: [][]string{}}
	pidIndex := -1
	for i, t := range p.Titles {
		if t == "PID" {
			pidIndex = i
			break
		}
	}
	if pidIndex < 0 {
		return nil, errors.New("couldn't find PID field in ps output")
	}
	in := map[int]bool{}
	for _, pid := range pids {
		in[pid] = true
	}
	add := func(fields []string) {
		n := len(p.Titles)
		if len(fields) < n {
			fields = append(fields, make([]string, n-len(fields))...)
		}
		row := append([]string{}, fields[:n-1]...)
		p.Rows = append(p.Rows, append(row, strings.Join(fields[n-1:], " ")))
	}
	kept := false
	for _, line := range lines[1:] {
		fields := fieldsASCII(line)
		if len(fields) <= pidIndex {
			continue
		}
		if fields[pidIndex] == "-" {
			if kept {
				add(fields)
			}
			continue
		}
		pid, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return nil, fmt.Errorf("unexpected pid %q in ps output: %w", fields[pidIndex], err)
		}
		kept = in[pid]
		if kept {
			add(fields)
		}
	}
	return p, nil
}

// fieldsASCII splits s at ASCII white space only: a command's arguments
// may hold other spaces.
func fieldsASCII(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\f', '\r', ' ':
			return true
		}
		return false
	})
}
