// Package lockfile provides flock(2) locks on files, the way cairn processes
// coordinate access to a shared store without a daemon.
//
// A lock is held by an open file description: it is released when Unlock is
// called or when the process dies, so a killed cairn never leaves a store locked.
package lockfile
