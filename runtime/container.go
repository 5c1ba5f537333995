// Package runtime runs containers: a writable overlay layer over an image's
// snapshots, a process in namespaces started through libcontainer, and the
// record on disk that lets every short-lived cairn process see and change it.
//
// The lifecycle of a container:
//
//	c, err := s.Create(ctx, opts)      // record, init layer, upper and work directories: "created"
//	t, err := s.Start(ctx, c.ID, io)   // mounts the overlay, starts the process: "running"
//	code, err := t.Wait(ctx)           // records exit code and time, unmounts, drops cgroups: "exited"
//	err = s.Remove(ctx, c.ID, opts)
//
// Whoever calls Start owns the container until its process exits, and must
// call Wait: the foreground `cairn run`, or, for a detached container, a small
// monitor process (cairn re-executed by StartDetached) that outlives the CLI
// and keeps the container's log. The owner holds an flock on the container's
// owner.lock all that time, so any other process can tell whether a running
// container still has an owner; one whose owner was killed is found out by Get
// (its exit code is lost, and Get cleans up after it once its processes are
// gone). Every other operation — Kill, Stop, Wait, Exec, Remove — works from
// any process through the record and libcontainer's state.
//
// On disk, under the store root:
//
//	containers/<id>/container.json  the record (Container), replaced atomically under lock
//	containers/<id>/lock            flock serialising changes of the record
//	containers/<id>/owner.lock      flock held by the owner while the container runs
//	containers/<id>/init/           the init layer: mount points (/etc/hosts, /proc, ...)
//	                                that must not show in the container's changes
//	containers/<id>/upper/, work/   the writable layer: the whole truth about its changes
//	containers/<id>/rootfs/         where the overlay is mounted while it runs
//	containers/<id>/hosts, hostname, resolv.conf   bind-mounted into it
//	containers/<id>/<id>-json.log   its output, in Docker's json-file format
//	volumes/<name>/_data            named and anonymous volumes
//
// libcontainer's own state lives in the run directory (a tmpfs, like
// /run/cairn/…), so that nothing of a running container outlives a reboot but
// its record, which then reads as exited.
//
// This is the only package that imports libcontainer.
package runtime

import (
	"errors"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// Errors of the runtime; callers test them with errors.Is.
var (
	ErrNotFound   = errors.New("No such container") // Docker's words, which scripts match
	ErrConflict   = errors.New("Conflict")
	ErrNotRunning = errors.New("not running")
	ErrRunning    = errors.New("already running")
	ErrInvalid    = errors.New("invalid argument")
	// ErrCommandNotFound: the command does not exist in the container (exit 127).
	ErrCommandNotFound = errors.New("command not found")
	// ErrCannotInvoke: the command exists but cannot be run (exit 126).
	ErrCannotInvoke = errors.New("command cannot be invoked")
)

// Status of a container, as Docker names them.
const (
	Created = "created"
	Running = "running"
	Paused  = "paused"
	Exited  = "exited"
)

// Container is the record of a container. Its JSON field names are Docker's,
// so that `inspect` shows what `docker inspect` shows.
type Container struct {
	ID      string        `json:"Id"`
	Name    string        `json:"Name"` // without Docker's leading "/"
	Created time.Time     `json:"Created"`
	Path    string        `json:"Path"`
	Args    []string      `json:"Args"`
	ImageID digest.Digest `json:"Image"`
	// Chain is the chain ID of the image's top layer: the snapshot the
	// container stands on. Empty for an image without layers.
	Chain  digest.Digest `json:"Chain,omitempty"`
	Config Config        `json:"Config"`
	Host   HostConfig    `json:"HostConfig"`
	Mounts []Mount       `json:"Mounts"`
	State  State         `json:"State"`
}

// Config is what the container runs, as Docker's container config: the image's
// config with `run`'s options applied. Commit starts from it.
type Config struct {
	Hostname   string `json:"Hostname"`
	Domainname string `json:"Domainname"`
	Tty        bool   `json:"Tty"`
	OpenStdin  bool   `json:"OpenStdin"`
	Image      string `json:"Image"` // as the user named it
	// User, ExposedPorts, Env, Entrypoint, Cmd, Volumes, WorkingDir, Labels,
	// StopSignal, Healthcheck, OnBuild, Shell.
	dockerspec.DockerOCIImageConfig
}

// HostConfig is how the container runs.
type HostConfig struct {
	Binds          []string `json:"Binds"` // -v as given
	NetworkMode    string   `json:"NetworkMode"`
	AutoRemove     bool     `json:"AutoRemove"`
	Privileged     bool     `json:"Privileged"`
	ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
	CapAdd         []string `json:"CapAdd"`
	CapDrop        []string `json:"CapDrop"`
	Memory         int64    `json:"Memory"`    // bytes; 0: no limit
	NanoCPUs       int64    `json:"NanoCpus"`  // 1e9 is one CPU; 0: no limit
	PidsLimit      int64    `json:"PidsLimit"` // 0: no limit
}

// Mount is a volume or bind mount of the container.
type Mount struct {
	Type        string `json:"Type"` // "bind" or "volume"
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
	// Anonymous volumes (VOLUME of the image, -v /path) go with the container
	// when it is removed with -v or was run with --rm.
	Anonymous bool `json:"Anonymous,omitempty"`
}

// State is where the container is in its lifecycle.
type State struct {
	Status     string    `json:"Status"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	OOMKilled  bool      `json:"OOMKilled"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// ShortID is the 12-character form of a container ID that Docker prints.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
