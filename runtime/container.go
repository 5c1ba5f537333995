package runtime

import (
	"errors"
	"os"
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
	// AttachStdin, AttachStdout and AttachStderr are the streams `run`
	// attaches to (-a; without it stdout and stderr, and stdin with -i;
	// none with -d), as Docker records them.
	AttachStdin  bool   `json:"AttachStdin"`
	AttachStdout bool   `json:"AttachStdout"`
	AttachStderr bool   `json:"AttachStderr"`
	Tty          bool   `json:"Tty"`
	OpenStdin    bool   `json:"OpenStdin"`
	StdinOnce    bool   `json:"StdinOnce"` // stdin closes when the attached client detaches (-i with stdin attached)
	Image        string `json:"Image"`     // as the user named it
	// StopTimeout is --stop-timeout: the seconds `stop` waits by default
	// before SIGKILL (nil: 10, Docker's default).
	StopTimeout *int `json:"StopTimeout,omitempty"`
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

	ContainerIDFile string    `json:"ContainerIDFile"` // --cidfile
	LogConfig       LogConfig `json:"LogConfig"`       // --log-driver, --log-opt
	VolumeDriver    string    `json:"VolumeDriver"`    // --volume-driver: "" or "local"
	VolumesFrom     []string  `json:"VolumesFrom"`     // --volumes-from CONTAINER[:ro|rw], as given
	// Mounts are --mount's, as Docker keeps them; the mounts they make are
	// among the container's Mounts.
	Mounts []MountSpec `json:"Mounts,omitempty"`
	// Tmpfs are --tmpfs's: mount point → options.
	Tmpfs map[string]string `json:"Tmpfs,omitempty"`
	Init  *bool             `json:"Init,omitempty"` // --init: tini as PID 1

	// Namespaces: "" is the container's own (IpcMode "private"), "host" the
	// host's, "container:ID" another container's.
	IpcMode      string `json:"IpcMode"`      // private, shareable, none, host, container:ID
	PidMode      string `json:"PidMode"`      // "", host, container:ID
	UTSMode      string `json:"UTSMode"`      // "", host
	UsernsMode   string `json:"UsernsMode"`   // "", host
	CgroupnsMode string `json:"CgroupnsMode"` // host, private

	GroupAdd    []string          `json:"GroupAdd"`    // --group-add: more groups of the process
	SecurityOpt []string          `json:"SecurityOpt"` // --security-opt (a seccomp profile's file read in: seccomp=<JSON>)
	ShmSize     int64             `json:"ShmSize"`     // bytes of /dev/shm
	Sysctls     map[string]string `json:"Sysctls,omitempty"`
	OomScoreAdj int               `json:"OomScoreAdj"`
	Ulimits     []Ulimit          `json:"Ulimits"`
	Runtime     string            `json:"Runtime"`   // always runc (libcontainer, built in)
	Isolation   string            `json:"Isolation"` // always "" (default)
	// Annotations are passed to the OCI runtime-spec.
	Annotations map[string]string `json:"Annotations,omitempty"`

	// Resources (cgroups).
	CgroupParent         string           `json:"CgroupParent"` // the container's cgroup is CgroupParent/ID (default /cairn)
	CpuShares            int64            `json:"CpuShares"`
	CpuPeriod            int64            `json:"CpuPeriod"`
	CpuQuota             int64            `json:"CpuQuota"`
	CpuRealtimePeriod    int64            `json:"CpuRealtimePeriod"`
	CpuRealtimeRuntime   int64            `json:"CpuRealtimeRuntime"`
	CpusetCpus           string           `json:"CpusetCpus"`
	CpusetMems           string           `json:"CpusetMems"`
	BlkioWeight          uint16           `json:"BlkioWeight"`
	BlkioWeightDevice    []WeightDevice   `json:"BlkioWeightDevice"`
	BlkioDeviceReadBps   []ThrottleDevice `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []ThrottleDevice `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []ThrottleDevice `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []ThrottleDevice `json:"BlkioDeviceWriteIOps"`
	Devices              []DeviceMapping  `json:"Devices"`
	DeviceCgroupRules    []string         `json:"DeviceCgroupRules"`
	MemoryReservation    int64            `json:"MemoryReservation"`
	// MemorySwap is memory plus swap (-1: unlimited swap; 0: twice Memory,
	// as Docker, where the kernel accounts swap).
	MemorySwap       int64  `json:"MemorySwap"`
	MemorySwappiness *int64 `json:"MemorySwappiness"` // nil: the kernel's
	OomKillDisable   bool   `json:"OomKillDisable"`

	// MaskedPaths and ReadonlyPaths are those of the container (nil in an
	// older record: Docker's defaults; empty with systempaths=unconfined).
	MaskedPaths   []string `json:"MaskedPaths"`
	ReadonlyPaths []string `json:"ReadonlyPaths"`
}

// LogConfig is Docker's: the log driver and its options.
type LogConfig struct {
	Type   string            `json:"Type"` // json-file (""), local or none
	Config map[string]string `json:"Config"`
}

// Log drivers cairn has.
const (
	LogJSONFile = "json-file"
	LogLocal    = "local" // json-file with Docker's local defaults: max-size 20m, max-file 5
	LogNone     = "none"
)

// MountSpec is one --mount, with Docker's names.
type MountSpec struct {
	Type          string         `json:"Type"` // bind, volume, tmpfs
	Source        string         `json:"Source,omitempty"`
	Target        string         `json:"Target"`
	ReadOnly      bool           `json:"ReadOnly,omitempty"`
	BindOptions   *BindOptions   `json:"BindOptions,omitempty"`
	VolumeOptions *VolumeOptions `json:"VolumeOptions,omitempty"`
	TmpfsOptions  *TmpfsOptions  `json:"TmpfsOptions,omitempty"`
}

// BindOptions are a bind mount's.
type BindOptions struct {
	Propagation string `json:"Propagation,omitempty"` // rprivate (default), private, rshared, shared, rslave, slave
}

// VolumeOptions are a volume mount's.
type VolumeOptions struct {
	NoCopy bool              `json:"NoCopy,omitempty"` // volume-nocopy: not filled from the image
	Labels map[string]string `json:"Labels,omitempty"`
}

// TmpfsOptions are a tmpfs mount's.
type TmpfsOptions struct {
	SizeBytes int64       `json:"SizeBytes,omitempty"`
	Mode      os.FileMode `json:"Mode,omitempty"` // the bits as chmod(2) has them (01777), as Docker's API
}

// WeightDevice is a relative block IO weight for one device.
type WeightDevice struct {
	Path   string `json:"Path"`
	Weight uint16 `json:"Weight"`
}

// ThrottleDevice is a block IO rate limit for one device.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// DeviceMapping is one --device.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"` // some of r, w, m
}

// Ulimit is one --ulimit: Name as `ulimit` says it (nofile, nproc…).
type Ulimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

// StopTimeout is how long `stop` waits for container c before SIGKILL when
// it is not told: --stop-timeout, else Docker's 10 seconds; a negative
// --stop-timeout waits for ever.
// Live reports whether c's process exists: it runs, or is paused.
func (c *Container) Live() bool { return c.State.Status == Running || c.State.Status == Paused }

// Up reports whether c counts as running where Docker says "Up" (ps
// without -a, stop, wait): live, or restarting between two of its runs.
func (c *Container) Up() bool {
	return c.Live() || c.State.Status == Restarting || c.State.Restarting
}

func (c *Container) StopTimeout() time.Duration {
	if t := c.Config.StopTimeout; t != nil {
		if *t < 0 {
			return 100 * 365 * 24 * time.Hour
		}
		return time.Duration(*t) * time.Second
	}
	return 10 * time.Second
}

// RestartPolicy is Docker's: Name is "no" (or ""), "on-failure",
// "always" or "unless-stopped"; MaximumRetryCount bounds on-failure.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// Mount is a volume or bind mount of the container.
type Mount struct {
	Type        string `json:"Type"` // "bind", "volume" or "tmpfs"
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
	// Anonymous volumes (VOLUME of the image, -v /path) go with the container
	// when it is removed with -v or was run with --rm.
	Anonymous bool `json:"Anonymous,omitempty"`
	// Propagation of a bind: rprivate when empty.
	Propagation string `json:"Propagation,omitempty"`
	// NoCopy: a volume that is not filled with the image's content.
	NoCopy bool `json:"NoCopy,omitempty"`
	// Data are a tmpfs's options (size=…, mode=…), for Type "tmpfs".
	Data string `json:"Data,omitempty"`
	// Labels are those a volume --mount makes gets (volume-label).
	Labels map[string]string `json:"-"`
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
