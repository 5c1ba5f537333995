// Package engine is what cairn's front ends call: the CLI (cmd/cairn) today,
// the Docker Engine API socket next. It sits over the stores as containerd's
// client sits over its services, and holds every job that crosses them, so
// that no front end repeats it:
//
//	e, err := engine.Open(engine.Options{Root: "/var/lib/cairn", RegistryConfig: "/etc/cairn/config.json", Monitor: ...})
//	c, err := e.Create(ctx, engine.CreateOptions{...})      // pulls the image first, as the pull policy says
//	res, err := e.Commit(ctx, "web", commit.Options{...})   // pause, read the upper directory, a new image
//	err = e.Prune(ctx)                                      // garbage collection across the stores
//
// Open opens the image store (image), the snapshot store (snapshot) and
// the container store (runtime) under one root; Prune collects what none of
// them uses. Pull (with its policy, EnsureImage, and its clean-up on failure),
// Push, RemoveImage (with its prune), SaveItems (save's name expansion), the
// sizes of images, Restart, Build (with the pulls of its FROM lines) and the
// Docker-shaped records of inspect, ps, images and history are here.
//
// The engine never reads the calling process's environment or credential
// files: a bare -e KEY is resolved by the front end, and credentials come in
// as an authn.Keychain (the CLI's reads ~/.docker/config.json; the API's
// holds the request's X-Registry-Auth). Progress comes out through
// callbacks (PullReporter), never to a terminal.
//
// The engine holds no state between calls beyond handles on the stores:
// every method works through their files and locks, so any number of cairn
// processes share one root.
package engine
