// Command udpecho is the UDP server of the network tests (busybox has
// none): it answers every datagram with -prefix and the datagram. The
// tests build it static and bind-mount it into a busybox container.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", ":5353", "UDP address to listen on")
	prefix := flag.String("prefix", "", "put before each answer")
	flag.Parse()
	c, err := net.ListenPacket("udp4", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpecho:", err)
		os.Exit(1)
	}
	fmt.Println("udpecho: listening on", c.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "udpecho:", err)
			os.Exit(1)
		}
		if _, err := c.WriteTo(append([]byte(*prefix), buf[:n]...), from); err != nil {
			fmt.Fprintln(os.Stderr, "udpecho:", err)
		}
	}
}
