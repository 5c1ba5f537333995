package builder

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignorer is a context's .dockerignore.
type ignorer struct {
	pm *patternmatcher.PatternMatcher
}

// readDockerignore reads the .dockerignore of the context ctxDir; with
// none, nothing is excluded.
func readDockerignore(ctxDir string) (*ignorer, error) {
	f, err := os.Open(filepath.Join(ctxDir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return &ignorer{}, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", ErrContext, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", ErrContext, err)
	}
	return &ignorer{pm: pm}, nil
}

// ignored reports whether rel, a slash path relative to the context, is
// excluded; skipDir, whether nothing below it can be included again.
func (ig *ignorer) ignored(rel string) (ignored, skipDir bool) {
	if ig == nil || ig.pm == nil || rel == "." || rel == "" {
		return false, false
	}
	m, err := ig.pm.MatchesOrParentMatches(rel)
	if err != nil || !m {
		return false, false
	}
	return true, !ig.pm.Exclusions()
}

// below reports whether the entry rel of a source (relative to the source,
// "." for itself) is excluded, and whether nothing below it can come back.
func (s source) below(rel string) (ignored, skipDir bool) {
	if s.ignore == nil || rel == "." {
		return false, false
	}
	return s.ignore.ignored(path.Join(s.rel, rel))
}
