package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	ids "github.com/cairn-runtime/cairn/internal/names"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image of the store.
type Image struct {
	ID       digest.Digest      // the config's digest, Docker's image ID
	Manifest ocispec.Descriptor // the manifest, without annotations
	Names    []string           // full normalized names, sorted; none for a dangling image
	// Broken says what blob the image lost (AnnotationBroken); its ID is
	// its manifest's digest when the manifest is what is gone.
	Broken string
}

// Config is an image configuration with Docker's extensions: Healthcheck,
// OnBuild and Shell in its config, and the comment of the commit that made
// the image, which `docker image inspect` shows.
type Config struct {
	dockerspec.DockerOCIImage
	Comment string `json:"comment,omitempty"`
}

// ShortID is the 12-character form of an image ID that Docker prints.
func ShortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// FamiliarName turns a stored full name into the form Docker prints
// ("docker.io/library/busybox:latest" → "busybox:latest").
func FamiliarName(name string) string {
	if IsFamiliar(name) {
		return name // what the parse would give back, told without it
	}
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(n)
}

// ParseName parses a name an image is to be given: [registry[:port]/]repository[:tag],
// "latest" by default. A digest is refused: an image is not named by one.
func ParseName(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %q: %w", s, err)
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, fmt.Errorf("refusing to create a tag with a digest reference: %q", s)
	}
	return reference.TagNameOnly(n), nil
}

// parseAnyName parses a name a pulled image is given: a tag reference, or
// a digest reference when the image was pulled by digest.
func parseAnyName(s string) (string, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", fmt.Errorf("invalid reference format: %q: %w", s, err)
	}
	if _, ok := n.(reference.Digested); ok {
		return n.String(), nil
	}
	return reference.TagNameOnly(n).String(), nil
}

// ChainIDs returns the chain IDs of a stack of layers, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
		} else {
			out[i] = digest.FromString(out[i-1].String() + " " + d.String())
		}
	}
	return out
}

// List returns the images of the store, in the order of the index.
//
// It takes no lock: between its read of the index and its reads of the
// manifests, an rmi may write a new index and its prune sweep the manifest
// of the image it removed. A manifest that is missing sends List back to
// the index; only when the index it reads again is the same (it names a
// blob the store has lost) is that an error.
func (s *Store) List() ([]Image, error) {
	s.prefetchList()
	idx, err := s.listedIndex()
	if err != nil {
		return nil, err
	}
	for {
		imgs, err := (&names{idx: idx}).images(s)
		if !errors.Is(err, fs.ErrNotExist) {
			s.SaveFacts() // best effort: the next list learns them again
			return imgs, err
		}
		again, rerr := s.listedIndex()
		if rerr != nil {
			return nil, rerr
		}
		if slices.EqualFunc(idx.Manifests, again.Manifests, func(a, b ocispec.Descriptor) bool {
			return a.Digest == b.Digest && nameOf(a) == nameOf(b)
		}) {
			return nil, err
		}
		idx = again
	}
}

// Manifest reads and verifies the image manifest d.
func (s *Store) Manifest(d digest.Digest) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	b, err := s.ReadBlob(d)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", d, err)
	}
	return m, nil
}

// Config reads and verifies the configuration of img, returning it parsed and as stored.
func (s *Store) Config(img Image) (Config, []byte, error) {
	var c Config
	if img.Broken != "" {
		return c, nil, fmt.Errorf("%w: image %s is broken (%s): remove it with `cairn rmi %s`", ErrInvalid, ShortID(img.ID), img.Broken, ShortID(img.ID))
	}
	b, err := s.ReadBlob(img.ID)
	if err != nil {
		return c, nil, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, nil, fmt.Errorf("config %s: %w", img.ID, err)
	}
	return c, b, nil
}

// Lookup finds the image a user means by ref, as Docker does: a name (tag or
// digest reference) first, then a full or abbreviated image ID.
func (s *Store) Lookup(ref string) (Image, error) {
	imgs, err := s.List()
	if err != nil {
		return Image{}, err
	}
	return LookupIn(imgs, ref)
}

// LookupIn finds the image ref names among imgs (a list the caller has
// already read), as Lookup does.
func LookupIn(imgs []Image, ref string) (Image, error) {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		if dg, ok := n.(reference.Digested); ok {
			for _, img := range imgs {
				if img.Manifest.Digest == dg.Digest() || img.ID == dg.Digest() || slices.Contains(img.Names, n.String()) {
					return img, nil
				}
			}
		} else {
			full := reference.TagNameOnly(n).String()
			for _, img := range imgs {
				for _, name := range img.Names {
					if name == full {
						return img, nil
					}
				}
			}
		}
	}
	id := strings.TrimPrefix(ref, "sha256:")
	if id != "" && ids.Hex(id) && len(id) <= 64 {
		var found []Image
		for _, img := range imgs {
			if strings.HasPrefix(img.ID.Encoded(), id) {
				found = append(found, img)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 && !sameID(found) {
			return Image{}, fmt.Errorf("image ID %q is ambiguous: %w", ref, ErrNotFound)
		} else if len(found) > 1 {
			return found[0], nil
		}
	}
	return Image{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func sameID(imgs []Image) bool {
	for _, img := range imgs[1:] {
		if img.ID != imgs[0].ID {
			return false
		}
	}
	return true
}

// Tag gives the image src names target; the image that had that name before,
// if any, keeps its other names or becomes dangling.
func (s *Store) Tag(ctx context.Context, src, target string) (Image, error) {
	name, err := ParseName(target)
	if err != nil {
		return Image{}, err
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Image{}, err
	}
	defer release()
	img, err := s.Lookup(src)
	if err != nil {
		return Image{}, err
	}
	err = s.updateIndex(ctx, func(n *names) error {
		if !n.has(img.Manifest.Digest) {
			return fmt.Errorf("%w: %s", ErrNotFound, src) // removed meanwhile
		}
		n.set(name.String(), img.Manifest)
		return nil
	})
	return img, err
}

// Name enters img in the index under names (an image a build or the build
// cache made may not be there yet); with no names, as an unnamed image.
// The image that had one of the names before keeps its others, or becomes
// dangling.
func (s *Store) Name(ctx context.Context, img Image, tags []string) error {
	var full []string
	for _, t := range tags {
		name, err := ParseName(t)
		if err != nil {
			return err
		}
		full = append(full, name.String())
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	if !s.HasBlob(img.Manifest.Digest) {
		return fmt.Errorf("%w: %s", ErrNotFound, ShortID(img.ID))
	}
	return s.updateIndex(ctx, func(n *names) error {
		if len(full) == 0 {
			if !n.has(img.Manifest.Digest) {
				n.addUnnamed(img.Manifest)
			}
			return nil
		}
		for _, name := range full {
			n.set(name, img.Manifest)
		}
		return nil
	})
}

// Removal is what Remove did, in Docker's words.
type Removal struct {
	Untagged []string      // familiar names
	Deleted  digest.Digest // the image ID, when the image itself went
}

// Remove is `docker rmi` of one reference: a name is untagged, and the image
// deleted with its last name; an ID deletes the image with all its names, which
// needs force when they span several repositories. inUse, when not nil, reports
// whether a container uses an image: such an image is never deleted (without
// force, removing its last name is refused too). The caller runs Prune after.
func (s *Store) Remove(ctx context.Context, ref string, force bool, inUse func(Image) string) (Removal, error) {
	var res Removal
	release, err := s.Lease(ctx)
	if err != nil {
		return res, err
	}
	defer release()
	err = s.updateIndex(ctx, func(n *names) error {
		res = Removal{}
		imgs, err := n.images(s)
		if err != nil {
			return err
		}
		img, err := LookupIn(imgs, ref)
		if err != nil {
			return err
		}
		byName := ""
		if nm, err := reference.ParseNormalizedNamed(ref); err == nil {
			if _, dg := nm.(reference.Digested); !dg {
				full := reference.TagNameOnly(nm).String()
				for _, x := range img.Names {
					if x == full {
						byName = full
					}
				}
			}
		}
		user := ""
		if inUse != nil {
			user = inUse(img)
		}
		if byName != "" && len(img.Names) > 1 {
			n.remove(byName)
			res.Untagged = []string{FamiliarName(byName)}
			return nil
		}
		if byName == "" && !force && repositories(img.Names) > 1 {
			return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, ShortID(img.ID))
		}
		if user != "" {
			if !force || byName == "" {
				what := fmt.Sprintf("unable to delete %s (must be forced)", ShortID(img.ID))
				if byName != "" {
					what = fmt.Sprintf("unable to remove repository reference %q (must force)", ref)
				} else if force {
					what = fmt.Sprintf("unable to delete %s (cannot be forced)", ShortID(img.ID))
				}
				return fmt.Errorf("%w: %s - container %s is using its referenced image %s", ErrConflict, what, user, ShortID(img.ID))
			}
			// Forced removal of the last name of an image in use: it stays, dangling.
			n.remove(byName)
			n.addUnnamed(img.Manifest)
			res.Untagged = []string{FamiliarName(byName)}
			return nil
		}
		for _, x := range img.Names {
			res.Untagged = append(res.Untagged, FamiliarName(x))
		}
		n.removeAll(img.Manifest.Digest)
		res.Deleted = img.ID
		return nil
	})
	return res, err
}

// StillListed reports whether the index still lists img's manifest, named
// or not (ErrNotFound if it does not), asked under the index lock. A caller
// that first makes a record which Remove's inUse will see (a container) and
// then asks is ordered with every Remove: either that Remove's inUse saw
// the record and refused, or it deleted img before the caller asked, and
// the caller learns it here.
func (s *Store) StillListed(ctx context.Context, img Image) error {
	return s.updateIndex(ctx, func(n *names) error {
		if !n.has(img.Manifest.Digest) {
			return fmt.Errorf("%w: %s", ErrNotFound, ShortID(img.ID))
		}
		return nil
	})
}

func repositories(names []string) int {
	repos := map[string]bool{}
	for _, x := range names {
		if n, err := reference.ParseNormalizedNamed(x); err == nil {
			repos[n.Name()] = true
		}
	}
	return len(repos)
}

// Catalog finds the images of a list by name, as LookupIn does, without
// parsing a reference that is one of their names as stored (normalized) or
// in its familiar form (with or without ":latest"): those it knows by heart.
type Catalog struct {
	imgs   []Image
	byName map[string]int
}

// NewCatalog indexes imgs, a list the caller has read.
func NewCatalog(imgs []Image) *Catalog {
	c := &Catalog{imgs: imgs, byName: map[string]int{}}
	for i, img := range imgs {
		for _, name := range img.Names {
			if strings.Contains(name, "@") {
				continue // by digest: LookupIn also matches the manifest's and the config's
			}
			for _, form := range familiarForms(name) {
				if _, taken := c.byName[form]; !taken {
					c.byName[form] = i
				}
			}
		}
	}
	return c
}

// Lookup finds the image ref names, as LookupIn(imgs, ref) would.
func (c *Catalog) Lookup(ref string) (Image, error) {
	if i, ok := c.byName[ref]; ok {
		return c.imgs[i], nil
	}
	return LookupIn(c.imgs, ref)
}

// familiarForms are the strings a user may type that normalize to name, a
// normalized tagged name: name itself and the familiar form Docker prints
// (reference.FamiliarString: docker.io/ dropped, and library/ before a
// one-component path), each also without its tag when that is "latest".
func familiarForms(name string) []string {
	forms := []string{name}
	if rest, ok := strings.CutPrefix(name, "docker.io/"); ok {
		if official, ok := strings.CutPrefix(rest, "library/"); ok && !strings.Contains(official, "/") {
			rest = official
		}
		forms = append(forms, rest)
	}
	for _, f := range forms {
		if untagged, ok := strings.CutSuffix(f, ":latest"); ok && !strings.Contains(untagged[strings.LastIndex(untagged, "/")+1:], ":") {
			forms = append(forms, untagged)
		}
	}
	return forms
}

// IsFamiliar reports whether s is, without a doubt, a name in the familiar
// form with or without a tag, the form Docker prints (reference.FamiliarString
// of its parse gives it back as it is), told without the parse: path
// components of lowercase letters and digits joined by one '.', '_' or '-'
// (a part of the grammar of references), the first no domain (it has no '.'
// and is not localhost) and not "library" (which the familiar form drops),
// and a tag of letters, digits, '_', '.' and '-' not starting with '.' or '-'.
func IsFamiliar(s string) bool {
	name, tag, tagged := strings.Cut(s, ":")
	if name == "" || len(name) > 255 || strings.HasPrefix(name, "library/") || strings.HasPrefix(name, "localhost/") || name == "localhost" {
		return false
	}
	if first, _, _ := strings.Cut(name, "/"); strings.Contains(first, ".") {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		prev := byte('.')
		for i := 0; i < len(comp); i++ {
			c := comp[i]
			switch {
			case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			case (c == '.' || c == '_' || c == '-') && prev != '.' && prev != '_' && prev != '-':
			default:
				return false
			}
			prev = c
		}
		if prev == '.' || prev == '_' || prev == '-' {
			return false // empty, or ends with a separator
		}
	}
	if !tagged {
		return true
	}
	if tag == "" || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// SplitName splits full, a stored (normalized) name, into its familiar
// repository and its tag, without a parse when the name is a tagged one of
// Docker Hub in the form IsFamiliar takes; ok false says to parse it.
func SplitName(full string) (repository, tag string, ok bool) {
	rest, hub := strings.CutPrefix(full, "docker.io/")
	if !hub {
		return "", "", false
	}
	if official, lib := strings.CutPrefix(rest, "library/"); lib {
		if name, _, _ := strings.Cut(official, ":"); strings.Contains(name, "/") {
			return "", "", false // library/a/b keeps its library/
		}
		rest = official
	}
	repository, tag, tagged := strings.Cut(rest, ":")
	if !tagged || !IsFamiliar(rest) {
		return "", "", false
	}
	return repository, tag, true
}
