package api

// Networks and volumes.

func (s *Server) networkRoutes() {
}
