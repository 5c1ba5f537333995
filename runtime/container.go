package runtime

import (
	"errors"
	"time"

	"github.com/docker/go-connections/nat"
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
	// Networks are the networks the container joins when it starts (its
	// NetworkMode, then those `network connect` added), each with what it
	// asks there; what it has there while it runs is the network store's.
	Networks map[string]*EndpointSettings `json:"Networks,omitempty"`
	// RestartCount is how many times the monitor restarted it.
	RestartCount int `json:"RestartCount"`
	// ManuallyStopped: stopped by `stop` (or `kill`), which an
	// unless-stopped or always policy does not undo until the next start.
	ManuallyStopped bool `json:"ManuallyStopped,omitempty"`
}

// EndpointSettings is what a container asks of one network, as Docker's
// endpoint configuration.
type EndpointSettings struct {
	Aliases     []string `json:"Aliases"`
	IPv4Address string   `json:"IPv4Address,omitempty"` // --ip
	MacAddress  string   `json:"MacAddress,omitempty"`  // --mac-address
	// Order keeps the networks in the order they were joined: the first
	// is the container's default route and where its ports are published.
	Order int `json:"Order"`
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
	// PortBindings are -p's: "8080/tcp" → the host addresses and ports
	// published, as Docker keeps them ("" for every address, or for a port
	// the kernel picks).
	PortBindings    nat.PortMap `json:"PortBindings"`
	PublishAllPorts bool        `json:"PublishAllPorts"` // -P: every exposed port, on a port the kernel picks
	Dns             []string    `json:"Dns"`
	DnsSearch       []string    `json:"DnsSearch"`
	DnsOptions      []string    `json:"DnsOptions"`
	ExtraHosts      []string    `json:"ExtraHosts"` // --add-host name:ip
	// RestartPolicy is --restart: what the monitor does when the container
	// exits.
	RestartPolicy RestartPolicy `json:"RestartPolicy"`
}

// RestartPolicy is Docker's: Name is "no" (or ""), "on-failure",
// "always" or "unless-stopped"; MaximumRetryCount bounds on-failure.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
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
	// Restarting: the monitor waits to start it again (--restart).
	Restarting bool `json:"Restarting,omitempty"`
	// Health is its health check's, when it has one.
	Health *Health `json:"Health,omitempty"`
}

// Health is the state of a container's health check, as Docker's.
type Health struct {
	Status        string        `json:"Status"` // "starting", "healthy", "unhealthy"
	FailingStreak int           `json:"FailingStreak"`
	Log           []HealthProbe `json:"Log"`
}

// HealthProbe is one run of a health check.
type HealthProbe struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// ShortID is the 12-character form of a container ID that Docker prints.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
