package main

import (
	"os"
	"runtime/debug"
)

// oneShot tunes the garbage collector for a command that reads a whole
// store, prints and exits (ps, images, inspect, image prune): it collects
// when the heap has grown five times over, not twice, since the process
// ends before its few tens of megabytes matter. A GOGC of the user's wins.
// Long-lived commands (the service, a monitor) keep Go's default.
func oneShot() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
