// Package fsck holds what the stores' checks (`cairn system check`) report:
// a Problem names the thing that is wrong by its path, says what is wrong and
// what mends it. Each store checks its own invariants (image.Store.Check,
// snapshot.Store.Check, runtime.Store.Check, network.Store.Check); the engine
// puts them together and runs the repairs.
package fsck
