// Command cairn is a daemonless container runtime: Docker's image workflow,
// with every command a short-lived process sharing state through files.
//
// This package is the CLI and nothing more: flags (urfave/cli/v2, with
// Docker's names), terminal handling (runAttached: raw mode, window size, the
// signal proxy), output formats (tables and --format templates), exit codes
// (125 for cairn's own errors, 126 and 127 for a command that cannot be run
// or found, else the container's), and the values that belong to the calling
// process: a bare -e KEY or --build-arg KEY takes its value from cairn's
// environment (resolveEnv), registry credentials come from the user's Docker
// config (credentials.go). Everything else is engine's: openEngine is the one
// place the CLI opens the stores.
//
// cairn is also its own container init (libcontainer re-executes it as
// "cairn init") and a detached container's monitor (the hidden
// "container-monitor" command).
package main
