package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/opencontainers/go-digest"
	"golang.org/x/term"
)

// progress shows what happens to the layers of a pull or a push, as
// Docker shows it: on a terminal, one line per layer redrawn in place,
// with a bar while bytes move; otherwise one plain line per change of a
// layer's status.
type progress struct {
	w     io.Writer
	tty   bool
	width int

	mu    sync.Mutex
	order []digest.Digest
	rows  map[digest.Digest]*progressRow
	drawn int // lines drawn on the terminal
	last  time.Time
}

type progressRow struct {
	status     string
	cur, total int64
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, rows: map[digest.Digest]*progressRow{}}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.width, _, _ = term.GetSize(int(f.Fd()))
	}
	return p
}

// event is given to the registry client as its Progress.
func (p *progress) event(e image.LayerEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.rows[e.Digest]
	if !ok {
		r = &progressRow{}
		p.rows[e.Digest] = r
		p.order = append(p.order, e.Digest)
	}
	changed := r.status != e.Status
	r.status, r.cur = e.Status, e.Current
	if e.Total > 0 {
		r.total = e.Total
	}
	if !p.tty {
		if changed {
			fmt.Fprintf(p.w, "%s: %s\n", shortDigest(e.Digest), e.Status)
		}
		return
	}
	if changed || time.Since(p.last) > 100*time.Millisecond {
		p.redraw()
	}
}

func (p *progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, d := range p.order {
		line := p.line(d, p.rows[d])
		if p.width > 0 && len(line) >= p.width {
			line = line[:p.width-1]
		}
		b.WriteString("\x1b[2K" + line + "\n")
	}
	p.drawn = len(p.order)
	p.last = time.Now()
	io.WriteString(p.w, b.String())
}

func (p *progress) line(d digest.Digest, r *progressRow) string {
	s := shortDigest(d) + ": " + r.status
	if (r.status == "Downloading" || r.status == "Pushing") && r.total > 0 {
		const width = 50
		done := int(float64(width) * float64(r.cur) / float64(r.total))
		done = min(max(done, 0), width)
		bar := strings.Repeat("=", done)
		if done < width {
			bar += ">" + strings.Repeat(" ", width-done-1)
		}
		s += fmt.Sprintf(" [%s] %s/%s", bar, humanSize(r.cur), humanSize(r.total))
	}
	return s
}

// done draws the final state.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && len(p.order) > 0 {
		p.redraw()
	}
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
