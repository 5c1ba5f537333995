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
// The monitor (Serve) is more than a waiter: it restarts the container as
// its --restart policy says, with Docker's back-off (100 ms doubling to a
// minute, reset by a run of ten seconds), owning it across its runs (the
// record says "restarting" between two); stop, kill and rm -f mark it
// stopped by hand, which the monitor does not undo. It runs the container's
// health check (HEALTHCHECK or --health-*), exec'ing the probe and keeping
// State.Health. And it keeps the container's terminal (-t) or stdin pipe
// (-i) and its output, served on /run/cairn/<hash>/attach/<id12>.sock to
// any number of `attach` clients (Attach), whose detach keys leave the
// container running; a foreground `run -i` is such a client of a monitor,
// so that it can detach too. Every change is appended to the store's event
// journal (package events).
//
// On disk, under the store root:
//
//	containers/<id>/container.json  the record (Container), replaced atomically under lock
//	containers/<id>/lock            flock serialising changes of the record
//	containers/<id>/owner.lock      flock held by the owner while the container runs
//	containers/init/                the init layer, one per store: mount points (/etc/hosts, /proc, ...)
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
