package runtime

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The monitor copies a container's stdout and stderr at once into the
// hub: every attached client must read each stream whole, in its frames,
// however the two writers' writes fall.
func TestHubFramesDoNotInterleave(t *testing.T) {
	server, client, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	h := &hub{outs: map[*attacher]bool{{conn: server, stdout: true, stderr: true}: true}}

	const n = 30000
	var want [3]bytes.Buffer
	var wg sync.WaitGroup
	for stream := byte(1); stream <= 2; stream++ {
		for i := range n {
			fmt.Fprintf(&want[stream], "stream %d line %d\n", stream, i)
		}
		wg.Go(func() {
			w := h.output(stream)
			for i := range n {
				fmt.Fprintf(w, "stream %d line %d\n", stream, i)
			}
		})
	}
	var got [3]bytes.Buffer
	read := make(chan error, 1)
	go func() { read <- demux(client, &got[1], &got[2]) }()
	wg.Wait()
	server.Close()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	for stream := 1; stream <= 2; stream++ {
		if got[stream].String() != want[stream].String() {
			t.Errorf("stream %d: read %d bytes, want %d; the first difference at byte %d",
				stream, got[stream].Len(), want[stream].Len(), firstDiff(got[stream].Bytes(), want[stream].Bytes()))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// socketPair is a connected pair of unix stream sockets, as an attach
// client's connection to the monitor.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "attach-socket")
		conns[i], err = net.FileConn(f) // a copy of the descriptor
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			}
			return nil, nil, err
		}
	}
	return conns[0], conns[1], nil
}
