// Package failpoint names the places where a test kills cairn to prove
// that a process killed there leaves nothing a later command cannot find
// and remove. In a build with the tag "failpoints", Hit(name) kills the
// calling process with SIGKILL when the environment variable
// CAIRN_FAILPOINT names it (and notes each hit in the file
// CAIRN_FAILPOINT_TRACE names); in every other build Hit does nothing and costs
// nothing.
package failpoint
