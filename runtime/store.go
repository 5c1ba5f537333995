package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-runtime/cairn/events"
	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/internal/atomicfile"
	"github.com/cairn-runtime/cairn/internal/lockfile"
	"github.com/cairn-runtime/cairn/internal/names"
	"github.com/cairn-runtime/cairn/network"
	"github.com/cairn-runtime/cairn/snapshot"
	"github.com/opencontainers/go-digest"
)

// Options open a container store.
type Options struct {
	Root      string // the cairn root: containers/ and volumes/ go under it
	Run       string // state that does not outlive a reboot (libcontainer's), on a tmpfs
	Tmp       string // the root's temporary directory, on the same filesystem as Root
	Images    *image.Store
	Snapshots *snapshot.Store
	Networks  *network.Store
	Events    *events.Journal // what happens to containers is appended here (nil: nowhere)
	// Monitor returns the command that re-executes cairn as the monitor of
	// container id (see StartDetached and Serve).
	Monitor func(id string) *exec.Cmd
}

// Store keeps the containers of one cairn root.
type Store struct {
	dir       string // <root>/containers
	initLayer string // <root>/containers/init: see makeInitLayer
	volumes   string // <root>/volumes
	tmp       string
	locks     string
	state     string // libcontainer's state root
	run       string // the run directory: state that does not outlive a reboot
	images    *image.Store
	snaps     *snapshot.Store
	nets      *network.Store
	events    *events.Journal
	monitor   func(id string) *exec.Cmd
}

// Open opens (creating if needed) the container store of a cairn root.
func Open(o Options) (*Store, error) {
	s := &Store{
		dir:       filepath.Join(o.Root, "containers"),
		initLayer: filepath.Join(o.Root, "containers", "init"),
		volumes:   filepath.Join(o.Root, "volumes"),
		tmp:       o.Tmp,
		locks:     filepath.Join(o.Root, "locks"),
		state:     filepath.Join(o.Run, "libcontainer"),
		run:       o.Run,
		images:    o.Images,
		snaps:     o.Snapshots,
		nets:      o.Networks,
		events:    o.Events,
		monitor:   o.Monitor,
	}
	for _, d := range []string{s.dir, s.volumes, s.tmp, s.locks} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(s.state, 0o700); err != nil {
		return nil, err
	}
	if err := s.makeInitLayer(); err != nil {
		return nil, fmt.Errorf("init layer: %w", err)
	}
	return s, nil
}

func (s *Store) path(id string, name ...string) string {
	return filepath.Join(append([]string{s.dir, id}, name...)...)
}

// RootFS is where the container's filesystem is mounted while it runs.
func (s *Store) RootFS(id string) string { return s.path(id, "rootfs") }

// InitLayer is the lower directory every container has above its image.
func (s *Store) InitLayer() string { return s.initLayer }

// Upper is the container's writable layer: the whole truth about its changes.
func (s *Store) Upper(id string) string { return s.path(id, "upper") }

// LogPath is the container's json-file log.
func (s *Store) LogPath(id string) string { return s.path(id, id+"-json.log") }

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// read loads a container's record.
func (s *Store) read(id string) (*Container, error) {
	c, _, err := s.readFile(id)
	return c, err
}

// write replaces a container's record; the caller holds its lock. A record is
// runtime state: atomic, but not synced (after a crash a container reads as exited).
func (s *Store) write(c *Container) error {
	b, err := encode(c)
	if err != nil {
		return err
	}
	return atomicfile.Replace(s.path(c.ID, "container.json"), b, 0o600)
}

func encode(c *Container) ([]byte, error) { return json.MarshalIndent(c, "", "  ") }

// update changes a container's record under its lock. When fn fails, nothing
// is written.
func (s *Store) update(ctx context.Context, id string, fn func(*Container) error) (*Container, error) {
	l, err := lockfile.Exclusive(ctx, s.path(id, "lock"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	defer l.Unlock()
	c, err := s.read(id)
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return c, err
	}
	return c, s.write(c)
}

// ids lists the containers that have a record.
func (s *Store) ids() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && names.ID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List returns every container, newest first, each with its state checked.
func (s *Store) List(ctx context.Context) ([]*Container, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, c := range recs {
		if c.State.Status == Running || c.State.Status == Paused || c.State.Status == Restarting {
			c, err = s.check(ctx, c)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Resolve finds the ID of the container a user means, as Docker does: a full
// ID, a name (with or without its leading "/"), or a unique ID prefix.
func (s *Store) Resolve(ref string) (string, error) {
	if names.ID(ref) {
		if _, err := os.Stat(s.path(ref, "container.json")); err == nil {
			return ref, nil
		}
	}
	name := strings.TrimPrefix(ref, "/")
	if name == "" {
		return "", fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	heads, err := s.heads()
	if err != nil {
		return "", err
	}
	var prefixed []string
	for _, c := range heads {
		if c.Name == name {
			return c.ID, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			prefixed = append(prefixed, c.ID)
		}
	}
	switch len(prefixed) {
	case 1:
		return prefixed[0], nil
	case 0:
		return "", fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return "", fmt.Errorf("%w: multiple IDs found with provided prefix: %s", ErrInvalid, ref)
}

// Get returns the container ref names, its state checked against the kernel:
// a container recorded as running whose owner was killed and whose processes
// are gone is recorded as exited, and what it left (mount, cgroups) removed.
func (s *Store) Get(ctx context.Context, ref string) (*Container, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	c, err := s.read(id)
	if err != nil {
		return nil, err
	}
	if c.State.Status != Running && c.State.Status != Paused && c.State.Status != Restarting {
		return c, nil
	}
	return s.check(ctx, c)
}

// check looks behind a record that says running: while an owner holds the
// owner lock, the record is the truth; without one, libcontainer tells.
func (s *Store) check(ctx context.Context, c *Container) (*Container, error) {
	s.thawAbandoned(c.ID)
	owner, ok, err := lockfile.TryExclusive(s.path(c.ID, "owner.lock"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, c.ID)
		}
		return nil, err
	}
	if !ok {
		return c, nil // its owner is alive and will record its end
	}
	defer owner.Unlock()
	return s.reap(ctx, c.ID)
}

// reap records the end of a container that has no owner, if its processes are
// gone, and cleans up after it. The caller holds the owner lock.
func (s *Store) reap(ctx context.Context, id string) (*Container, error) {
	var removed bool
	c, err := s.update(ctx, id, func(c *Container) error {
		if c.State.Status == Restarting {
			// Its monitor died while it waited to start it again.
			c.State.Status, c.State.Restarting = Exited, false
			return nil
		}
		if c.State.Status != Running && c.State.Status != Paused {
			return nil
		}
		if s.alive(id) {
			return nil // running on, orphaned: its exit code will be lost
		}
		c.State.Status = Exited
		c.State.ExitCode = 255
		c.State.Error = "the process that owned the container was killed: its exit code is lost"
		c.State.FinishedAt = now()
		c.State.Pid = 0
		if err := s.cleanup(ctx, c); err != nil {
			return err
		}
		removed = c.Host.AutoRemove
		return nil
	})
	if err == nil && removed {
		err = s.remove(ctx, c, true)
	}
	return c, err
}

// usedChains returns the chain IDs that containers stand on, so that garbage
// collection of the image store keeps their snapshots.
func (s *Store) usedChains() (map[digest.Digest]bool, error) {
	heads, err := s.heads()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, c := range heads {
		if c.Chain != "" {
			out[c.Chain] = true
		}
	}
	return out, nil
}

// KeepSnapshots adds to keep the snapshots containers use, and their parents.
func (s *Store) KeepSnapshots(keep map[digest.Digest]bool) error {
	used, err := s.usedChains()
	if err != nil {
		return err
	}
	for chain := range used {
		if keep[chain] {
			continue // kept with an image's layers, and so are its parents (its chain ID names them)
		}
		infos, err := s.snaps.Chain(chain)
		if err != nil {
			return fmt.Errorf("container snapshot: %w", err)
		}
		for _, info := range infos {
			keep[info.ChainID] = true
		}
	}
	return nil
}

// ImagesInUse returns the IDs of the images containers are made from.
func (s *Store) ImagesInUse() (map[digest.Digest]bool, error) {
	heads, err := s.heads()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, c := range heads {
		out[c.Image] = true
	}
	return out, nil
}

// UsingImage returns the short ID of a container made from image id, or "".
func (s *Store) UsingImage(id digest.Digest) string {
	heads, _ := s.heads()
	for _, c := range heads {
		if c.Image == id {
			return ShortID(c.ID)
		}
	}
	return ""
}

// names of Docker's generated container names: adjective_surname.
var (
	adjectives = strings.Fields("admiring affectionate agitated amazing angry awesome blissful bold boring brave busy charming clever cool compassionate competent confident cranky crazy dazzling determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic exciting fervent festive flamboyant focused friendly frosty funny gallant gifted goofy gracious great happy hardcore heuristic hopeful hungry infallible inspiring intelligent interesting jolly jovial keen kind laughing loving lucid magical modest musing mystifying naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive practical priceless quirky quizzical recursing relaxed reverent romantic sad serene sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous zen")
	surnames   = strings.Fields("albattani allen almeida agnesi archimedes ardinghelli aryabhata austin babbage banach bardeen bartik bassi beaver bell benz bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta brattain brown burnell cannon carson cartwright cerf chandrasekhar chaplygin chatelet chatterjee chebyshev cohen chaum clarke colden cori cray curran curie darwin davinci dewdney dhawan diffie dijkstra dirac driscoll dubinsky easley edison einstein elbakyan elgamal elion ellis engelbart euclid euler faraday feistel fermat fermi feynman franklin gagarin galileo galois ganguly gates gauss germain goldberg goldstine goldwasser golick goodall gould greider grothendieck haibt hamilton haslett hawking hellman heisenberg hermann herschel hertz heyrovsky hodgkin hofstadter hoover hopper hugle hypatia ishizaka jackson jang jemison jennings jepsen johnson joliot jones kalam kapitsa kare keldysh keller kepler khayyam khorana kilby kirch knuth kowalevski lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren mclean mcnulty meitner mendel mendeleev meninsky merkle mestorf mirzakhani montalcini moore morse murdock moser napier nash neumann newton nightingale nobel noether northcutt noyce panini pare pascal pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan ride ritchie rhodes robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu turing varahamihira vaughan visvesvaraya volhard villani wescoff wilbur wiles williams williamson wilson wing wozniak wright wu yalow yonath zhukovsky")
)

func randomName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return adjectives[(int(b[0])<<8|int(b[1]))%len(adjectives)] + "_" + surnames[(int(b[2])<<8|int(b[3]))%len(surnames)]
}

// validName is Docker's rule for these names (internal/names).
func validName(n string) bool { return names.Valid(n) }
