package api

// The routes of a container's streams: attach, start (which an attach
// made before it waits for), wait, logs, resize and exec.

func (s *Server) streamRoutes() {
}
