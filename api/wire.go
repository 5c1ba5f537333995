package api

// What the handlers share of HTTP: the request's API version, JSON bodies
// and query parameters read with errors that name what is wrong, the
// hijacked connection of attach and exec, and Docker's JSON message stream
// (pull, push, build, load).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

type versionKey struct{}

// apiVersion is the version the request asked for (/v1.40/...), or cairn's.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// versionBefore reports whether the request asked for an API older than v.
func versionBefore(r *http.Request, v string) bool { return newer(v, apiVersion(r)) }

// decodeJSON reads the request's JSON body into v; an empty body leaves v
// as it is. What is wrong with a body is a 400 that says so.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, err: fmt.Errorf("request body larger than %d bytes", tooBig.Limit)}
		}
		return badRequest("invalid JSON in the request body: %v", err)
	}
	return nil
}

// intParam is the integer query parameter name, def when absent.
func intParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("invalid value %q for query parameter %s: not an integer", v, name)
	}
	return n, nil
}

// Content types of a hijacked stream: raw with a TTY, Docker's 8-byte
// frames (see stdcopy) without.
const (
	rawStream         = "application/vnd.docker.raw-stream"
	multiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// hijack takes the connection of an attach or exec start over from the
// HTTP server and answers it as dockerd does: 101 UPGRADED when the client
// asked to upgrade (Connection: Upgrade, Upgrade: tcp), else 200 with the
// stream after the headers. What the client sent after its request is in
// the returned reader; the caller closes the connection.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, buf.Reader, nil
}

// message is a line of Docker's JSON stream: jsonstream.Message with the
// two fields older clients read (docker-compose 1.29 and docker-py look
// for "error"; "progress" is the rendered bar).
type message struct {
	jsonstream.Message
	ProgressBar  string `json:"progress,omitempty"`
	ErrorMessage string `json:"error,omitempty"`
}

// jsonStream writes Docker's JSON message stream, a message per line, each
// flushed to the client at once. Its status is 200 from the first message
// on: a failure after that is an errorDetail message, as dockerd's.
type jsonStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	return &jsonStream{w: w, enc: json.NewEncoder(w)}
}

// send writes m.
func (s *jsonStream) send(m message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start()
	err := s.enc.Encode(m)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return err
}

func (s *jsonStream) start() {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
}

// Stream, Status and Aux send one message of that kind.
func (s *jsonStream) Stream(text string) error {
	return s.send(message{Message: jsonstream.Message{Stream: text}})
}
func (s *jsonStream) Status(id, status string) error {
	return s.send(message{Message: jsonstream.Message{ID: id, Status: status}})
}
func (s *jsonStream) Aux(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	raw := json.RawMessage(b)
	return s.send(message{Message: jsonstream.Message{Aux: &raw}})
}

// finish ends the stream with err: before any message, as a plain error
// answer (its status as statusOf maps it); after, as an errorDetail
// message.
func (s *jsonStream) finish(err error) error {
	if err == nil {
		s.mu.Lock()
		s.start()
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return err
	}
	return s.send(message{Message: jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}}, ErrorMessage: err.Error()})
}

// detached keeps a request's values but not its end: work a client
// started (a pull, a build) is not left half done when it hangs up.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
