package runtime

// Docker's multiplexed frames: the output of a container without a
// terminal, stdout and stderr on one connection, each write a header (the
// stream, three zeros, the length big-endian) and then its bytes.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
)

// Frames returns a writer of one stream (1 stdout, 2 stderr) in Docker's
// frames to w. A frame is one write to w, so that the frames of the two
// streams written to one connection at once never interleave.
func Frames(w io.Writer, stream byte) io.Writer { return frames{w, stream} }

type frames struct {
	w      io.Writer
	stream byte
}

func (f frames) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := f.w.Write(frame(f.stream, p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// frame is p as one frame of stream.
func frame(stream byte, p []byte) []byte {
	b := make([]byte, 8+len(p))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(p)))
	copy(b[8:], p)
	return b
}

// demux copies Docker's multiplexed frames of r to stdout and stderr.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		w := io.Discard
		switch {
		case hdr[0] == 1 && stdout != nil:
			w = stdout
		case hdr[0] == 2 && stderr != nil:
			w = stderr
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return nil
		}
	}
}
