package api

// A container's files: its changes (`docker diff`), its export, and the
// daemon's half of `docker cp` — the stat of a path, a tar of it, a tar
// extracted into a directory — which the docker client drives as the
// CLI's engine.CopyFromContainer and CopyToContainer drive the same
// runtime calls.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/cairn-runtime/cairn/runtime"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	changes, err := s.e.Diff(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	// null without changes, as dockerd answers.
	var out []container.FilesystemChange
	for _, ch := range changes {
		kind := container.ChangeModify
		switch ch.Kind {
		case 'A':
			kind = container.ChangeAdd
		case 'D':
			kind = container.ChangeDelete
		}
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: kind})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Containers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// The status goes with the first bytes: a failure before them is still
	// an error answer.
	sw := &startedWriter{w: w}
	if err := s.e.Containers.Export(r.Context(), c.ID, sw); err != nil && !sw.started {
		return err
	}
	return nil
}

// startedWriter writes a 200 before its first bytes.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	return s.w.Write(p)
}

// pathStatHeader is the header that carries a path's stat, base64 JSON.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st runtime.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", badRequest("bad parameter: path cannot be empty")
	}
	return p, nil
}

func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.e.Containers.StatPath(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	started := false
	err = s.e.Containers.ArchivePath(r.Context(), r.PathValue("id"), p, func(st runtime.PathStat, content io.Reader) error {
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
		_, err := io.Copy(w, content)
		return err
	})
	if started {
		return nil // the client sees a tar cut short
	}
	return err
}

func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	// noOverwriteDirNonDir is what cairn always does: an entry never
	// replaces a directory with a non-directory, nor the other way round.
	o := runtime.ExtractOptions{CopyUIDGID: boolParam(r, "copyUIDGID")}
	if err := s.e.Containers.ExtractToDir(detached(r.Context()), r.PathValue("id"), p, r.Body, o); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, err: err}
		}
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
