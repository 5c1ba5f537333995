package runtime

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
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
	h := &hub{outs: map[*attacher]bool{}, controls: map[net.Conn]bool{}, quit: make(chan struct{}), attached: make(chan struct{})}
	h.outs[&attacher{conn: server, stdout: true, stderr: true}] = true

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
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: "", Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server := <-accepted
	if server == nil {
		client.Close()
		return nil, nil, fmt.Errorf("accept on %s failed", ln.Addr())
	}
	return server, client, nil
}
