package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/cairn-runtime/cairn/image"
	"github.com/urfave/cli/v2"
)

// imageInspect is `docker image inspect`'s shape.
type imageInspect struct {
	ID            string `json:"Id"`
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	Container     string
	DockerVersion string
	Author        string
	Config        any
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	Size          int64
	VirtualSize   int64
	GraphDriver   struct {
		Data map[string]string
		Name string
	}
	RootFS struct {
		Type   string
		Layers []string
	}
	Metadata struct {
		LastTagTime string
	}
}

var runImageInspect = inspectEach(func(_ *cli.Context, s *stores, ref string) (any, error) {
	return s.inspectImage(ref)
})

// inspectEach is the action of an inspect command: the JSON (or --format)
// of every object fn finds, then the errors of those it did not.
func inspectEach(fn func(cliContext *cli.Context, s *stores, ref string) (any, error)) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		if cliContext.NArg() < 1 {
			return argsError(cliContext, "at least 1 argument")
		}
		s, err := openStores(cliContext)
		if err != nil {
			return err
		}
		var out []any
		errs := eachArg(cliContext, func(ref string) error {
			v, err := fn(cliContext, s, ref)
			if err == nil {
				out = append(out, v)
			}
			return err
		})
		if err := printInspect(cliContext, out); err != nil {
			return err
		}
		return errs
	}
}

func (s *stores) inspectImage(ref string) (*imageInspect, error) {
	img, err := s.images.Lookup(ref)
	if err != nil {
		return nil, err
	}
	c, raw, err := s.images.Config(img)
	if err != nil {
		return nil, err
	}
	// Docker's own fields, which the OCI config type does not carry.
	var extra struct {
		Comment       string `json:"comment"`
		Container     string `json:"container"`
		DockerVersion string `json:"docker_version"`
		Parent        string `json:"parent"`
	}
	json.Unmarshal(raw, &extra)
	v := &imageInspect{
		ID: img.ID.String(), RepoTags: []string{}, RepoDigests: []string{},
		Parent: extra.Parent, Comment: extra.Comment, Container: extra.Container, DockerVersion: extra.DockerVersion,
		Author: c.Author, Config: c.Config, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS,
	}
	for _, n := range img.Names {
		v.RepoTags = append(v.RepoTags, image.FamiliarName(n))
	}
	if c.Created != nil {
		v.Created = c.Created.Format(time.RFC3339Nano)
	}
	if v.Size, err = s.imageSize(c.RootFS.DiffIDs); err != nil {
		return nil, err
	}
	v.VirtualSize = v.Size
	v.GraphDriver.Name = "overlay"
	v.GraphDriver.Data = map[string]string{}
	chains := image.ChainIDs(c.RootFS.DiffIDs)
	var lowers []string
	for i := len(chains) - 1; i >= 0; i-- {
		lowers = append(lowers, s.snapshots.FS(chains[i]))
	}
	if len(lowers) > 0 {
		v.GraphDriver.Data["LowerDir"] = strings.Join(lowers, ":")
	}
	v.RootFS.Type = c.RootFS.Type
	for _, d := range c.RootFS.DiffIDs {
		v.RootFS.Layers = append(v.RootFS.Layers, d.String())
	}
	return v, nil
}

// printInspect prints values as a JSON array, or each through --format.
func printInspect(cliContext *cli.Context, values []any) error {
	w := cliContext.App.Writer
	if f := cliContext.String("format"); f != "" {
		tmpl, err := template.New("format").Funcs(templateFuncs).Parse(f + "\n")
		if err != nil {
			return &statusError{code: exitCairn, err: fmt.Errorf("template parsing error: %w", err)}
		}
		for _, v := range values {
			// Through JSON, so that the template sees Docker's field names.
			b, _ := json.Marshal(v)
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			dec.Decode(&m)
			if err := tmpl.Execute(w, m); err != nil {
				return fmt.Errorf("template: %w", err)
			}
		}
		return nil
	}
	if values == nil {
		values = []any{}
	}
	b, err := json.MarshalIndent(values, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, string(b))
	return nil
}
