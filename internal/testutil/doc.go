// Package testutil holds what cairn's tests share: the rules for tests that
// need root or a tool, and handles on the fixtures that hack/ provides — a
// Docker engine on its own socket (hack/dockerd), a registry on
// 127.0.0.1:5000 (hack/registry) and a busybox root filesystem
// (hack/busybox-rootfs). It is imported by tests only.
//
// A test whose requirement is not met is skipped, with the reason, except
// under CI (the environment variable CI is not empty), where it fails: CI must
// never pass by skipping. .ci/run installs and starts everything these
// helpers look for.
package testutil
