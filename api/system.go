package api

import (
	"encoding/json"
	"net/http"

	"github.com/cairn-runtime/cairn/engine"
)

// ping is what every client asks first: the API version, the OS, and that
// cairn builds as Docker's classic builder (Builder-Version 1), so that
// the docker CLI does not switch to BuildKit.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Docker-Experimental", "false")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte("OK"))
	}
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := engine.ServerVersion()
	v.APIVersion, v.MinAPIVersion = APIVersion, MinAPIVersion
	for i := range v.Components {
		if v.Components[i].Name == "Engine" {
			v.Components[i].Details["ApiVersion"] = APIVersion
			v.Components[i].Details["MinAPIVersion"] = MinAPIVersion
		}
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	info, err := s.e.Info(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// filters reads the filters query parameter: {"key":["v",...]}, or the
// older {"key":{"v":true}} that some clients still send.
func filters(r *http.Request) (engine.Filters, error) {
	f := engine.Filters{}
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return f, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(raw), &lists); err == nil {
		for k, vs := range lists {
			for _, v := range vs {
				f.Add(k, v)
			}
		}
		return f, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &sets); err != nil {
		return nil, badRequest("invalid filter %q: %v", raw, err)
	}
	for k, vs := range sets {
		for v, on := range vs {
			if on {
				f.Add(k, v)
			}
		}
	}
	return f, nil
}

func (s *Server) systemRoutes() {
	s.handle("GET /_ping", s.ping)
	s.handle("HEAD /_ping", s.ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
}
